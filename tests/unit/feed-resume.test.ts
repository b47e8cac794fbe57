/**
 * The feed's REST catch-up obeys Binance's rate limiting: a 429 (or 418)
 * answer is retried only after its Retry-After, never on the plain backoff
 * (calling on while limited is what gets an IP banned). Driven by the test
 * clock and a stand-in fetch, so the 30 s wait costs nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { MarketFeed } from '../../src/market-data/market-feed.ts';
import type { CandleClosed } from '../../src/model/events.ts';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
let feed: MarketFeed | undefined;
afterEach(() => feed?.stop());

const row = (t: number) => [t, '1', '1', '1', '1', '1', t + 59_999, '1', 1, '1', '1', '0'];
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('feed resume under rate limiting', () => {
  it('a 429 on the catch-up is retried after its Retry-After (30 s), not after the 1 s backoff', async () => {
    const clock = new TestClock(T0 + 30_000);
    const bus = new Bus({ logger: silentLogger(), clock });
    const candles: CandleClosed[] = [];
    bus.on('candle.closed', (c) => candles.push(c), 'test');
    const calls: number[] = [];
    const fetchStub = (async () => {
      calls.push(clock.now());
      if (calls.length === 1) return new Response(JSON.stringify({ code: -1003, msg: 'Too much request weight used' }), { status: 429, headers: { 'Retry-After': '30' } });
      // Now 12:01:00: minutes 10:55..12:00 closed, 12:01 forming (its closeTime ahead, as on Binance).
      return new Response(JSON.stringify(Array.from({ length: 67 }, (_, i) => row(T0 - 65 * 60_000 + i * 60_000))), { status: 200 });
    }) as unknown as typeof fetch;
    feed = new MarketFeed({ market: 'spot', symbols: ['BTCUSDT'], wsBase: 'ws://127.0.0.1:9', restBase: 'http://127.0.0.1:9', bus, clock, logger: silentLogger(), maxBackoffMs: 60_000, baseBackoffMs: 1000, fetch: fetchStub, resumeFrom: () => T0 - 66 * 60_000 });
    feed.start();
    await settle();
    expect(calls).toEqual([T0 + 30_000]);
    clock.advanceBy(29_999);
    await settle();
    expect(calls, 'not before Retry-After').toHaveLength(1);
    clock.advanceBy(1);
    await settle();
    expect(calls).toEqual([T0 + 30_000, T0 + 60_000]);
    // Everything after the stored candle up to the last closed one; the forming one is left to the stream.
    expect(candles.map((c) => (c.openTime - T0) / 60_000)).toEqual(Array.from({ length: 66 }, (_, i) => i - 65));
    expect(feed.isStale('BTCUSDT'), 'no live stream here').toBe(true);
  });
});
