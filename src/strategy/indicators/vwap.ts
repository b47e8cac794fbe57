/**
 * Session VWAP: sum(typical price * volume) / sum(volume) since the session
 * began, typical price = (high + low + close) / 3 (TA_TYPPRICE's order).
 * Sessions are UTC days: a bar whose openTime falls on a different UTC day
 * than the previous bar starts a new session (so a gap across midnight resets
 * too). TA-Lib has no VWAP; the tests check this against a recomputation
 * from scratch.
 *
 * While the session has no volume yet (a zero-volume first bar) VWAP is
 * undefined and `ready` is false again until volume arrives: there is no
 * price to report that trades made.
 */
import { checkBar } from './common.ts';
import type { Bar, Indicator } from './types.ts';

const DAY_MS = 86_400_000;

export class Vwap implements Indicator<Bar, number> {
  /** UTC day number of the current session; NaN before the first bar. */
  private day = Number.NaN;
  private pv = 0;
  private volume = 0;
  private current: number | undefined;

  get value(): number | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): number | undefined {
    checkBar('VWAP', bar, true);
    if (!Number.isFinite(bar.openTime)) throw new RangeError(`VWAP: bar openTime must be a finite number, got ${bar.openTime}`);
    const day = Math.floor(bar.openTime / DAY_MS);
    if (day !== this.day) {
      this.day = day;
      this.pv = 0;
      this.volume = 0;
    }
    const typical = (bar.high + bar.low + bar.close) / 3;
    this.pv += typical * bar.volume;
    this.volume += bar.volume;
    return (this.current = this.volume > 0 ? this.pv / this.volume : undefined);
  }

  reset(): void {
    this.day = Number.NaN;
    this.pv = 0;
    this.volume = 0;
    this.current = undefined;
  }
}
