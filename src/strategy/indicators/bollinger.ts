/**
 * Bollinger Bands as TA_BBANDS with an SMA (MA type 0) and equal deviations
 * up and down: middle = SMA(period), deviation = population standard
 * deviation over the same window (see std-dev.ts for its arithmetic and the
 * one deliberate difference, the near-zero variance threshold),
 * upper/lower = middle +/- deviation * stdDevs. Lookback period-1.
 *
 * Not in TA-Lib, defined here:
 * - bandwidth = (upper - lower) / middle;
 * - percentB = (close - lower) / (upper - lower), and 0.5 when the bands have
 *   zero width (a flat window: the close sits on the middle band).
 *
 * The result object is new on every update (see macd.ts for why).
 */
import { checkInput, checkPeriod } from './common.ts';
import { RollingMoments } from './std-dev.ts';
import type { BollingerValue, Indicator } from './types.ts';

export class Bollinger implements Indicator<number, BollingerValue> {
  private readonly moments: RollingMoments;
  private current: BollingerValue | undefined;

  constructor(
    readonly period: number,
    readonly stdDevs: number,
  ) {
    checkPeriod('Bollinger', 'period', period, 1);
    if (!Number.isFinite(stdDevs) || stdDevs <= 0) throw new RangeError(`Bollinger: stdDevs must be a positive number, got ${stdDevs}`);
    this.moments = new RollingMoments(period);
  }

  get value(): BollingerValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(x: number): BollingerValue | undefined {
    checkInput('Bollinger', x);
    const m = this.moments;
    if (!m.push(x)) return undefined;
    const middle = m.mean;
    const dev = Math.sqrt(m.variance) * this.stdDevs;
    const upper = middle + dev;
    const lower = middle - dev;
    const width = upper - lower;
    return (this.current = {
      upper,
      middle,
      lower,
      bandwidth: width / middle,
      percentB: width !== 0 ? (x - lower) / width : 0.5,
    });
  }

  reset(): void {
    this.moments.reset();
    this.current = undefined;
  }
}
