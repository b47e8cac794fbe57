/**
 * Donchian channel over the last `period` bars: upper = highest high (TA_MAX
 * of the highs), lower = lowest low (TA_MIN of the lows), middle = (upper +
 * lower) / 2 (TA_MIDPRICE). Lookback period-1. Monotonic deques keep each
 * update amortized O(1) whatever the period.
 *
 * The result object is new on every update (see macd.ts for why).
 */
import { checkBar, checkPeriod } from './common.ts';
import { RollingExtreme } from './rolling-extreme.ts';
import type { Bar, DonchianValue, Indicator } from './types.ts';

export class Donchian implements Indicator<Bar, DonchianValue> {
  private readonly highest: RollingExtreme;
  private readonly lowest: RollingExtreme;
  private count = 0;
  private current: DonchianValue | undefined;

  constructor(readonly period: number) {
    checkPeriod('Donchian', 'period', period, 1);
    this.highest = new RollingExtreme(period, true);
    this.lowest = new RollingExtreme(period, false);
  }

  get value(): DonchianValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): DonchianValue | undefined {
    checkBar('Donchian', bar, false);
    const upper = this.highest.push(bar.high);
    const lower = this.lowest.push(bar.low);
    if (this.count < this.period && ++this.count < this.period) return undefined;
    return (this.current = { upper, lower, middle: (upper + lower) / 2 });
  }

  reset(): void {
    this.highest.reset();
    this.lowest.reset();
    this.count = 0;
    this.current = undefined;
  }
}
