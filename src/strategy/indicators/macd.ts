/**
 * MACD as TA_MACD computes it, alignment included:
 *
 * - the slow EMA is seeded with the SMA of the first `slow` inputs;
 * - the fast EMA is NOT seeded from the first `fast` inputs: TA-Lib starts
 *   both EMAs at the same index (slow - 1), so the fast one is seeded with the
 *   SMA of the `fast` inputs ending there (inputs slow-fast .. slow-1) and
 *   only advances from then on. A standalone EMA(fast) therefore differs
 *   from TA-Lib's fast line for a while; this class reproduces TA-Lib.
 * - MACD = fastEMA - slowEMA from input slow-1 on; the signal is an EMA of
 *   the MACD values (seeded with their SMA), so the first output is at input
 *   index slow + signal - 2 (lookback = (slow - 1) + (signal - 1)); e.g.
 *   12/26/9 gives its first value on the 34th input;
 * - histogram = MACD - signal.
 *
 * Deliberate difference: TA-Lib silently swaps fast and slow when fast > slow;
 * here that is a configuration error and throws. (Equal periods are allowed,
 * as in TA-Lib: the line is then 0.)
 *
 * The result object is new on every update (one small allocation): a reused
 * mutable object would change under a caller that kept the previous value to
 * detect a crossover.
 */
import { checkInput, checkPeriod } from './common.ts';
import { Ema } from './moving-averages.ts';
import type { Indicator, MacdValue } from './types.ts';

export class Macd implements Indicator<number, MacdValue> {
  private readonly kFast: number;
  private readonly kSlow: number;
  private readonly signalEma: Ema;
  private count = 0;
  private fastTotal = 0;
  private slowTotal = 0;
  private fast = 0;
  private slow = 0;
  private current: MacdValue | undefined;

  constructor(
    readonly fastPeriod: number,
    readonly slowPeriod: number,
    readonly signalPeriod: number,
  ) {
    checkPeriod('MACD', 'fast', fastPeriod, 1);
    checkPeriod('MACD', 'slow', slowPeriod, 1);
    checkPeriod('MACD', 'signal', signalPeriod, 1);
    if (fastPeriod > slowPeriod) throw new RangeError(`MACD: fast period (${fastPeriod}) must not exceed slow period (${slowPeriod})`);
    this.kFast = 2 / (fastPeriod + 1);
    this.kSlow = 2 / (slowPeriod + 1);
    this.signalEma = new Ema(signalPeriod);
  }

  get value(): MacdValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): MacdValue | undefined {
    checkInput('MACD', x);
    const slowPeriod = this.slowPeriod;
    if (this.count < slowPeriod) {
      const n = ++this.count;
      this.slowTotal += x;
      // Only the `fast` inputs ending at index slow-1 seed the fast EMA.
      if (n > slowPeriod - this.fastPeriod) this.fastTotal += x;
      if (n < slowPeriod) return undefined;
      this.slow = this.slowTotal / slowPeriod;
      this.fast = this.fastTotal / this.fastPeriod;
    } else {
      this.slow = (x - this.slow) * this.kSlow + this.slow;
      this.fast = (x - this.fast) * this.kFast + this.fast;
    }
    const macd = this.fast - this.slow;
    const signal = this.signalEma.update(macd);
    if (signal === undefined) return undefined;
    return (this.current = { macd, signal, histogram: macd - signal });
  }

  reset(): void {
    this.signalEma.reset();
    this.count = 0;
    this.fastTotal = 0;
    this.slowTotal = 0;
    this.fast = 0;
    this.slow = 0;
    this.current = undefined;
  }
}
