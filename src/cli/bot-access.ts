/**
 * How a one-shot CLI command reaches the bot: through the running bot's
 * control API when it runs (data/control.json names the port; the token is
 * CONTROL_TOKEN or data/control.token), otherwise by taking the instance
 * lock and opening the same database itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Bus } from '../bus/bus.ts';
import { LiveClock, type Clock } from '../core/clock.ts';
import { InstanceLockedError } from '../core/errors.ts';
import { newRunId } from '../core/ids.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { CONTROL_FILE, controlInfoSchema, TOKEN_FILE } from '../control/control-server.ts';
import { secretValues, type Settings } from '../settings/settings.ts';
import { InstanceLock } from '../store/instance-lock.ts';
import { Journal, recordJournal } from '../store/journal.ts';
import { Store } from '../store/store.ts';

export interface Remote {
  url: string;
  token: string;
}

/** The running bot's control API, when there is one that answers. */
export async function findRunningBot(settings: Settings): Promise<Remote | undefined> {
  const dir = dirname(settings.paths.dbFile);
  const file = join(dir, CONTROL_FILE);
  if (!existsSync(file)) return undefined;
  let info;
  try {
    info = controlInfoSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return undefined;
  }
  try {
    process.kill(info.pid, 0);
  } catch {
    return undefined; // Left behind by a bot that died: not running.
  }
  const token = settings.secrets.controlToken?.reveal() ?? (existsSync(join(dir, TOKEN_FILE)) ? readFileSync(join(dir, TOKEN_FILE), 'utf8').trim() : '');
  const host = info.host.includes(':') ? `[${info.host}]` : info.host;
  return { url: `http://${host}:${info.port}`, token };
}

export async function call(r: Remote, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${r.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${r.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}


export interface Offline {
  settings: Settings;
  store: Store;
  bus: Bus;
  clock: Clock;
  logger: Logger;
}

/**
 * Runs fn with the bot's database opened by this process (bot not running):
 * the lock is held throughout, so the bot cannot start half-way through.
 * Returns undefined (with the reason on stderr) when another process holds it.
 */
export async function openOffline<T>(settings: Settings, command: string, fn: (o: Offline) => Promise<T>): Promise<T | undefined> {
  const clock = new LiveClock();
  // Warnings and errors go to the daily log file only: the terminal gets the command's report.
  const log = createLogger({ level: 'warn', format: 'json', dir: settings.paths.logDir, retentionDays: settings.env.LOG_RETENTION_DAYS, secrets: secretValues(settings), stdout: { write: () => undefined }, base: { component: command } });
  let lock: InstanceLock;
  try {
    lock = InstanceLock.acquire(settings.paths.dbFile, clock.now());
  } catch (err) {
    log.close();
    if (err instanceof InstanceLockedError) {
      process.stderr.write(`trader ${command}: ${err.message}; its control API is not reachable (no ${CONTROL_FILE} next to the database?)\n`);
      return undefined;
    }
    throw err;
  }
  const store = Store.open(settings.paths.dbFile);
  const bus = new Bus({ logger: log.logger, clock });
  const stopJournal = recordJournal(bus, new Journal(store, newRunId()));
  try {
    await store.migrate();
    return await fn({ settings, store, bus, clock, logger: log.logger });
  } finally {
    stopJournal();
    bus.close();
    store.close();
    lock.release(clock.now());
    log.flush();
    log.close();
  }
}
