/**
 * ADX with +DI and -DI, as TA_ADX / TA_PLUS_DI / TA_MINUS_DI compute them
 * (no unstable period):
 *
 * - directional movement per bar from the previous bar: up = high - prevHigh,
 *   down = prevLow - low; -DM = down when down > 0 and down > up, else
 *   +DM = up when up > 0 and up > down (at most one of them is non-zero);
 * - bars 1..period-1: +DM, -DM and true range are summed;
 * - from bar `period` on, Wilder sums: s = s - s/period + x;
 *   DI = 100 * DM / TR (TA-Lib's PLUS_DI/MINUS_DI, which start at bar `period`);
 *   DX = 100 * |+DI - -DI| / (+DI + -DI);
 * - the first ADX is the average of the DX of bars period..2*period-1, so
 *   lookback = 2*period - 1; afterwards adx = (adx * (period - 1) + dx) / period.
 *
 * As in TA-Lib, a bar whose DI sum is (near) zero contributes no DX and leaves
 * the ADX unchanged; that test keeps TA-Lib's |sum| < 1e-14, which is
 * scale-free here (DIs are percentages).
 *
 * Deliberate differences:
 * - TA-Lib skips the DI/DX step when the smoothed true range is below 1e-14
 *   (TA_IS_ZERO), an absolute threshold in price units that a 1e-9-priced
 *   asset can reach; here only an exact 0 (no range at all) skips it, and the
 *   DIs then read 0, as PLUS_DI/MINUS_DI output.
 * - The DIs come with the ADX, so they are reported from bar 2*period-1, not
 *   from bar `period` as TA-Lib's separate PLUS_DI/MINUS_DI functions do. Their
 *   values are the same.
 *
 * The result object is new on every update (see macd.ts for why).
 */
import { checkBar, checkPeriod, trueRange } from './common.ts';
import type { AdxValue, Bar, Indicator } from './types.ts';

/** TA-Lib's TA_IS_ZERO, kept where the quantity is a percentage. */
const EPSILON = 1e-14;

export class Adx implements Indicator<Bar, AdxValue> {
  private count = 0;
  private prevHigh = 0;
  private prevLow = 0;
  private prevClose = 0;
  private plusDM = 0;
  private minusDM = 0;
  private tr = 0;
  private sumDX = 0;
  private adx = 0;
  private current: AdxValue | undefined;

  constructor(readonly period: number) {
    checkPeriod('ADX', 'period', period, 1);
  }

  get value(): AdxValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): AdxValue | undefined {
    checkBar('ADX', bar, false);
    const period = this.period;
    const high = bar.high;
    const low = bar.low;
    const n = this.count++;
    if (n === 0) {
      this.prevHigh = high;
      this.prevLow = low;
      this.prevClose = bar.close;
      return undefined;
    }
    const up = high - this.prevHigh;
    const down = this.prevLow - low;
    const tr = trueRange(high, low, this.prevClose);
    this.prevHigh = high;
    this.prevLow = low;
    this.prevClose = bar.close;

    if (n < period) {
      if (down > 0 && up < down) this.minusDM += down;
      else if (up > 0 && up > down) this.plusDM += up;
      this.tr += tr;
      return undefined;
    }

    this.minusDM -= this.minusDM / period;
    this.plusDM -= this.plusDM / period;
    if (down > 0 && up < down) this.minusDM += down;
    else if (up > 0 && up > down) this.plusDM += up;
    this.tr = this.tr - this.tr / period + tr;

    let plusDI = 0;
    let minusDI = 0;
    let dx: number | undefined;
    if (this.tr !== 0) {
      minusDI = 100 * (this.minusDM / this.tr);
      plusDI = 100 * (this.plusDM / this.tr);
      const sum = minusDI + plusDI;
      if (!(-EPSILON < sum && sum < EPSILON)) dx = 100 * (Math.abs(minusDI - plusDI) / sum);
    }

    if (n < 2 * period - 1) {
      if (dx !== undefined) this.sumDX += dx;
      return undefined;
    }
    if (n === 2 * period - 1) {
      if (dx !== undefined) this.sumDX += dx;
      this.adx = this.sumDX / period;
    } else if (dx !== undefined) {
      this.adx = (this.adx * (period - 1) + dx) / period;
    }
    return (this.current = { adx: this.adx, plusDI, minusDI });
  }

  reset(): void {
    this.count = 0;
    this.prevHigh = 0;
    this.prevLow = 0;
    this.prevClose = 0;
    this.plusDM = 0;
    this.minusDM = 0;
    this.tr = 0;
    this.sumDX = 0;
    this.adx = 0;
    this.current = undefined;
  }
}
