/**
 * Binance kline intervals of one minute and more, and the calendar rules
 * their open times follow. Candles are stored keyed by open time in whole
 * minutes (see the candles migration), which every interval here satisfies.
 *
 * Open times, as Binance aligns them (UTC):
 *  - 1m .. 1d: multiples of the interval since the epoch;
 *  - 3d: whole days (Binance's 3-day grid is not epoch-aligned, so only the
 *    day boundary is checked);
 *  - 1w: Mondays 00:00 (the epoch was a Thursday);
 *  - 1M: the first day of a calendar month, so the step varies (28-31 days).
 */
export const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type Interval = (typeof INTERVALS)[number];

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Length of one candle; for 1M this is the shortest month, only good for estimates. */
export const INTERVAL_MS: Readonly<Record<Interval, number>> = {
  '1m': MINUTE,
  '3m': 3 * MINUTE,
  '5m': 5 * MINUTE,
  '15m': 15 * MINUTE,
  '30m': 30 * MINUTE,
  '1h': 60 * MINUTE,
  '2h': 120 * MINUTE,
  '4h': 240 * MINUTE,
  '6h': 360 * MINUTE,
  '8h': 480 * MINUTE,
  '12h': 720 * MINUTE,
  '1d': DAY,
  '3d': 3 * DAY,
  '1w': 7 * DAY,
  '1M': 28 * DAY,
};

export function isInterval(s: string): s is Interval {
  return (INTERVALS as readonly string[]).includes(s);
}

/** The interval whose fixed length is ms (never 1M), or undefined. */
export function intervalOfMs(ms: number): Interval | undefined {
  for (const i of INTERVALS) if (i !== '1M' && INTERVAL_MS[i] === ms) return i;
  // A monthly series' modal step is 31 or 30 days.
  if (ms === 30 * DAY || ms === 31 * DAY) return '1M';
  return undefined;
}

/** True when t is an open time Binance could give a candle of this interval. */
export function isAligned(interval: Interval, t: number): boolean {
  switch (interval) {
    case '3d':
      return t % DAY === 0;
    case '1w':
      // 1970-01-05 was the first Monday.
      return (t - 4 * DAY) % (7 * DAY) === 0;
    case '1M': {
      const d = new Date(t);
      return d.getUTCDate() === 1 && t % DAY === 0;
    }
    default:
      return t % INTERVAL_MS[interval] === 0;
  }
}

/** The open time of the candle after the one opening at t. */
export function nextOpenTime(interval: Interval, t: number): number {
  if (interval !== '1M') return t + INTERVAL_MS[interval];
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** The open time of the candle before the one opening at t. */
export function previousOpenTime(interval: Interval, t: number): number {
  if (interval !== '1M') return t - INTERVAL_MS[interval];
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
}

/**
 * How many candles open in [from, to) on the interval's grid, from an
 * aligned `from`: the count a complete series would have. Exact for 1M too.
 */
export function candlesBetween(interval: Interval, from: number, to: number): number {
  if (to <= from) return 0;
  if (interval !== '1M') return Math.ceil((to - from) / INTERVAL_MS[interval]);
  const a = new Date(from);
  const b = new Date(to);
  let months = (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + (b.getUTCMonth() - a.getUTCMonth());
  // `to` past the first instant of its month opens one more candle.
  if (to > Date.UTC(b.getUTCFullYear(), b.getUTCMonth(), 1)) months++;
  return months;
}

/** The first open time on the grid at or after t (for 3d: the next day boundary). */
export function alignUp(interval: Interval, t: number): number {
  if (isAligned(interval, t)) return t;
  switch (interval) {
    case '1M': {
      const d = new Date(t);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
    case '1w': {
      const w = 7 * DAY;
      return Math.floor((t - 4 * DAY) / w) * w + 4 * DAY + w;
    }
    case '3d':
      return Math.floor(t / DAY) * DAY + DAY;
    default: {
      const ms = INTERVAL_MS[interval];
      return Math.floor(t / ms) * ms + ms;
    }
  }
}

/** `2024-01-31 23:59` (UTC), the form every data command prints. */
export function formatUtc(t: number): string {
  const iso = new Date(t).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}
