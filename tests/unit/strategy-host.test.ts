import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { formatConfigIssue } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { CandleClosed, Signal } from '../../src/model/events.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import type { StrategyModule } from '../../src/strategy/api.ts';
import { StrategyHost, type RiskEventRecord } from '../../src/strategy/host.ts';
import type { Bar, IndicatorFactory } from '../../src/strategy/indicators/types.ts';
import { loadStrategyModules, parseParamOverrides, resolveInstances, type InstanceSpec } from '../../src/strategy/loader.ts';
import { CandleAggregator } from '../../src/strategy/timeframes.ts';
import { BREAKOUT, moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';

let sd: StrategyDir | undefined;
afterEach(() => {
  sd?.cleanup();
  sd = undefined;
});

const T0 = Date.UTC(2024, 0, 1);
const bar = (i: number, close: number, extra: Partial<Bar> = {}): Bar => ({ openTime: T0 + i * 60_000, open: close, high: close + 0.5, low: close - 0.5, close, volume: 10, ...extra });
const closed = (b: Bar, symbol = 'BTCUSDT'): CandleClosed => ({ kind: 'candle.closed', ts: b.openTime + 60_000, market: 'spot', symbol, timeframe: '1m', ...b });

describe('timeframe aggregation on UTC boundaries', () => {
  it('builds 5m candles: open of the first minute, extremes, close of the last, summed volume', () => {
    const agg = new CandleAggregator('BTCUSDT', '5m');
    const out = [];
    for (let i = 0; i < 10; i++) out.push(...agg.push(bar(i, 100 + i)));
    expect(out.map((c) => [c.openTime - T0, c.closeTime - T0, c.open, c.high, c.low, c.close, c.volume])).toEqual([
      [0, 299_999, 100, 104.5, 99.5, 104, 50],
      [300_000, 599_999, 105, 109.5, 104.5, 109, 50],
    ]);
  });

  it('a gap closes the open bucket when a later one starts; nothing is invented; duplicates are ignored', () => {
    const agg = new CandleAggregator('BTCUSDT', '1h');
    const out = [];
    for (const i of [0, 1, 2, 1, 2]) out.push(...agg.push(bar(i, 100 + i)));
    expect(out).toEqual([]);
    // The exchange was down from minute 3 to 1:30; the next candle is in the next hour.
    out.push(...agg.push(bar(90, 200)));
    expect(out.map((c) => [c.openTime - T0, c.open, c.close, c.volume])).toEqual([[0, 100, 102, 30]]);
  });

  it('1d candles open at 00:00 UTC', () => {
    const agg = new CandleAggregator('BTCUSDT', '1d');
    const out = [];
    for (let i = 1380; i < 1440 + 5; i++) out.push(...agg.push(bar(i, 1)));
    expect(out.map((c) => new Date(c.openTime).toISOString())).toEqual(['2024-01-01T00:00:00.000Z']);
  });
});

function host(opts: { history?: Bar[] } = {}) {
  const clock = new TestClock(T0 + 10 * 60_000);
  const bus = new Bus({ logger: silentLogger(), clock });
  const signals: Signal[] = [];
  bus.on('signal.*', (s) => signals.push(s), 'test');
  const risk: RiskEventRecord[] = [];
  const h = new StrategyHost({
    bus,
    clock,
    logger: silentLogger(),
    indicators: () => ({}) as IndicatorFactory,
    ...(opts.history ? { history: { recent1m: (_m, _s, before, count) => opts.history!.filter((b) => b.openTime <= before).slice(-count) } } : {}),
    recordRiskEvent: (e) => risk.push(e),
  });
  return { h, bus, clock, signals, risk };
}

function spec(module: StrategyModule, over: Partial<InstanceSpec> = {}): InstanceSpec {
  const params = module.params.parse({}) as Record<string, unknown>;
  return { strategy: module.name, symbol: 'BTCUSDT', market: 'spot', timeframe: module.defaultTimeframe, params, warmup: module.warmup(params), module, config: { enabled: true, params: {}, risk: { maxOpenPositions: 1, cooldownMinutes: 0 }, order: { type: 'market' }, onDisable: 'keep' }, file: 'x.yaml', ...over };
}

async function load(name: string, source: string): Promise<StrategyModule> {
  sd ??= strategyDir();
  sd.write(`strategies/${name}/index.ts`, source);
  const { modules, issues } = await loadStrategyModules(sd.strategiesDir, [name], sd.dir);
  expect(issues.map(formatConfigIssue)).toEqual([]);
  return modules.get(name)!;
}

describe('strategy host', () => {
  it('loads a TypeScript strategy from its folder with no build step, warms it from stored candles, then signals', async () => {
    const breakout = await load('breakout', BREAKOUT);
    // Stored history: flat at 100 for 10 minutes.
    const { h, bus, signals } = host({ history: Array.from({ length: 10 }, (_, i) => bar(i, 100)) });
    h.start([spec(breakout)]);
    expect(h.status()).toEqual([{ strategy: 'breakout', symbol: 'BTCUSDT', timeframe: '1m', state: 'ready', warm: '4/4', signals: 0 }]);
    bus.publish('candle.closed', closed(bar(10, 101)));
    expect(signals.map((s) => [s.kind, s.strategy, s.symbol, s.action, s.reason, s.stopLoss?.toFixed()])).toEqual([['signal', 'breakout', 'BTCUSDT', 'enterLong', 'new high', '100.5']]);
  });

  it('an instance that is not warm emits nothing', async () => {
    const breakout = await load('breakout', BREAKOUT);
    const { h, bus, clock, signals } = host();
    h.start([spec(breakout)]);
    expect(h.status()[0]!.state).toBe('warming');
    // No stored candles: it warms on live ones (closing after the start, at T0 + 10 min).
    const live = (i: number, c: number) => {
      clock.advanceTo(T0 + (i + 1) * 60_000);
      bus.publish('candle.closed', closed(bar(i, c)));
    };
    // The 4th candle makes a new high but completes the warm-up only now: 3 candles were not enough to signal.
    for (const [i, c] of [[10, 100], [11, 100], [12, 105]] as const) live(i, c);
    expect(signals).toEqual([]);
    expect(h.status()[0]!.warm).toBe('3/4');
    live(13, 110);
    expect(h.status()[0]!.state).toBe('ready');
    expect(signals).toHaveLength(1);
  });

  it('an exception disables only that instance: logged, recorded as a risk event, shown in status', async () => {
    const breakout = await load('breakout', BREAKOUT);
    const bomb = await load('bomb', moduleSource(`
export default defineStrategy({
  name: 'bomb', description: 'throws on its third candle', params: z.object({}), defaultTimeframe: '1m', warmup: () => 0,
  create(ctx) { let n = 0; return { onCandle() { if (++n === 3) throw new Error('division by zero in my logic'); ctx.enterLong({ reason: 'tick ' + n }); }, reset() {} }; },
});`));
    const { h, bus, signals, risk } = host({ history: Array.from({ length: 10 }, (_, i) => bar(i, 100)) });
    h.start([spec(bomb), spec(breakout, { symbol: 'BTCUSDT' })]);
    for (let i = 10; i < 15; i++) bus.publish('candle.closed', closed(bar(i, 100 + i)));
    const st = h.status();
    expect(st.find((s) => s.strategy === 'bomb')).toMatchObject({ state: 'disabled', detail: 'threw: division by zero in my logic', signals: 2 });
    expect(st.find((s) => s.strategy === 'breakout')).toMatchObject({ state: 'ready', signals: 5 });
    expect(signals.filter((s) => s.strategy === 'bomb')).toHaveLength(2);
    expect(risk).toMatchObject([{ scope: 'strategy', key: 'bomb:BTCUSDT', kind: 'STRATEGY_DISABLED', reason: 'division by zero in my logic' }]);
    expect(String(risk[0]!.details.stack)).toContain('division by zero');
    expect(bus.stats().faults, 'the bus never saw it').toBe(0);
  });

  it('while the symbol\'s feed is stale, entries wait and exits still go out', async () => {
    const breakout = await load('breakout', BREAKOUT);
    const { h, bus, signals } = host({ history: Array.from({ length: 10 }, (_, i) => bar(i, 100)) });
    h.start([spec(breakout)]);
    bus.publish('feed.status', { kind: 'feed.status', ts: 1, status: 'stale', connection: 'futures-1', symbols: ['BTCUSDT'] });
    bus.publish('candle.closed', closed(bar(10, 105)));
    expect(signals).toEqual([]);
    expect(h.status()[0]!.detail).toBe('market data stale: entries wait (1 held back)');
    bus.publish('position.changed', { kind: 'position.changed', ts: 1, market: 'spot', symbol: 'BTCUSDT', strategy: 'breakout', positionSide: 'BOTH', quantity: dec('1'), flat: false, entryPrice: dec('100'), realizedPnl: dec('0'), netQuantity: dec('1') });
    bus.publish('candle.closed', closed(bar(11, 90)));
    expect(signals.map((s) => s.action), 'an exit is never held back').toEqual(['exitLong']);
    bus.publish('feed.status', { kind: 'feed.status', ts: 2, status: 'live', connection: 'futures-1', symbols: ['BTCUSDT'] });
    bus.publish('position.changed', { kind: 'position.changed', ts: 1, market: 'spot', symbol: 'BTCUSDT', strategy: 'breakout', positionSide: 'BOTH', quantity: dec('0'), flat: true, entryPrice: dec('0'), realizedPnl: dec('0'), netQuantity: dec('0') });
    bus.publish('candle.closed', closed(bar(12, 120)));
    expect(signals.map((s) => s.action)).toEqual(['exitLong', 'enterLong']);
  });

  it('a malformed signal (strength 2) is a strategy bug: the instance is disabled', async () => {
    const bad = await load('bad', moduleSource(`
export default defineStrategy({ name: 'bad', description: 'x', params: z.object({}), defaultTimeframe: '1m', warmup: () => 0,
  create(ctx) { return { onCandle() { ctx.enterLong({ reason: 'sure', strength: 2 }); }, reset() {} }; } });`));
    const { h, bus, signals } = host();
    h.start([spec(bad)]);
    bus.publish('candle.closed', closed(bar(0, 1)));
    expect(signals).toEqual([]);
    expect(h.status()[0]).toMatchObject({ state: 'disabled', detail: 'threw: enterLong: strength must be within 0..1, got 2' });
  });

  it('apply(): a changed spec is rebuilt and re-warmed, a removed one stops (closing its position when onDisable: close)', async () => {
    const breakout = await load('breakout', BREAKOUT);
    const { h, bus, signals } = host({ history: Array.from({ length: 10 }, (_, i) => bar(i, 100)) });
    const s1 = spec(breakout);
    h.start([s1]);
    expect(h.apply([s1])).toEqual({ added: [], rebuilt: [], removed: [] });
    const s2 = spec(breakout, { params: { lookback: 5 }, warmup: 6 });
    expect(h.apply([s2])).toEqual({ added: [], rebuilt: ['breakout:BTCUSDT'], removed: [] });
    expect(h.status()[0]).toMatchObject({ state: 'ready', warm: '6/6' });
    bus.publish('position.changed', { kind: 'position.changed', ts: 1, market: 'spot', symbol: 'BTCUSDT', strategy: 'breakout', positionSide: 'BOTH', quantity: dec('0.5'), flat: false, entryPrice: dec('100'), realizedPnl: dec('0'), netQuantity: dec('0.5') });
    const closing = spec(breakout, { params: { lookback: 5 }, warmup: 6, config: { ...s2.config, onDisable: 'close' } });
    h.apply([closing]);
    expect(h.apply([])).toEqual({ added: [], rebuilt: [], removed: ['breakout:BTCUSDT'] });
    expect(signals.map((s) => [s.action, s.reason])).toEqual([['exitLong', 'strategy stopped (removed or disabled in its YAML); onDisable: close']]);
    expect(h.status()).toEqual([]);
  });
});

describe('strategy loader', () => {
  it('parameter errors name the YAML file, line, field, expected and found', async () => {
    sd = strategyDir();
    sd.write('strategies/rsi/index.ts', moduleSource(`
export default defineStrategy({ name: 'rsi', description: 'x', defaultTimeframe: '1m',
  params: z.strictObject({ period: z.number().int().min(2).default(14), oversold: z.number().min(0).max(100).default(30) }),
  warmup: (p) => p.period + 1, create() { return { onCandle() {}, reset() {} }; } });`));
    sd.write('strategies/rsi/BTCUSDT.yaml', 'enabled: true\nparams:\n  period: "fourteen"\n  ovrsold: 20\n');
    sd.write('config/bot.yaml', 'market: spot\n');
    const settings = loadSettings({ cwd: sd.dir, env: {}, envFile: false });
    const { modules, issues: loadIssues } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, sd.dir);
    expect(loadIssues).toEqual([]);
    const { specs, issues } = resolveInstances(settings, settings.strategies, modules);
    expect(specs).toEqual([]);
    expect(issues.map(formatConfigIssue)).toEqual([
      'strategies/rsi/BTCUSDT.yaml:3 params.period: expected integer >= 2, got "fourteen"',
      'strategies/rsi/BTCUSDT.yaml:4 params.ovrsold: unknown key, did you mean "oversold"? (allowed here: period, oversold)',
    ]);
    // CLI --param overrides are validated the same way.
    const o = parseParamOverrides(['rsi.period=10', 'oversold=25', 'bogus'], ['rsi']);
    expect(o.issues.map(formatConfigIssue)).toEqual(['command line --param: expected key=value or strategy.key=value, got "bogus"']);
    sd.write('strategies/rsi/BTCUSDT.yaml', 'params:\n  period: 7\n');
    const fixed = loadSettings({ cwd: sd.dir, env: {}, envFile: false });
    const r = resolveInstances(fixed, fixed.strategies, modules, o.overrides);
    expect(r.issues).toEqual([]);
    expect(r.specs[0]).toMatchObject({ strategy: 'rsi', params: { period: 10, oversold: 25 }, warmup: 11, timeframe: '1m' });
  });

  it('a strategies folder outside an ES module package gets a clear error, not a loader crash', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'trader-cjs-'));
    try {
      mkdirSync(join(dir, 'strategies', 'x'), { recursive: true });
      writeFileSync(join(dir, 'strategies', 'x', 'index.ts'), 'export default {};');
      const { issues } = await loadStrategyModules(join(dir, 'strategies'), ['x'], dir);
      expect(issues.map(formatConfigIssue)).toEqual(['strategies: strategies must live inside an ES module package: put a package.json containing {"type": "module"} in this folder or a parent']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a module that does not load, or has the wrong shape, is an error naming its file', async () => {
    sd = strategyDir();
    sd.write('strategies/broken/index.ts', 'export default {{{ not typescript');
    sd.write('strategies/shapeless/index.ts', 'export default { name: "shapeless" };');
    sd.write('strategies/misnamed/index.ts', moduleSource(`export default defineStrategy({ name: 'other', description: 'x', params: z.object({}), defaultTimeframe: '1m', warmup: () => 0, create() { return { onCandle() {}, reset() {} }; } });`));
    const { modules, issues } = await loadStrategyModules(sd.strategiesDir, ['broken', 'shapeless', 'misnamed'], sd.dir);
    expect(modules.size).toBe(0);
    const text = issues.map(formatConfigIssue);
    expect(text[0]).toMatch(/^strategies\/broken\/index\.ts: cannot load strategy: /);
    expect(text[1]).toBe('strategies/shapeless/index.ts: description (string) is missing');
    expect(text[2]).toBe('strategies/misnamed/index.ts: name must equal its folder name "misnamed", got "other"');
  });
});
