/**
 * Restart never trades the past (issue 17): candles replayed from the store,
 * and candles the feed delivers that closed before the instance went live
 * (a resume backfill after a restart), update indicators only. Their signals
 * are dropped and logged as warm-up; a candle closing after the live moment
 * trades as before.
 *
 * Seen live before the fix: a position opened 20 s before a restart was
 * closed by an exitLong computed on a stored candle during the warm-up replay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { CandleClosed, Signal } from '../../src/model/events.ts';
import type { StrategyModule } from '../../src/strategy/api.ts';
import { StrategyHost } from '../../src/strategy/host.ts';
import type { Bar, IndicatorFactory } from '../../src/strategy/indicators/types.ts';
import { loadStrategyModules, type InstanceSpec } from '../../src/strategy/loader.ts';
import { moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';

let sd: StrategyDir | undefined;
afterEach(() => {
  sd?.cleanup();
  sd = undefined;
});

const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const bar = (i: number, close: number): Bar => ({ openTime: T0 + i * MIN, open: close, high: close + 0.5, low: close - 0.5, close, volume: 10 });
/** A closed 1m candle as the feed publishes it; `eventTs` as a REST backfill stamps it (its close time). */
const closed = (b: Bar, clock: TestClock, eventTs?: number): CandleClosed => ({ kind: 'candle.closed', ts: clock.now(), ...(eventTs !== undefined ? { eventTs } : {}), market: 'futures', symbol: 'ALGOUSDT', timeframe: '1m', ...b });

/** Enters on a new 3-candle high when flat; exits a long on a new 3-candle low. */
const SWING = moduleSource(`
export default defineStrategy({
  name: 'swing',
  description: 'Long on a new high, exit on a new low.',
  params: z.object({}),
  defaultTimeframe: '1m',
  warmup: () => 4,
  create(ctx) {
    return {
      onCandle(c) {
        const prev = ctx.candles(4).slice(0, -1);
        if (prev.length < 3) return;
        const side = ctx.position().side;
        if (side === 'flat' && c.close > Math.max(...prev.map((x) => x.high))) ctx.enterLong({ reason: 'new high' });
        if (side === 'long' && c.close < Math.min(...prev.map((x) => x.low))) ctx.exitLong({ reason: 'new low' });
      },
    };
  },
});`);

async function swing(): Promise<StrategyModule> {
  sd = strategyDir();
  sd.write('strategies/swing/index.ts', SWING);
  const { modules, issues } = await loadStrategyModules(sd.strategiesDir, ['swing'], sd.dir);
  expect(issues).toEqual([]);
  return modules.get('swing')!;
}

function spec(module: StrategyModule, over: Partial<InstanceSpec> = {}): InstanceSpec {
  return { strategy: 'swing', symbol: 'ALGOUSDT', market: 'futures', timeframe: '1m', params: {}, warmup: 4, module, config: { enabled: true, params: {}, risk: { maxOpenPositions: 1, cooldownMinutes: 0 }, order: { type: 'market' }, onDisable: 'keep' }, file: 'x.yaml', ...over };
}

/** A host restarted at `now` over `stored` 1m candles, holding a long opened just before the restart. */
function restarted(now: number, stored: Bar[]) {
  const clock = new TestClock(now);
  const bus = new Bus({ logger: createLogger({ level: 'silent', format: 'json' }).logger, clock });
  const signals: Signal[] = [];
  bus.on('signal.*', (s) => signals.push(s), 'test');
  const lines: Array<{ level: string; msg: string }> = [];
  const { logger } = createLogger({ level: 'info', format: 'json', stdout: { write: (l: string) => lines.push(JSON.parse(l) as { level: string; msg: string }) } });
  const host = new StrategyHost({
    bus,
    clock,
    logger,
    indicators: () => ({}) as IndicatorFactory,
    history: { recent1m: (_m, _s, before, count) => stored.filter((b) => b.openTime <= before).slice(-count) },
    initialPositions: () => [{ strategy: 'swing', symbol: 'ALGOUSDT', quantity: dec('100'), entryPrice: dec('100'), flat: false }],
  });
  const warmupLines = () => lines.filter((l) => l.level === 'info' && /warm-up/.test(l.msg)).map((l) => l.msg);
  return { host, bus, clock, signals, warmupLines };
}

describe('restart never trades the past', () => {
  it('an exit computed on the last stored candle during the warm-up replay is dropped and logged; the next live candle exits', async () => {
    const m = await swing();
    // Flat at 100, then the last stored candle (closed at 00:10) makes a new low. The bot restarts 20 s later.
    const stored = [...Array.from({ length: 9 }, (_, i) => bar(i, 100)), bar(9, 95)];
    const { host, bus, clock, signals, warmupLines } = restarted(T0 + 10 * MIN + 20_000, stored);
    host.start([spec(m)]);
    expect(signals, 'a signal from a stored candle never reaches the bus').toEqual([]);
    expect(host.status()[0], 'warm, and live from now on').toMatchObject({ state: 'ready', warm: '4/4', signals: 0 });
    expect(warmupLines().join('\n'), 'the dropped exit is logged as warm-up').toMatch(/1 signal .*dropped.*exitLong/);

    // The first candle that closes after the restart: its new low exits, stamped with that candle.
    clock.advanceTo(T0 + 11 * MIN);
    bus.publish('candle.closed', closed(bar(10, 90), clock));
    expect(signals.map((s) => [s.action, s.reason, s.candleTime]), 'a live candle trades').toEqual([['exitLong', 'new low', T0 + 10 * MIN]]);
  });

  it('candles the feed backfills after the restart that closed before the live moment do not trade either', async () => {
    const m = await swing();
    // The store ends at 00:08: the bot was down while 00:08 and 00:09 closed; it restarts at 00:10:20.
    const { host, bus, clock, signals, warmupLines } = restarted(T0 + 10 * MIN + 20_000, Array.from({ length: 8 }, (_, i) => bar(i, 100)));
    host.start([spec(m)]);
    expect(host.status()[0]!.state).toBe('ready');
    // The feed resumes from the store: the missed minutes come first, stamped with their close times.
    bus.publish('candle.closed', closed(bar(8, 100), clock, T0 + 9 * MIN - 1));
    bus.publish('candle.closed', closed(bar(9, 95), clock, T0 + 10 * MIN - 1));
    expect(signals, 'the 00:09 candle closed 20 s before the restart: its exit is not an order').toEqual([]);
    expect(warmupLines().filter((l) => /exitLong/.test(l)), 'one line per dropped signal, saying warm-up').toHaveLength(1);
    expect(host.status()[0]!.warm, 'the backfilled candles still fed the indicators').toBe('4/4');

    clock.advanceTo(T0 + 11 * MIN);
    bus.publish('candle.closed', closed(bar(10, 90), clock, T0 + 11 * MIN));
    expect(signals.map((s) => [s.action, s.candleTime])).toEqual([['exitLong', T0 + 10 * MIN]]);
  });

  it('on a larger timeframe, a 5m candle that closed before the live moment is warm-up; the next one trades', async () => {
    const m = await swing();
    // Five flat 5m candles stored (00:00..00:25); restart at 00:30:20; the feed then backfills 00:25..00:29.
    const { host, bus, clock, signals } = restarted(T0 + 30 * MIN + 20_000, Array.from({ length: 25 }, (_, i) => bar(i, 100)));
    host.start([spec(m, { timeframe: '5m' })]);
    for (let i = 25; i < 30; i++) bus.publish('candle.closed', closed(bar(i, i === 29 ? 95 : 100), clock, T0 + (i + 1) * MIN - 1));
    expect(signals, 'the 00:25 5m candle closed at 00:30, before the restart').toEqual([]);
    for (let i = 30; i < 35; i++) {
      clock.advanceTo(T0 + (i + 1) * MIN);
      bus.publish('candle.closed', closed(bar(i, i === 34 ? 90 : 95), clock, clock.now()));
    }
    expect(signals.map((s) => [s.action, s.timeframe, s.candleTime])).toEqual([['exitLong', '5m', T0 + 30 * MIN]]);
  });

  it('a replay of recorded candles (local exchange, FEED=replay) is live: the venue stamps each with the time it sent it', async () => {
    const m = await swing();
    const { host, bus, clock, signals } = restarted(T0 + 10 * MIN + 20_000, []);
    host.start([spec(m)]);
    expect(host.status()[0]!.state, 'no history: warming on live candles').toBe('warming');
    // Candles from a year ago, sent now: the venue's event time says when they became final for us.
    const ago = -365 * 1440;
    for (const [i, close] of [[0, 100], [1, 100], [2, 100], [3, 95]] as const) {
      clock.advanceBy(MIN);
      bus.publish('candle.closed', closed(bar(ago + i, close), clock, clock.now()));
    }
    expect(host.status()[0]!.state).toBe('ready');
    expect(signals.map((s) => s.action), 'the candle that completes the warm-up may signal, as before').toEqual(['exitLong']);
  });

  it('a backtest (host started on the test clock at `from`) drops the warm-up signal and trades from the first candle of the run', async () => {
    const m = await swing();
    const from = T0 + 10 * MIN;
    const { host, bus, clock, signals } = restarted(from, [...Array.from({ length: 9 }, (_, i) => bar(i, 100)), bar(9, 95)]);
    host.start([spec(m)]);
    expect(signals).toEqual([]);
    clock.advanceTo(from + MIN);
    bus.publish('candle.closed', { ...closed(bar(10, 90), clock), eventTs: from + MIN - 1 });
    expect(signals.map((s) => [s.action, s.candleTime])).toEqual([['exitLong', from]]);
  });

  it('onDisable: close still closes the position when the instance stops (not a candle signal)', async () => {
    const m = await swing();
    const { host, signals } = restarted(T0 + 10 * MIN + 20_000, Array.from({ length: 10 }, (_, i) => bar(i, 100)));
    const s = spec(m, { config: { ...spec(m).config, onDisable: 'close' } });
    host.start([s]);
    host.apply([]);
    expect(signals.map((x) => [x.action, x.reason, x.candleTime])).toEqual([['exitLong', 'strategy stopped (removed or disabled in its YAML); onDisable: close', undefined]]);
  });
});
