/**
 * The incremental indicators against TA-Lib (the C library, through the
 * `talib` npm binding) on real candles: ALGOUSDT USD-M futures 1m for
 * February 2023 (40,320 bars, prices ~0.25) and the first 20,000 spot
 * BTCUSDT 1h bars (prices ~4e3..7e4, with Binance's real gaps).
 *
 * Agreement rule, at every output index:
 *   |ours - talib| <= 1e-9 * max(|talib|, 1e-6 * S)
 * where S is the mean |talib| of that output series. It is relative error,
 * with a floor for outputs that cross zero (MACD, OBV) so that the last bits
 * of a value near 0 are judged against the series' own size. The first index
 * where ours is defined must equal TA-Lib's begIndex, and ours must be
 * defined at every index from there on.
 *
 * On x86-64 the outputs are in fact bit-identical (every class repeats
 * TA-Lib's operation order); the rule leaves room for a TA-Lib build whose
 * compiler fuses multiply-adds (arm64).
 *
 * SMA, WMA, STDDEV and BBANDS rebuild their running totals every
 * resumInterval(period) outputs, as TA-Lib builds them for a call starting at
 * that index; their reference is TA-Lib called once per such segment.
 *
 * VWAP and the volume profile have no TA-Lib counterpart and are checked
 * against a direct recomputation from scratch.
 *
 * Set INDICATORS_REPORT=1 to print the largest error seen per output.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKlineFile } from '../../src/market-data/kline-files.ts';
import { resumInterval } from '../../src/strategy/indicators/common.ts';
import {
  Adx,
  Atr,
  Bollinger,
  createIndicatorFactory,
  Donchian,
  Ema,
  Macd,
  Obv,
  Rsi,
  Sma,
  StdDev,
  Stochastic,
  VolumeProfile,
  Vwap,
  Wma,
} from '../../src/strategy/indicators/index.ts';
import type { Bar, Indicator } from '../../src/strategy/indicators/types.ts';

interface TalibResult {
  begIndex: number;
  nbElement: number;
  result: Record<string, number[]>;
  error?: unknown;
}
interface Talib {
  execute(params: Record<string, unknown>): TalibResult;
}
const talib = createRequire(import.meta.url)('talib') as Talib;

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const TOL = 1e-9;

interface Series {
  name: string;
  bars: Bar[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

function loadSeries(name: string, file: string, limit: number): Series {
  const { klines, issues } = loadKlineFile(join(DATA, file));
  if (issues.length) throw new Error(`${file}: ${issues.length} bad rows`);
  const rows = klines.slice(0, limit);
  const bars: Bar[] = rows.map((k) => ({
    openTime: k.openTime,
    open: Number(k.open),
    high: Number(k.high),
    low: Number(k.low),
    close: Number(k.close),
    volume: Number(k.volume),
  }));
  return {
    name,
    bars,
    high: bars.map((b) => b.high),
    low: bars.map((b) => b.low),
    close: bars.map((b) => b.close),
    volume: bars.map((b) => b.volume),
  };
}

// ---------------------------------------------------------------------------
// Helpers

/** Feeds every input; returns each update's result. */
function run<In, Out>(ind: Indicator<In, Out>, inputs: readonly In[]): Array<Out | undefined> {
  const out: Array<Out | undefined> = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) out[i] = ind.update(inputs[i]!);
  return out;
}

/** One numeric output per index, NaN where undefined. */
function pick<Out>(outs: ReadonlyArray<Out | undefined>, f: (o: Out) => number): Float64Array {
  const a = new Float64Array(outs.length);
  for (let i = 0; i < outs.length; i++) {
    const o = outs[i];
    a[i] = o === undefined ? Number.NaN : f(o);
  }
  return a;
}

/** A TA-Lib output spread over the full index range (NaN before begIndex). */
interface Ref {
  begIndex: number;
  values: Float64Array;
}

function ta(n: number, params: Record<string, unknown>, output = 'outReal'): Ref {
  return taMulti(n, params, [output])[output]!;
}

function taMulti(n: number, params: Record<string, unknown>, outputs: readonly string[]): Record<string, Ref> {
  const r = talib.execute({ startIdx: 0, endIdx: n - 1, ...params });
  if (r.error !== undefined) throw new Error(`talib ${String(params.name)}: ${JSON.stringify(r.error)}`);
  const refs: Record<string, Ref> = {};
  for (const name of outputs) {
    const out = r.result[name];
    if (!out) throw new Error(`talib ${String(params.name)}: no output ${name}`);
    const values = new Float64Array(n).fill(Number.NaN);
    for (let j = 0; j < r.nbElement; j++) values[r.begIndex + j] = out[j]!;
    refs[name] = { begIndex: r.begIndex, values };
  }
  return refs;
}

/**
 * TA-Lib called once per re-sum segment: outputs lookback + k*R .. lookback + (k+1)*R - 1
 * come from a call whose first output is lookback + k*R (the input sliced to
 * start `lookback` earlier, so TA-Lib's sums start exactly where ours restart).
 */
function taSegmented(n: number, period: number, lookback: number, arrays: Record<string, number[]>, params: Record<string, unknown>, outputs: readonly string[]): Record<string, Ref> {
  const every = resumInterval(period);
  const refs: Record<string, Ref> = {};
  for (const name of outputs) refs[name] = { begIndex: lookback, values: new Float64Array(n).fill(Number.NaN) };
  for (let first = lookback; first < n; first += every) {
    const from = first - lookback;
    const to = Math.min(first + every, n);
    const sliced: Record<string, number[]> = {};
    for (const [k, a] of Object.entries(arrays)) sliced[k] = a.slice(from, to);
    const part = taMulti(to - from, { ...params, ...sliced }, outputs);
    for (const name of outputs) {
      const p = part[name]!;
      expect(p.begIndex, 'each segment starts with a full window').toBe(lookback);
      refs[name]!.values.set(p.values.subarray(lookback), first);
    }
  }
  return refs;
}

interface Agreement {
  outputs: number;
  identical: number;
  maxRel: number;
}
const report = new Map<string, Agreement>();

/** Asserts the agreement rule (see the file header) and records the largest error. */
function expectAgree(label: string, ours: Float64Array, ref: Ref): void {
  const n = ours.length;
  let first = 0;
  while (first < n && Number.isNaN(ours[first]!)) first++;
  expect(first, `${label}: first defined output at TA-Lib's begIndex`).toBe(ref.begIndex);
  let scale = 0;
  for (let i = ref.begIndex; i < n; i++) scale += Math.abs(ref.values[i]!);
  scale /= n - ref.begIndex;
  let maxRel = 0;
  let worst = -1;
  let identical = 0;
  for (let i = ref.begIndex; i < n; i++) {
    const a = ours[i]!;
    const b = ref.values[i]!;
    if (Number.isNaN(a)) expect.fail(`${label}: undefined at ${i} after the lookback`);
    if (a === b) identical++;
    const rel = Math.abs(a - b) / Math.max(Math.abs(b), 1e-6 * scale);
    if (rel > maxRel) {
      maxRel = rel;
      worst = i;
    }
  }
  report.set(label, { outputs: n - ref.begIndex, identical, maxRel });
  expect(maxRel, `${label}: worst at ${worst} ours=${ours[worst]} talib=${ref.values[worst]}`).toBeLessThanOrEqual(TOL);
}

// ---------------------------------------------------------------------------

let algo: Series;
let btc: Series;
beforeAll(() => {
  algo = loadSeries('ALGOUSDT 1m', 'binance-um-1m/ALGOUSDT-1m-2023-02.csv.gz', Infinity);
  btc = loadSeries('BTCUSDT 1h', 'binance-spot/BTCUSDT-1h.csv.gz', 20_000);
});

afterAll(() => {
  if (!process.env.INDICATORS_REPORT) return;
  const rows = [...report].map(([label, a]) => `${label.padEnd(44)} outputs=${String(a.outputs).padStart(6)} identical=${String(a.identical).padStart(6)} maxRel=${a.maxRel.toExponential(2)}`);
  console.log(rows.join('\n'));
});

describe('indicators vs TA-Lib on real candles', () => {
  it('loads the data the comparisons need', () => {
    expect(algo.bars.length, 'a full February of 1m candles').toBe(40_320);
    expect(btc.bars.length).toBe(20_000);
  });

  for (const which of ['algo', 'btc'] as const) {
    const data = (): Series => (which === 'algo' ? algo : btc);

    describe(which === 'algo' ? 'ALGOUSDT futures 1m, 2023-02' : 'BTCUSDT spot 1h, first 20,000', () => {
      it('SMA 2, 14, 50', () => {
        const d = data();
        for (const p of [2, 14, 50]) {
          const ref = taSegmented(d.close.length, p, p - 1, { inReal: d.close }, { name: 'SMA', optInTimePeriod: p }, ['outReal']);
          expectAgree(`${d.name} SMA(${p})`, pick(run(new Sma(p), d.close), (v) => v), ref.outReal!);
        }
      });

      it('EMA 2, 14, 50: seeded with the SMA of the first period', () => {
        const d = data();
        for (const p of [2, 14, 50]) {
          expectAgree(`${d.name} EMA(${p})`, pick(run(new Ema(p), d.close), (v) => v), ta(d.close.length, { name: 'EMA', inReal: d.close, optInTimePeriod: p }));
        }
      });

      it('WMA 2, 14, 50', () => {
        const d = data();
        for (const p of [2, 14, 50]) {
          const ref = taSegmented(d.close.length, p, p - 1, { inReal: d.close }, { name: 'WMA', optInTimePeriod: p }, ['outReal']);
          expectAgree(`${d.name} WMA(${p})`, pick(run(new Wma(p), d.close), (v) => v), ref.outReal!);
        }
      });

      it('RSI 14 and 2 (Wilder, TA-Lib seeding)', () => {
        const d = data();
        for (const p of [14, 2]) {
          expectAgree(`${d.name} RSI(${p})`, pick(run(new Rsi(p), d.close), (v) => v), ta(d.close.length, { name: 'RSI', inReal: d.close, optInTimePeriod: p }));
        }
      });

      it('MACD 12/26/9 and 5/35/5: TA-Lib alignment, first value at index slow+signal-2', () => {
        const d = data();
        for (const [fast, slow, signal] of [
          [12, 26, 9],
          [5, 35, 5],
        ] as const) {
          const refs = taMulti(d.close.length, { name: 'MACD', inReal: d.close, optInFastPeriod: fast, optInSlowPeriod: slow, optInSignalPeriod: signal }, ['outMACD', 'outMACDSignal', 'outMACDHist']);
          expect(refs.outMACD!.begIndex, 'TA-Lib itself: lookback (slow-1)+(signal-1)').toBe(slow + signal - 2);
          const outs = run(new Macd(fast, slow, signal), d.close);
          expectAgree(`${d.name} MACD(${fast},${slow},${signal}).macd`, pick(outs, (v) => v.macd), refs.outMACD!);
          expectAgree(`${d.name} MACD(${fast},${slow},${signal}).signal`, pick(outs, (v) => v.signal), refs.outMACDSignal!);
          expectAgree(`${d.name} MACD(${fast},${slow},${signal}).histogram`, pick(outs, (v) => v.histogram), refs.outMACDHist!);
        }
      });

      it('Bollinger 20/2 and 5/1 (SMA, population stddev), with bandwidth and %B', () => {
        const d = data();
        for (const [p, k] of [
          [20, 2],
          [5, 1],
        ] as const) {
          const refs = taSegmented(d.close.length, p, p - 1, { inReal: d.close }, { name: 'BBANDS', optInTimePeriod: p, optInNbDevUp: k, optInNbDevDn: k, optInMAType: 0 }, [
            'outRealUpperBand',
            'outRealMiddleBand',
            'outRealLowerBand',
          ]);
          const outs = run(new Bollinger(p, k), d.close);
          const label = `${d.name} BBANDS(${p},${k})`;
          expectAgree(`${label}.upper`, pick(outs, (v) => v.upper), refs.outRealUpperBand!);
          expectAgree(`${label}.middle`, pick(outs, (v) => v.middle), refs.outRealMiddleBand!);
          expectAgree(`${label}.lower`, pick(outs, (v) => v.lower), refs.outRealLowerBand!);
          // Derived outputs, from TA-Lib's bands by their definitions.
          const n = d.close.length;
          const bw = new Float64Array(n).fill(Number.NaN);
          const pb = new Float64Array(n).fill(Number.NaN);
          for (let i = p - 1; i < n; i++) {
            const u = refs.outRealUpperBand!.values[i]!;
            const m = refs.outRealMiddleBand!.values[i]!;
            const l = refs.outRealLowerBand!.values[i]!;
            bw[i] = (u - l) / m;
            pb[i] = u === l ? 0.5 : (d.close[i]! - l) / (u - l);
          }
          expectAgree(`${label}.bandwidth`, pick(outs, (v) => v.bandwidth), { begIndex: p - 1, values: bw });
          expectAgree(`${label}.percentB`, pick(outs, (v) => v.percentB), { begIndex: p - 1, values: pb });
        }
      });

      it('STDDEV 5 and 20 (population, nbDev 1)', () => {
        const d = data();
        for (const p of [5, 20]) {
          const ref = taSegmented(d.close.length, p, p - 1, { inReal: d.close }, { name: 'STDDEV', optInTimePeriod: p, optInNbDev: 1 }, ['outReal']);
          expectAgree(`${d.name} STDDEV(${p})`, pick(run(new StdDev(p), d.close), (v) => v), ref.outReal!);
        }
      });

      it('ATR 14 (Wilder, first bar skipped) and ATR 1 (= TRANGE)', () => {
        const d = data();
        for (const p of [14, 1]) {
          expectAgree(`${d.name} ATR(${p})`, pick(run(new Atr(p), d.bars), (v) => v), ta(d.close.length, { name: 'ATR', high: d.high, low: d.low, close: d.close, optInTimePeriod: p }));
        }
        expectAgree(`${d.name} ATR(1) vs TRANGE`, pick(run(new Atr(1), d.bars), (v) => v), ta(d.close.length, { name: 'TRANGE', high: d.high, low: d.low, close: d.close }));
      });

      it('ADX 14 and 5 with +DI/-DI (first ADX at index 2*period-1)', () => {
        const d = data();
        const n = d.close.length;
        for (const p of [14, 5]) {
          const hlc = { high: d.high, low: d.low, close: d.close, optInTimePeriod: p };
          const outs = run(new Adx(p), d.bars);
          expectAgree(`${d.name} ADX(${p})`, pick(outs, (v) => v.adx), ta(n, { name: 'ADX', ...hlc }));
          // TA-Lib's PLUS_DI/MINUS_DI start at index `period`; ours come with the ADX.
          for (const [name, f] of [
            ['PLUS_DI', (v: { plusDI: number }) => v.plusDI],
            ['MINUS_DI', (v: { minusDI: number }) => v.minusDI],
          ] as const) {
            const ref = ta(n, { name, ...hlc });
            expect(ref.begIndex, `TA-Lib ${name} starts at period`).toBe(p);
            ref.values.fill(Number.NaN, 0, 2 * p - 1);
            expectAgree(`${d.name} ${name}(${p}) from 2p-1`, pick(outs, f), { begIndex: 2 * p - 1, values: ref.values });
          }
        }
      });

      it('Stochastic 14/3/3, 5/1/3, 21/5/5 (STOCH, SMA smoothing)', () => {
        const d = data();
        for (const [k, slowing, dp] of [
          [14, 3, 3],
          [5, 1, 3],
          [21, 5, 5],
        ] as const) {
          const refs = taMulti(
            d.close.length,
            { name: 'STOCH', high: d.high, low: d.low, close: d.close, optInFastK_Period: k, optInSlowK_Period: slowing, optInSlowK_MAType: 0, optInSlowD_Period: dp, optInSlowD_MAType: 0 },
            ['outSlowK', 'outSlowD'],
          );
          const outs = run(new Stochastic(k, slowing, dp), d.bars);
          expectAgree(`${d.name} STOCH(${k},${slowing},${dp}).k`, pick(outs, (v) => v.k), refs.outSlowK!);
          expectAgree(`${d.name} STOCH(${k},${slowing},${dp}).d`, pick(outs, (v) => v.d), refs.outSlowD!);
        }
      });

      it('OBV: starts at the first bar with its volume, as TA-Lib', () => {
        const d = data();
        const ours = pick(run(new Obv(), d.bars), (v) => v);
        expect(ours[0], 'first OBV is the first volume').toBe(d.volume[0]);
        expectAgree(`${d.name} OBV`, ours, ta(d.close.length, { name: 'OBV', inReal: d.close, volume: d.volume }));
      });

      it('Donchian 20 and 55 vs MAX(high), MIN(low), MIDPRICE', () => {
        const d = data();
        const n = d.close.length;
        for (const p of [20, 55]) {
          const outs = run(new Donchian(p), d.bars);
          expectAgree(`${d.name} Donchian(${p}).upper vs MAX`, pick(outs, (v) => v.upper), ta(n, { name: 'MAX', inReal: d.high, optInTimePeriod: p }));
          expectAgree(`${d.name} Donchian(${p}).lower vs MIN`, pick(outs, (v) => v.lower), ta(n, { name: 'MIN', inReal: d.low, optInTimePeriod: p }));
          expectAgree(`${d.name} Donchian(${p}).middle vs MIDPRICE`, pick(outs, (v) => v.middle), ta(n, { name: 'MIDPRICE', high: d.high, low: d.low, optInTimePeriod: p }));
        }
      });

      it('VWAP equals a recomputation from the session start at every bar', () => {
        const d = data();
        const outs = run(new Vwap(), d.bars);
        let start = 0;
        let maxRel = 0;
        let resets = 0;
        for (let i = 0; i < d.bars.length; i++) {
          const day = Math.floor(d.bars[i]!.openTime / 86_400_000);
          if (i > 0 && day !== Math.floor(d.bars[i - 1]!.openTime / 86_400_000)) {
            start = i;
            resets++;
          }
          let pv = 0;
          let v = 0;
          for (let j = start; j <= i; j++) {
            const b = d.bars[j]!;
            pv += ((b.high + b.low + b.close) / 3) * b.volume;
            v += b.volume;
          }
          const ours = outs[i];
          if (v === 0) {
            expect(ours, `${d.name} VWAP at ${i}: no session volume yet`).toBeUndefined();
            continue;
          }
          if (ours === undefined) expect.fail(`${d.name} VWAP undefined at ${i}`);
          maxRel = Math.max(maxRel, Math.abs(ours - pv / v) / (pv / v));
        }
        report.set(`${d.name} VWAP vs recomputation`, { outputs: d.bars.length, identical: Number.NaN, maxRel });
        expect(resets, 'one session per UTC day').toBeGreaterThan(which === 'algo' ? 26 : 800);
        expect(maxRel).toBeLessThanOrEqual(1e-12);
      });
    });
  }
});

describe('VWAP sessions', () => {
  it('resets at 00:00 UTC: the first bar of a day is its own typical price', () => {
    const i = algo.bars.findIndex((b) => b.openTime === Date.UTC(2023, 1, 2));
    expect(i, '2023-02-02 00:00 is the 1441st minute').toBe(1440);
    const vwap = new Vwap();
    for (let j = 0; j < i; j++) vwap.update(algo.bars[j]!);
    const before = vwap.value;
    const b = algo.bars[i]!;
    const at = vwap.update(b);
    expect(at, 'first bar of the new session: its own typical price').toBe((b.high + b.low + b.close) / 3);
    expect(before, 'the previous bar still belongs to the old session').not.toBe(at);
  });

  it('resets across a gap that spans midnight, and is undefined until the session has volume', () => {
    const bar = (t: string, h: number, l: number, c: number, v: number): Bar => ({ openTime: Date.parse(t), open: c, high: h, low: l, close: c, volume: v });
    const vwap = new Vwap();
    expect(vwap.update(bar('2024-03-01T23:58:00Z', 12, 9, 9, 2))).toBe(10);
    expect(vwap.update(bar('2024-03-01T23:59:00Z', 21, 21, 21, 2)), '(10*2 + 21*2) / 4').toBe(15.5);
    // Next bar after a 5-minute gap, on the next UTC day, with no volume.
    expect(vwap.update(bar('2024-03-02T00:04:00Z', 30, 30, 30, 0)), 'new session, no volume yet').toBeUndefined();
    expect(vwap.ready).toBe(false);
    expect(vwap.update(bar('2024-03-02T00:05:00Z', 33, 27, 30, 4))).toBe(30);
    expect(vwap.ready).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Volume profile: a direct recomputation of the definition in volume-profile.ts.

interface Profile {
  volumes: Float64Array;
  poc: number;
  valueAreaLow: number;
  valueAreaHigh: number;
  /**
   * The closest call among the decisions taken (POC vs the runner-up, below vs
   * above neighbour, area vs target), in volume. Where it is within rounding,
   * another summation order may legitimately decide the other way.
   */
  margin: number;
}

function profileFromScratch(bars: readonly Bar[], end: number, period: number, bins: number, pct: number): Profile {
  const from = end - period + 1;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i <= end; i++) {
    lo = Math.min(lo, bars[i]!.low);
    hi = Math.max(hi, bars[i]!.high);
  }
  const volumes = new Float64Array(bins);
  if (hi === lo) {
    for (let i = from; i <= end; i++) volumes[0]! += bars[i]!.volume;
    return { volumes, poc: lo, valueAreaLow: lo, valueAreaHigh: lo, margin: Infinity };
  }
  const w = (hi - lo) / bins;
  const edge = (k: number): number => (k === bins ? hi : lo + k * w);
  for (let i = from; i <= end; i++) {
    const { low, high, volume } = bars[i]!;
    if (high === low) {
      let k = 0;
      while (k < bins - 1 && low >= edge(k + 1)) k++;
      volumes[k]! += volume;
      continue;
    }
    for (let k = 0; k < bins; k++) {
      const overlap = Math.min(high, edge(k + 1)) - Math.max(low, edge(k));
      if (overlap > 0) volumes[k]! += (volume * overlap) / (high - low);
    }
  }
  let total = 0;
  let poc = 0;
  for (let k = 0; k < bins; k++) {
    total += volumes[k]!;
    if (volumes[k]! > volumes[poc]!) poc = k;
  }
  let margin = Infinity;
  for (let k = 0; k < bins; k++) if (k !== poc) margin = Math.min(margin, volumes[poc]! - volumes[k]!);
  const target = pct * total;
  let a = poc;
  let b = poc;
  let area = volumes[poc]!;
  for (;;) {
    margin = Math.min(margin, Math.abs(area - target));
    if (area >= target || (a === 0 && b === bins - 1)) break;
    const below = a > 0 ? volumes[a - 1]! : -1;
    const above = b < bins - 1 ? volumes[b + 1]! : -1;
    if (below >= 0 && above >= 0) margin = Math.min(margin, Math.abs(above - below));
    if (above >= below) area += volumes[++b]!;
    else area += volumes[--a]!;
  }
  return { volumes, poc: lo + (poc + 0.5) * w, valueAreaLow: edge(a), valueAreaHigh: edge(b + 1), margin };
}

describe('volume profile', () => {
  it('matches the definition on a hand-checked window', () => {
    const bar = (low: number, high: number, volume: number): Bar => ({ openTime: 0, open: low, high, low, close: high, volume });
    // Window 10..14, 4 bins of 1: [10,11) [11,12) [12,13) [13,14].
    const vp = new VolumeProfile(3, 4, 0.7);
    expect(vp.update(bar(10, 14, 40))).toBeUndefined();
    expect(vp.update(bar(12, 12, 30))).toBeUndefined();
    const v = vp.update(bar(11, 13, 20));
    // 40 spread 10/10/10/10; 30 all in [12,13); 20 split 10/10 over [11,12) and [12,13).
    expect([...vp.binVolumes()], 'volume per bin').toEqual([10, 20, 50, 10]);
    // POC [12,13) centre 12.5; 50 < 63; neighbours 20 (below) vs 10 (above): add below -> 70 >= 63.
    expect(v, 'poc is a bin centre, value area edges are bin edges').toEqual({ poc: 12.5, valueAreaLow: 11, valueAreaHigh: 13 });
    // The first bar leaves: window 11..13, bins of 0.5: [11,11.5) [11.5,12) [12,12.5) [12.5,13].
    const w = vp.update(bar(11, 11, 5));
    // 30 at 12, an edge: the bin above; 20 spread 5 per bin; 5 at 11.
    expect([...vp.binVolumes()], 'point masses on an edge go to the bin above it').toEqual([10, 5, 35, 5]);
    // 35 < 0.7 * 55; neighbours 5 and 5 tie: the upper one is added -> 40.
    expect(w).toEqual({ poc: 12.25, valueAreaLow: 12, valueAreaHigh: 13 });
  });

  it('a window of one price reports that price', () => {
    const vp = new VolumeProfile(2, 10, 0.7);
    const bar: Bar = { openTime: 0, open: 5, high: 5, low: 5, close: 5, volume: 3 };
    vp.update(bar);
    expect(vp.update(bar)).toEqual({ poc: 5, valueAreaLow: 5, valueAreaHigh: 5 });
  });

  for (const [which, period, bins, pct] of [
    ['algo', 60, 24, 0.7],
    ['btc', 120, 40, 0.68],
  ] as const) {
    it(`matches a from-scratch recomputation at every bar (${which}, period ${period}, ${bins} bins, ${pct})`, () => {
      const d = which === 'algo' ? algo : btc;
      const vp = new VolumeProfile(period, bins, pct);
      const mine = new Float64Array(bins);
      let maxBinErr = 0;
      let maxPriceErr = 0;
      let nearTies = 0;
      for (let i = 0; i < d.bars.length; i++) {
        const v = vp.update(d.bars[i]!);
        if (i < period - 1) {
          expect(v, 'undefined until the window is full').toBeUndefined();
          continue;
        }
        if (v === undefined) expect.fail(`volume profile undefined at ${i}`);
        const ref = profileFromScratch(d.bars, i, period, bins, pct);
        vp.binVolumes(mine);
        let total = 0;
        for (let k = 0; k < bins; k++) total += ref.volumes[k]!;
        for (let k = 0; k < bins; k++) maxBinErr = Math.max(maxBinErr, Math.abs(mine[k]! - ref.volumes[k]!) / total);
        let differs = false;
        for (const key of ['poc', 'valueAreaLow', 'valueAreaHigh'] as const) {
          const err = Math.abs(v[key] - ref[key]) / ref[key];
          if (err <= 1e-12) {
            maxPriceErr = Math.max(maxPriceErr, err);
            continue;
          }
          differs = true;
          if (ref.margin > 1e-9 * total) expect.fail(`${d.name} ${key} at ${i}: ours ${v[key]} reference ${ref[key]}, decided by a margin of ${ref.margin}`);
        }
        if (differs) nearTies++;
      }
      const outputs = d.bars.length - period + 1;
      report.set(`${d.name} volume profile bins (err / window volume)`, { outputs, identical: Number.NaN, maxRel: maxBinErr });
      report.set(`${d.name} volume profile POC/VAL/VAH (${nearTies} near-ties)`, { outputs, identical: Number.NaN, maxRel: maxPriceErr });
      expect(maxBinErr, 'bin volumes, relative to the window volume').toBeLessThanOrEqual(1e-9);
      expect(nearTies, 'a different decision only on a rounding-level tie, and rarely').toBeLessThan(outputs / 1000);
    });
  }
});

// ---------------------------------------------------------------------------

describe('deliberate differences from TA-Lib: zero tests that do not depend on the price scale', () => {
  const SCALE = 1e-10;

  it('RSI of a 1e-10-scaled series is the same RSI; TA-Lib reads its small averages as zero', () => {
    const scaled = algo.close.map((x) => x * SCALE);
    const ours = pick(run(new Rsi(14), scaled), (v) => v);
    const base = pick(run(new Rsi(14), algo.close), (v) => v);
    const ref = ta(scaled.length, { name: 'RSI', inReal: scaled, optInTimePeriod: 14 });
    let maxDiff = 0;
    let talibZeros = 0;
    for (let i = 14; i < scaled.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - base[i]!));
      if (ref.values[i] === 0) talibZeros++;
    }
    expect(maxDiff, 'RSI is scale-free: only rounding differs').toBeLessThan(1e-9);
    // 1,795 of 40,306 on this data: each a quiet stretch read as "RSI 0, oversold".
    expect(talibZeros, 'TA-Lib: gains+losses below 1e-14 give RSI 0').toBeGreaterThan(1000);
  });

  it('StdDev of a 1e-6-scaled series scales with it; TA-Lib returns 0 below a variance of 1e-14', () => {
    const s = 1e-6;
    const scaled = algo.close.map((x) => x * s);
    const ours = pick(run(new StdDev(20), scaled), (v) => v);
    const base = pick(run(new StdDev(20), algo.close), (v) => v);
    const ref = ta(scaled.length, { name: 'STDDEV', inReal: scaled, optInTimePeriod: 20, optInNbDev: 1 });
    let maxErr = 0;
    let talibZeros = 0;
    for (let i = 19; i < scaled.length; i++) {
      // Error relative to the price: the variance formula (TA-Lib's) cancels mean^2.
      maxErr = Math.max(maxErr, Math.abs(ours[i]! / s - base[i]!) / algo.close[i]!);
      if (ref.values[i] === 0) talibZeros++;
    }
    expect(maxErr).toBeLessThan(1e-9);
    expect(talibZeros, 'TA-Lib: every window reads as flat').toBe(scaled.length - 19);
  });

  it('a flat window has zero deviation despite rounding in the running sums', () => {
    const sd = new StdDev(20);
    const bb = new Bollinger(20, 2);
    let last: number | undefined;
    // Noise first so the running totals carry rounding, then 20 identical prices.
    for (let i = 0; i < 500; i++) {
      const x = 67_123.37 + ((i * 7919) % 113) / 7;
      sd.update(x);
      bb.update(x);
    }
    for (let i = 0; i < 20; i++) {
      last = sd.update(67_250.01);
      bb.update(67_250.01);
    }
    expect(last).toBe(0);
    expect(bb.value?.percentB, 'zero-width bands: %B is the middle').toBe(0.5);
  });
});

describe('long-running accuracy (re-summed windows)', () => {
  it('SMA, WMA and StdDev stay accurate over 116k BTCUSDT 15m bars', () => {
    const close = loadSeries('BTCUSDT 15m', 'binance-spot/BTCUSDT-15m.csv.gz', Infinity).close;
    const p = 5;
    const sma = run(new Sma(p), close);
    const wma = run(new Wma(p), close);
    const sd = run(new StdDev(p), close);
    let smaErr = 0;
    let wmaErr = 0;
    let sdErr = 0;
    for (let i = p - 1; i < close.length; i++) {
      let sum = 0;
      let weighted = 0;
      for (let j = 0; j < p; j++) {
        sum += close[i - p + 1 + j]!;
        weighted += close[i - p + 1 + j]! * (j + 1);
      }
      const mean = sum / p;
      let ss = 0;
      for (let j = i - p + 1; j <= i; j++) ss += (close[j]! - mean) ** 2;
      smaErr = Math.max(smaErr, Math.abs(sma[i]! - mean) / mean);
      wmaErr = Math.max(wmaErr, Math.abs(wma[i]! - weighted / ((p * (p + 1)) / 2)) / mean);
      sdErr = Math.max(sdErr, Math.abs(sd[i]! - Math.sqrt(ss / p)) / mean);
    }
    report.set('BTCUSDT 15m SMA(5) vs two-pass', { outputs: close.length, identical: Number.NaN, maxRel: smaErr });
    report.set('BTCUSDT 15m WMA(5) vs two-pass', { outputs: close.length, identical: Number.NaN, maxRel: wmaErr });
    report.set('BTCUSDT 15m StdDev(5) vs two-pass (err/price)', { outputs: close.length, identical: Number.NaN, maxRel: sdErr });
    expect(close.length).toBeGreaterThan(100_000);
    expect(smaErr).toBeLessThan(1e-13);
    // Without re-summing this was 7.6e-10 and grew linearly with the run.
    expect(wmaErr).toBeLessThan(1e-11);
    expect(sdErr, 'error of E[x^2]-mean^2 (TA-Lib formula), relative to the price').toBeLessThan(1e-9);
  });
});

// ---------------------------------------------------------------------------

describe('indicator contract', () => {
  const f = createIndicatorFactory();
  const scalar: Array<[string, () => Indicator<number, unknown>]> = [
    ['sma', () => f.sma(10)],
    ['ema', () => f.ema(10)],
    ['wma', () => f.wma(10)],
    ['rsi', () => f.rsi(14)],
    ['macd', () => f.macd(12, 26, 9)],
    ['bollinger', () => f.bollinger(20, 2)],
    ['stdDev', () => f.stdDev(20)],
  ];
  const barBased: Array<[string, () => Indicator<Bar, unknown>]> = [
    ['atr', () => f.atr(14)],
    ['adx', () => f.adx(14)],
    ['stochastic', () => f.stochastic(14, 3, 3)],
    ['vwap', () => f.vwap()],
    ['obv', () => f.obv()],
    ['donchian', () => f.donchian(20)],
    ['volumeProfile', () => f.volumeProfile(30, 20, 0.7)],
  ];

  function checkContract<In>(name: string, make: () => Indicator<In, unknown>, inputs: readonly In[]): void {
    const ind = make();
    expect(ind.ready, `${name}: not ready before any input`).toBe(false);
    expect(ind.value).toBeUndefined();
    const first = run(ind, inputs);
    const warm = first.findIndex((x) => x !== undefined);
    expect(warm, `${name}: produces a value`).toBeGreaterThanOrEqual(0);
    expect(first.slice(warm).every((x) => x !== undefined), `${name}: stays defined once warm`).toBe(true);
    expect(ind.ready, `${name}: ready after enough input`).toBe(true);
    expect(ind.value, `${name}: value is the last update's result`).toEqual(first.at(-1));
    ind.reset();
    expect(ind.ready, `${name}: reset forgets`).toBe(false);
    expect(ind.value).toBeUndefined();
    expect(run(ind, inputs), `${name}: after reset, the same inputs give the same outputs`).toEqual(first);
    const other = make();
    expect(other, `${name}: the factory makes a new instance each call`).not.toBe(ind);
  }

  it('ready/value/reset for every indicator', () => {
    // Enough data to cross a re-sum boundary (1024 outputs) and more than one VWAP session.
    const bars = algo.bars.slice(1000, 4000);
    const closes = bars.map((b) => b.close);
    for (const [name, make] of scalar) checkContract(name, make, closes);
    for (const [name, make] of barBased) checkContract(name, make, bars);
  });

  it('rejects bad parameters and non-finite inputs', () => {
    expect(() => f.sma(0)).toThrow(RangeError);
    expect(() => f.ema(2.5)).toThrow(/integer/);
    expect(() => f.rsi(1), 'TA-Lib RSI needs period >= 2').toThrow(RangeError);
    expect(() => f.macd(26, 12, 9), 'TA-Lib would swap them silently').toThrow(/fast period/);
    expect(() => f.bollinger(20, 0)).toThrow(RangeError);
    expect(() => f.volumeProfile(10, 0, 0.7)).toThrow(RangeError);
    expect(() => f.volumeProfile(10, 10, 1.5)).toThrow(RangeError);
    expect(() => f.sma(100_001)).toThrow(RangeError);
    expect(() => f.ema(10).update(Number.NaN)).toThrow(/finite/);
    expect(() => f.atr(14).update({ openTime: 0, open: 1, high: Number.POSITIVE_INFINITY, low: 1, close: 1, volume: 1 })).toThrow(/finite/);
  });
});
