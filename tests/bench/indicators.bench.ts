/**
 * Indicator throughput: RSI(14), MACD(12,26,9) and Bollinger(20,2) all
 * updated on every close of one real month of 1m candles (ALGOUSDT futures,
 * February 2023, 40,320 closes), as a strategy would.
 *
 * Baseline in the same run, interleaved round by round: a tight `for` loop
 * computing an EMA of the same closes into a Float64Array, about the least
 * work an indicator update can be. Each measurement repeats its workload
 * until at least MIN_MS have passed; figures are medians of ROUNDS rounds.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKlineFile } from '../../src/market-data/kline-files.ts';
import { Bollinger, Macd, Rsi } from '../../src/strategy/indicators/index.ts';

const FILE = join(fileURLToPath(new URL('../../..', import.meta.url)), 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const ROUNDS = 5;
const MIN_MS = 150;

export async function benchIndicators(): Promise<Record<string, unknown>> {
  if (!existsSync(FILE)) return { benchmark: 'indicators', skipped: `missing ${FILE}` };
  const closes = Float64Array.from(loadKlineFile(FILE).klines, (k) => Number(k.close));
  const n = closes.length;

  const rsi = new Rsi(14);
  const macd = new Macd(12, 26, 9);
  const bb = new Bollinger(20, 2);
  // Consumed after the runs so the work cannot be optimised away.
  let sink = 0;

  const indicatorPass = (): void => {
    rsi.reset();
    macd.reset();
    bb.reset();
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const x = closes[i]!;
      const r = rsi.update(x);
      const m = macd.update(x);
      const b = bb.update(x);
      if (r !== undefined && m !== undefined && b !== undefined) acc += r + m.histogram + b.percentB;
    }
    sink += acc;
  };

  const emaOut = new Float64Array(n);
  const k = 2 / (26 + 1);
  const baselinePass = (): void => {
    let e = closes[0]!;
    for (let i = 0; i < n; i++) {
      e = (closes[i]! - e) * k + e;
      emaOut[i] = e;
    }
    sink += emaOut[n - 1]!;
  };

  /** Candles per second for one measurement of `pass`. */
  const measure = (pass: () => void): number => {
    let passes = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    do {
      pass();
      passes++;
      elapsed = process.hrtime.bigint() - t0;
    } while (elapsed < BigInt(MIN_MS) * 1_000_000n);
    return (passes * n) / (Number(elapsed) / 1e9);
  };

  // Warm-up, so both loops are optimised before anything counts.
  measure(indicatorPass);
  measure(baselinePass);

  const ours: number[] = [];
  const base: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = measure(indicatorPass);
    const b = measure(baselinePass);
    ours.push(a);
    base.push(b);
    ratios.push(a / b);
  }
  if (!Number.isFinite(sink)) throw new Error('indicator bench: non-finite checksum');

  const candlesPerSec = median(ours);
  const baselinePerSec = median(base);
  return {
    benchmark: 'RSI(14) + MACD(12,26,9) + Bollinger(20,2) updated on every close of one month of 1m candles',
    file: 'ALGOUSDT-1m-2023-02.csv.gz',
    candles: n,
    rounds: ROUNDS,
    candles_per_sec: Math.round(candlesPerSec),
    indicator_updates_per_sec: Math.round(candlesPerSec * 3),
    ns_per_candle: round3(1e9 / candlesPerSec),
    baseline: 'plain Float64Array EMA loop over the same closes',
    baseline_values_per_sec: Math.round(baselinePerSec),
    baseline_ns_per_value: round3(1e9 / baselinePerSec),
    /** Candles per second over baseline values per second (median of the per-round ratios). */
    ratio_to_baseline: Math.round(median(ratios) * 1e4) / 1e4,
    slowdown_vs_baseline: round3(1 / median(ratios)),
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
