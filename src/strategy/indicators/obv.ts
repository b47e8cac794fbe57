/**
 * On-Balance Volume, with TA_OBV's convention for the start: the first bar's
 * OBV is that bar's volume (not 0), and OBV is defined from the first bar on
 * (lookback 0). Afterwards the bar's volume is added when the close rose,
 * subtracted when it fell, and nothing happens when it is unchanged.
 */
import { checkBar } from './common.ts';
import type { Bar, Indicator } from './types.ts';

export class Obv implements Indicator<Bar, number> {
  private prevClose = 0;
  private current: number | undefined;

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): number | undefined {
    checkBar('OBV', bar, true);
    const close = bar.close;
    let obv = this.current;
    if (obv === undefined) obv = bar.volume;
    else if (close > this.prevClose) obv += bar.volume;
    else if (close < this.prevClose) obv -= bar.volume;
    this.prevClose = close;
    return (this.current = obv);
  }

  reset(): void {
    this.prevClose = 0;
    this.current = undefined;
  }
}
