/**
 * The multi-strategy chaos campaign (issue 17): the real bot (`trader run`, a
 * child process, MODE=testnet with every URL pointed at an in-process local
 * exchange, so orders go through the real ccxt and ws clients) trades two
 * symbols of one market, one with TWO strategies and one with THREE, whose
 * signals oppose each other:
 *
 *   spot     a: long on even minutes, flat on odd;  b: long on odd minutes
 *            (b buys when a sells);  c: long or flat from a seeded draw per
 *            minute, with a stop-loss;
 *   USD-M    a: long on even minutes;  b: SHORT on even minutes (the venue
 *            nets a and b against each other);  c: long, short or flat from
 *            a seeded draw, reversing in one candle (exitLong + enterShort),
 *            with a stop-loss.
 *
 * The signals are a function of the candle's minute (and the seed), so a
 * restarted bot wants what the killed one wanted. The spot account holds
 * base assets the bot never bought (external: no strategy may sell them).
 *
 * The bot is killed with SIGKILL at seeded random points (after a random
 * time, right after an order row is committed and before the request leaves,
 * and while a placed order's response is black-holed), the market moves on
 * for a random downtime, and the bot is restarted. The market data is paused
 * while a restarted bot reconciles, so the state can be checked at rest: after
 * every restart's reconciliation, the invariants of multi-invariants.ts. At
 * the end every strategy is told to go flat (TRADER_CHAOS_FLATTEN=1, read by
 * the test strategies), the market stops, the bot settles and stops cleanly,
 * and the invariants are checked once more, with every owner flat.
 *
 * USD-M runs in one-way mode or in hedge mode (POSITION_MODE=HEDGE: each
 * owner's legs are the venue's LONG and SHORT positions, checked leg by leg).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Dec } from '../../src/core/decimal.ts';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Market } from '../../src/model/market.ts';
import { readHeartbeat, startCli, waitFor, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';
import { checkMulti, type Direction, type MultiCheckSpec, type MultiReport } from './multi-invariants.ts';
import { rng, type Rng } from './rng.ts';

export type PositionMode = 'ONEWAY' | 'HEDGE';

export interface MultiOptions {
  market: Market;
  positionMode: PositionMode;
  kills: number;
  seed: number;
  /** Replay pace: 120 = two minutes of candles per second. */
  speed: number;
  /** Each run trades for a random time in [min, max] ms before a 'random' kill. */
  runMs: [number, number];
  /** After a kill the market moves on for a random time in [0, downMs] ms before the restart. */
  downMs: number;
  /** Strategy c protects its entries with a stop-loss (0.3 %). */
  stops: boolean;
  keep: boolean;
  log?: ((line: string) => void) | undefined;
}

export const MULTI_SHORT: Omit<MultiOptions, 'market' | 'positionMode'> = { kills: 3, seed: 17, speed: 120, runMs: [1500, 3500], downMs: 1500, stops: true, keep: false };
export const MULTI_LONG: Omit<MultiOptions, 'market' | 'positionMode'> = { ...MULTI_SHORT, kills: 30, runMs: [1500, 6000] };

type KillMode = 'random' | 'after-row' | 'blackhole';
type Rule = 'even-long' | 'odd-long' | 'even-short' | 'draw-long' | 'draw-both';

interface StrategyPlan {
  rule: Rule;
  direction: Direction;
  /** Entry size in USDT (sizing: quote). */
  quote: number;
}

interface MarketPlan {
  /** The symbol two strategies trade, and the one three trade. */
  two: string;
  three: string;
  prices: Record<string, number>;
  /** Spot balances before the bot (base assets the bot never bought). */
  spot?: Record<string, string>;
  strategies: Record<'a' | 'b' | 'c', StrategyPlan>;
}

const PLANS: Record<Market, MarketPlan> = {
  spot: {
    two: 'BTCUSDT',
    three: 'ETHUSDT',
    prices: { BTCUSDT: 60_000, ETHUSDT: 3_000 },
    spot: { USDT: '10000', BTC: '0.5', ETH: '2' },
    strategies: { a: { rule: 'even-long', direction: 'long', quote: 30 }, b: { rule: 'odd-long', direction: 'long', quote: 45 }, c: { rule: 'draw-long', direction: 'long', quote: 60 } },
  },
  futures: {
    two: 'DOTUSDT',
    three: 'ETHUSDT',
    prices: { DOTUSDT: 6, ETHUSDT: 3_000 },
    strategies: { a: { rule: 'even-long', direction: 'long', quote: 30 }, b: { rule: 'even-short', direction: 'short', quote: 45 }, c: { rule: 'draw-both', direction: 'both', quote: 60 } },
  },
};

export interface MultiReportOut {
  market: Market;
  positionMode: PositionMode;
  seed: number;
  kills: number;
  killModes: Record<KillMode, number>;
  restartsSurvived: number;
  refusedStarts: string[];
  candlesReplayed: number;
  ordersPlaced: number;
  fills: number;
  /** After each start's reconciliation (the market paused): discrepancies found. */
  restartChecks: Array<{ run: number; discrepancies: string[] }>;
  final: MultiReport;
  /**
   * Every distinct discrepancy of the campaign, with the check that saw it first (each check replays the
   * whole history, so a breach in the past is seen again by every later check: it is listed once).
   */
  distinct: Array<{ firstSeen: string; line: string }>;
  /** distinct.length: must be 0. */
  discrepancies: number;
  /** Findings reported but not counted (the checks' notes, with the check that made them). */
  notes: string[];
  durationMs: number;
  workspace?: string;
}

/**
 * A test strategy: its wanted side is a function of the candle's minute (and
 * the seed); it exits what it holds on the other side and enters the wanted
 * one in the same candle. TRADER_CHAOS_FLATTEN=1 (the campaign's last run)
 * makes every strategy want flat.
 */
function strategyModule(name: string, rule: Rule, seed: number): string {
  const salt = [...name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, seed >>> 0);
  return [
    `import { z } from '${REPO_ROOT}/node_modules/zod/index.js';`,
    `import { defineStrategy } from '${REPO_ROOT}/src/strategy/api.ts';`,
    `// Chaos (issue 17): rule ${rule}, seed ${seed}.`,
    `function draw(minute) {`,
    `  let t = (Math.imul(minute >>> 0, 0x9e3779b1) ^ ${salt}) >>> 0;`,
    `  t = Math.imul(t ^ (t >>> 15), t | 1);`,
    `  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);`,
    `  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;`,
    `}`,
    `function wanted(minute) {`,
    `  switch ('${rule}') {`,
    `    case 'even-long': return minute % 2 === 0 ? 'long' : 'flat';`,
    `    case 'odd-long': return minute % 2 === 1 ? 'long' : 'flat';`,
    `    case 'even-short': return minute % 2 === 0 ? 'short' : 'flat';`,
    `    case 'draw-long': return draw(minute) < 0.55 ? 'long' : 'flat';`,
    `    default: { const u = draw(minute); return u < 0.4 ? 'long' : u < 0.8 ? 'short' : 'flat'; }`,
    `  }`,
    `}`,
    `export default defineStrategy({ name: '${name}', description: 'chaos: opposite signals on one symbol', params: z.object({}).passthrough(), defaultTimeframe: '1m', warmup: () => 1,`,
    `  create(ctx) {`,
    `    return {`,
    `      onCandle(c) {`,
    `        const minute = Math.floor(c.openTime / 60000);`,
    `        const want = process.env.TRADER_CHAOS_FLATTEN === '1' ? 'flat' : wanted(minute);`,
    `        const side = ctx.position().side;`,
    `        const reason = 'minute ' + minute + ': ' + want;`,
    `        if (side === 'long' && want !== 'long') ctx.exitLong({ reason });`,
    `        if (side === 'short' && want !== 'short') ctx.exitShort({ reason });`,
    `        if (want === 'long' && side !== 'long') ctx.enterLong({ reason });`,
    `        if (want === 'short' && side !== 'short') ctx.enterShort({ reason });`,
    `      },`,
    `      reset() {},`,
    `    };`,
    `  },`,
    `});`,
    '',
  ].join('\n');
}

/** Which strategies trade which symbol: a and b on `two`, a, b and c on `three`. */
function assignments(plan: MarketPlan): Record<string, Array<'a' | 'b' | 'c'>> {
  return { [plan.two]: ['a', 'b'], [plan.three]: ['a', 'b', 'c'] };
}

function multiWorkspace(ex: LocalExchange, o: MultiOptions, plan: MarketPlan): Workspace {
  const ws = makeWorkspace({
    ...ex.botEnv(),
    FEED: 'live',
    ORDER_POLL_SEC: '2',
    HEARTBEAT_INTERVAL_MS: '100',
    // The replayed candles are from 2024: the resume window must reach back that far.
    FEED_RESUME_HOURS: '1000000',
    ...(o.market === 'futures' ? { POSITION_MODE: o.positionMode } : {}),
  });
  // No risk guards (the campaign is about ownership on the order path; flippers lose fees on every trip,
  // and stale-data would judge the historical candle times). External holdings are left alone.
  ws.write('config/bot.yaml', `market: ${o.market}\nrisk:\n  guards: []\nreconcile:\n  intervalSec: 10\n  external: ignore\n`);
  const bySymbol = assignments(plan);
  for (const name of ['a', 'b', 'c'] as const) {
    const p = plan.strategies[name];
    ws.write(`strategies/${name}/index.ts`, strategyModule(name, p.rule, o.seed));
    for (const [symbol, names] of Object.entries(bySymbol)) {
      if (!names.includes(name)) continue;
      const stop = o.stops && name === 'c' ? 'risk:\n  stopLossPct: 0.3\n' : '';
      ws.write(`strategies/${name}/${symbol}.yaml`, `timeframe: 1m\nsizing:\n  type: quote\n  amount: ${p.quote}\n${stop}`);
    }
  }
  return ws;
}

/**
 * The market: a seeded random walk per symbol (about 0.1 % per minute, so a
 * 0.3 % stop triggers now and then), replayed by the exchange as kline
 * files. It can be paused (while a restarted bot reconciles) and resumed
 * from the candle in progress.
 */
class MarketTape {
  private part = 0;
  private readonly rows: Record<string, string[]> = {};

  constructor(
    private readonly ex: LocalExchange,
    private readonly ws: Workspace,
    private readonly market: Market,
    private readonly t0: number,
    private readonly speed: number,
    prices: Record<string, number>,
    r: Rng,
    minutes: number,
  ) {
    for (const [symbol, p0] of Object.entries(prices)) {
      const tick = ex.engine.instrument(market, symbol)!.filters.price.tickSize;
      const f = (x: number) => new Dec(x).toDecimalPlaces(tick.decimalPlaces()).toFixed(tick.decimalPlaces());
      let p = p0;
      const out: string[] = [];
      for (let i = 0; i < minutes; i++) {
        const o = p;
        p = Math.max(p0 * 0.7, Math.min(p0 * 1.3, p * (1 + (r.next() - 0.5) * 0.004)));
        const hi = Math.max(o, p) * 1.0003;
        const lo = Math.min(o, p) * 0.9997;
        out.push([t0 + i * 60_000, f(o), f(hi), f(lo), f(p), '1000', t0 + i * 60_000 + 59_999, '1000', 10, '500', '500', '0'].join(','));
      }
      this.rows[symbol] = out;
    }
  }

  /** Plays from the candle in progress (or the one after the last closed). */
  resume(): void {
    const first = Object.keys(this.rows)[0]!;
    const current = this.ex.candles.current(this.market, first);
    const lastClosed = this.ex.candles.klines(this.market, first, '1m', { limit: 1, now: Number.MAX_SAFE_INTEGER })[0];
    const from = current ? (current.openTime - this.t0) / 60_000 : lastClosed ? (lastClosed.openTime - this.t0) / 60_000 + 1 : 0;
    this.part++;
    const sources = Object.entries(this.rows).map(([symbol, rows]) => ({ market: this.market, symbol, files: [this.ws.write(`replay/${symbol}-1m-part${this.part}.csv`, rows.slice(from).join('\n') + '\n')] }));
    this.ex.startReplay(sources, this.speed, true);
  }

  pause(): void {
    this.ex.replay?.stop();
  }

  get minutesPlayed(): number {
    const first = Object.keys(this.rows)[0]!;
    const lastClosed = this.ex.candles.klines(this.market, first, '1m', { limit: 1, now: Number.MAX_SAFE_INTEGER })[0];
    return lastClosed ? (lastClosed.openTime - this.t0) / 60_000 + 1 : 0;
  }
}

async function post(ex: LocalExchange, route: string, body: unknown = {}): Promise<void> {
  const r = await fetch(`${ex.urls().control}/${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`control ${route}: ${r.status} ${await r.text()}`);
}

const START_WAIT_MS = 200_000;
const running = (pid: number | undefined) => (hb: Heartbeat) => hb.state === 'running' && hb.pid === pid;

export async function runMultiCampaign(o: MultiOptions): Promise<MultiReportOut> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  if (o.market === 'spot' && o.positionMode === 'HEDGE') throw new Error('hedge mode is a USD-M setting');
  const plan = PLANS[o.market];
  const r = rng(o.seed);
  const ex = await LocalExchange.start({ funding: false, accounts: [{ ...DEFAULT_ACCOUNT, ...(plan.spot ? { spot: plan.spot } : {}) }] });
  const ws = multiWorkspace(ex, o, plan);
  const acct = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
  const symbols = Object.keys(plan.prices);
  const spec = (at: MultiCheckSpec['at'], expectFlat: boolean, heartbeat?: Heartbeat): MultiCheckSpec => ({
    market: o.market,
    hedge: o.positionMode === 'HEDGE',
    symbols: Object.fromEntries(Object.entries(assignments(plan)).map(([s, names]) => [s, Object.fromEntries(names.map((n) => [n, { direction: plan.strategies[n].direction, quote: plan.strategies[n].quote }]))])),
    initialBase: Object.fromEntries(symbols.map((s) => [s, new Dec(plan.spot?.[ex.engine.instrument(o.market, s)!.baseAsset] ?? '0')])),
    at,
    expectFlat,
    ...(heartbeat ? { heartbeat } : {}),
  });
  const exchangeOrders = () => symbols.reduce((n, s) => n + ex.engine.allOrders(acct, o.market, s, { startTime: 0, limit: 1e9 }).length, 0);

  mkdirSync(join(ws.dir, 'replay'), { recursive: true });
  const t0 = Date.UTC(2024, 0, 1);
  const tape = new MarketTape(ex, ws, o.market, t0, o.speed, plan.prices, r, 20_000);
  if (o.market === 'futures') for (const [s, p] of Object.entries(plan.prices)) ex.engine.setMarkPrice(s, new Dec(p));

  const killModes: Record<KillMode, number> = { random: 0, 'after-row': 0, blackhole: 0 };
  const modes: KillMode[] = ['random', 'after-row', 'blackhole'];
  const refusedStarts: string[] = [];
  const restartChecks: MultiReportOut['restartChecks'] = [];
  const notes = new Set<string>();
  let restarts = 0;
  let bot: RunningCli | undefined;

  /** Starts the bot; a start that refuses (exits) is started again, as a supervisor would. */
  const start = async (run: number, env: Record<string, string>, mayHook: boolean): Promise<{ hb?: Heartbeat; hooked: boolean }> => {
    for (let attempt = 1; ; attempt++) {
      bot = startCli(['run'], { env: { ...ws.env, ...env }, cwd: ws.dir });
      const b = bot;
      try {
        return { hb: await waitForHeartbeat(ws.heartbeatFile, running(b.child.pid), b, START_WAIT_MS), hooked: false };
      } catch (err) {
        if (b.child.exitCode === null && b.child.signalCode === null) throw new Error(`bot neither running nor exited after ${START_WAIT_MS / 1000} s:\n${b.output().slice(-3000)}`, { cause: err });
        const code = await b.exited;
        if (mayHook && b.child.signalCode === 'SIGKILL') return { hooked: true };
        refusedStarts.push(`run ${run} attempt ${attempt}: exit ${code}: ${b.stderr().trim().split('\n').at(-1) ?? ''}`);
        if (attempt >= 5) throw new Error(`the bot refused to start 5 times in a row:\n${b.output().slice(-3000)}`);
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  };

  /** After a start's reconciliation, with the market paused: the state at rest. */
  const checkAtRest = (run: number, hb: Heartbeat): void => {
    const rep = checkMulti(ex, ws, spec('restart', false, hb));
    restartChecks.push({ run, discrepancies: rep.discrepancies });
    const lines = Object.entries(rep.symbols).map(([s, f]) => `${s} ex ${f.exchange} = ${Object.entries(f.owners).map(([n, x]) => `${n} ${x.quantity}`).join(' + ') || '0'}`);
    log(`run ${run} start: reconcile ${hb.reconcile.status} (${hb.reconcile.detail ?? ''}); ${lines.join('; ')}; ${rep.discrepancies.length} discrepancies${rep.discrepancies.length ? `: ${rep.discrepancies.slice(0, 5).join(' | ')}` : ''}${rep.notes.length ? `; notes: ${rep.notes.join(' | ')}` : ''}`);
    for (const n of rep.notes) notes.add(`start ${run}: ${n}`);
  };

  try {
    for (let k = 0; k < o.kills; k++) {
      const run = k + 1;
      const mode = modes[k % 3]!;
      const env: Record<string, string> = mode === 'after-row' ? { TRADER_CHAOS_CRASH_AFTER_ROW: String(1 + r.int(3)) } : {};
      const { hb, hooked } = await start(run, env, mode === 'after-row');
      const cur = bot!;
      if (hooked || !hb) {
        killModes[mode]++;
        restarts++;
        log(`kill ${run}/${o.kills}: the after-row hook fired during the start`);
        continue;
      }
      checkAtRest(run, hb);
      const ordersBefore = exchangeOrders();
      tape.resume();
      if (mode === 'random') {
        await new Promise((res) => setTimeout(res, o.runMs[0] + r.int(o.runMs[1] - o.runMs[0])));
        cur.child.kill('SIGKILL');
      } else if (mode === 'after-row') {
        await Promise.race([cur.exited, new Promise((res) => setTimeout(res, 15_000))]);
        if (cur.child.signalCode !== 'SIGKILL') {
          log(`run ${run}: the after-row hook did not fire within 15 s; killing`);
          cur.child.kill('SIGKILL');
        }
      } else {
        // The exchange accepts the next order but never answers: kill while the request hangs.
        await post(ex, 'order/blackhole', { count: 1, holdMs: 30_000 });
        const accepted = exchangeOrders();
        await waitFor('a black-holed order', () => (ex.faults.blackholeOrders === 0 && exchangeOrders() > accepted) || undefined, 60_000);
        await new Promise((res) => setTimeout(res, 50 + r.int(400)));
        cur.child.kill('SIGKILL');
        ex.faults.blackholeOrders = 0;
      }
      const code = await cur.exited;
      killModes[mode]++;
      restarts++;
      // The market moves on while the bot is down, then pauses for the restart's reconciliation.
      const down = r.int(o.downMs);
      await new Promise((res) => setTimeout(res, down));
      tape.pause();
      log(`kill ${run}/${o.kills} (${mode}): exit ${code}, ${exchangeOrders() - ordersBefore} orders this run, ${exchangeOrders()} in all, down ${down} ms, minute ${tape.minutesPlayed}`);
    }

    // The end: every strategy wants flat; the market plays until every owner is, then stops for good.
    const last = await start(o.kills + 1, { TRADER_CHAOS_FLATTEN: '1' }, false);
    restarts++;
    checkAtRest(o.kills + 1, last.hb!);
    tape.resume();
    const flat = () => !checkMulti(ex, ws, spec('restart', true)).discrepancies.some((d) => d.startsWith('OWNER_NOT_FLAT'));
    // Rows the last kill left PENDING (written, never sent) are settled once ackTimeout (30 s) passed.
    await pollUntil('every owner flat', flat, 90_000, 500).catch((err: Error) => log(`flatten: ${err.message}`));
    tape.pause();
    await waitFor('every order row final', () => (openRows(ws) === 0 ? true : undefined), 60_000).catch((err: Error) => log(`settle: ${err.message}`));
    // One more full reconciliation pass after everything settled.
    const before = (readHeartbeat(ws.heartbeatFile)?.reconcile as unknown as { at?: string } | undefined)?.at;
    const hbEnd = await waitForHeartbeat(ws.heartbeatFile, (h) => (h.reconcile as unknown as { at?: string }).at !== before, bot, 30_000);
    bot!.child.kill('SIGTERM');
    const code = await bot!.exited;
    if (code !== 0) throw new Error(`the final clean stop exited ${code}:\n${bot!.output().slice(-3000)}`);
    bot = undefined;

    const final = checkMulti(ex, ws, spec('final', true, hbEnd));
    const distinct: MultiReportOut['distinct'] = [];
    const seen = new Set<string>();
    for (const c of [...restartChecks.map((x) => ({ at: `start ${x.run}`, lines: x.discrepancies })), { at: 'final', lines: final.discrepancies }]) {
      for (const line of c.lines) {
        if (seen.has(line)) continue;
        seen.add(line);
        distinct.push({ firstSeen: c.at, line });
      }
    }
    const discrepancies = distinct.length;
    log(`final: ${final.exchangeOrders} exchange orders, ${final.exchangeTrades} trades, ${final.discrepancies.length} discrepancies${final.discrepancies.length ? `:\n  ${final.discrepancies.join('\n  ')}` : ''}`);
    return {
      market: o.market,
      positionMode: o.positionMode,
      seed: o.seed,
      kills: o.kills,
      killModes,
      restartsSurvived: restarts,
      refusedStarts,
      candlesReplayed: tape.minutesPlayed,
      ordersPlaced: final.exchangeOrders,
      fills: final.exchangeTrades,
      restartChecks,
      final,
      distinct,
      discrepancies,
      notes: [...notes, ...final.notes.map((n) => `final: ${n}`)],
      durationMs: Date.now() - started,
      ...(o.keep ? { workspace: ws.dir } : {}),
    };
  } finally {
    if (bot && bot.child.exitCode === null && bot.child.signalCode === null) bot.child.kill('SIGKILL');
    await ex.close();
    if (!o.keep) ws.cleanup();
  }
}

/** Polls every intervalMs (a full check reads the whole database: not every 25 ms as waitFor does). */
async function pollUntil(what: string, probe: () => boolean, timeoutMs: number, intervalMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

function openRows(ws: Workspace): number {
  const db = new Database(ws.dbFile, { readonly: true, fileMustExist: true });
  try {
    // Protective orders of open positions stay working (a stop left behind is the invariants' business).
    return (db.prepare("SELECT COUNT(*) AS n FROM orders WHERE status = 'PENDING' OR (status IN ('NEW','PARTIALLY_FILLED') AND source <> 'protective')").get() as { n: number }).n;
  } finally {
    db.close();
  }
}
