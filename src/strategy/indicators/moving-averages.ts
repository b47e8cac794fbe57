/**
 * SMA, EMA and WMA, each in TA-Lib's exact operation order so that, fed the
 * same doubles from the same first value, they produce the same doubles as
 * TA_SMA / TA_EMA / TA_WMA (not merely close ones):
 *
 * - SMA: a running total; each output is total/period, then the value leaving
 *   the window is subtracted (TA_INT_SMA). Lookback period-1.
 * - EMA: seeded with the SMA of the first `period` inputs (TA-Lib's default
 *   "classic" compatibility), then ema += (x - ema) * k with k = 2/(period+1).
 *   Lookback period-1.
 * - WMA: weights 1..period (newest heaviest) over a running weighted sum and
 *   a running plain sum (TA_WMA). Lookback period-1.
 *
 * SMA and WMA rebuild their running sums from the window every
 * resumInterval(period) outputs (see common.ts), exactly as TA-Lib sums them
 * when called with that index as startIdx, so rounding cannot accumulate over
 * a long-lived process and every output still equals a TA-Lib output bit for bit.
 *
 * Periods: 1 is accepted (identity) even where TA-Lib's public range starts at
 * 2, because the same classes serve as building blocks (STOCH's slowing may be 1).
 */
import { checkInput, checkPeriod, resumInterval } from './common.ts';
import type { Indicator } from './types.ts';

export class Sma implements Indicator<number, number> {
  private readonly window: Float64Array;
  /** Outputs between re-sums of the window (0: never). */
  private readonly resumEvery: number;
  /** Next write slot; once the window is full it also holds the oldest value. */
  private pos = 0;
  private count = 0;
  private total = 0;
  private sinceResum = 0;
  private current: number | undefined;

  /** `resumEvery` 0 keeps one running total forever (for bounded inputs, as STOCH's 0..100). */
  constructor(
    readonly period: number,
    resumEvery = resumInterval(period),
  ) {
    checkPeriod('SMA', 'period', period, 1);
    this.window = new Float64Array(period);
    this.resumEvery = resumEvery;
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): number | undefined {
    checkInput('SMA', x);
    const period = this.period;
    if (this.count === period && ++this.sinceResum === this.resumEvery) {
      // Restart the total as TA_INT_SMA would with this index as startIdx:
      // the period-1 values before x, oldest first, from 0.
      this.sinceResum = 0;
      let total = 0;
      for (let i = 1, at = this.pos + 1; i < period; i++, at++) total += this.window[at < period ? at : at - period]!;
      this.total = total;
    }
    this.window[this.pos] = x;
    this.pos = this.pos + 1 === period ? 0 : this.pos + 1;
    this.total += x;
    if (this.count < period && ++this.count < period) return undefined;
    const out = this.total / period;
    // The oldest value leaves now, after the output (TA_INT_SMA's order).
    this.total -= this.window[this.pos]!;
    return (this.current = out);
  }

  reset(): void {
    this.window.fill(0);
    this.pos = 0;
    this.count = 0;
    this.total = 0;
    this.sinceResum = 0;
    this.current = undefined;
  }
}

export class Ema implements Indicator<number, number> {
  /** TA-Lib's PER_TO_K. */
  private readonly k: number;
  private count = 0;
  private seedTotal = 0;
  private current: number | undefined;

  constructor(readonly period: number) {
    checkPeriod('EMA', 'period', period, 1);
    this.k = 2 / (period + 1);
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): number | undefined {
    checkInput('EMA', x);
    if (this.current !== undefined) return (this.current = (x - this.current) * this.k + this.current);
    this.seedTotal += x;
    if (++this.count < this.period) return undefined;
    return (this.current = this.seedTotal / this.period);
  }

  reset(): void {
    this.count = 0;
    this.seedTotal = 0;
    this.current = undefined;
  }
}

export class Wma implements Indicator<number, number> {
  private readonly window: Float64Array;
  private readonly divider: number;
  private readonly resumEvery: number;
  private sinceResum = 0;
  private pos = 0;
  private count = 0;
  /** Sum of weight * value over the window (weight 1 = oldest). */
  private weighted = 0;
  /** Plain sum, lagging one step as in TA_WMA (the leaving value is subtracted on the next update). */
  private plain = 0;
  private leaving = 0;
  private current: number | undefined;

  constructor(readonly period: number) {
    checkPeriod('WMA', 'period', period, 1);
    this.window = new Float64Array(period);
    this.divider = (period * (period + 1)) / 2;
    this.resumEvery = resumInterval(period);
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): number | undefined {
    checkInput('WMA', x);
    const period = this.period;
    // TA_WMA copies the input for period 1; its general loop would add drift.
    if (period === 1) return (this.current = x);
    if (this.count === period && ++this.sinceResum === this.resumEvery) {
      // Restart both sums as TA_WMA would with this index as startIdx: the
      // period-1 values before x with weights 1..period-1, and nothing leaving yet.
      this.sinceResum = 0;
      let plain = 0;
      let weighted = 0;
      for (let i = 1, at = this.pos + 1; i < period; i++, at++) {
        const v = this.window[at < period ? at : at - period]!;
        plain += v;
        weighted += v * i;
      }
      this.plain = plain;
      this.weighted = weighted;
      this.leaving = 0;
    }
    this.window[this.pos] = x;
    this.pos = this.pos + 1 === period ? 0 : this.pos + 1;
    if (this.count < period - 1) {
      this.count++;
      this.plain += x;
      this.weighted += x * this.count;
      return undefined;
    }
    this.count = period;
    this.plain += x;
    this.plain -= this.leaving;
    this.weighted += x * period;
    this.leaving = this.window[this.pos]!;
    const out = this.weighted / this.divider;
    this.weighted -= this.plain;
    return (this.current = out);
  }

  reset(): void {
    this.window.fill(0);
    this.pos = 0;
    this.count = 0;
    this.weighted = 0;
    this.plain = 0;
    this.leaving = 0;
    this.sinceResum = 0;
    this.current = undefined;
  }
}
