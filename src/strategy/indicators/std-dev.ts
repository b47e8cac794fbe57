/**
 * Rolling population standard deviation (TA_STDDEV with nbDev 1, i.e. the
 * square root of TA_VAR), and the running-moments core that Bollinger Bands
 * share with it.
 *
 * TA-Lib's arithmetic, in its order: running totals of x and x^2; each output
 * takes mean = total/period and meanSq = totalSq/period, then removes the
 * value leaving the window; variance = meanSq - mean * mean. The mean is
 * bit-identical to the SMA's (same running total, same order), which is what
 * BBANDS uses as its middle band. Lookback period-1. The totals are rebuilt
 * from the window every resumInterval(period) outputs (see common.ts), as
 * TA-Lib builds them for a call starting there.
 *
 * Accuracy is TA-Lib's: meanSq - mean^2 cancels most digits when the
 * deviation is small next to the price. Against a two-pass computation the
 * error stays below 1.5e-10 of the price (BTCUSDT 15m, 5 bars, 116k bars),
 * which in a very quiet window is up to ~1e-5 of the deviation itself.
 *
 * Deliberate difference: TA-Lib returns 0 when the variance is below 1e-14
 * (TA_IS_ZERO_OR_NEG), an absolute threshold in price units squared. For an
 * asset priced around 1e-5 every real variance is below that, so TA-Lib's
 * STDDEV is always 0 and its bands collapse onto the SMA. Here the threshold
 * is relative to the size of the numbers being cancelled: a variance below
 * 1e-12 * meanSq is below the rounding noise of meanSq - mean^2 (a window of
 * identical prices computes to a few ulps of meanSq, not 0) and reads as 0.
 * Real data keeps far clear of it: one tick in a 20-bar window of a 0.25
 * price is a variance of 5e-10, against a threshold of 6e-14.
 */
import { checkInput, checkPeriod, resumInterval } from './common.ts';
import type { Indicator } from './types.ts';

/** Below this fraction of meanSq a computed variance is rounding noise. */
const VARIANCE_NOISE = 1e-12;

/** Running mean and population variance of the last `period` inputs, TA_VAR's way. */
export class RollingMoments {
  private readonly window: Float64Array;
  private readonly resumEvery: number;
  private sinceResum = 0;
  private pos = 0;
  private count = 0;
  private total = 0;
  private totalSq = 0;
  /** Valid after push() returned true. */
  mean = 0;
  /** Valid after push() returned true; clamped to 0 inside the rounding noise. */
  variance = 0;

  constructor(readonly period: number) {
    this.window = new Float64Array(period);
    this.resumEvery = resumInterval(period);
  }

  /** Adds a value; true once the window is full (mean and variance then describe it). */
  push(x: number): boolean {
    const period = this.period;
    if (this.count === period && ++this.sinceResum === this.resumEvery) {
      // Restart both totals as TA_VAR / TA_BBANDS would with this index as
      // startIdx: the period-1 values before x, oldest first, from 0.
      this.sinceResum = 0;
      let total = 0;
      let totalSq = 0;
      for (let i = 1, at = this.pos + 1; i < period; i++, at++) {
        const v = this.window[at < period ? at : at - period]!;
        total += v;
        totalSq += v * v;
      }
      this.total = total;
      this.totalSq = totalSq;
    }
    this.window[this.pos] = x;
    this.pos = this.pos + 1 === period ? 0 : this.pos + 1;
    this.total += x;
    this.totalSq += x * x;
    if (this.count < period && ++this.count < period) return false;
    const mean = this.total / period;
    const meanSq = this.totalSq / period;
    const leaving = this.window[this.pos]!;
    this.total -= leaving;
    this.totalSq -= leaving * leaving;
    const variance = meanSq - mean * mean;
    this.mean = mean;
    this.variance = variance > VARIANCE_NOISE * meanSq ? variance : 0;
    return true;
  }

  reset(): void {
    this.window.fill(0);
    this.pos = 0;
    this.count = 0;
    this.total = 0;
    this.totalSq = 0;
    this.sinceResum = 0;
    this.mean = 0;
    this.variance = 0;
  }
}

export class StdDev implements Indicator<number, number> {
  private readonly moments: RollingMoments;
  private current: number | undefined;

  constructor(readonly period: number) {
    checkPeriod('StdDev', 'period', period, 1);
    this.moments = new RollingMoments(period);
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): number | undefined {
    checkInput('StdDev', x);
    if (!this.moments.push(x)) return undefined;
    return (this.current = Math.sqrt(this.moments.variance));
  }

  reset(): void {
    this.moments.reset();
    this.current = undefined;
  }
}
