/**
 * The strategy plugin API. A strategy is a folder strategies/<name>/ with an
 * index.ts whose default export is `defineStrategy({...})`, plus one
 * <SYMBOL>.yaml per symbol it trades. Adding a folder adds a strategy: no
 * build step, no edit in src/.
 *
 * Strategies decide; they never act. They see closed candles of the
 * timeframe they asked for, a read-only view of their position, indicators
 * and the clock, and they emit signals. They never place orders, see keys,
 * do I/O, or read the wall clock (the host's clock is the only time).
 */
import type { z } from 'zod';
import type { Market, Timeframe } from '../model/market.ts';
import type { Bar, IndicatorFactory } from './indicators/types.ts';

export type { Bar, IndicatorFactory } from './indicators/types.ts';
export type { Timeframe } from '../model/market.ts';

/** A closed candle of the instance's timeframe. Prices are plain numbers (indicator math). */
export interface StrategyCandle extends Bar {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  /** openTime + timeframe - 1 ms */
  readonly closeTime: number;
}

/**
 * The instance's position on its symbol, read-only. Quantities and prices
 * are numbers here for the strategy's arithmetic; the portfolio keeps the
 * exact Decimal values.
 */
export interface PositionView {
  readonly side: 'long' | 'short' | 'flat';
  readonly quantity: number;
  readonly entryPrice: number;
}

export interface FillView {
  readonly side: 'BUY' | 'SELL';
  readonly price: number;
  readonly quantity: number;
  readonly time: number;
}

export interface SignalOptions {
  /** Why, in a few words: it goes to the journal and the log. */
  readonly reason: string;
  /** Conviction 0..1 (sizing may scale with it). */
  readonly strength?: number;
  /** Protective prices (absolute); trailing: a trailing stop's distance in percent of price (USD-M callbackRate 0.1..5, step 0.1; spot: emulated from the mark), overriding the YAML's risk.trailingPct. */
  readonly stopLoss?: number;
  readonly takeProfit?: number;
  readonly trailing?: number;
  /**
   * This signal is one sizing unit (a grid level): an entry adds one unit even
   * while a position is open, an exit closes one unit. Without it an entry
   * opens a position (nothing while one is open) and an exit closes all of it.
   */
  readonly unit?: boolean;
}

export interface StrategyContext {
  readonly strategy: string;
  readonly symbol: string;
  readonly market: Market;
  readonly timeframe: Timeframe;
  /** The position now (read-only). */
  position(): PositionView;
  /** The most recent closed candles of this timeframe, oldest first (at most `limit`, default all kept). */
  candles(limit?: number): readonly StrategyCandle[];
  readonly indicators: IndicatorFactory;
  /** The host's clock: candle time in backtests, wall time live. */
  now(): number;
  enterLong(o: SignalOptions): void;
  exitLong(o: SignalOptions): void;
  enterShort(o: SignalOptions): void;
  exitShort(o: SignalOptions): void;
  /** Mark price for futures symbols (undefined until one arrives). */
  markPrice(): number | undefined;
  /** Futures funding: the current rate and the next funding time (undefined until a mark update carries them). */
  funding(): { readonly rate: number; readonly nextFundingTime: number } | undefined;
}

export interface StrategyInstance {
  onCandle(candle: StrategyCandle): void;
  onMarkPrice?(price: number, time: number): void;
  onFill?(fill: FillView): void;
  onPositionChanged?(position: PositionView): void;
  /** Forget all state (the host calls it before re-warming). */
  reset(): void;
}

export interface StrategyModule<P extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly description: string;
  /** Parameters with defaults and .describe() texts; YAML params are checked against it. */
  readonly params: P;
  /** The timeframe used when the YAML does not name one. */
  readonly defaultTimeframe: Timeframe;
  /** Markets it can trade (default both). */
  readonly markets?: readonly Market[];
  /** Closed candles of its timeframe it needs before it may signal. */
  warmup(params: z.output<P>): number;
  create(ctx: StrategyContext, params: z.output<P>): StrategyInstance;
}

/** Identity function that gives a strategy module its types. */
export function defineStrategy<P extends z.ZodType>(m: StrategyModule<P>): StrategyModule<P> {
  return m;
}

/**
 * Turns the position toward `target` on a signal: leaves the opposite side
 * first, then enters `target` when flat. Entering short happens only with
 * allowShort; entering long always. The usual reversal of crossover rules.
 */
export function turnTo(ctx: StrategyContext, target: 'long' | 'short', o: SignalOptions, opts: { allowShort: boolean }): void {
  let side = ctx.position().side;
  if (target === 'long') {
    if (side === 'short') {
      ctx.exitShort(o);
      side = 'flat';
    }
    if (side === 'flat') ctx.enterLong(o);
  } else {
    if (side === 'long') {
      ctx.exitLong(o);
      side = 'flat';
    }
    if (side === 'flat' && opts.allowShort) ctx.enterShort(o);
  }
}
