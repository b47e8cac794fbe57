/**
 * The matching engine's next-step mode (the backtester): a MARKET order
 * placed on a candle's close never fills at that close. It fills at the
 * open of the next step when it has arrived by then (placed + latency), or
 * at that step's last price when it arrives during the step.
 * Futures BTCUSDT: tick 0.1, taker 0.05 %.
 */
import { describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { fullCatalog } from '../../src/venues/sim/catalog.ts';
import { MatchingEngine } from '../../src/venues/sim/engine.ts';

const T = Date.UTC(2024, 0, 1);

function engine(latencyMs: number) {
  const clock = new TestClock(T);
  const e = new MatchingEngine({ clock, instruments: fullCatalog(), marketOrders: 'next-step', latencyMs });
  e.createAccount('a', { futures: '10000' });
  // The candle 00:00 closed at 50000.
  e.step('futures', 'BTCUSDT', { open: dec('49900'), high: dec('50100'), low: dec('49800'), last: dec('50000'), time: T, durationMs: 60_000 });
  clock.advanceTo(T + 60_000);
  return { e, clock };
}

const place = (e: MatchingEngine) => {
  const r = e.placeOrder('a', { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec('0.01') });
  if (!r.ok) throw new Error(r.message);
  return r.value;
};

const got = (e: MatchingEngine, orderId: number) => {
  const r = e.getOrder('a', 'futures', 'BTCUSDT', { orderId });
  if (!r.ok) throw new Error(r.message);
  return r.value;
};

describe('sim engine, MARKET orders in next-step mode', () => {
  it('no latency: accepted NEW at the close, filled at the next candle open (never at the close it was computed from)', () => {
    const { e } = engine(0);
    const o = place(e);
    expect(o.status, 'not filled at the 50000 close').toBe('NEW');
    e.step('futures', 'BTCUSDT', { open: dec('50200'), high: dec('50300'), low: dec('49000'), last: dec('49100'), time: T + 60_000, durationMs: 60_000 });
    const done = got(e, o.orderId);
    expect([done.status, done.avgPrice.toFixed()]).toEqual(['FILLED', '50200']);
  });

  it('latency 5 s: arrives after the next open, filled at that candle\'s last price; a cancelled one never fills', () => {
    const { e } = engine(5000);
    const o = place(e);
    const cancelled = place(e);
    e.cancelOrder('a', 'futures', 'BTCUSDT', { orderId: cancelled.orderId });
    e.step('futures', 'BTCUSDT', { open: dec('50200'), high: dec('50300'), low: dec('49000'), last: dec('49100'), time: T + 60_000, durationMs: 60_000 });
    expect(got(e, o.orderId).avgPrice.toFixed()).toBe('49100');
    expect(got(e, cancelled.orderId).status).toBe('CANCELED');
    expect(e.trades('a', 'futures', 'BTCUSDT', { startTime: 0, limit: 10 })).toHaveLength(1);
  });

  it('latency 90 s: not filled in the next candle; arrives within the one after and fills at its last price', () => {
    const { e, clock } = engine(90_000);
    const o = place(e);
    e.step('futures', 'BTCUSDT', { open: dec('50200'), high: dec('50300'), low: dec('49000'), last: dec('49100'), time: T + 60_000, durationMs: 60_000 });
    expect(got(e, o.orderId).status).toBe('NEW');
    clock.advanceTo(T + 120_000);
    e.step('futures', 'BTCUSDT', { open: dec('49150'), high: dec('49200'), low: dec('49000'), last: dec('49050'), time: T + 120_000, durationMs: 60_000 });
    // Arrived at 00:02:30, within the 00:02 candle: its last price.
    expect(got(e, o.orderId).avgPrice.toFixed()).toBe('49050');
  });
});
