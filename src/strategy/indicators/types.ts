/**
 * Incremental indicators: O(1) work per update, plain numbers (statistics,
 * not money). Each agrees with TA-Lib's definition, seeding included; the
 * tests compare them with TA-Lib on real data.
 */

/** One bar, as indicators that need more than the close see it. */
export interface Bar {
  readonly openTime: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

export interface Indicator<In, Out> {
  /** Feeds one input; returns the new value, or undefined while warming up. */
  update(input: In): Out | undefined;
  /** The latest value (undefined while warming up). */
  readonly value: Out | undefined;
  /** True once the indicator has produced a value. */
  readonly ready: boolean;
  /** Forgets everything, as if new. */
  reset(): void;
}

export interface MacdValue {
  readonly macd: number;
  readonly signal: number;
  readonly histogram: number;
}

export interface BollingerValue {
  readonly upper: number;
  readonly middle: number;
  readonly lower: number;
  /** (upper - lower) / middle */
  readonly bandwidth: number;
  /** (close - lower) / (upper - lower) */
  readonly percentB: number;
}

export interface StochasticValue {
  readonly k: number;
  readonly d: number;
}

export interface AdxValue {
  readonly adx: number;
  readonly plusDI: number;
  readonly minusDI: number;
}

export interface DonchianValue {
  readonly upper: number;
  readonly lower: number;
  readonly middle: number;
}

export interface VolumeProfileValue {
  /** Price level (bin centre) with the most volume. */
  readonly poc: number;
  readonly valueAreaHigh: number;
  readonly valueAreaLow: number;
}

/** What a strategy's context offers to build indicators (each call makes a new one). */
export interface IndicatorFactory {
  sma(period: number): Indicator<number, number>;
  ema(period: number): Indicator<number, number>;
  wma(period: number): Indicator<number, number>;
  rsi(period: number): Indicator<number, number>;
  macd(fast: number, slow: number, signal: number): Indicator<number, MacdValue>;
  bollinger(period: number, stdDevs: number): Indicator<number, BollingerValue>;
  stdDev(period: number): Indicator<number, number>;
  atr(period: number): Indicator<Bar, number>;
  adx(period: number): Indicator<Bar, AdxValue>;
  stochastic(kPeriod: number, kSlowing: number, dPeriod: number): Indicator<Bar, StochasticValue>;
  /** Volume-weighted average price, reset at 00:00 UTC each day. */
  vwap(): Indicator<Bar, number>;
  obv(): Indicator<Bar, number>;
  donchian(period: number): Indicator<Bar, DonchianValue>;
  /** Rolling volume profile over `period` bars, `bins` price bins, value area `valueAreaPct` (e.g. 0.7). */
  volumeProfile(period: number, bins: number, valueAreaPct: number): Indicator<Bar, VolumeProfileValue>;
}
