/**
 * The local exchange's kline history: 1m candles per (market, symbol) as the
 * replay produced them, plus the candle in progress. Other intervals are
 * aggregated on request on Binance's UTC boundaries.
 */
import { Dec } from '../core/decimal.ts';
import type { RawKline } from '../market-data/kline-files.ts';
import type { Market } from '../model/market.ts';

export const INTERVAL_MS: Record<string, number> = {
  '1m': 60_000,
  '3m': 180_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '2h': 7_200_000,
  '4h': 14_400_000,
  '6h': 21_600_000,
  '8h': 28_800_000,
  '12h': 43_200_000,
  '1d': 86_400_000,
};

interface Series {
  closed: RawKline[];
  current?: RawKline;
}

export class CandleStore {
  private readonly series = new Map<string, Series>();

  private get(market: Market, symbol: string): Series {
    const k = `${market}:${symbol}`;
    let s = this.series.get(k);
    if (!s) {
      s = { closed: [] };
      this.series.set(k, s);
    }
    return s;
  }

  /** Records an update of the candle in progress, or a closed candle. */
  update(market: Market, symbol: string, k: RawKline, closed: boolean): void {
    const s = this.get(market, symbol);
    if (closed) {
      const last = s.closed.at(-1);
      if (!last || k.openTime > last.openTime) s.closed.push(k);
      s.current = undefined;
    } else {
      s.current = k;
    }
  }

  /**
   * Klines as GET /klines returns them: ascending, openTime in [startTime,
   * endTime], at most limit, the candle in progress last.
   *
   * With `now`: a candle in progress whose closeTime has already passed (a
   * replay of past data, paced faster than its own timestamps) is left out.
   * On Binance the forming candle's closeTime is always in the future, and
   * that is how clients tell it from closed ones; a replayed one could not
   * say so, and a client catching up would take it for closed.
   */
  klines(market: Market, symbol: string, interval: string, q: { startTime?: number; endTime?: number; limit: number; now?: number }): RawKline[] {
    const s = this.series.get(`${market}:${symbol}`);
    if (!s) return [];
    const showCurrent = s.current !== undefined && (q.now === undefined || s.current.closeTime >= q.now);
    const all = showCurrent ? [...s.closed, s.current!] : s.closed;
    const ms = INTERVAL_MS[interval]!;
    const source = ms === 60_000 ? all : aggregate(all, ms);
    let lo = 0;
    if (q.startTime !== undefined) lo = lowerBound(source, q.startTime);
    let hi = source.length;
    if (q.endTime !== undefined) hi = lowerBound(source, q.endTime + 1);
    // Without startTime Binance returns the most recent `limit` candles.
    if (q.startTime === undefined) lo = Math.max(lo, hi - q.limit);
    return source.slice(lo, Math.min(hi, lo + q.limit));
  }

  /** The candle in progress, if any. */
  current(market: Market, symbol: string): RawKline | undefined {
    return this.series.get(`${market}:${symbol}`)?.current;
  }

  lastClose(market: Market, symbol: string): string | undefined {
    const s = this.series.get(`${market}:${symbol}`);
    return (s?.current ?? s?.closed.at(-1))?.close;
  }
}

function lowerBound(arr: readonly RawKline[], t: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]!.openTime < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function aggregate(src: readonly RawKline[], ms: number): RawKline[] {
  const out: RawKline[] = [];
  let cur: { k: RawKline; high: Dec; low: Dec; vol: Dec; qv: Dec; tb: Dec; tbq: Dec } | undefined;
  for (const k of src) {
    const bucket = Math.floor(k.openTime / ms) * ms;
    if (!cur || cur.k.openTime !== bucket) {
      if (cur) out.push(finish(cur));
      cur = { k: { ...k, openTime: bucket, closeTime: bucket + ms - 1 }, high: new Dec(k.high), low: new Dec(k.low), vol: new Dec(k.volume), qv: new Dec(k.quoteVolume), tb: new Dec(k.takerBuyVolume), tbq: new Dec(k.takerBuyQuoteVolume) };
      continue;
    }
    cur.high = Dec.max(cur.high, new Dec(k.high));
    cur.low = Dec.min(cur.low, new Dec(k.low));
    cur.vol = cur.vol.plus(k.volume);
    cur.qv = cur.qv.plus(k.quoteVolume);
    cur.tb = cur.tb.plus(k.takerBuyVolume);
    cur.tbq = cur.tbq.plus(k.takerBuyQuoteVolume);
    cur.k = { ...cur.k, close: k.close, trades: cur.k.trades + k.trades };
  }
  if (cur) out.push(finish(cur));
  return out;
}

function finish(c: { k: RawKline; high: Dec; low: Dec; vol: Dec; qv: Dec; tb: Dec; tbq: Dec }): RawKline {
  return { ...c.k, high: c.high.toFixed(), low: c.low.toFixed(), volume: c.vol.toFixed(), quoteVolume: c.qv.toFixed(), takerBuyVolume: c.tb.toFixed(), takerBuyQuoteVolume: c.tbq.toFixed() };
}
