/**
 * The backtester end to end: the live kernel (strategy host, planner, risk,
 * execution, portfolio) over stored candles with the sim venue, on real
 * ALGOUSDT futures data and on hand-made series where the answer is known.
 *
 * The metrics are checked against an independent recomputation from the CSV
 * exports (equity curve and trade list), written here from the definitions
 * in src/backtest/types.ts without using src/backtest/metrics.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dec } from '../../src/core/decimal.ts';
import { createLogger } from '../../src/core/logger.ts';
import { prepareBacktest, type BacktestRequest } from '../../src/backtest/job.ts';
import { MissingDataError, runBacktest, type BacktestResult } from '../../src/backtest/runner.ts';
import type { BacktestReport } from '../../src/backtest/types.ts';
import { backtestInstruments, render } from '../../src/cli/backtest-command.ts';
import { instrumentToJson } from '../../src/execution/instrument-book.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { importKlineFiles } from '../../src/market-data/import.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import type { Settings } from '../../src/settings/settings.ts';
import { CandleRepository, type StoredCandle } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { runCli } from '../support/bot-process.ts';
import { moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';

const DATA = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const MIN = 60_000;
const DAY = 86_400_000;
const FEB1 = Date.UTC(2023, 1, 1);

/** Long on the first candle, held to the end (funding and liquidation scenarios). */
const HOLD = moduleSource(`
export default defineStrategy({
  name: 'hold',
  description: 'Enters once and holds.',
  params: z.strictObject({ side: z.enum(['long', 'short']).default('long'), at: z.number().default(0) }),
  defaultTimeframe: '1m',
  warmup: () => 1,
  create(ctx, p) {
    let done = false;
    return {
      onCandle(c) {
        // Warm-up candles come from before the run: enter on the first candle of the run itself.
        if (done || c.openTime < p.at) return;
        done = true;
        if (p.side === 'long') ctx.enterLong({ reason: 'hold' });
        else ctx.enterShort({ reason: 'hold' });
      },
    };
  },
});`);

let ws: Workspace;
let strat: StrategyDir;
let store: Store;
let repo: CandleRepository;
let settings: Settings;
const log = createLogger({ level: 'silent', format: 'json' });

function settingsWith(botYaml: string): Settings {
  ws.write('config/bot.yaml', botYaml);
  return loadSettings({ cwd: ws.dir, env: { ...ws.env, STRATEGIES_DIR: strat.strategiesDir }, envFile: false });
}

async function run(req: BacktestRequest, s: Settings = settings): Promise<BacktestResult> {
  const p = await prepareBacktest(req, s);
  return runBacktest({ ...p.config, sources: p.sources }, { settings: s, candles: repo, logger: log.logger, indicators: createIndicatorFactory });
}

function asReport(r: BacktestResult): BacktestReport {
  return { ...r, createdAt: 0, gitCommit: 'test' };
}

beforeAll(async () => {
  ws = makeWorkspace();
  strat = strategyDir();
  // The shipped rsi, and the test's own hold strategy (both under the repo, so their imports resolve).
  strat.write('strategies/rsi/index.ts', readFileSync(join(REPO_ROOT, 'strategies', 'rsi', 'index.ts'), 'utf8').replace("'../../src/strategy/api.ts'", `'${REPO_ROOT}/src/strategy/api.ts'`));
  strat.write('strategies/rsi/ALGOUSDT.yaml', 'enabled: false\ntimeframe: 1m\nparams:\n  allowShort: true\nsizing:\n  type: quote\n  amount: 50\n');
  strat.write('strategies/hold/index.ts', HOLD);
  strat.write('strategies/hold/ALGOUSDT.yaml', 'enabled: false\nsizing:\n  type: quote\n  amount: 1000\n');
  strat.write('package.json', '{"type":"module"}');
  store = Store.open(ws.dbFile);
  await store.migrate();
  repo = new CandleRepository(store);
  await importKlineFiles(repo, [DATA], { market: 'futures' });
  settings = settingsWith('market: futures\n');
}, 60_000);

afterAll(() => {
  store?.close();
  ws?.cleanup();
  strat?.cleanup();
  log.close();
});

// ------------------------------------------------------------------ independent recomputation

interface Row {
  [k: string]: string;
}

function parseCsv(text: string): Row[] {
  const [head, ...lines] = text.trim().split('\n');
  const cols = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
}

/** The metrics from the exported curve and trades, by the definitions in types.ts, with plain loops and Dates. */
function recompute(equityCsv: string, tradesCsv: string, from: number, to: number) {
  const curve = parseCsv(equityCsv).map((r) => ({ t: Date.parse(r.time!), v: Number(r.equity) }));
  const start = curve[0]!.v;
  const end = curve[curve.length - 1]!.v;
  const trades = parseCsv(tradesCsv).map((r) => ({ pnl: Number(r.pnl), fees: Number(r.fees), funding: Number(r.funding), entry: Date.parse(r.entry_time!), exit: Date.parse(r.exit_time!), holding: Number(r.holding_ms) }));

  // Daily closes: the last point of each UTC day, carried forward; clamp points to the span.
  const dayOf = (t: number) => new Date(Math.min(Math.max(t, from), to - 1)).toISOString().slice(0, 10);
  const days: string[] = [];
  for (let d = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth(), new Date(from).getUTCDate()); d < to; d += DAY) days.push(new Date(d).toISOString().slice(0, 10));
  const lastOfDay = new Map<string, number>();
  for (const p of curve.slice(1)) lastOfDay.set(dayOf(p.t), p.v);
  const daily: number[] = [];
  let carry = start;
  for (const d of days) {
    carry = lastOfDay.get(d) ?? carry;
    daily.push(carry);
  }
  const rets = daily.map((v, i) => v / (i === 0 ? start : daily[i - 1]!) - 1);
  const mean = rets.reduce((a, b) => a + b, 0) / rets.length;
  const sd = Math.sqrt(rets.reduce((a, r) => a + (r - mean) ** 2, 0) / (rets.length - 1));
  const down = Math.sqrt(rets.reduce((a, r) => a + Math.min(r, 0) ** 2, 0) / rets.length);

  let peak = start;
  let maxDd = 0;
  for (const p of curve) {
    peak = Math.max(peak, p.v);
    maxDd = Math.max(maxDd, (peak - p.v) / peak);
  }
  const wins = trades.filter((t) => t.pnl > 0);
  const losses = trades.filter((t) => t.pnl < 0);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const annualized = Math.pow(end / start, (365 * DAY) / (to - from)) - 1;

  // Months: last daily close of each month against the previous month's.
  const monthly: Array<{ month: string; return: number }> = [];
  let prevEnd = start;
  days.forEach((d, i) => {
    const m = d.slice(0, 7);
    const lastOfMonth = i === days.length - 1 || days[i + 1]!.slice(0, 7) !== m;
    if (lastOfMonth) {
      monthly.push({ month: m, return: daily[i]! / prevEnd - 1 });
      prevEnd = daily[i]!;
    }
  });
  // Time in market: union of [entry, exit) (one symbol here: trips do not overlap).
  const inMarket = sum(trades.map((t) => Math.min(t.exit, to) - Math.max(t.entry, from)));
  return {
    startEquity: start,
    endEquity: end,
    totalReturn: end / start - 1,
    annualizedReturn: annualized,
    trades: trades.length,
    winRate: wins.length / trades.length,
    profitFactor: sum(wins.map((t) => t.pnl)) / -sum(losses.map((t) => t.pnl)),
    expectancy: sum(trades.map((t) => t.pnl)) / trades.length,
    sharpe: (mean / sd) * Math.sqrt(365),
    sortino: (mean / down) * Math.sqrt(365),
    maxDrawdown: maxDd,
    calmar: annualized / maxDd,
    avgWin: sum(wins.map((t) => t.pnl)) / wins.length,
    avgLoss: sum(losses.map((t) => t.pnl)) / losses.length,
    largestWin: Math.max(...wins.map((t) => t.pnl)),
    largestLoss: Math.min(...losses.map((t) => t.pnl)),
    avgHoldingMs: sum(trades.map((t) => t.holding)) / trades.length,
    timeInMarket: inMarket / (to - from),
    feesPaid: sum(trades.map((t) => t.fees)),
    fundingPaid: sum(trades.map((t) => t.funding)),
    monthly,
  };
}

// ------------------------------------------------------------------ tests

describe('backtest on real data (rsi, ALGOUSDT futures, 5 days of 1m)', () => {
  const req: BacktestRequest = { strategy: 'rsi', symbols: ['ALGOUSDT'], market: 'futures', from: FEB1, to: FEB1 + 5 * DAY, params: {} };
  let r: BacktestResult;
  let candles: StoredCandle[];
  beforeAll(async () => {
    r = await run(req);
    candles = repo.range('futures', 'ALGOUSDT', '1m', FEB1 - 10 * MIN, FEB1 + 6 * DAY);
  }, 120_000);

  it('the trade list accounts for the whole equity change, to the last unit (exact decimals)', () => {
    expect(r.candles).toBe(5 * 1440);
    expect(r.trades.length).toBeGreaterThan(20);
    const sum = r.trades.reduce((a, t) => a.plus(t.pnl), new Dec(0));
    const end = new Dec(r.equity[r.equity.length - 1]!.equity);
    expect(sum.toFixed()).toBe(end.minus(r.config.balance).toFixed());
    expect(r.metrics.fundingPaid).not.toBe(0);
  });

  it('no look-ahead: every market fill is at the open of the candle after the signal, never the close it was computed on', () => {
    const byOpen = new Map(candles.map((c) => [c.openTime, c]));
    for (const t of r.trades) {
      const c = byOpen.get(t.entryTime);
      expect(c, `a candle opens at ${new Date(t.entryTime).toISOString()}`).toBeDefined();
      expect(Number(t.entryPrice), `entry at ${new Date(t.entryTime).toISOString()}`).toBe(c!.open);
      if (!r.closedAtEnd.includes(t.symbol) || t !== r.trades[r.trades.length - 1]) expect(Number(t.exitPrice)).toBe(byOpen.get(t.exitTime)!.open);
    }
  });

  it('a flip (exitLong then enterShort on one candle) sizes the entry against the position the exit leaves, not twice', () => {
    // quote sizing 50 USDT: every trip is about 50 / price, rounded down to the 0.1 step.
    for (const t of r.trades) {
      const expected = 50 / Number(t.entryPrice);
      expect(Number(t.quantity), `${t.side} at ${new Date(t.entryTime).toISOString()}`).toBeLessThanOrEqual(expected + 0.1);
      expect(Number(t.quantity)).toBeGreaterThan(expected * 0.9);
    }
  });

  it('every metric equals an independent recomputation from the exported equity curve and trade list', () => {
    const files = render(asReport(r), 'csv').files!;
    const x = recompute(files.equity!, files.trades!, req.from, req.to);
    const m = r.metrics;
    for (const k of Object.keys(x) as (keyof typeof x)[]) {
      if (k === 'monthly') continue;
      const got = m[k] as number;
      const want = x[k] as number;
      expect(Math.abs(got - want), `${k}: metrics ${got}, recomputed ${want}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
    }
    expect(m.monthly.map((mo) => mo.month)).toEqual(x.monthly.map((mo) => mo.month));
    m.monthly.forEach((mo, i) => expect(mo.return).toBeCloseTo(x.monthly[i]!.return, 12));
  });

  it('latency moves the fill inside the next candle (its close), and slippage moves it against the order', async () => {
    const slow = await run({ ...req, to: FEB1 + DAY, latencyMs: 30_000, slippageBps: '10' });
    const byOpen = new Map(candles.map((c) => [c.openTime, c]));
    expect(slow.trades.length).toBeGreaterThan(3);
    for (const t of slow.trades.slice(0, -1)) {
      const c = byOpen.get(t.entryTime)!;
      // 30 s after the close the order arrives mid-candle: filled at that candle's last price, 10 bps worse.
      // Rounded to the 0.0001 tick against the trader.
      const worse = t.side === 'LONG' ? c.close * 1.001 : c.close * 0.999;
      const px = Number(t.entryPrice);
      expect(Math.abs(px - worse), `${t.side} ${px} vs close ${c.close}`).toBeLessThan(0.0001 + 1e-12);
      expect(t.side === 'LONG' ? px >= worse - 1e-12 : px <= worse + 1e-12, `${t.side} ${px} vs ${worse}`).toBe(true);
    }
  });

  it('the JSON, CSV and HTML exports carry the same trades and curve', () => {
    const rep = asReport(r);
    const json = JSON.parse(render(rep, 'json').text) as BacktestReport;
    expect(json.trades).toEqual(r.trades);
    expect(json.equity).toEqual(r.equity);
    const csv = render(rep, 'csv').files!;
    expect(parseCsv(csv.trades!).map((t) => t.pnl)).toEqual(r.trades.map((t) => t.pnl));
    expect(parseCsv(csv.equity!).length).toBe(r.equity.length + 1);
    const html = render(rep, 'html').text;
    expect(html).toMatch(/^<!DOCTYPE html>/i);
    expect(html).toContain(r.trades[0]!.entryPrice);
    expect(html).not.toMatch(/<script[^>]+src|<link|https?:\/\//);
  });
});

describe('futures funding and liquidation', () => {
  /** Hand-made candles: a flat price, then optionally a fall. */
  function series(symbol: string, from: number, minutes: number, price: (i: number) => number): void {
    const rows: StoredCandle[] = [];
    for (let i = 0; i < minutes; i++) {
      const p = price(i);
      rows.push({ openTime: from + i * MIN, open: p, high: p, low: p, close: p, volume: 1000 });
    }
    repo.upsert('futures', symbol, '1m', rows);
  }

  it('funding is paid at 00:00, 08:00 and 16:00 UTC on the position held into it, at the flat rate the report states', async () => {
    // A separate year so the real February data is not touched.
    const from = Date.UTC(2021, 0, 1);
    series('ALGOUSDT', from - 10 * MIN, 2 * 1440 + 10, () => 1);
    const r = await run({ strategy: 'hold', symbols: ['ALGOUSDT'], market: 'futures', from, to: from + 2 * DAY, params: { at: from }, fundingRate: '0.0002' });
    expect(r.orders, JSON.stringify(r.orders.deniedBy)).toMatchObject({ denied: 0 });
    expect(r.trades).toHaveLength(1);
    const t = r.trades[0]!;
    // Entered at the 00:01 open (after the 00:00 settlement): held into 08:00, 16:00, 00:00, 08:00, 16:00.
    const qty = new Dec(t.quantity);
    expect(qty.toFixed()).toBe('1000');
    expect(t.funding).toBe(qty.times(1).times('0.0002').times(5).toFixed());
    expect(r.metrics.fundingPaid).toBeCloseTo(1, 10);
    expect(r.config.funding).toEqual({ rate: '0.0002', source: 'flat' });
    expect(r.notes.join(' ')).toMatch(/flat 0\.02 % per 8 h/);
    // The curve includes it: end equity = start - fees - funding (price never moved).
    const end = new Dec(r.equity[r.equity.length - 1]!.equity);
    expect(end.toFixed()).toBe(new Dec(r.config.balance).minus(t.fees).minus(t.funding).toFixed());
  }, 60_000);

  it('a position the margin cannot carry is liquidated by the venue, and the kernel books it (trade list, curve, flat position)', async () => {
    const from = Date.UTC(2021, 2, 1);
    // 1.0 for an hour, then down 1 % a minute to 0.5.
    series('ALGOUSDT', from - 10 * MIN, 200, (i) => (i < 70 ? 1 : Math.max(0.5, 1 - (i - 70) * 0.01)));
    const lev = settingsWith('market: futures\nrisk:\n  guards: [balance]\nsymbols:\n  ALGOUSDT:\n    leverage: 5\n');
    try {
      const r = await run({ strategy: 'hold', symbols: ['ALGOUSDT'], market: 'futures', from, to: from + 180 * MIN, params: { at: from }, balance: '250', feeBps: '0' }, lev);
      expect(r.orders, JSON.stringify(r.orders.deniedBy)).toMatchObject({ denied: 0 });
      expect(r.notes.join(' ')).toMatch(/1 liquidation in this run/);
      expect(r.trades).toHaveLength(1);
      const t = r.trades[0]!;
      expect(t.side).toBe('LONG');
      // 1000 ALGO on a 250 USDT wallet: liquidated near 0.76, long before the fall ends at 0.5.
      expect(Number(t.exitPrice)).toBeGreaterThan(0.7);
      expect(Number(t.exitPrice)).toBeLessThan(0.8);
      expect(r.closedAtEnd).toEqual([]);
      const end = new Dec(r.equity[r.equity.length - 1]!.equity);
      expect(end.toFixed()).toBe(new Dec('250').plus(t.pnl).toFixed());
      expect(end.lt(20)).toBe(true);
    } finally {
      settings = settingsWith('market: futures\n');
    }
  }, 60_000);
});

describe('bad input', () => {
  it('missing candles: the error names the command that downloads them, and nothing runs', async () => {
    const err = await run({ strategy: 'rsi', symbols: ['DOTUSDT'], market: 'futures', from: FEB1, to: FEB1 + DAY }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingDataError);
    expect((err as MissingDataError).code).toBe('BACKTEST_NO_DATA');
    expect((err as Error).message).toContain('trader data download --market futures --symbol DOTUSDT --from 2023-02-01');
  });

  it('a symbol without exchange filters is refused by name; once the bot has cached them (instruments table) it runs', async () => {
    const from = Date.UTC(2021, 5, 1);
    const rows: StoredCandle[] = [];
    for (let i = -30; i < 120; i++) rows.push({ openTime: from + i * MIN, open: 20, high: 20.5, low: 19.5, close: 20 + (i % 7) * 0.1, volume: 10 });
    repo.upsert('futures', 'SOLUSDT', '1m', rows);
    const req: BacktestRequest = { strategy: 'rsi', symbols: ['SOLUSDT'], market: 'futures', from, to: from + 120 * MIN };
    await expect(run(req)).rejects.toThrow(/no futures exchange filters .* for SOLUSDT/);
    const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
    store.run(store.db.insertInto('instruments').values({ market: 'futures', symbol: 'SOLUSDT', base_asset: 'SOL', quote_asset: 'USDT', status: 'TRADING', filters: JSON.stringify(instrumentToJson({ ...algo, symbol: 'SOLUSDT', baseAsset: 'SOL' })), updated_at: 1 }));
    const p = await prepareBacktest(req, settings);
    const r = await runBacktest(p.config, { settings, candles: repo, logger: log.logger, indicators: createIndicatorFactory, instruments: backtestInstruments(store, 'futures') });
    expect(r.candles).toBe(120);
  });

  it('a param the strategy refuses names the field; an unknown strategy lists the ones there are', async () => {
    await expect(run({ strategy: 'rsi', symbols: ['ALGOUSDT'], market: 'futures', from: FEB1, to: FEB1 + DAY, params: { oversold: 80 } })).rejects.toThrow(/params\.oversold.*oversold must be below overbought/s);
    await expect(run({ strategy: 'nope', symbols: ['ALGOUSDT'], market: 'futures', from: FEB1, to: FEB1 + DAY })).rejects.toThrow(/no strategy "nope" \(have: .*rsi/);
  });
});

describe('trader backtest (the CLI, a child process)', () => {
  it('run stores the run; list, report (html, csv) and compare read it back', async () => {
    const env = { ...ws.env, STRATEGIES_DIR: strat.strategiesDir };
    const args = ['backtest', 'run', '--strategy', 'rsi', '--symbol', 'ALGOUSDT', '--market', 'futures', '--from', '2023-02-01', '--to', '2023-02-01'];
    const a = await runCli([...args, '--output', 'json', '--file', join(ws.dir, 'a.json')], { env, cwd: ws.dir });
    expect(a.stderr).toMatch(/stored as backtest #(\d+)/);
    expect(a.code).toBe(0);
    const ja = JSON.parse(readFileSync(join(ws.dir, 'a.json'), 'utf8')) as BacktestReport;
    expect(ja.config.to - ja.config.from).toBe(DAY); // a date-only --to includes that day
    expect(ja.gitCommit).toMatch(/^[0-9a-f]{40}(-dirty)?$|^unknown$/);

    const b = await runCli([...args, '--param', 'period=7', '--fee-bps', '2'], { env, cwd: ws.dir });
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/Sharpe \(daily, sqrt 365\)/);
    expect(b.stdout).toMatch(/"period":7/);

    const list = await runCli(['backtest', 'list'], { env, cwd: ws.dir });
    expect(list.code).toBe(0);
    const ids = [...list.stdout.matchAll(/^(\d+)\s+\S+ \S+\s+cli\s+rsi\s+ALGOUSDT/gm)].map((m) => Number(m[1]));
    expect(ids).toHaveLength(2);
    const [idB, idA] = ids as [number, number];

    const html = join(ws.dir, 'r.html');
    const rep = await runCli(['backtest', 'report', '--id', String(idA), '--output', 'html', '--file', html], { env, cwd: ws.dir });
    expect(rep.code).toBe(0);
    expect(readFileSync(html, 'utf8')).toContain(ja.trades[0]!.exitPrice);

    const csv = await runCli(['backtest', 'report', '--id', 'latest', '--output', 'csv', '--file', join(ws.dir, 'r.csv')], { env, cwd: ws.dir });
    expect(csv.code).toBe(0);
    for (const f of ['r-metrics.csv', 'r-trades.csv', 'r-equity.csv']) expect(existsSync(join(ws.dir, f)), f).toBe(true);

    const cmp = await runCli(['backtest', 'compare', String(idA), String(idB), '--json'], { env, cwd: ws.dir });
    expect(cmp.code).toBe(0);
    const c = JSON.parse(cmp.stdout) as { a: BacktestReport; b: BacktestReport };
    expect(c.a.metrics.totalReturn).toBe(ja.metrics.totalReturn);
    expect(c.b.config.strategies[0]!.params).toMatchObject({ period: 7 });
    expect(c.b.config.fees).toEqual({ maker: '0.0002', taker: '0.0002' });

    const missing = await runCli(['backtest', 'report', '--id', '999'], { env, cwd: ws.dir });
    expect(missing.code).toBe(66);
    expect(missing.stderr).toMatch(/no stored backtest with id 999/);
    const bad = await runCli(['backtest', 'run', '--strategy', 'rsi', '--symbol', 'ALGOUSDT', '--from', '2023-02-31x', '--to', '2023-03-01'], { env, cwd: ws.dir });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--from: expected a UTC date.*"2023-02-31x"/);
  }, 120_000);
});
