/**
 * The order planner's projected position: what the symbol will hold once the
 * orders it asked for fill. A signal that repeats while an order is still
 * working (approved but not sent yet, queued behind a retry or a 429's
 * Retry-After, or sent and not filled) must not become a second order.
 *
 * Wired with a real bus, TestClock, in-memory store (intent sequence) and a
 * real Portfolio; `order.request` is recorded, not judged (no risk engine),
 * and the test publishes the execution engine's `order.update` / `fill` /
 * `order.denied` by hand. Futures BTCUSDT from the sim catalog (step 0.001).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { IntentSequence } from '../../src/execution/intent-sequence.ts';
import type { OrderIntent, OrderStatus, SignalAction } from '../../src/model/events.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { Portfolio } from '../../src/portfolio/portfolio.ts';
import { OrderPlanner } from '../../src/risk/order-planner.ts';
import { strategyConfigSchema } from '../../src/settings/strategy-config.ts';
import { Store } from '../../src/store/store.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const logger = silentLogger();
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function rig() {
  const store = Store.open(':memory:');
  await store.migrate();
  cleanups.push(() => store.close());
  const clock = new TestClock(T0);
  const bus = new Bus({ logger, clock });
  const insts = new Map<string, Instrument>(catalog('futures').map((i) => [i.symbol, i]));
  const portfolio = new Portfolio({
    bus,
    store,
    clock,
    logger,
    market: 'futures',
    quoteAsset: 'USDT',
    instrument: (s) => insts.get(s),
  });
  const config = strategyConfigSchema.parse({ timeframe: '1m', sizing: { type: 'quote', amount: 500 } });
  const planner = new OrderPlanner({ bus, clock, logger, market: 'futures', portfolio, ledger: portfolio.ledger, instrument: (s) => insts.get(s), strategy: () => ({ config, timeframe: '1m' }), sequence: new IntentSequence(store, clock) });
  const requests: OrderIntent[] = [];
  bus.handle('order.request', (r) => void requests.push(r.intent), 'test-risk');
  portfolio.start();
  bus.publish('account.updated', { kind: 'account.updated', ts: T0, balances: [{ asset: 'USDT', free: dec(10_000), locked: dec(0) }], walletBalance: dec(10_000), reason: 'SNAPSHOT' });
  planner.start();
  cleanups.push(() => {
    planner.stop();
    portfolio.stop();
  });
  const candle = (close: number) => {
    clock.advanceBy(60_000);
    const now = clock.now();
    bus.publish('candle.closed', { kind: 'candle.closed', ts: now, market: 'futures', symbol: 'BTCUSDT', timeframe: '1m', openTime: now - 60_000, open: close, high: close, low: close, close, volume: 1 });
  };
  const signal = (action: SignalAction) => bus.publish('signal.flipper', { kind: 'signal', ts: clock.now(), strategy: 'flipper', symbol: 'BTCUSDT', action, reason: 'test' });
  const cid = (i: OrderIntent) => `c-${i.seq}`;
  const update = (i: OrderIntent, status: OrderStatus, filled = '0') =>
    bus.publish('order.update', { kind: 'order.update', ts: clock.now(), clientOrderId: cid(i), intentId: i.intentId, strategy: i.strategy, market: 'futures', side: i.side, reduceOnly: i.reduceOnly ?? false, symbol: i.symbol, status, filledQuantity: dec(filled) });
  const fill = (i: OrderIntent, price: string) => {
    bus.publish('fill', { kind: 'fill', ts: clock.now(), tradeId: `t-${i.seq}`, clientOrderId: cid(i), strategy: i.strategy, market: 'futures', symbol: i.symbol, side: i.side, price: dec(price), quantity: i.quantity, fee: dec(0), feeAsset: 'USDT', isMaker: false });
    update(i, 'FILLED', i.quantity.toFixed());
  };
  return { bus, requests, candle, signal, update, fill, planner, ledger: portfolio.ledger };
}

describe('order planner: a repeated signal while an order works', () => {
  it('asks for one entry, and one exit, however often the signal repeats before they fill', async () => {
    const r = await rig();
    r.candle(50_000);
    r.signal('enterLong');
    // 500 USDT at 50000 = 0.01 BTC.
    expect(r.requests.map((i) => [i.side, i.quantity.toFixed(), i.reduceOnly ?? false])).toEqual([['BUY', '0.01', false]]);
    const entry = r.requests[0]!;
    // Approved, not written yet (no update): the next candle's signal sees it.
    r.candle(50_010);
    r.signal('enterLong');
    // Written (PENDING), queued behind a send that waits: still one.
    r.update(entry, 'PENDING');
    r.candle(50_020);
    r.signal('enterLong');
    expect(r.requests.length, 'the entry that is working counts as held').toBe(1);
    expect(r.ledger.projected('flipper', 'BTCUSDT').toFixed(), 'position 0 + working BUY 0.01').toBe('0.01');
    // And an exit meanwhile closes what the entry will hold.
    r.fill(entry, '50020');
    expect(r.ledger.projected('flipper', 'BTCUSDT').toFixed()).toBe('0.01');

    r.candle(50_030);
    r.signal('exitLong');
    r.candle(50_040);
    r.signal('exitLong');
    const exit = r.requests[1]!;
    r.update(exit, 'PENDING');
    r.candle(50_050);
    r.signal('exitLong');
    expect(r.requests.map((i) => [i.side, i.quantity.toFixed(), i.reduceOnly ?? false]), 'one reduce-only exit, not one per candle').toEqual([
      ['BUY', '0.01', false],
      ['SELL', '0.01', true],
    ]);
    expect(r.ledger.projected('flipper', 'BTCUSDT').toFixed(), 'long 0.01 - working SELL 0.01').toBe('0');
  });

  it('asks again once the order is final without a fill (rejected, or denied before it became a row)', async () => {
    const r = await rig();
    r.candle(50_000);
    r.signal('enterLong');
    const first = r.requests[0]!;
    r.update(first, 'PENDING');
    r.update(first, 'REJECTED');
    r.candle(50_000);
    r.signal('enterLong');
    expect(r.requests.length, 'a REJECTED order no longer counts').toBe(2);
    const second = r.requests[1]!;
    r.bus.publish('order.denied', { kind: 'order.denied', ts: 0, intent: second, reason: 'RATE_LIMITED: test', source: 'execution' });
    r.candle(50_000);
    r.signal('enterLong');
    expect(r.requests.length, 'a denied intent no longer counts').toBe(3);
  });
});
