/**
 * Runs one strategy through the real host over a series of 1m candles, with
 * a naive position model (a signal fills at that candle's close), and
 * returns its signals. For the built-in strategies' tests on real data.
 */
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { Signal } from '../../src/model/events.ts';
import type { Market, Timeframe } from '../../src/model/market.ts';
import { strategyConfigSchema, type StrategyConfig } from '../../src/settings/strategy-config.ts';
import type { StrategyModule } from '../../src/strategy/api.ts';
import { StrategyHost, type InstanceStatus } from '../../src/strategy/host.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import type { Bar } from '../../src/strategy/indicators/types.ts';

export interface RunOptions {
  symbol?: string;
  market?: Market;
  timeframe?: Timeframe;
  params?: Record<string, unknown>;
  /** Extra YAML config (e.g. { regime: {...} }). */
  config?: Record<string, unknown>;
  /** Mark/funding updates to publish before a candle: openTime -> { mark, rate, nextFundingTime }. */
  funding?: (bar: Bar) => { rate: number; nextFundingTime: number } | undefined;
}

export interface RunResult {
  signals: Array<Signal & { close: number; openTime: number }>;
  status: InstanceStatus;
}

export function runStrategy(module: StrategyModule, bars: readonly Bar[], o: RunOptions = {}): RunResult {
  const symbol = o.symbol ?? 'ALGOUSDT';
  const market = o.market ?? 'futures';
  const clock = new TestClock(bars[0]?.openTime ?? 0);
  const bus = new Bus({ logger: silentLogger(), clock });
  const host = new StrategyHost({ bus, clock, logger: silentLogger(), indicators: createIndicatorFactory });
  const params = module.params.parse(o.params ?? {}) as Record<string, unknown>;
  const config: StrategyConfig = strategyConfigSchema.parse({ params: o.params ?? {}, ...(o.config ?? {}) });
  let position = 0;
  let current: Bar | undefined;
  const signals: RunResult['signals'] = [];
  bus.on('signal.*', (s) => {
    signals.push({ ...s, close: current!.close, openTime: current!.openTime });
    // Naive fills: one unit at the close; exits flatten.
    const before = position;
    if (s.action === 'enterLong') position = Math.max(position, 0) + 1;
    else if (s.action === 'enterShort') position = Math.min(position, 0) - 1;
    else if (s.action === 'exitLong' && position > 0) position = 0;
    else if (s.action === 'exitShort' && position < 0) position = 0;
    if (position !== before) bus.publish('position.changed', { kind: 'position.changed', ts: clock.now(), market, symbol, strategy: module.name, positionSide: 'BOTH', quantity: new Dec(position), flat: position === 0, entryPrice: new Dec(current!.close), realizedPnl: new Dec(0), netQuantity: new Dec(position) });
  }, 'harness');
  host.start([{ strategy: module.name, symbol, market, timeframe: o.timeframe ?? module.defaultTimeframe, params, warmup: module.warmup(params), module, config, file: 'test.yaml' }]);
  for (const b of bars) {
    current = b;
    clock.advanceTo(Math.max(clock.now(), b.openTime + 60_000));
    const f = o.funding?.(b);
    if (f) bus.publish('mark.price', { kind: 'mark.price', ts: clock.now(), symbol, markPrice: new Dec(b.close), fundingRate: new Dec(f.rate), nextFundingTime: f.nextFundingTime });
    bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market, symbol, timeframe: '1m', ...b });
  }
  host.stop();
  return { signals, status: host.status()[0]! };
}
