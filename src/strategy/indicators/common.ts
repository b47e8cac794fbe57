/**
 * Argument and input checks shared by the indicators.
 *
 * Periods follow TA-Lib's upper bound (100000). Inputs must be finite: one NaN
 * in a running sum would poison the indicator until reset(), silently, so a
 * non-finite input is treated as the upstream bug it is and throws.
 */
import type { Bar } from './types.ts';

export const MAX_PERIOD = 100_000;

export function checkPeriod(indicator: string, name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_PERIOD) {
    throw new RangeError(`${indicator}: ${name} must be an integer in ${min}..${MAX_PERIOD}, got ${value}`);
  }
}

export function checkInput(indicator: string, x: number): void {
  if (!Number.isFinite(x)) throw new RangeError(`${indicator}: input must be a finite number, got ${x}`);
}

/** Checks the fields an indicator reads; `volume` only when it uses it. */
export function checkBar(indicator: string, bar: Bar, withVolume: boolean): void {
  if (!(Number.isFinite(bar.high) && Number.isFinite(bar.low) && Number.isFinite(bar.close)) || (withVolume && !Number.isFinite(bar.volume))) {
    throw new RangeError(`${indicator}: bar has a non-finite field (high=${bar.high} low=${bar.low} close=${bar.close} volume=${bar.volume})`);
  }
}

/**
 * True range of one bar against the previous close, in TA-Lib's operation
 * order (TRANGE and the TRUE_RANGE macro of ADX/PLUS_DI/MINUS_DI): the bar's
 * range, widened by the gap to the previous close on either side.
 */
export function trueRange(high: number, low: number, prevClose: number): number {
  let greatest = high - low;
  const toHigh = Math.abs(prevClose - high);
  if (toHigh > greatest) greatest = toHigh;
  const toLow = Math.abs(prevClose - low);
  if (toLow > greatest) greatest = toLow;
  return greatest;
}
