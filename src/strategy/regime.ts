/**
 * The market-regime filter a strategy can opt into from YAML:
 *
 *   regime:
 *     allow: [trending]          # entries only in these regimes; exits always pass
 *
 * Each closed candle of the instance's timeframe is classified:
 *  - volatile: ATR is at or above its `volatilePercentile` over the last `atrLookback` candles;
 *  - trending: otherwise, ADX >= `adxTrend`;
 *  - ranging:  otherwise.
 * Until the indicators are warm the regime is unknown and entries pass.
 */
import type { Bar, Indicator, IndicatorFactory, AdxValue } from './indicators/types.ts';

export type Regime = 'trending' | 'ranging' | 'volatile';

export interface RegimeConfig {
  readonly allow: readonly Regime[];
  readonly adxPeriod: number;
  readonly adxTrend: number;
  readonly atrPeriod: number;
  readonly atrLookback: number;
  readonly volatilePercentile: number;
}

export class RegimeFilter {
  private readonly adx: Indicator<Bar, AdxValue>;
  private readonly atr: Indicator<Bar, number>;
  private readonly atrHistory: Float64Array;
  private atrCount = 0;
  private atrHead = 0;
  current: Regime | undefined;

  constructor(
    private readonly cfg: RegimeConfig,
    indicators: IndicatorFactory,
  ) {
    this.adx = indicators.adx(cfg.adxPeriod);
    this.atr = indicators.atr(cfg.atrPeriod);
    this.atrHistory = new Float64Array(cfg.atrLookback);
  }

  update(bar: Bar): Regime | undefined {
    const adx = this.adx.update(bar);
    const atr = this.atr.update(bar);
    if (atr !== undefined) {
      this.atrHistory[this.atrHead] = atr;
      this.atrHead = (this.atrHead + 1) % this.atrHistory.length;
      this.atrCount = Math.min(this.atrCount + 1, this.atrHistory.length);
    }
    if (adx === undefined || atr === undefined || this.atrCount < this.atrHistory.length) return (this.current = undefined);
    // Percentile rank of the current ATR within the lookback window (O(lookback)).
    let below = 0;
    for (let i = 0; i < this.atrCount; i++) if (this.atrHistory[i]! < atr) below++;
    const rank = (below / this.atrCount) * 100;
    this.current = rank >= this.cfg.volatilePercentile ? 'volatile' : adx.adx >= this.cfg.adxTrend ? 'trending' : 'ranging';
    return this.current;
  }

  /** Whether a new entry may be taken now. */
  allowsEntry(): boolean {
    return this.current === undefined || this.cfg.allow.includes(this.current);
  }

  reset(): void {
    this.adx.reset();
    this.atr.reset();
    this.atrCount = 0;
    this.atrHead = 0;
    this.current = undefined;
  }
}
