/**
 * The one place where Decimal is configured. Every price, quantity, balance,
 * fee and PnL in the project is a `Dec` built here, never a JS number.
 *
 * Why a clone and not the global Decimal: a library (or a test) that changes
 * the global Decimal settings cannot change ours.
 */
import { Decimal } from 'decimal.js';

export const Dec = Decimal.clone({
  // 40 significant digits: a 1e12 notional times a 1e-8 step still keeps
  // every digit, so no money computation is ever rounded implicitly.
  precision: 40,
  // Banker's rounding for the rare implicit rounding; exchange-filter rounding
  // always names its mode explicitly (see execution filters).
  rounding: Decimal.ROUND_HALF_EVEN,
  // Plain notation for any value we are likely to print or send.
  toExpNeg: -30,
  toExpPos: 40,
});
export type Dec = Decimal;
export type DecInput = string | number | Decimal;

export const ZERO = new Dec(0);

/**
 * Builds a Dec and refuses NaN and Infinity: a money value that is not a
 * finite number is a bug upstream, never something to carry along.
 */
export function dec(value: DecInput): Dec {
  const d = new Dec(value);
  if (!d.isFinite()) throw new RangeError(`not a finite decimal: ${String(value)}`);
  return d;
}

/** True when the string is a finite plain or exponent decimal, e.g. "0.001", "-2", "1e-8". */
export function isDecimalString(s: string): boolean {
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s.trim());
}

/** Canonical string for storage and wire: plain notation, no trailing zeros. */
export function decToString(d: Dec): string {
  return d.toFixed();
}
