/**
 * Checks a series of klines the way the importer and the downloader both
 * need: each row on its own (OHLC consistent, volume not negative, open time
 * on the interval's grid) and against the previous good row (open times
 * strictly increasing; a jump of more than one interval is a gap, reported,
 * never filled).
 *
 * A bad row is skipped and described with the field and value at fault;
 * the row after it is compared with the last good row.
 */
import type { CandleColumns } from '../store/candle-repository.ts';
import type { RawKline } from './kline-files.ts';
import { candlesBetween, formatUtc, isAligned, nextOpenTime, previousOpenTime, type Interval } from './intervals.ts';

/** A run of missing candles: the first and last missing open times, between the rows `after` and `before`. */
export interface CandleGap {
  readonly after: number;
  readonly before: number;
  readonly from: number;
  readonly to: number;
  readonly missing: number;
}

export function formatGap(g: CandleGap): string {
  const span = g.missing === 1 ? formatUtc(g.from) : `${formatUtc(g.from)} .. ${formatUtc(g.to)}`;
  return `${span} UTC: ${g.missing} missing`;
}

/** Gaps kept for the report; the count and the missing total are always exact. */
const KEEP_GAPS = 1000;

export class SeriesChecker {
  private prev: number | undefined;
  private expectedNext: number | undefined;
  readonly gaps: CandleGap[] = [];
  gapCount = 0;
  missing = 0;

  /** `previousOpenTime`: the last candle already stored before these (e.g. when a download resumes). */
  constructor(
    readonly interval: Interval,
    previousOpenTime?: number,
  ) {
    if (previousOpenTime !== undefined) this.accept(previousOpenTime, false);
  }

  /** Open time of the last good row. */
  get lastOpenTime(): number | undefined {
    return this.prev;
  }

  /**
   * Undefined when the row is good: it is then appended to `into` as numbers
   * and remembered as the previous row. Else what is wrong with it, naming
   * the field and its value.
   */
  check(k: RawKline, into: CandleColumns): string | undefined {
    const t = k.openTime;
    if (!isAligned(this.interval, t)) return `open_time: ${t} (${formatUtc(t)}:${secs(t)}) is not on the ${this.interval} grid`;
    if (this.prev !== undefined && t <= this.prev) {
      return t === this.prev
        ? `open_time: ${t} (${formatUtc(t)}) repeats the previous row's`
        : `open_time: ${t} (${formatUtc(t)}) is before the previous row's ${this.prev} (${formatUtc(this.prev)}); rows must be in time order`;
    }
    const open = Number(k.open);
    const high = Number(k.high);
    const low = Number(k.low);
    const close = Number(k.close);
    const volume = Number(k.volume);
    if (high < open) return `high: ${k.high} is below open ${k.open}`;
    if (high < close) return `high: ${k.high} is below close ${k.close}`;
    if (high < low) return `high: ${k.high} is below low ${k.low}`;
    if (low > open) return `low: ${k.low} is above open ${k.open}`;
    if (low > close) return `low: ${k.low} is above close ${k.close}`;
    if (!(volume >= 0)) return `volume: ${k.volume} is negative`;
    this.accept(t, true);
    into.push(t, open, high, low, close, volume, Number(k.quoteVolume), k.trades, Number(k.takerBuyVolume));
    return undefined;
  }

  private accept(t: number, countGap: boolean): void {
    if (countGap && this.expectedNext !== undefined && t !== this.expectedNext) {
      const missing = candlesBetween(this.interval, this.expectedNext, t);
      this.gapCount++;
      this.missing += missing;
      if (this.gaps.length < KEEP_GAPS) this.gaps.push({ after: this.prev!, before: t, from: this.expectedNext, to: previousOpenTime(this.interval, t), missing });
    }
    this.prev = t;
    this.expectedNext = nextOpenTime(this.interval, t);
  }
}

function secs(t: number): string {
  return new Date(t).toISOString().slice(17, 23);
}
