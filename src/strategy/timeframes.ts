/**
 * Builds candles of larger timeframes from closed 1m candles, on Binance's
 * UTC boundaries (a 4h candle opens at 00:00, 04:00, ... UTC; 1d at 00:00).
 *
 * A bucket is emitted when its last minute arrives, or, if that minute never
 * comes (an exchange outage), when the first candle of a later bucket does:
 * the candle then covers what traded, and nothing is invented.
 */
import type { Timeframe } from '../model/market.ts';
import type { Bar } from './indicators/types.ts';
import type { StrategyCandle } from './api.ts';

export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = {
  '1m': 60_000,
  '3m': 180_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};

export class CandleAggregator {
  private readonly ms: number;
  private bucket = -1;
  private open = 0;
  private high = 0;
  private low = 0;
  private close = 0;
  private volume = 0;
  private lastMinute = -1;

  constructor(
    readonly symbol: string,
    readonly timeframe: Timeframe,
  ) {
    this.ms = TIMEFRAME_MS[timeframe];
  }

  /**
   * Feeds one closed 1m candle; returns the candles of this timeframe that
   * closed because of it (zero, one, or two when a gap closed a bucket early).
   * 1m candles older than the last one fed are ignored (duplicates, replays).
   */
  push(c: Bar): StrategyCandle[] {
    if (c.openTime <= this.lastMinute) return [];
    this.lastMinute = c.openTime;
    const out: StrategyCandle[] = [];
    const bucket = c.openTime - (c.openTime % this.ms);
    if (this.bucket >= 0 && bucket !== this.bucket) out.push(this.emit());
    if (this.bucket < 0) {
      this.bucket = bucket;
      this.open = c.open;
      this.high = c.high;
      this.low = c.low;
      this.volume = 0;
    } else {
      if (c.high > this.high) this.high = c.high;
      if (c.low < this.low) this.low = c.low;
    }
    this.close = c.close;
    this.volume += c.volume;
    if (c.openTime + 60_000 === bucket + this.ms) out.push(this.emit());
    return out;
  }

  private emit(): StrategyCandle {
    const candle: StrategyCandle = {
      symbol: this.symbol,
      timeframe: this.timeframe,
      openTime: this.bucket,
      closeTime: this.bucket + this.ms - 1,
      open: this.open,
      high: this.high,
      low: this.low,
      close: this.close,
      volume: this.volume,
    };
    this.bucket = -1;
    return candle;
  }
}
