/**
 * Backtester throughput, the full kernel (strategy host, planner, risk,
 * execution, portfolio, sim venue) per candle:
 *
 *  - one-year: one symbol, 525,600 1m candles, rsi(14) with shorts on
 *    futures. The shared data has no contiguous year of one symbol, so the
 *    year is FILUSDT's monthly dumps (real 1m candles) laid end to end from
 *    2024-01-01, each month's prices scaled so it opens where the previous
 *    one closed. Baseline in the same process: a plain Float64Array EMA(14) +
 *    Wilder RSI(14) loop over the same closes (the least work any backtest of
 *    this strategy can do).
 *  - optimizer: rsi parameter sets over ALGOUSDT futures, February 2023
 *    (40,320 1m candles each): the speedup from one core to all on
 *    BENCH_OPTIMIZER_SPEEDUP_SETS sets (default 20), then the wall time of
 *    BENCH_OPTIMIZER_SETS (default 1,000) on all cores (about an hour on two).
 *  - twenty: 20 symbols over one month together (FILUSDT and NEARUSDT months
 *    re-timed to February 2024, named S01USDT..S20USDT with FILUSDT's or
 *    NEARUSDT's filters); candles/s and peak RSS.
 *
 * Each part runs in its own child process so its peak RSS is its own.
 * Usage: npm run bench -- backtest   (or: node --import tsx tests/bench/backtest.bench.ts --part one-year)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DATA = join(ROOT, '..', 'shared', 'data', 'binance-um-1m');
const MIN = 60_000;

export async function benchBacktest(): Promise<Record<string, unknown>> {
  if (!existsSync(DATA)) return { benchmark: 'backtest', skipped: `missing ${DATA}` };
  const part = (name: string): Record<string, unknown> => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--part', name], { cwd: ROOT, maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
    return JSON.parse(out.toString()) as Record<string, unknown>;
  };
  return { benchmark: 'backtest', oneYear: part('one-year'), twentySymbols: part('twenty'), optimizer: part('optimizer') };
}

// ------------------------------------------------------------------ the parts (child process)

interface Series {
  symbol: string;
  source: string;
  openTime: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

async function loadMonth(file: string): Promise<Omit<Series, 'symbol' | 'source'>> {
  const { loadKlineFile } = await import('../../src/market-data/kline-files.ts');
  const k = loadKlineFile(join(DATA, file)).klines;
  const n = k.length;
  const s = { openTime: new Float64Array(n), open: new Float64Array(n), high: new Float64Array(n), low: new Float64Array(n), close: new Float64Array(n), volume: new Float64Array(n) };
  k.forEach((x, i) => {
    s.openTime[i] = Number(x.openTime);
    s.open[i] = Number(x.open);
    s.high[i] = Number(x.high);
    s.low[i] = Number(x.low);
    s.close[i] = Number(x.close);
    s.volume[i] = Number(x.volume);
  });
  return s;
}

/** Months laid end to end from `start`, each scaled to open at the previous close; cut at `count` candles. */
async function stitched(files: string[], start: number, count: number): Promise<Omit<Series, 'symbol' | 'source'>> {
  const out = { openTime: new Float64Array(count), open: new Float64Array(count), high: new Float64Array(count), low: new Float64Array(count), close: new Float64Array(count), volume: new Float64Array(count) };
  let i = 0;
  let scale = 1;
  for (const f of files) {
    if (i >= count) break;
    const m = await loadMonth(f);
    if (i > 0) scale = out.close[i - 1]! / m.open[0]!;
    for (let j = 0; j < m.close.length && i < count; j++, i++) {
      out.openTime[i] = start + i * MIN;
      out.open[i] = m.open[j]! * scale;
      out.high[i] = m.high[j]! * scale;
      out.low[i] = m.low[j]! * scale;
      out.close[i] = m.close[j]! * scale;
      out.volume[i] = m.volume[j]!;
    }
  }
  if (i < count) throw new Error(`only ${i} candles in ${files.length} files, need ${count}`);
  return out;
}

/** EMA(14) + Wilder RSI(14) over closes: the baseline loop. */
function baseline(closes: Float64Array): { ms: number; sink: number } {
  const n = closes.length;
  const ema = new Float64Array(n);
  const rsi = new Float64Array(n);
  const t0 = performance.now();
  const k = 2 / 15;
  let e = closes[0]!;
  let up = 0;
  let down = 0;
  for (let i = 1; i < n; i++) {
    const x = closes[i]!;
    e += k * (x - e);
    ema[i] = e;
    const d = x - closes[i - 1]!;
    const u = d > 0 ? d : 0;
    const w = d < 0 ? -d : 0;
    if (i <= 14) {
      up += u / 14;
      down += w / 14;
    } else {
      up = (up * 13 + u) / 14;
      down = (down * 13 + w) / 14;
    }
    rsi[i] = down === 0 ? 100 : 100 - 100 / (1 + up / down);
  }
  const ms = performance.now() - t0;
  return { ms, sink: ema[n - 1]! + rsi[n - 1]! };
}

async function runPart(name: string): Promise<Record<string, unknown>> {
  const { Store } = await import('../../src/store/store.ts');
  const { CandleColumns, CandleRepository } = await import('../../src/store/candle-repository.ts');
  const { loadSettings } = await import('../../src/settings/load-settings.ts');
  const { prepareBacktest } = await import('../../src/backtest/job.ts');
  const { runBacktest } = await import('../../src/backtest/runner.ts');
  const { createIndicatorFactory } = await import('../../src/strategy/indicators/index.ts');
  const { createLogger } = await import('../../src/core/logger.ts');
  const { catalog } = await import('../../src/venues/sim/catalog.ts');

  const dir = mkdtempSync(join(tmpdir(), 'trader-bench-bt-'));
  try {
    writeFileSync(join(dir, 'bot.yaml'), 'market: futures\n');
    const store = Store.open(join(dir, 'bench.db'));
    await store.migrate();
    const repo = new CandleRepository(store);
    const put = (symbol: string, s: Omit<Series, 'symbol' | 'source'>): void => {
      const n = s.close.length;
      const cols = CandleColumns.of({ length: n, openTime: s.openTime, open: s.open, high: s.high, low: s.low, close: s.close, volume: s.volume, quoteVolume: new Float64Array(n), trades: new Float64Array(n), takerBuyVolume: new Float64Array(n).fill(Number.NaN) });
      repo.transaction(() => repo.writeSeries(repo.seriesId('futures', symbol, '1m'), cols));
    };
    const files = (sym: string) => readdirSync(DATA).filter((f) => f.startsWith(`${sym}-1m-`)).sort();
    const settings = loadSettings({ cwd: ROOT, env: { DB_URL: `sqlite:${join(dir, 'bench.db')}`, STRATEGIES_DIR: join(ROOT, 'strategies'), CONFIG_FILE: join(dir, 'bot.yaml') }, envFile: false });
    const log = createLogger({ level: 'silent', format: 'json' });
    const fil = catalog('futures').find((i) => i.symbol === 'FILUSDT')!;
    const near = catalog('futures').find((i) => i.symbol === 'NEARUSDT')!;

    if (name === 'one-year') {
      const from = Date.UTC(2024, 0, 1);
      const n = 525_600;
      const s = await stitched(files('FILUSDT'), from, n);
      put('FILUSDT', s);
      const base = [baseline(s.close), baseline(s.close), baseline(s.close)].sort((a, b) => a.ms - b.ms)[1]!;
      const p = await prepareBacktest({ strategy: 'rsi', symbols: ['FILUSDT'], market: 'futures', timeframe: '1m', from, to: from + n * MIN, params: { allowShort: true } }, settings);
      globalThis.gc?.();
      const r = await runBacktest(p.config, { settings, candles: repo, logger: log.logger, indicators: createIndicatorFactory });
      const perSec = r.candles / (r.elapsedMs / 1000);
      const basePerSec = n / (base.ms / 1000);
      store.close();
      return {
        candles: r.candles,
        seconds: +(r.elapsedMs / 1000).toFixed(2),
        candlesPerSec: Math.round(perSec),
        baselineEmaRsiCandlesPerSec: Math.round(basePerSec),
        ratioToBaseline: +(perSec / basePerSec).toExponential(3),
        target: 1_000_000,
        trades: r.trades.length,
        fills: r.orders.filled,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
        data: `FILUSDT ${files('FILUSDT').length} monthly dumps end to end (each scaled to open at the previous close), 2024-01-01 + 525,600 min`,
      };
    }

    if (name === 'optimizer') {
      // SETS parameter sets (default 1,000) of rsi over one month of real 1m data, one core then all.
      const { importKlineFiles } = await import('../../src/market-data/import.ts');
      const { optimize } = await import('../../src/backtest/optimizer.ts');
      const { availableParallelism } = await import('node:os');
      await importKlineFiles(repo, [join(DATA, 'ALGOUSDT-1m-2023-02.csv.gz')], { market: 'futures' });
      const sets = Number(process.env.BENCH_OPTIMIZER_SETS ?? 1000);
      const speedupSets = Number(process.env.BENCH_OPTIMIZER_SPEEDUP_SETS ?? 20);
      // period 5..54 x oversold 20..39 = 1,000 sets; fewer take the first ones in grid order.
      const periods = Array.from({ length: 50 }, (_, i) => 5 + i);
      const oversold = Array.from({ length: 20 }, (_, i) => 20 + i);
      const gridOf = (k: number) => {
        const all = periods.flatMap((p) => oversold.map((o) => [p, o] as const)).slice(0, k);
        return { period: [...new Set(all.map((x) => x[0]))], oversold: [...new Set(all.map((x) => x[1]))] };
      };
      const request = { strategy: 'rsi', symbols: ['ALGOUSDT'], market: 'futures' as const, timeframe: '1m' as const, from: Date.UTC(2023, 1, 1), to: Date.UTC(2023, 2, 1), params: { allowShort: true } };
      const settingsOptions = { cwd: ROOT, env: { DB_URL: `sqlite:${join(dir, 'bench.db')}`, STRATEGIES_DIR: join(ROOT, 'strategies'), CONFIG_FILE: join(dir, 'bot.yaml') }, envFile: false as const };
      const runWith = async (k: number, workers: number) => {
        const t0 = performance.now();
        const r = await optimize({ request, grid: gridOf(k), objective: 'sharpe', workers }, { settings, store, now: () => Date.now(), commit: 'bench', settingsOptions, logger: log.logger });
        return { sets: r.backtests, seconds: +((performance.now() - t0) / 1000).toFixed(1), best: r.bestParams };
      };
      const cores = availableParallelism();
      // The speedup on a small grid (a 1,000-set run on one core takes hours), then the full grid on all cores.
      const out: Record<string, unknown> = { cores, candlesPerSet: 40_320 };
      if (speedupSets > 0) {
        const one = await runWith(speedupSets, 1);
        const many = await runWith(speedupSets, cores);
        out.speedup = { sets: one.sets, oneCoreSeconds: one.seconds, allCoresSeconds: many.seconds, ratio: +(one.seconds / many.seconds).toFixed(2), sameBest: JSON.stringify(one.best) === JSON.stringify(many.best) };
      }
      if (sets > 0) {
        const full = await runWith(sets, cores);
        out.full = { sets: full.sets, allCoresSeconds: full.seconds, secondsPerSet: +(full.seconds / full.sets).toFixed(3), best: full.best };
      }
      store.close();
      return out;
    }

    // twenty symbols, one month (28 days) each, together
    const from = Date.UTC(2024, 1, 1);
    const n = 28 * 1440;
    const sources = [...files('FILUSDT').map((f) => ['FILUSDT', f]), ...files('NEARUSDT').map((f) => ['NEARUSDT', f])].slice(0, 20);
    const instruments = [];
    const symbols: string[] = [];
    for (let i = 0; i < sources.length; i++) {
      const [src, f] = sources[i]!;
      const symbol = `S${String(i + 1).padStart(2, '0')}USDT`;
      const m = await loadMonth(f!);
      const s = { openTime: new Float64Array(n), open: m.open.slice(0, n), high: m.high.slice(0, n), low: m.low.slice(0, n), close: m.close.slice(0, n), volume: m.volume.slice(0, n) };
      for (let j = 0; j < n; j++) s.openTime[j] = from + j * MIN;
      put(symbol, s);
      symbols.push(symbol);
      instruments.push({ ...(src === 'FILUSDT' ? fil : near), symbol, baseAsset: symbol.replace('USDT', '') });
    }
    const p = await prepareBacktest({ strategy: 'rsi', symbols, market: 'futures', timeframe: '1m', from, to: from + n * MIN, params: { allowShort: true } }, settings);
    const rssBefore = process.memoryUsage().rss;
    globalThis.gc?.();
    const r = await runBacktest(p.config, { settings, candles: repo, logger: log.logger, indicators: createIndicatorFactory, instruments });
    store.close();
    return {
      symbols: symbols.length,
      candles: r.candles,
      seconds: +(r.elapsedMs / 1000).toFixed(2),
      candlesPerSec: Math.round(r.candles / (r.elapsedMs / 1000)),
      trades: r.trades.length,
      fills: r.orders.filled,
      denied: r.orders.deniedBy,
      rssBeforeRunMb: Math.round(rssBefore / 1048576),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      data: `${sources.map((s) => s[1]).join(', ')} re-timed to 2024-02-01 (28 days each)`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--part')) {
  const name = process.argv[process.argv.indexOf('--part') + 1]!;
  process.stdout.write(JSON.stringify(await runPart(name)) + '\n');
}
