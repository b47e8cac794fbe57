/**
 * The chaos campaign (issue 8): the real bot (`trader run`, a child process,
 * MODE=testnet with every URL pointed at an in-process local exchange) trades
 * 5 USD-M symbols on a strategy that flips on every closed 1m candle, while
 * this process kills it with SIGKILL at random moments (plain, right after an
 * order row is committed and before the request leaves, and while a placed
 * order's response is black-holed by the exchange), injects faults (dropped
 * and stalled streams, 5xx on ~10% of REST calls, slow calls, a 429 burst, a
 * 2 s clock skew, an expired listenKey) and restarts it. A final clean start
 * runs reconciliation; then the invariants are checked against the
 * exchange's own records (invariants.ts).
 *
 * Market data: a seeded random walk for the 5 symbols, written as kline CSV
 * files and replayed by the exchange at `speed` (candles are historical
 * minutes, paced in real time), so candles close every few hundred ms.
 */
import { mkdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { readHeartbeat, startCli, waitFor, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';
import { checkInvariants, type InvariantReport } from './invariants.ts';
import { rng, type Rng } from './rng.ts';

export const CHAOS_SYMBOLS = { ALGOUSDT: 0.2, AVAXUSDT: 30, DOTUSDT: 6, FILUSDT: 5, LINKUSDT: 15 } as const;

export interface CampaignOptions {
  kills: number;
  seed: number;
  /** Replay pace: 60 = a minute of candles per second. */
  speed: number;
  /** Each run trades for a random time in [min, max] ms before it is killed (when not killed by a hook). */
  runMs: [number, number];
  /** Probability that a REST call fails with a 5xx while faults are on. */
  failRate: number;
  /** Probability that a REST call is slowed (delayMs) while faults are on. */
  delayRate: number;
  delayMs: number;
  /** Keep the workspace (logs, database) for a post-mortem. */
  keep: boolean;
  log?: (line: string) => void;
}

export const SHORT: CampaignOptions = { kills: 5, seed: 8, speed: 120, runMs: [1500, 3500], failRate: 0.1, delayRate: 0.05, delayMs: 1500, keep: false };
export const LONG: CampaignOptions = { ...SHORT, kills: 50, runMs: [1500, 6000], delayMs: 11_000 };

type KillMode = 'random' | 'after-row' | 'blackhole';
type Fault = 'ws-drop' | 'ws-stall' | 'rest-5xx' | 'rest-429-burst' | 'clock-skew' | 'listenkey-expire';

export interface CampaignReport {
  seed: number;
  kills: number;
  restartsSurvived: number;
  /** Starts that refused (exited non-zero) under an injected fault and were retried, as a supervisor would. */
  refusedStarts: string[];
  killModes: Record<KillMode, number>;
  faultsInjected: Record<Fault | 'rest-5xx-calls' | 'rest-delayed-calls', number>;
  ordersPlaced: number;
  fills: number;
  candlesReplayed: number;
  invariants: InvariantReport;
  /** Invariants 1-5 (orders, intents, fills, positions, realized PnL): must be 0. */
  discrepancies: number;
  /** Invariant 6 (candles missing from the store over the campaign window). */
  candleDiscrepancies: number;
  missingCandles: number;
  durationMs: number;
  workspace?: string;
}

/** A seeded random walk for each symbol, written as Binance kline CSV (the replay's input). */
function writeMarketData(ws: Workspace, r: Rng, minutes: number, t0: number): Array<{ market: 'futures'; symbol: string; files: string[] }> {
  const out = [];
  for (const [symbol, p0] of Object.entries(CHAOS_SYMBOLS)) {
    let p: number = p0;
    const rows: string[] = [];
    for (let i = 0; i < minutes; i++) {
      const o = p;
      // Small moves (0.05 % sd): the entries stay well inside every price band.
      p = Math.max(p0 * 0.5, p * (1 + (r.next() - 0.5) * 0.001));
      const c = p;
      const hi = Math.max(o, c) * 1.0002;
      const lo = Math.min(o, c) * 0.9998;
      const f = (x: number) => x.toFixed(p0 < 1 ? 5 : 3);
      rows.push([t0 + i * 60_000, f(o), f(hi), f(lo), f(c), '1000', t0 + i * 60_000 + 59_999, '1000', 10, '500', '500', '0'].join(','));
    }
    out.push({ market: 'futures' as const, symbol, files: [ws.write(`replay/${symbol}-1m.csv`, rows.join('\n') + '\n')] });
  }
  return out;
}

const STRATEGY = (name: string) =>
  [
    `import { z } from '${REPO_ROOT}/node_modules/zod/index.js';`,
    `import { defineStrategy } from '${REPO_ROOT}/src/strategy/api.ts';`,
    `// Chaos: trades as often as it can: long when flat, flat when long, on every closed candle.`,
    `export default defineStrategy({ name: '${name}', description: 'chaos flipper', params: z.object({}).passthrough(), defaultTimeframe: '1m', warmup: () => 1,`,
    `  create(ctx) { return { onCandle() { if (ctx.position().side === 'flat') ctx.enterLong({ reason: 'flat' }); else ctx.exitLong({ reason: 'long' }); }, reset() {} }; } });`,
    '',
  ].join('\n');

const STILL = [
  `import { z } from '${REPO_ROOT}/node_modules/zod/index.js';`,
  `import { defineStrategy } from '${REPO_ROOT}/src/strategy/api.ts';`,
  `export default defineStrategy({ name: 'still', description: 'never signals', params: z.object({}).passthrough(), defaultTimeframe: '1m', warmup: () => 1,`,
  `  create() { return { onCandle() {}, reset() {} }; } });`,
  '',
].join('\n');

export function chaosWorkspace(ex: LocalExchange, symbols: readonly string[], extraEnv: Record<string, string> = {}, strategy: 'flipper' | 'still' = 'flipper'): Workspace {
  // The replayed candles are from 2024: the resume window must reach back that far.
  const ws = makeWorkspace({ ...ex.botEnv(), FEED: 'live', ORDER_POLL_SEC: '2', HEARTBEAT_INTERVAL_MS: '100', FEED_RESUME_HOURS: '1000000', ...extraEnv });
  // No risk guards: the campaign is about the order path, not about being stopped by a limit
  // (the flipper loses fees on every round trip; stale-data would judge the historical candle times).
  ws.write('config/bot.yaml', 'market: futures\nrisk:\n  guards: []\nreconcile:\n  intervalSec: 10\n  external: ignore\n');
  ws.write(`strategies/${strategy}/index.ts`, strategy === 'flipper' ? STRATEGY('flipper') : STILL);
  for (const s of symbols) ws.write(`strategies/${strategy}/${s}.yaml`, 'timeframe: 1m\nsizing:\n  type: quote\n  amount: 30\n');
  return ws;
}

async function post(ex: LocalExchange, route: string, body: unknown = {}): Promise<void> {
  const r = await fetch(`${ex.urls().control}/${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`control ${route}: ${r.status} ${await r.text()}`);
}

function exchangeOrderCount(ex: LocalExchange): number {
  const acct = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
  let n = 0;
  for (const s of Object.keys(CHAOS_SYMBOLS)) n += ex.engine.allOrders(acct, 'futures', s, { startTime: 0, limit: 1e9 }).length;
  return n;
}

const START_WAIT_MS = 200_000;
const running = (pid: number | undefined) => (hb: Heartbeat) => hb.state === 'running' && hb.pid === pid;

export async function runCampaign(o: CampaignOptions): Promise<CampaignReport> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const r = rng(o.seed);
  const ex = await LocalExchange.start({ funding: false });
  const ws = chaosWorkspace(ex, Object.keys(CHAOS_SYMBOLS));
  mkdirSync(join(ws.dir, 'replay'), { recursive: true });
  const t0 = Date.UTC(2024, 0, 1);
  const sources = writeMarketData(ws, r, 30_000, t0);
  // Marks first, so the exchange talks before the first candle (as Binance always does).
  for (const [s, p] of Object.entries(CHAOS_SYMBOLS)) ex.engine.setMarkPrice(s, new Dec(p));
  ex.startReplay(sources, o.speed, true);

  // Probabilistic REST faults, switched on only while a bot trades (a start that
  // fails on them would just be restarted, but it would slow the campaign down).
  const faults = { on: false, fails: 0, delays: 0 };
  const fr = rng(o.seed + 1);
  const origFail = ex.faults.takeFail.bind(ex.faults);
  const origDelay = ex.faults.takeDelay.bind(ex.faults);
  ex.faults.takeFail = (path: string) => {
    const f = origFail(path);
    if (f || !faults.on || !path.startsWith('/fapi/') || fr.next() >= o.failRate) return f;
    faults.fails++;
    return { count: 0, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again. (chaos)' };
  };
  ex.faults.takeDelay = (path: string) => {
    const d = origDelay(path);
    if (d || !faults.on || !path.startsWith('/fapi/') || fr.next() >= o.delayRate) return d;
    faults.delays++;
    return o.delayMs;
  };

  const killModes: Record<KillMode, number> = { random: 0, 'after-row': 0, blackhole: 0 };
  const injected: Record<Fault, number> = { 'ws-drop': 0, 'ws-stall': 0, 'rest-5xx': 0, 'rest-429-burst': 0, 'clock-skew': 0, 'listenkey-expire': 0 };
  const runFaults: Fault[] = ['ws-drop', 'ws-stall', 'listenkey-expire', 'rest-5xx', 'rest-429-burst'];
  const refusedStarts: string[] = [];
  let restarts = 0;
  let bot: RunningCli | undefined;
  const modes: KillMode[] = ['random', 'after-row', 'blackhole'];
  try {
    for (let k = 0; k < o.kills; k++) {
      const mode = modes[k % 3]!;
      const env: Record<string, string> = mode === 'after-row' ? { TRADER_CHAOS_CRASH_AFTER_ROW: String(1 + r.int(3)) } : {};
      // Between runs: a 2 s clock skew for the start (server behind: our timestamps look 2 s
      // ahead, -1021; or ahead). A 429 burst is injected while a bot runs, not at its start:
      // a start refused on 429 and restarted at once is banned (418), as on Binance (see the report).
      if (k % 3 === 1) {
        await post(ex, 'clock/skew', { ms: r.next() < 0.5 ? -2000 : 2000 });
        injected['clock-skew']++;
      }
      // A start may refuse (a 429 or a 5xx during the start: "if reconciliation fails, do not
      // trade"); the process must then exit, and a supervisor starts it again. So do we.
      let hb: Heartbeat | undefined;
      let hooked = false;
      for (let attempt = 1; !hb; attempt++) {
        bot = startCli(['run'], { env: { ...ws.env, ...env }, cwd: ws.dir });
        const b = bot;
        try {
          // A start waits out a 429 (to the minute's end) or a ban (2 min and more): give it that.
          hb = await waitForHeartbeat(ws.heartbeatFile, running(b.child.pid), b, START_WAIT_MS);
        } catch (err) {
          if (b.child.exitCode === null && b.child.signalCode === null) throw new Error(`bot neither running nor exited after ${START_WAIT_MS / 1000} s:\n${b.output().slice(-3000)}`, { cause: err });
          const code = await b.exited;
          // The after-row hook may fire right at the start: that still is a kill at the crash point.
          if (mode === 'after-row' && b.child.signalCode === 'SIGKILL') {
            hooked = true;
            break;
          }
          refusedStarts.push(`run ${k + 1} attempt ${attempt}: exit ${code}: ${lastLine(b.stderr())}`);
          if (attempt >= 10) throw new Error(`the bot refused to start 10 times in a row:\n${b.output().slice(-3000)}`);
          await new Promise((res) => setTimeout(res, 500));
        }
      }
      const cur = bot!;
      const exitedEarly = cur.exited.then(() => true);
      if (hooked || !hb) {
        killModes[mode]++;
        restarts++;
        log(`kill ${k + 1}/${o.kills}: after-row hook fired during start`);
        continue;
      }
      if (hb.reconcile.status !== 'ok' && hb.reconcile.status !== 'starting') log(`run ${k + 1}: reconcile ${hb.reconcile.status}: ${hb.reconcile.detail}`);
      await post(ex, 'clock/skew', { ms: 0 });
      const fault = runFaults[k % runFaults.length]!;
      faults.on = fault === 'rest-5xx' || r.next() < 0.5;
      if (faults.on) injected['rest-5xx']++;
      const ordersBefore = exchangeOrderCount(ex);
      // One stream fault in the middle of the run.
      const faultAt = Date.now() + 300 + r.int(800);
      const faultTask = (async () => {
        while (Date.now() < faultAt) await new Promise((res) => setTimeout(res, 50));
        if (cur.child.exitCode !== null || cur.child.signalCode !== null) return;
        if (fault === 'ws-drop') await post(ex, 'ws/drop');
        else if (fault === 'ws-stall') {
          await post(ex, 'ws/stall', { streams: ['*'] });
          await new Promise((res) => setTimeout(res, 1500));
          await post(ex, 'ws/resume');
        } else if (fault === 'listenkey-expire') await post(ex, 'listenKey/expire');
        // Three 429s: whoever gets one (the venue, the feed's catch-up) waits out its Retry-After.
        else if (fault === 'rest-429-burst') await post(ex, 'rest/429', { count: 3 });
        if (fault !== 'rest-5xx') injected[fault]++;
      })();

      if (mode === 'random') {
        const until = Date.now() + o.runMs[0] + r.int(o.runMs[1] - o.runMs[0]);
        await waitFor('the kill moment', () => Date.now() >= until || undefined, 120_000);
        cur.child.kill('SIGKILL');
      } else if (mode === 'after-row') {
        await Promise.race([exitedEarly, new Promise((res) => setTimeout(res, 15_000))]);
        if (cur.child.signalCode !== 'SIGKILL') {
          log(`run ${k + 1}: the after-row hook did not fire within 15 s; killing`);
          cur.child.kill('SIGKILL');
        }
      } else {
        // The exchange accepts the next order but never answers: kill while the request hangs.
        await post(ex, 'order/blackhole', { count: 1, holdMs: 30_000 });
        const accepted = exchangeOrderCount(ex);
        await waitFor('a black-holed order', () => (ex.faults.blackholeOrders === 0 && exchangeOrderCount(ex) > accepted) || undefined, START_WAIT_MS);
        await new Promise((res) => setTimeout(res, 50 + r.int(400)));
        cur.child.kill('SIGKILL');
        ex.faults.blackholeOrders = 0;
      }
      killModes[mode]++;
      const code = await cur.exited;
      faults.on = false;
      await faultTask;
      await post(ex, 'ws/resume');
      restarts++;
      log(`kill ${k + 1}/${o.kills} (${mode}, fault ${fault}${faults.on ? '+5xx' : ''}): exit ${code}, ${exchangeOrderCount(ex) - ordersBefore} orders this run, ${exchangeOrderCount(ex)} in all`);
    }

    // The end: market data stops (nothing new to trade on), faults off, one clean start: its
    // reconciliation settles what the last kill left; then a clean stop.
    ex.replay?.stop();
    await post(ex, 'reset');
    faults.on = false;
    bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    await waitForHeartbeat(ws.heartbeatFile, running(bot.child.pid), bot, START_WAIT_MS);
    restarts++;
    // Orders the last runs left PENDING (written, never sent) are looked up once ackTimeout (30 s) passed.
    await waitFor('every order row final', () => (openRows(ws) === 0 ? true : undefined), 60_000);
    // One more full pass after everything settled (the periodic reconcile runs every 10 s).
    const before = readHeartbeat(ws.heartbeatFile)?.reconcile as unknown as { at?: string };
    await waitForHeartbeat(ws.heartbeatFile, (h) => (h.reconcile as unknown as { at?: string }).at !== before?.at, bot, 30_000);
    bot.child.kill('SIGTERM');
    const code = await bot.exited;
    if (code !== 0) throw new Error(`the final clean stop exited ${code}:\n${bot.output().slice(-3000)}`);
    bot = undefined;

    const invariants = checkInvariants(ex, ws, Object.keys(CHAOS_SYMBOLS));
    return {
      seed: o.seed,
      kills: o.kills,
      restartsSurvived: restarts,
      refusedStarts,
      killModes,
      faultsInjected: { ...injected, 'rest-5xx-calls': faults.fails, 'rest-delayed-calls': faults.delays },
      ordersPlaced: invariants.exchange.orders,
      fills: invariants.exchange.trades,
      candlesReplayed: ex.replay?.candles ?? 0,
      invariants,
      discrepancies: invariants.discrepancies.length + invariants.candleDiscrepancies.length,
      candleDiscrepancies: invariants.candleDiscrepancies.length,
      missingCandles: invariants.store.missingCandles,
      durationMs: Date.now() - started,
      ...(o.keep ? { workspace: ws.dir } : {}),
    };
  } finally {
    if (bot && bot.child.exitCode === null && bot.child.signalCode === null) bot.child.kill('SIGKILL');
    await ex.close();
    if (!o.keep) ws.cleanup();
  }
}

function openRows(ws: Workspace): number {
  // Read-only, short-lived: the bot holds the database (WAL lets us read beside it).
  const db = new Database(ws.dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT COUNT(*) AS n FROM orders WHERE status IN ('PENDING','NEW','PARTIALLY_FILLED')").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
