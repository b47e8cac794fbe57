/**
 * The local exchange's GET /klines answer: the candle in progress is shown
 * only while its closeTime lies ahead of the exchange's time, as on Binance.
 * A replay of past data paced faster than its timestamps would otherwise hand
 * a catching-up client a half-built candle that looks closed.
 */
import { describe, expect, it } from 'vitest';
import { CandleStore } from '../../src/local-exchange/candle-store.ts';
import type { RawKline } from '../../src/market-data/kline-files.ts';

const k = (openTime: number, close: string): RawKline => ({ openTime, closeTime: openTime + 59_999, open: '1', high: '2', low: '0.5', close, volume: '1', quoteVolume: '1', trades: 1, takerBuyVolume: '0', takerBuyQuoteVolume: '0' });
const T = Date.UTC(2024, 0, 1);

describe('local exchange candle store', () => {
  it('shows the forming candle while it is forming, hides one whose closeTime has passed', () => {
    const s = new CandleStore();
    s.update('spot', 'BTCUSDT', k(T, '1.5'), true);
    s.update('spot', 'BTCUSDT', k(T + 60_000, '1.7'), false);
    const q = { startTime: T, limit: 10 };
    expect(s.klines('spot', 'BTCUSDT', '1m', { ...q, now: T + 90_000 }).map((r) => r.openTime), 'live: forming candle last').toEqual([T, T + 60_000]);
    expect(s.klines('spot', 'BTCUSDT', '1m', { ...q, now: Date.UTC(2026, 0, 1) }).map((r) => r.openTime), 'a replay of the past: closed ones only').toEqual([T]);
    expect(s.current('spot', 'BTCUSDT')?.close, 'still tracked for the stream').toBe('1.7');
  });
});
