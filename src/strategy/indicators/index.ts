/**
 * The indicator library: incremental, O(1) (amortized for rolling extremes,
 * O(period + bins) for the volume profile) per update, TA-Lib's definitions
 * and seeding. Each file's header states its definition and any deliberate
 * difference from TA-Lib; tests/unit/indicators.test.ts compares them with
 * TA-Lib on real candles.
 */
import { Adx } from './adx.ts';
import { Atr } from './atr.ts';
import { Bollinger } from './bollinger.ts';
import { Donchian } from './donchian.ts';
import { Macd } from './macd.ts';
import { Ema, Sma, Wma } from './moving-averages.ts';
import { Obv } from './obv.ts';
import { Rsi } from './rsi.ts';
import { StdDev } from './std-dev.ts';
import { Stochastic } from './stochastic.ts';
import type { IndicatorFactory } from './types.ts';
import { VolumeProfile } from './volume-profile.ts';
import { Vwap } from './vwap.ts';

export { Adx, Atr, Bollinger, Donchian, Ema, Macd, Obv, Rsi, Sma, StdDev, Stochastic, VolumeProfile, Vwap, Wma };
export { RollingExtreme } from './rolling-extreme.ts';
export type * from './types.ts';

/** A factory over the classes above; it holds no state, so one may be shared. */
export function createIndicatorFactory(): IndicatorFactory {
  return {
    sma: (period) => new Sma(period),
    ema: (period) => new Ema(period),
    wma: (period) => new Wma(period),
    rsi: (period) => new Rsi(period),
    macd: (fast, slow, signal) => new Macd(fast, slow, signal),
    bollinger: (period, stdDevs) => new Bollinger(period, stdDevs),
    stdDev: (period) => new StdDev(period),
    atr: (period) => new Atr(period),
    adx: (period) => new Adx(period),
    stochastic: (kPeriod, kSlowing, dPeriod) => new Stochastic(kPeriod, kSlowing, dPeriod),
    vwap: () => new Vwap(),
    obv: () => new Obv(),
    donchian: (period) => new Donchian(period),
    volumeProfile: (period, bins, valueAreaPct) => new VolumeProfile(period, bins, valueAreaPct),
  };
}
