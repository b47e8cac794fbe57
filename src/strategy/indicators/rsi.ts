/**
 * RSI with Wilder smoothing, as TA_RSI computes it (default compatibility,
 * no unstable period):
 *
 * - the first input only sets the previous close; the next `period` changes
 *   are summed into gains and losses and divided by `period` (a plain average);
 *   the first RSI comes with the `period`-th change, i.e. lookback = period;
 * - afterwards avg = (avg * (period - 1) + change) / period, in that order;
 * - RSI = 100 * avgGain / (avgGain + avgLoss).
 *
 * Deliberate difference: when avgGain + avgLoss is zero TA-Lib outputs 0, and
 * so does this class, but TA-Lib tests "zero" as |sum| < 1e-14 (TA_IS_ZERO),
 * an absolute threshold in price units. For an asset priced around 1e-6 the
 * averages fall below it after a stretch of quiet bars, and TA-Lib's RSI then
 * drops to 0 (a false "oversold"; ALGOUSDT scaled by 1e-10 gets 1,795 such
 * zeros in a month of 1m bars). Here only an exact 0 counts (no price
 * movement since the first bar). On the real, unscaled test data the two
 * never disagree.
 */
import { checkInput, checkPeriod } from './common.ts';
import type { Indicator } from './types.ts';

export class Rsi implements Indicator<number, number> {
  private count = 0;
  private prev = 0;
  private avgGain = 0;
  private avgLoss = 0;
  private current: number | undefined;

  constructor(readonly period: number) {
    // TA_RSI's range; with period 1 TA-Lib returns the input itself, which is not an RSI.
    checkPeriod('RSI', 'period', period, 2);
  }

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): number | undefined {
    checkInput('RSI', x);
    const period = this.period;
    const change = x - this.prev;
    const first = this.count === 0;
    this.prev = x;
    if (first) {
      this.count = 1;
      return undefined;
    }
    if (this.count <= period) {
      // Seeding: plain sums of the first `period` changes.
      if (change < 0) this.avgLoss -= change;
      else this.avgGain += change;
      if (++this.count <= period) return undefined;
      this.avgLoss /= period;
      this.avgGain /= period;
    } else {
      this.avgLoss *= period - 1;
      this.avgGain *= period - 1;
      if (change < 0) this.avgLoss -= change;
      else this.avgGain += change;
      this.avgLoss /= period;
      this.avgGain /= period;
    }
    const sum = this.avgGain + this.avgLoss;
    return (this.current = sum !== 0 ? 100 * (this.avgGain / sum) : 0);
  }

  reset(): void {
    this.count = 0;
    this.prev = 0;
    this.avgGain = 0;
    this.avgLoss = 0;
    this.current = undefined;
  }
}
