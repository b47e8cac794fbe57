/**
 * Average True Range with Wilder smoothing, as TA_ATR computes it:
 *
 * - true range needs the previous close, so the first bar yields none (TA-Lib
 *   skips it); TR_i = max(high-low, |prevClose-high|, |prevClose-low|);
 * - the first ATR is the plain average of the first `period` true ranges
 *   (bars 1..period), so lookback = period;
 * - afterwards atr = (atr * (period - 1) + tr) / period, in that order.
 *
 * Period 1 is TA-Lib's TRANGE, which the same arithmetic yields exactly.
 */
import { checkBar, checkPeriod, trueRange } from './common.ts';
import type { Bar, Indicator } from './types.ts';

export class Atr implements Indicator<Bar, number> {
  private count = 0;
  private prevClose = 0;
  private trTotal = 0;
  private current: number | undefined;

  constructor(readonly period: number) {
    checkPeriod('ATR', 'period', period, 1);
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): number | undefined {
    checkBar('ATR', bar, false);
    const period = this.period;
    const prevClose = this.prevClose;
    this.prevClose = bar.close;
    if (this.count === 0) {
      this.count = 1;
      return undefined;
    }
    const tr = trueRange(bar.high, bar.low, prevClose);
    if (this.current === undefined) {
      this.trTotal += tr;
      if (this.count++ < period) return undefined;
      return (this.current = this.trTotal / period);
    }
    let atr = this.current * (period - 1);
    atr += tr;
    return (this.current = atr / period);
  }

  reset(): void {
    this.count = 0;
    this.prevClose = 0;
    this.trTotal = 0;
    this.current = undefined;
  }
}
