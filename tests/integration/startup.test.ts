/**
 * Start-up either comes up or goes down (issue 18): the real `trader run`
 * as a child process, MODE=testnet against the local exchange (real ccxt and
 * ws), with faults injected on the exchange's REST routes.
 *
 *  - a transient failure at start (503) is retried with backoff while the
 *    heartbeat says `starting`, `waiting for <what> (attempt N)`, unhealthy;
 *  - a permanent one (bad keys, a symbol the exchange does not list) exits
 *    non-zero at once with the reason, and the last heartbeat says `stopped`;
 *  - the first SIGINT or SIGTERM stops the process in every start phase,
 *    during a retry's wait and during a call that hangs.
 *
 * Binance's documented answers these rely on: HTTP 5xx means the request
 * may or may not have been processed (for a read at start: try again);
 * -2015 "Invalid API-key, IP, or permissions for action." and -1022
 * "Signature for this request is not valid." are refusals a retry cannot
 * change (https://developers.binance.com/docs/binance-spot-api-docs/errors,
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { killQuietly, readHeartbeat, startCli, waitFor, type RunningCli } from '../support/bot-process.ts';
import { addStrategy, makeWorkspace, type Workspace } from '../support/workspace.ts';

let ex: LocalExchange;
const workspaces: Workspace[] = [];
const running: RunningCli[] = [];

beforeAll(async () => {
  ex = await LocalExchange.start({ funding: false });
});
afterAll(async () => {
  await ex?.close();
});
afterEach(() => {
  for (const c of running.splice(0)) killQuietly(c);
  for (const w of workspaces.splice(0)) w.cleanup();
  ex.faults.reset();
});

/** A testnet bot on the local exchange: one strategy that never signals, no market data (start-up is the subject). */
function bot(opts: { market?: 'spot' | 'futures'; symbol?: string; env?: Record<string, string> } = {}): { ws: Workspace; cli: RunningCli } {
  const ws = makeWorkspace({ ...ex.botEnv(), HEARTBEAT_INTERVAL_MS: '100', ...opts.env });
  workspaces.push(ws);
  ws.write('config/bot.yaml', `market: ${opts.market ?? 'spot'}\n`);
  addStrategy(ws, 'still', { [`${opts.symbol ?? 'BTCUSDT'}.yaml`]: 'timeframe: 1m\n' });
  const cli = startCli(['run'], { env: ws.env, cwd: ws.dir });
  running.push(cli);
  return { ws, cli };
}

/** Fails every REST call under pathPrefix (count calls, default: all of them) with Binance's 503 answer. */
function fail(pathPrefix: string, count = 1_000_000_000): void {
  ex.faults.fails.push({ count, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.', pathPrefix });
}

/**
 * Every distinct heartbeat the bot writes, in order (polled; a state that lasts
 * less than the poll would be missed, which the retry's 1 s wait rules out).
 */
function heartbeats(ws: Workspace, cli: RunningCli): { seen: Heartbeat[]; until: (what: string, pred: (hb: Heartbeat) => boolean, timeoutMs?: number) => Promise<Heartbeat> } {
  const seen: Heartbeat[] = [];
  const probe = (): Heartbeat | undefined => {
    const hb = readHeartbeat(ws.heartbeatFile);
    if (hb && (seen.length === 0 || seen.at(-1)!.tsMs !== hb.tsMs)) seen.push(hb);
    return hb;
  };
  let exited = false;
  void cli.exited.then(() => (exited = true));
  const last = (): string => JSON.stringify(seen.at(-1) && { state: seen.at(-1)!.state, detail: seen.at(-1)!.detail, healthy: seen.at(-1)!.healthy, problems: seen.at(-1)!.problems });
  return {
    seen,
    until: async (what, pred, timeoutMs = 30_000) => {
      try {
        return await waitFor(
          what,
          () => {
            const hb = probe();
            if (hb && pred(hb)) return hb;
            if (exited) throw new Error(`the bot exited (${cli.child.exitCode}) before: ${what}\n${cli.output()}`);
            return undefined;
          },
          timeoutMs,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}; last heartbeat: ${last()}\n${cli.output().slice(-3000)}`);
      }
    },
  };
}

/** The exit code, or a failure naming what the bot printed if it is still running after timeoutMs. */
async function exitCode(cli: RunningCli, timeoutMs = 30_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${cli.output().slice(-3000)}`)), timeoutMs);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function logText(ws: Workspace): string {
  if (!existsSync(ws.logDir)) return '';
  return readdirSync(ws.logDir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => readFileSync(join(ws.logDir, f), 'utf8'))
    .join('');
}

/** What a failed or stopped start must never leave behind: work on a closed store, an ignored signal. */
function expectCleanExit(ws: Workspace, cli: RunningCli): void {
  const all = cli.output() + logText(ws);
  expect(all, 'nothing touched the database after it was closed').not.toContain('The database connection is not open');
  expect(all, 'no unexpected fault on the way down').not.toMatch(/uncaught exception|unhandled promise rejection/);
  expect(all, 'the process ended by itself, not by the linger guard or the stop deadline').not.toMatch(/still running .* after the bot stopped|graceful stop took longer/);
}

describe('start-up against the exchange (real child process)', () => {
  it('a 503 at start is retried with backoff and the bot comes up: starting "waiting for account (attempt 1)", unhealthy, then running', async () => {
    // GET /api/v3/account answers 503 once.
    fail('/api/v3/account', 1);
    const { ws, cli } = bot();
    const hb = heartbeats(ws, cli);
    const waiting = await hb.until('the retry in the heartbeat', (h) => h.state === 'starting' && h.detail === 'waiting for account (attempt 1)');
    expect(waiting.healthy, 'a start that is retrying is not healthy').toBe(false);
    expect(waiting.problems.join('\n'), 'the problem names what failed').toMatch(/account.*503/);
    const up = await hb.until('running', (h) => h.state === 'running');
    expect(up.healthy, JSON.stringify(up.problems)).toBe(true);
    expect(hb.seen.map((h) => h.state)).not.toContain('stopped');
    expect(logText(ws), 'the retry is logged once, with its wait').toMatch(/waiting for account \(attempt 1\): .*503.*next try in \d/);

    cli.child.kill('SIGINT');
    expect(await exitCode(cli), cli.output()).toBe(0);
    expect(readHeartbeat(ws.heartbeatFile)!.state).toBe('stopped');
    expectCleanExit(ws, cli);
  });

  it('bad keys exit 78 within seconds, with the reason in one line and in the last heartbeat; no retry, no secret', async () => {
    // Spot: an API key the exchange does not know (-2015 on the user-data stream's subscribe).
    // USD-M: the right key with a wrong secret (-1022 on the first signed call).
    const cases: Array<{ market: 'spot' | 'futures'; env: Record<string, string>; code: RegExp; secret: string }> = [
      { market: 'spot', env: { BINANCE_API_KEY: 'not-a-known-key-4471' }, code: /-2015/, secret: 'not-a-known-key-4471' },
      { market: 'futures', env: { BINANCE_API_SECRET: 'a-wrong-secret-9932' }, code: /-1022/, secret: 'a-wrong-secret-9932' },
    ];
    const bots = cases.map((c) => ({ c, ...bot({ market: c.market, env: c.env }) }));
    for (const { c, ws, cli } of bots) {
      const started = Date.now();
      const code = await exitCode(cli);
      expect(code, cli.output()).toBe(78);
      expect(Date.now() - started, 'at once, not after retries').toBeLessThan(20_000);
      const line = cli.stderr().split('\n').filter((l) => l.startsWith('trader: refusing to start:'));
      expect(line, cli.stderr()).toHaveLength(1);
      expect(line[0]).toMatch(c.code);
      const last = readHeartbeat(ws.heartbeatFile)!;
      expect(last.state).toBe('stopped');
      expect(last.healthy).toBe(false);
      expect(last.detail).toMatch(c.code);
      expect(cli.output() + logText(ws), 'a permanent failure is not retried').not.toContain('attempt 1');
      expect(cli.output() + logText(ws) + readFileSync(ws.heartbeatFile, 'utf8')).not.toContain(c.secret);
      expectCleanExit(ws, cli);
    }
  });

  it('a symbol the exchange does not list exits 78 naming it', async () => {
    const { ws, cli } = bot({ symbol: 'NOPEUSDT' });
    expect(await exitCode(cli), cli.output()).toBe(78);
    expect(cli.stderr().trim(), 'one line').toMatch(/^trader: refusing to start: invalid configuration: strategies\/still\/NOPEUSDT\.yaml: NOPEUSDT is not listed on binance spot \(not in its exchangeInfo\)[^\n]*$/);
    const last = readHeartbeat(ws.heartbeatFile)!;
    expect(last.state).toBe('stopped');
    expect(last.detail).toContain('NOPEUSDT');
    expectCleanExit(ws, cli);
  });

  it('a permanent failure late in the start (reconciliation refused) exits 70 at once: no timer of the half-started bot outlives the store', async () => {
    // By the reconciliation the execution engine polls (every second here) and the instruments refresh on a
    // timer; a 400 (-1121) on openOrders is a refusal a retry cannot change.
    ex.faults.fails.push({ count: 1_000_000_000, status: 400, code: -1121, msg: 'Invalid symbol.', pathPrefix: '/api/v3/openOrders' });
    const { ws, cli } = bot({ env: { ORDER_POLL_SEC: '1' } });
    expect(await exitCode(cli), cli.output()).toBe(70);
    expect(cli.stderr()).toMatch(/^trader: refusing to start: openOrders.*Invalid symbol\. \(code -1121\) \[REJECTED\]$/m);
    const last = readHeartbeat(ws.heartbeatFile)!;
    expect(last.state).toBe('stopped');
    expect(last.detail).toContain('-1121');
    expectCleanExit(ws, cli);
  });

  // One bot per start phase, each kept there by the exchange, then one signal.
  const stuck = [
    { phase: 'exchange connection: exchangeInfo answers 503 forever (SIGINT during a retry wait)', market: 'spot' as const, signal: 'SIGINT' as const, jam: () => fail('/api/v3/exchangeInfo'), at: /^waiting for exchange connection \(attempt [1-9]\d*\)$/ },
    { phase: 'exchange connection: the USD-M listenKey (user-data stream) answers 503 forever', market: 'futures' as const, signal: 'SIGTERM' as const, jam: () => fail('/fapi/v1/listenKey'), at: /^waiting for exchange connection \(attempt [1-9]\d*\)$/ },
    { phase: 'account: GET /api/v3/account hangs (SIGINT during the call)', market: 'spot' as const, signal: 'SIGINT' as const, jam: () => ex.faults.delays.push({ count: 1, ms: 8_000, pathPrefix: '/api/v3/account' }), at: /^waiting for account$/ },
    { phase: 'reconciliation: openOrders answers 503 forever', market: 'spot' as const, signal: 'SIGTERM' as const, jam: () => fail('/api/v3/openOrders'), at: /^waiting for reconciliation \(attempt [1-9]\d*\)$/ },
  ];
  for (const s of stuck) {
    it(`the first ${s.signal} stops a start stuck in ${s.phase}: exit 0, last heartbeat "stopped"`, async () => {
      s.jam();
      const { ws, cli } = bot({ market: s.market });
      const hb = heartbeats(ws, cli);
      await hb.until(`detail ${s.at}`, (h) => h.state === 'starting' && s.at.test(h.detail ?? ''));
      const sent = Date.now();
      cli.child.kill(s.signal);
      expect(await exitCode(cli), cli.output()).toBe(0);
      expect(Date.now() - sent, 'a signal at start is a prompt stop').toBeLessThan(5_000);
      const last = readHeartbeat(ws.heartbeatFile)!;
      expect(last.state).toBe('stopped');
      expect(last.detail).toContain(`received ${s.signal}`);
      expect(cli.output()).not.toContain('exiting without a clean stop');
      expectCleanExit(ws, cli);
    });
  }
});
