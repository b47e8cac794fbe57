/**
 * Runs the real `trader` CLI as a child process (node + tsx, exactly what
 * `npm start` runs) and waits on what it writes, never on fixed sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { REPO_ROOT } from './workspace.ts';

export interface RunningCli {
  child: ChildProcess;
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or 128+signal number when killed by a signal). */
  exited: Promise<number>;
}

/** Env for children: the parent's, minus anything that would point the bot elsewhere. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) {
    if (/^(MODE|CONFIRM_MAINNET|BINANCE_|DB_URL|CONFIG_FILE|STRATEGIES_DIR|HEARTBEAT_|LOG_|FEED|REPLAY_|WS_|ENV_FILE)/.test(k)) delete base[k];
  }
  return { ...base, ...env, FORCE_COLOR: '0' };
}

export function startCli(args: string[], opts: { env: Record<string, string>; cwd: string }): RunningCli {
  const child = spawn(process.execPath, [`${REPO_ROOT}/src/cli/bin.js`, ...args], {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 0)));
  });
  return { child, output: () => out + err, stdout: () => out, stderr: () => err, exited };
}

/** Runs a CLI command to completion. */
export async function runCli(args: string[], opts: { env: Record<string, string>; cwd: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = startCli(args, opts);
  const code = await c.exited;
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

export function readHeartbeat(file: string): Heartbeat | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Heartbeat;
  } catch {
    return undefined;
  }
}

/** Polls until pred holds, or fails with what was last seen. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function waitForHeartbeat(file: string, pred: (hb: Heartbeat) => boolean, cli?: RunningCli, timeoutMs = 30_000): Promise<Heartbeat> {
  let exitedEarly = false;
  void cli?.exited.then(() => (exitedEarly = true));
  return waitFor(`heartbeat in ${file}`, () => {
    if (exitedEarly) throw new Error(`bot exited before the heartbeat matched; output:\n${cli!.output()}`);
    const hb = readHeartbeat(file);
    return hb && pred(hb) ? hb : undefined;
  }, timeoutMs);
}

/** Kills a child that a failed assertion left running. */
export function killQuietly(cli: RunningCli | undefined): void {
  if (cli && cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
}
