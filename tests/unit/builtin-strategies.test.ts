/**
 * The built-in strategies (strategies/<name>/index.ts), loaded through the
 * real loader, run through the real host over a real month of ALGOUSDT 1m
 * candles (February 2023), and checked against the rule each file documents:
 * every signal it emitted satisfies its rule, and (replaying the rule with
 * indicators computed here, independently) it emitted every signal the rule
 * asks for, no more, no fewer.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatConfigIssue } from '../../src/core/errors.ts';
import { loadKlineFile } from '../../src/market-data/kline-files.ts';
import type { SignalAction } from '../../src/model/events.ts';
import type { Timeframe } from '../../src/model/market.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { strategyConfigSchema } from '../../src/settings/strategy-config.ts';
import type { PositionView, SignalOptions, StrategyCandle, StrategyContext, StrategyModule } from '../../src/strategy/api.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import type { Bar } from '../../src/strategy/indicators/types.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import { RegimeFilter, type RegimeConfig } from '../../src/strategy/regime.ts';
import { CandleAggregator, TIMEFRAME_MS } from '../../src/strategy/timeframes.ts';
import { runStrategy, type RunOptions, type RunResult } from '../support/run-strategy.ts';
import { REPO_ROOT } from '../support/workspace.ts';

const NAMES = ['rsi', 'grid', 'macd', 'bollinger', 'ema-cross', 'vwap', 'volume-profile', 'ensemble', 'funding-carry'] as const;
type Name = (typeof NAMES)[number];
const DATA = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const DAY_MS = 86_400_000;
const H8 = 8 * 3_600_000;
const MIN = 60_000;
const f = createIndicatorFactory();

let modules: Map<string, StrategyModule>;
let bars: Bar[];

beforeAll(async () => {
  const loaded = await loadStrategyModules(join(REPO_ROOT, 'strategies'), NAMES, REPO_ROOT);
  expect(loaded.issues.map(formatConfigIssue), 'every built-in loads').toEqual([]);
  modules = loaded.modules;
  const file = loadKlineFile(DATA);
  expect(file.issues).toEqual([]);
  bars = file.klines.map((k) => ({ openTime: k.openTime, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close), volume: Number(k.volume) }));
  // The month is complete (no gaps), so every aggregated candle closes with its own last minute.
  expect(bars.length, '28 days of 1m candles').toBe(28 * 1440);
});

const mod = (name: Name): StrategyModule => modules.get(name)!;

// ------------------------------------------------------------ helpers

interface Series {
  candles: StrategyCandle[];
  /** 1m openTime of the minute that closed each candle -> candle index. */
  index: Map<number, number>;
  closes: number[];
}

const seriesCache = new Map<Timeframe, Series>();
function series(tf: Timeframe): Series {
  let s = seriesCache.get(tf);
  if (!s) {
    const agg = new CandleAggregator('ALGOUSDT', tf);
    const candles = bars.flatMap((b) => agg.push(b));
    const index = new Map(candles.map((c, i) => [c.openTime + TIMEFRAME_MS[tf] - MIN, i]));
    s = { candles, index, closes: candles.map((c) => c.close) };
    seriesCache.set(tf, s);
  }
  return s;
}

interface At {
  i: number;
  action: SignalAction;
  reason: string;
  strength?: number;
}

/** The signals of a run, each placed on the candle (of the run's timeframe) it came on. */
function placed(r: RunResult, s: Series): At[] {
  return r.signals.map((x) => {
    const i = s.index.get(x.openTime);
    if (i === undefined) throw new Error(`signal ${x.action} at ${new Date(x.openTime).toISOString()} is not at a candle close`);
    return { i, action: x.action, reason: x.reason, ...(x.strength !== undefined ? { strength: x.strength } : {}) };
  });
}

function run(name: Name, o: RunOptions & { timeframe: Timeframe }): { r: RunResult; s: Series; at: At[] } {
  const r = runStrategy(mod(name), bars, o);
  expect(r.status.state, `${name} ran without throwing (${r.status.detail ?? ''})`).toBe('ready');
  const s = series(o.timeframe);
  return { r, s, at: placed(r, s) };
}

const count = (at: readonly At[], action: SignalAction) => at.filter((a) => a.action === action).length;

/**
 * Entries only when flat, exits only when in that position, in signal order
 * (an exit followed by the opposite entry on one candle is a reversal).
 */
function expectConsistentPositions(at: readonly At[], why: string): void {
  let pos: PositionView['side'] = 'flat';
  for (const a of at) {
    const ok = a.action === 'enterLong' || a.action === 'enterShort' ? pos === 'flat' : pos === (a.action === 'exitLong' ? 'long' : 'short');
    expect(ok, `${why}: ${a.action} at candle ${a.i} while ${pos}`).toBe(true);
    pos = a.action === 'enterLong' ? 'long' : a.action === 'enterShort' ? 'short' : 'flat';
  }
}

interface Rules {
  enterLong(i: number): boolean;
  exitLong(i: number): boolean;
  enterShort?(i: number): boolean;
  exitShort?(i: number): boolean;
}

/** The signals a rule asks for over n candles: exits first, then an entry when flat. */
function replay(n: number, rules: Rules): Array<Pick<At, 'i' | 'action'>> {
  const out: Array<Pick<At, 'i' | 'action'>> = [];
  let pos: PositionView['side'] = 'flat';
  for (let i = 0; i < n; i++) {
    if (pos === 'long' && rules.exitLong(i)) {
      out.push({ i, action: 'exitLong' });
      pos = 'flat';
    } else if (pos === 'short' && rules.exitShort?.(i)) {
      out.push({ i, action: 'exitShort' });
      pos = 'flat';
    }
    if (pos !== 'flat') continue;
    if (rules.enterLong(i)) {
      out.push({ i, action: 'enterLong' });
      pos = 'long';
    } else if (rules.enterShort?.(i)) {
      out.push({ i, action: 'enterShort' });
      pos = 'short';
    }
  }
  return out;
}

/** Feeds values through a fresh indicator; undefined while it warms. */
function compute<In, Out>(ind: { update(x: In): Out | undefined }, xs: readonly In[]): Array<Out | undefined> {
  return xs.map((x) => ind.update(x));
}

const strip = (at: readonly At[]) => at.map(({ i, action }) => ({ i, action }));

/** Signal counts per real-month run, printed once at the end (for the report). */
const tally: Record<string, string> = {};
const record = (label: string, at: readonly At[]) => {
  tally[label] = (['enterLong', 'exitLong', 'enterShort', 'exitShort'] as const).map((a) => `${a} ${count(at, a)}`).join(', ');
};

// ------------------------------------------------------------ configuration

describe('built-in strategies: modules and shipped YAML', () => {
  it('each shipped YAML validates through the real settings loader and resolves with no issues', () => {
    const settings = loadSettings({ cwd: REPO_ROOT, env: {}, envFile: false });
    const entries = settings.strategies.filter((e) => (NAMES as readonly string[]).includes(e.strategy));
    expect(new Set(entries.map((e) => e.strategy)), 'one example YAML per built-in').toEqual(new Set(NAMES));
    const { specs, issues } = resolveInstances(settings, entries, modules);
    expect(issues.map(formatConfigIssue)).toEqual([]);
    expect(specs, 'examples ship disabled: npm start must not trade them').toEqual([]);
    for (const e of entries) {
      const m = mod(e.strategy as Name);
      expect(e.config.enabled, `${e.file} is disabled`).toBe(false);
      expect(e.config.timeframe, `${e.file} names a timeframe`).toBeDefined();
      expect(e.config.sizing, `${e.file} has a sizing block`).toBeDefined();
      expect(e.config.risk.stopLossPct, `${e.file} sets risk.stopLossPct`).toBeGreaterThan(0);
      if (m.markets && !m.markets.includes('spot')) expect(e.symbol, `${e.file}: futures-only examples are on ALGOUSDT`).toBe('ALGOUSDT');
      // Every param is written out, at its default (grid's lower/upper have none).
      const given = e.config.params;
      const required = e.strategy === 'grid' ? { lower: given.lower, upper: given.upper } : {};
      const defaults = m.params.parse(required) as Record<string, unknown>;
      expect(Object.keys(given).sort(), `${e.file} lists every param`).toEqual(Object.keys(defaults).sort());
      expect(m.params.parse(given), `${e.file} params are the defaults`).toEqual(defaults);
    }
  });

  it('each module: name, description, described params with defaults, warm-up', () => {
    for (const name of NAMES) {
      const m = mod(name);
      expect(m.name).toBe(name);
      expect(m.description.length, name).toBeGreaterThan(20);
      const shape = (m.params as unknown as { shape?: Record<string, { description?: string }> }).shape;
      expect(shape, `${name} params are an object schema`).toBeDefined();
      for (const [k, field] of Object.entries(shape!)) expect(field.description, `${name}.${k} has .describe()`).toBeTruthy();
      if (name === 'grid') continue;
      const p = m.params.parse({});
      expect(Number.isInteger(m.warmup(p)) && m.warmup(p) >= 1, `${name} warm-up`).toBe(true);
    }
    expect(mod('rsi').warmup(mod('rsi').params.parse({})), 'RSI(14) needs 14 changes, then signals on candle 15').toBe(15);
    expect(mod('macd').warmup(mod('macd').params.parse({})), 'first histogram on candle 34, first change on 35').toBe(35);
    expect(mod('ema-cross').warmup(mod('ema-cross').params.parse({}))).toBe(22);
    expect(mod('bollinger').warmup(mod('bollinger').params.parse({}))).toBe(21);
    expect(mod('volume-profile').warmup(mod('volume-profile').params.parse({}))).toBe(121);
    expect(mod('ensemble').warmup(mod('ensemble').params.parse({})), 'breakout of 20 previous candles on candle 21, crossing on 22').toBe(22);
    expect(mod('funding-carry').markets).toEqual(['futures']);
  });

  it('schemas reject nonsense with clear messages', () => {
    const msg = (name: Name, p: unknown) => {
      const r = mod(name).params.safeParse(p);
      return r.success ? 'accepted' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(msg('grid', { lower: 0.3, upper: 0.2 })).toContain('upper must be above lower');
    expect(msg('grid', { lower: 0.2 })).toContain('upper');
    expect(msg('grid', { lower: 0.2, upper: 0.3, levels: 1 })).toContain('levels');
    expect(msg('rsi', { oversold: 80 })).toContain('oversold must be below overbought');
    expect(msg('rsi', { period: 1 })).toContain('period');
    expect(msg('rsi', { perod: 10 }), 'unknown keys are errors').not.toBe('accepted');
    expect(msg('ema-cross', { fast: 30 })).toContain('fast must be below slow');
    expect(msg('macd', { fast: 26, slow: 12 })).toContain('fast must be below slow');
    expect(msg('ensemble', { weights: { trend: 0, momentum: 0, swing: 0, scalping: 0, day: 0, priceAction: 0 } })).toContain('at least one weight');
    expect(msg('ensemble', { weights: { trend: -1 } })).toContain('weights.trend');
    expect(msg('ensemble', { threshold: 0.2, exitThreshold: 0.3 })).toContain('exitThreshold must be below threshold');
    expect(msg('funding-carry', { minRate: 0 })).toContain('minRate');
    expect(mod('ensemble').params.parse({ weights: { day: 3 } }), 'one weight given, the others default').toMatchObject({ weights: { trend: 1, day: 3, priceAction: 1 } });
  });

  it('shorts on spot, and funding-carry on spot, disable the instance with a clear reason', () => {
    const some = bars.slice(0, 30);
    for (const name of ['rsi', 'macd', 'bollinger', 'ema-cross', 'vwap', 'volume-profile', 'ensemble'] as const) {
      const st = runStrategy(mod(name), some, { market: 'spot', params: { allowShort: true } }).status;
      expect([st.state, st.detail], name).toEqual(['disabled', 'threw: allowShort needs a futures market: spot cannot sell short']);
    }
    expect(runStrategy(mod('grid'), some, { market: 'spot', params: { lower: 0.2, upper: 0.3, allowShort: true } }).status.state).toBe('disabled');
    expect(runStrategy(mod('funding-carry'), some, { market: 'spot' }).status.detail).toContain('futures only');
  });
});

// ------------------------------------------------------------ each strategy on the real month

describe('built-in strategies on ALGOUSDT, February 2023', () => {
  it('rsi (15m): enters below oversold, exits above overbought, alternating; shorts mirror it', () => {
    const { s, at } = run('rsi', { timeframe: '15m' });
    const rsi = compute(f.rsi(14), s.closes);
    expect(count(at, 'enterLong'), 'some entries in a month').toBeGreaterThan(3);
    for (const a of at) {
      const v = rsi[a.i]!;
      if (a.action === 'enterLong') expect(v, `enterLong at candle ${a.i}`).toBeLessThan(30);
      else expect(a.action === 'exitLong' && v > 70, `${a.action} at candle ${a.i}: RSI ${v}`).toBe(true);
    }
    at.forEach((a, k) => expect(a.action, `signal ${k} alternates, starting with an entry`).toBe(k % 2 === 0 ? 'enterLong' : 'exitLong'));
    const rules: Rules = { enterLong: (i) => rsi[i] !== undefined && rsi[i]! < 30, exitLong: (i) => rsi[i] !== undefined && rsi[i]! > 70 };
    expect(strip(at), 'exactly the signals the rule asks for').toEqual(replay(s.candles.length, rules));
    record('rsi 15m', at);

    const both = run('rsi', { timeframe: '15m', params: { allowShort: true } });
    expectConsistentPositions(both.at, 'rsi allowShort');
    expect(count(both.at, 'enterShort')).toBeGreaterThan(3);
    expect(strip(both.at)).toEqual(replay(s.candles.length, { ...rules, enterShort: rules.exitLong, exitShort: rules.enterLong }));
    record('rsi 15m allowShort', both.at);
  });

  it('grid (1m, the shipped levels): every buy is a close at or below a level the previous close was above; sells the reverse', () => {
    const params = { lower: 0.22, upper: 0.31, levels: 10 };
    const { r, s, at } = run('grid', { timeframe: '1m', params });
    const levels = [0.22, 0.23, 0.24, 0.25, 0.26, 0.27, 0.28, 0.29, 0.3, 0.31];
    const levelOf = (reason: string) => {
      const m = /^grid (buy|sell) at (\d+\.\d{4})$/.exec(reason);
      expect(m, `reason "${reason}" names the level`).not.toBeNull();
      const k = levels.indexOf(Number(m![2]));
      expect(k, `${reason}: a grid level`).toBeGreaterThanOrEqual(0);
      return levels[k]!;
    };
    let pos = 0;
    for (const a of at) {
      const close = s.closes[a.i]!;
      const prev = s.closes[a.i - 1]!;
      const level = levelOf(a.reason);
      expect(level >= 0.22 && level <= 0.31, 'within [lower, upper]').toBe(true);
      if (a.action === 'enterLong') {
        expect(a.reason.startsWith('grid buy'), a.reason).toBe(true);
        expect(close <= level && prev > level, `${a.reason}: close ${close}, previous ${prev}`).toBe(true);
        pos++;
      } else {
        expect(a.action, 'long-only by default').toBe('exitLong');
        expect(a.reason.startsWith('grid sell'), a.reason).toBe(true);
        expect(close >= level && prev < level, `${a.reason}: close ${close}, previous ${prev}`).toBe(true);
        expect(pos, 'a sell only while holding units').toBeGreaterThan(0);
        pos = 0; // the harness: an exit flattens
      }
    }
    // Completeness: one buy per level crossed downwards on every candle.
    for (let i = 1; i < s.closes.length; i++) {
      const crossedDown = levels.filter((l) => s.closes[i - 1]! > l && s.closes[i]! <= l).length;
      const buys = at.filter((a) => a.i === i && a.action === 'enterLong').length;
      if (buys !== crossedDown) expect.fail(`candle ${i}: ${crossedDown} levels crossed down, ${buys} buys`);
    }
    expect(count(at, 'enterLong')).toBeGreaterThan(20);
    expect(count(at, 'exitLong')).toBeGreaterThan(5);
    expect(r.signals.some((x) => x.reason === 'grid buy at 0.2500'), 'reasons print the level with 4 decimals').toBe(true);
    record('grid 1m', at);
  });

  it('macd (1h): entries where the histogram turns positive, exits where it turns negative; shorts mirror it', () => {
    const { s, at } = run('macd', { timeframe: '1h', params: { allowShort: true } });
    const hist = compute(f.macd(12, 26, 9), s.closes).map((v) => v?.histogram);
    const up = (i: number) => hist[i] !== undefined && hist[i - 1] !== undefined && hist[i - 1]! <= 0 && hist[i]! > 0;
    const down = (i: number) => hist[i] !== undefined && hist[i - 1] !== undefined && hist[i - 1]! >= 0 && hist[i]! < 0;
    for (const a of at) expect(a.action === 'enterLong' || a.action === 'exitShort' ? up(a.i) : down(a.i), `${a.action} at candle ${a.i}`).toBe(true);
    expectConsistentPositions(at, 'macd');
    expect(count(at, 'enterLong')).toBeGreaterThan(3);
    expect(count(at, 'enterShort')).toBeGreaterThan(3);
    expect(strip(at)).toEqual(replay(s.candles.length, { enterLong: up, exitShort: up, exitLong: down, enterShort: down }));
    record('macd 1h allowShort', at);
  });

  it('bollinger (15m): re-entries from outside the bands, only when bandwidth >= minBandwidth; exits at the middle', () => {
    const { s, at } = run('bollinger', { timeframe: '15m', params: { allowShort: true } });
    const bb = compute(f.bollinger(20, 2), s.closes);
    const c = s.closes;
    const wide = (i: number) => bb[i]!.bandwidth >= 0.01;
    const inside = (i: number) => c[i]! > bb[i]!.lower && c[i]! < bb[i]!.upper;
    const rules: Rules = {
      enterLong: (i) => bb[i - 1] !== undefined && c[i - 1]! < bb[i - 1]!.lower && inside(i) && wide(i),
      enterShort: (i) => bb[i - 1] !== undefined && c[i - 1]! > bb[i - 1]!.upper && inside(i) && wide(i),
      exitLong: (i) => bb[i] !== undefined && c[i]! >= bb[i]!.middle,
      exitShort: (i) => bb[i] !== undefined && c[i]! <= bb[i]!.middle,
    };
    for (const a of at) {
      expect(rules[a.action]!(a.i), `${a.action} at candle ${a.i}`).toBe(true);
      if (a.action.startsWith('enter')) expect(bb[a.i]!.bandwidth, 'entries only in wide-enough bands').toBeGreaterThanOrEqual(0.01);
    }
    expectConsistentPositions(at, 'bollinger');
    expect(count(at, 'enterLong')).toBeGreaterThan(3);
    expect(count(at, 'enterShort')).toBeGreaterThan(3);
    // The bandwidth filter does filter: some re-entries happened in narrow bands.
    const narrow = c.filter((_, i) => i > 0 && bb[i - 1] !== undefined && c[i - 1]! < bb[i - 1]!.lower && inside(i) && !wide(i)).length;
    expect(narrow, 'narrow-band re-entries exist and were skipped').toBeGreaterThan(0);
    expect(strip(at)).toEqual(replay(s.candles.length, rules));
    record('bollinger 15m allowShort', at);
  });

  it('ema-cross (15m): each entry at a golden cross, each exit at a death cross; shorts mirror it', () => {
    const { s, at } = run('ema-cross', { timeframe: '15m', params: { allowShort: true } });
    const fast = compute(f.ema(9), s.closes);
    const slow = compute(f.ema(21), s.closes);
    const ok = (i: number) => slow[i] !== undefined && slow[i - 1] !== undefined;
    const golden = (i: number) => ok(i) && fast[i]! > slow[i]! && fast[i - 1]! <= slow[i - 1]!;
    const death = (i: number) => ok(i) && fast[i]! < slow[i]! && fast[i - 1]! >= slow[i - 1]!;
    for (const a of at) expect(a.action === 'enterLong' || a.action === 'exitShort' ? golden(a.i) : death(a.i), `${a.action} at candle ${a.i}`).toBe(true);
    expectConsistentPositions(at, 'ema-cross');
    expect(count(at, 'enterLong')).toBeGreaterThan(10);
    expect(strip(at)).toEqual(replay(s.candles.length, { enterLong: golden, exitShort: golden, exitLong: death, enterShort: death }));
    record('ema-cross 15m allowShort', at);
  });

  it('vwap (5m): entries more than deviationPct from the session VWAP, exits back at it', () => {
    const { s, at } = run('vwap', { timeframe: '5m', params: { allowShort: true } });
    const vwap = compute(f.vwap(), s.candles);
    const c = s.closes;
    const dev = (i: number) => ((c[i]! - vwap[i]!) / vwap[i]!) * 100;
    // The month starts at 00:00 UTC and has no gaps, so every session is seen from its start.
    expect(s.candles[0]!.openTime % DAY_MS).toBe(0);
    const rules: Rules = { enterLong: (i) => dev(i) < -1, exitLong: (i) => c[i]! >= vwap[i]!, enterShort: (i) => dev(i) > 1, exitShort: (i) => c[i]! <= vwap[i]! };
    for (const a of at) expect(rules[a.action]!(a.i), `${a.action} at candle ${a.i}: close ${c[a.i]}, VWAP ${vwap[a.i]}`).toBe(true);
    expectConsistentPositions(at, 'vwap');
    expect(count(at, 'enterLong')).toBeGreaterThan(3);
    expect(count(at, 'enterShort')).toBeGreaterThan(3);
    expect(strip(at)).toEqual(replay(s.candles.length, rules));
    record('vwap 5m allowShort', at);
  });

  it('vwap: after a mid-day start it waits for the next session to enter', () => {
    // Start at 12:00 UTC on Feb 2: the first session it sees from the start is Feb 3.
    const from = bars.findIndex((b) => b.openTime === Date.UTC(2023, 1, 2, 12));
    const r = runStrategy(mod('vwap'), bars.slice(from, from + 3 * 1440), { timeframe: '5m', params: { deviationPct: 0.3 } });
    const entries = r.signals.filter((x) => x.action === 'enterLong');
    expect(entries.length).toBeGreaterThan(0);
    expect(Math.min(...entries.map((x) => x.openTime)), 'no entry on the partial day').toBeGreaterThanOrEqual(Date.UTC(2023, 1, 3));
  });

  it('volume-profile (5m): bounces off the value-area low, rejections at the value-area high', () => {
    const { s, at } = run('volume-profile', { timeframe: '5m', params: { allowShort: true } });
    const vp = compute(f.volumeProfile(120, 24, 0.7), s.candles);
    const k = s.candles;
    // The profile of the 120 candles before candle i.
    const bounce = (i: number) => vp[i - 1] !== undefined && k[i]!.low <= vp[i - 1]!.valueAreaLow && k[i]!.close > vp[i - 1]!.valueAreaLow;
    const rejection = (i: number) => vp[i - 1] !== undefined && k[i]!.high >= vp[i - 1]!.valueAreaHigh && k[i]!.close < vp[i - 1]!.valueAreaHigh;
    const up = (i: number) => bounce(i) && !rejection(i);
    const down = (i: number) => rejection(i) && !bounce(i);
    for (const a of at) expect(a.action === 'enterLong' || a.action === 'exitShort' ? up(a.i) : down(a.i), `${a.action} at candle ${a.i}`).toBe(true);
    expectConsistentPositions(at, 'volume-profile');
    expect(count(at, 'enterLong')).toBeGreaterThan(3);
    expect(count(at, 'enterShort')).toBeGreaterThan(3);
    expect(strip(at)).toEqual(replay(s.candles.length, { enterLong: up, exitShort: up, exitLong: down, enterShort: down }));
    record('volume-profile 5m allowShort', at);
  });

  it('ensemble (15m): trades the weighted score crossing the threshold; strength = |score|', () => {
    const { s, at } = run('ensemble', { timeframe: '15m', params: { allowShort: true } });
    const k = s.candles;
    const c = s.closes;
    const sma5 = compute(f.sma(5), c);
    const sma20 = compute(f.sma(20), c);
    const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    const firstOfDay = new Map<number, number>();
    for (const x of k) if (!firstOfDay.has(Math.floor(x.openTime / DAY_MS))) firstOfDay.set(Math.floor(x.openTime / DAY_MS), x.close);
    const score: Array<number | undefined> = k.map((x, i) => {
      if (i < 20) return undefined;
      const prev = k.slice(i - 20, i);
      const move = ((c[i]! - c[i - 1]!) / c[i - 1]!) * 100;
      const votes = [
        sign(c[i]! - c[i - 1]!),
        sign(c[i]! - c[i - 5]!),
        sign(sma5[i]! - sma20[i]!),
        move > 0.1 ? 1 : move < -0.1 ? -1 : 0,
        sign(c[i]! - firstOfDay.get(Math.floor(x.openTime / DAY_MS))!),
        c[i]! > Math.max(...prev.map((p) => p.high)) ? 1 : c[i]! < Math.min(...prev.map((p) => p.low)) ? -1 : 0,
      ];
      return votes.reduce((a, b) => a + b, 0) / 6;
    });
    const crossUp = (i: number) => score[i - 1] !== undefined && score[i - 1]! <= 0.5 && score[i]! > 0.5;
    const crossDown = (i: number) => score[i - 1] !== undefined && score[i - 1]! >= -0.5 && score[i]! < -0.5;
    const rules: Rules = {
      enterLong: crossUp,
      enterShort: crossDown,
      exitLong: (i) => score[i] !== undefined && score[i]! < 0,
      exitShort: (i) => score[i] !== undefined && score[i]! > 0,
    };
    for (const a of at) {
      expect(rules[a.action]!(a.i), `${a.action} at candle ${a.i}: score ${score[a.i]}`).toBe(true);
      if (a.action.startsWith('enter')) expect(a.strength, 'strength is |score|').toBeCloseTo(Math.abs(score[a.i]!), 12);
    }
    expectConsistentPositions(at, 'ensemble');
    expect(count(at, 'enterLong')).toBeGreaterThan(10);
    expect(count(at, 'enterShort')).toBeGreaterThan(10);
    expect(strip(at)).toEqual(replay(k.length, rules));
    record('ensemble 15m allowShort', at);

    // Weights count: with only the day signal, the score is its sign, and it crosses 0.5 only from 0 or -1 to +1.
    const dayOnly = run('ensemble', { timeframe: '15m', params: { weights: { trend: 0, momentum: 0, swing: 0, scalping: 0, day: 1, priceAction: 0 } } });
    for (const a of dayOnly.at.filter((x) => x.action === 'enterLong')) {
      const x = k[a.i]!;
      expect(x.close, 'day-only entries: close above the first close of the day').toBeGreaterThan(firstOfDay.get(Math.floor(x.openTime / DAY_MS))!);
      expect(a.strength).toBe(1);
    }
    expect(count(dayOnly.at, 'enterLong')).toBeGreaterThan(3);
  });

  it('funding-carry (1m, synthetic funding every 8h): in within 30 min before each funding, out 5 min after, against the payer', () => {
    // The rate for each funding time: +0.1% (longs pay: go short), -0.1% (go long), or 0.02% (too small).
    const rateFor = (t: number) => [0.001, -0.001, 0.0002][Math.floor(t / H8) % 3]!;
    const funding = (b: Bar) => {
      const now = b.openTime + MIN;
      const next = (Math.floor(now / H8) + 1) * H8;
      return { rate: rateFor(next), nextFundingTime: next };
    };
    const { r, at } = run('funding-carry', { timeframe: '1m', funding });
    const expected: Array<{ openTime: number; action: SignalAction }> = [];
    for (let t = bars[0]!.openTime + H8; t <= bars.at(-1)!.openTime + MIN; t += H8) {
      const rate = rateFor(t);
      if (Math.abs(rate) < 0.0005) continue;
      // The harness's clock is each 1m candle's close (openTime + 1 min).
      expected.push({ openTime: t - 30 * MIN - MIN, action: rate > 0 ? 'enterShort' : 'enterLong' });
      if (t + 5 * MIN <= bars.at(-1)!.openTime + MIN) expected.push({ openTime: t + 5 * MIN - MIN, action: rate > 0 ? 'exitShort' : 'exitLong' });
    }
    expect(r.signals.map((x) => ({ openTime: x.openTime, action: x.action }))).toEqual(expected);
    expectConsistentPositions(at, 'funding-carry');
    expect(r.signals[0]!.reason).toBe('funding -0.1000% at 2023-02-01 08:00 UTC in 30 min: shorts pay, go long');
    expect(r.signals.find((x) => x.action === 'enterShort')!.reason).toBe('funding 0.1000% at 2023-02-02 00:00 UTC in 30 min: longs pay, go short');
    record('funding-carry 1m synthetic', at);

    // No funding data, or only small rates: nothing.
    expect(runStrategy(mod('funding-carry'), bars.slice(0, 2000)).signals).toEqual([]);
    expect(runStrategy(mod('funding-carry'), bars.slice(0, 2000), { funding: (b) => ({ rate: -0.0004, nextFundingTime: (Math.floor((b.openTime + MIN) / H8) + 1) * H8 }) }).signals).toEqual([]);
  });
});

// ------------------------------------------------------------ regime filter

describe('regime filter on a built-in', () => {
  it('ema-cross with regime allow [trending]: a strict subset of the entries, each taken while trending', () => {
    const tf = '5m';
    const plain = run('ema-cross', { timeframe: tf });
    const config = { regime: { allow: ['trending'] } };
    const filtered = run('ema-cross', { timeframe: tf, config });
    const entries = (at: readonly At[]) => at.filter((a) => a.action === 'enterLong').map((a) => a.i);
    const all = entries(plain.at);
    const kept = entries(filtered.at);
    expect(kept.length, 'the filter removes some entries').toBeLessThan(all.length);
    expect(kept.length, 'and keeps some').toBeGreaterThan(0);
    expect(all, 'kept entries are entries of the unfiltered run').toEqual(expect.arrayContaining(kept));
    // The regime of each candle, recomputed with the same definition and defaults.
    const regimeCfg = strategyConfigSchema.parse(config).regime as RegimeConfig;
    const regime = new RegimeFilter(regimeCfg, f);
    const seen = plain.s.candles.map((c) => regime.update(c));
    for (const i of kept) expect(seen[i] === 'trending' || seen[i] === undefined, `kept entry at candle ${i}: ${seen[i]}`).toBe(true);
    for (const i of all.filter((i) => !kept.includes(i))) expect(['ranging', 'volatile'], `dropped entry at candle ${i}`).toContain(seen[i]);
    expect(kept.some((i) => seen[i] === 'trending'), 'some entries were judged trending').toBe(true);
    // Exits always pass: each kept entry is closed at the next death cross, as without the filter.
    expectConsistentPositions(filtered.at, 'ema-cross with regime');
    record(`ema-cross ${tf} (no filter)`, plain.at);
    record(`ema-cross ${tf} regime trending`, filtered.at);
  });
});

// ------------------------------------------------------------ reset

/** A bare context for driving an instance directly (no host): naive fills after each candle. */
function drive(module: StrategyModule, params: Record<string, unknown>, candles: readonly StrategyCandle[], passes: number): string[][] {
  let side: PositionView['side'] = 'flat';
  let now = 0;
  const out: string[][] = [];
  let pending: string[] = [];
  const emit = (action: SignalAction) => (o: SignalOptions) => pending.push(`${now} ${action} ${o.reason}`);
  const ctx: StrategyContext = {
    strategy: module.name,
    symbol: 'ALGOUSDT',
    market: 'futures',
    timeframe: candles[0]!.timeframe,
    position: () => ({ side, quantity: side === 'flat' ? 0 : 1, entryPrice: 0 }),
    candles: () => [],
    indicators: createIndicatorFactory(),
    now: () => now,
    enterLong: emit('enterLong'),
    exitLong: emit('exitLong'),
    enterShort: emit('enterShort'),
    exitShort: emit('exitShort'),
    markPrice: () => undefined,
    funding: () => ({ rate: 0.001, nextFundingTime: (Math.floor(now / H8) + 1) * H8 }),
  };
  const parsed = module.params.parse(params);
  const inst = module.create(ctx, parsed);
  for (let pass = 0; pass < passes; pass++) {
    if (pass > 0) inst.reset();
    side = 'flat';
    const signals: string[] = [];
    for (const c of candles) {
      now = c.closeTime + 1;
      inst.onCandle(c);
      for (const p of pending) {
        const action = p.split(' ')[1]!;
        side = action === 'enterLong' ? 'long' : action === 'enterShort' ? 'short' : 'flat';
      }
      signals.push(...pending);
      pending = [];
    }
    out.push(signals);
  }
  return out;
}

describe('warm-up', () => {
  it('warmup(params) is exact: driven from many starts on real data, the first signal is never earlier, and sometimes right there', () => {
    const cases: Array<[Name, Record<string, unknown>]> = [
      ['rsi', { allowShort: true }],
      ['grid', { lower: 0.23, upper: 0.3, levels: 300 }],
      ['macd', { allowShort: true }],
      ['ema-cross', { allowShort: true }],
      ['bollinger', { allowShort: true, minBandwidth: 0 }],
      ['volume-profile', { allowShort: true }],
      ['ensemble', { allowShort: true }],
    ];
    const m1 = series('1m').candles;
    for (const [name, params] of cases) {
      const m = mod(name);
      const warmup = m.warmup(m.params.parse(params));
      let earliest = Infinity;
      for (let start = 0; start < 300 * 97; start += 97) {
        const window = m1.slice(start, start + warmup + 5);
        const [signals] = drive(m, params, window, 1);
        const first = signals![0];
        if (first === undefined) continue;
        const now = Number(first.split(' ')[0]);
        earliest = Math.min(earliest, window.findIndex((c) => c.closeTime + 1 === now) + 1);
      }
      expect(earliest, `${name}: earliest signal on candle ${earliest}, warmup ${warmup}`).toBe(warmup);
    }
  });
});

describe('reset()', () => {
  it('forgets everything: after reset the same candles give the same signals', () => {
    const params: Record<Name, Record<string, unknown>> = {
      rsi: { allowShort: true },
      grid: { lower: 0.22, upper: 0.31, allowShort: true },
      macd: { allowShort: true },
      bollinger: { allowShort: true },
      'ema-cross': { allowShort: true },
      vwap: { allowShort: true, deviationPct: 0.3 },
      'volume-profile': { allowShort: true },
      ensemble: { allowShort: true },
      'funding-carry': {},
    };
    const s5 = series('5m').candles.slice(0, 3 * 288);
    for (const name of NAMES) {
      const candles = name === 'funding-carry' ? series('1m').candles.slice(0, 1440) : s5;
      const [first, second] = drive(mod(name), params[name], candles, 2);
      expect(first!.length, `${name} signals on the sample`).toBeGreaterThan(0);
      expect(second, `${name}: the pass after reset() equals the first`).toEqual(first);
    }
  });
});

describe('signal counts (report)', () => {
  it('prints the per-strategy counts on the real month', () => {
    for (const [k, v] of Object.entries(tally)) console.log(`${k.padEnd(34)} ${v}`);
    expect(Object.keys(tally).length).toBeGreaterThan(0);
  });
});
