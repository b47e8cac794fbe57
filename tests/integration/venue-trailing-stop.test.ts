/**
 * USD-M trailing stops (TRAILING_STOP_MARKET) at the venue edge: BinanceVenue
 * through the real ccxt and user-data socket against the local exchange,
 * and the sim venue on the same engine.
 *
 * Binance documentation relied on (developers.binance.com, USDⓈ-M Futures):
 *  - "New Algo Order (TRADE)", POST /fapi/v1/algoOrder (conditional orders,
 *    trailing stops included, live on the algo service since December 2025):
 *    callbackRate "Used with TRAILING_STOP_MARKET orders, min 0.1, max 5 where
 *    1 for 1%"; activatePrice "default as the latest price (supporting
 *    different workingType)"; trigger rule "SELL: the highest price after
 *    order placed >= activatePrice, and the latest price <= the highest price
 *    * (1 - callbackRate)" (BUY mirrored); "-2021 Order would immediately
 *    trigger" when a SELL's activatePrice is not above the latest price (BUY:
 *    not below).
 *  - Error Codes: -2007 INVALID_CALLBACK_RATE, "Invalid callBack rate.".
 *  - "Event: Order Update" (ORDER_TRADE_UPDATE): "AP" activation price and
 *    "cr" callback rate, pushed with TRAILING_STOP_MARKET orders (fixture
 *    tests/fixtures/binance/usdm/order-trade-update.json).
 *
 * One TestClock; waits on events. BTCUSDT tick 0.1, taker fee 0.05 %, no
 * slippage: a triggered trailing stop fills at the level it crossed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import type { VenueEvent } from '../../src/venues/venue.ts';
import { EventLog, expectVenueError, fixture, keyPaths, venueFor } from '../support/venue-harness.ts';

const d = (s: string): Dec => new Dec(s);
const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);
type OrderEvent = Extract<VenueEvent, { type: 'order' }>;

describe('BinanceVenue USD-M TRAILING_STOP_MARKET against the local exchange', () => {
  const clock = new TestClock(T0);
  let ex: LocalExchange;
  let venue: BinanceVenue;
  let log: EventLog;
  /** Every user-data payload the exchange pushed, as sent. */
  const frames: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    ex = await LocalExchange.start({ clock, funding: false });
    const hub = ex.hub as unknown as { toFutures(account: string, event: Record<string, unknown>): void };
    const toFutures = hub.toFutures.bind(hub);
    hub.toFutures = (account, event) => {
      frames.push(event);
      toFutures(account, event);
    };
    ex.setPrice('futures', 'BTCUSDT', d('50000'));
    venue = venueFor(ex, clock, 'futures');
    log = new EventLog(venue);
    await venue.start();
  });
  afterAll(async () => {
    await venue.stop();
    await ex.close();
  });

  it('SELL without activatePrice trails from the price at placement: 1 % below the high of 51000 it triggers at 50490 and closes the long', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 't-entry-1' });
    const algoNew = log.next<OrderEvent>('ALGO_UPDATE NEW', (e) => e.type === 'order' && e.order.clientOrderId === 't-1' && e.order.status === 'NEW');
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'TRAILING_STOP_MARKET', quantity: d('0.01'), callbackRate: d('1'), reduceOnly: true, clientOrderId: 't-1' });
    expect(o).toMatchObject({ clientOrderId: 't-1', type: 'TRAILING_STOP_MARKET', status: 'NEW', reduceOnly: true });
    expect(o.stopPrice?.toFixed(), 'active at once: 50000 * 0.99').toBe('49500');
    expect((await algoNew).order.type).toBe('TRAILING_STOP_MARKET');
    expect((await venue.openOrders('BTCUSDT')).map((x) => [x.clientOrderId, x.type])).toEqual([['t-1', 'TRAILING_STOP_MARKET']]);

    ex.setPrice('futures', 'BTCUSDT', d('51000'));
    expect((await venue.fetchOrder('BTCUSDT', 't-1'))?.stopPrice?.toFixed(), 'the stop follows the high: 51000 * 0.99').toBe('50490');
    ex.setPrice('futures', 'BTCUSDT', d('50600'));
    expect((await venue.fetchOrder('BTCUSDT', 't-1'))?.status, '50600 is above 50490').toBe('NEW');

    const fill = log.fillOf('t-1');
    ex.setPrice('futures', 'BTCUSDT', d('50400'));
    const ev = await fill;
    // (50490 - 50000) * 0.01 = 4.9 realized; fee 504.9 * 0.05 % = 0.25245.
    expect([ev.fill.price.toFixed(), ev.fill.quantity.toFixed(), ev.fill.side, ev.fill.realizedPnl?.toFixed(), ev.fill.fee.toFixed()]).toEqual(['50490', '0.01', 'SELL', '4.9', '0.25245']);
    const done = await venue.fetchOrder('BTCUSDT', 't-1');
    expect(done).toMatchObject({ status: 'FILLED', type: 'TRAILING_STOP_MARKET' });
    expect(done?.averagePrice?.toFixed()).toBe('50490');
    expect(await venue.positions(['BTCUSDT'])).toEqual([]);
  });

  it('the triggered order\'s ORDER_TRADE_UPDATE carries exactly the documented keys ("Event: Order Update"), AP and cr included', () => {
    const doc = fixture<{ payload: Record<string, unknown> }>('usdm/order-trade-update.json').payload;
    const trade = frames.find((f) => f.e === 'ORDER_TRADE_UPDATE' && (f.o as { c: string; x: string }).c === 't-1' && (f.o as { x: string }).x === 'TRADE');
    expect(trade, 'the trailing stop\'s fill was pushed').toBeDefined();
    expect(keyPaths(trade)).toEqual(keyPaths(doc));
    expect((trade!.o as Record<string, unknown>)).toMatchObject({ o: 'MARKET', ot: 'TRAILING_STOP_MARKET', AP: '50000', cr: '1', ps: 'BOTH' });
  });

  it('with activatePrice 52000 and 2 %: nothing trails below 52000 (a fall to 49000 does not trigger); from the high 52500 it triggers at 51450', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 't-entry-2' });
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'TRAILING_STOP_MARKET', quantity: d('0.01'), callbackRate: d('2'), activationPrice: d('52000'), reduceOnly: true, clientOrderId: 't-2' });
    expect([o.status, o.stopPrice], 'not active yet: no stop price').toEqual(['NEW', undefined]);
    ex.setPrice('futures', 'BTCUSDT', d('51500'));
    ex.setPrice('futures', 'BTCUSDT', d('49000'));
    // Had activatePrice not reached the exchange (ccxt's activationPrice is not read by the algo
    // service), trailing would have started at 50400 and this fall through 49392 would have filled.
    expect((await venue.fetchOrder('BTCUSDT', 't-2'))?.status, 'inactive below 52000').toBe('NEW');
    ex.setPrice('futures', 'BTCUSDT', d('52500'));
    expect((await venue.fetchOrder('BTCUSDT', 't-2'))?.stopPrice?.toFixed(), '52500 * 0.98').toBe('51450');
    const fill = log.fillOf('t-2');
    ex.setPrice('futures', 'BTCUSDT', d('51400'));
    expect((await fill).fill.price.toFixed()).toBe('51450');
  });

  it('refusals as Binance makes them: callbackRate 6 or 0.15 -2007 "Invalid callBack rate.", a SELL activatePrice not above the price -2021', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 't-entry-3' });
    const base = { symbol: 'BTCUSDT', side: 'SELL' as const, type: 'TRAILING_STOP_MARKET' as const, quantity: d('0.01'), reduceOnly: true };
    const big = await expectVenueError(venue.place({ ...base, callbackRate: d('6'), clientOrderId: 't-big' }), 'REJECTED', -2007);
    expect(big.message).toContain('Invalid callBack rate.');
    await expectVenueError(venue.place({ ...base, callbackRate: d('0.15'), clientOrderId: 't-fine' }), 'REJECTED', -2007);
    await expectVenueError(venue.place({ ...base, callbackRate: d('1'), activationPrice: d('51000'), clientOrderId: 't-below' }), 'REJECTED', -2021);
    await expectVenueError(venue.place({ ...base, clientOrderId: 't-no-rate' }), 'REJECTED');
    expect(await venue.openOrders('BTCUSDT')).toEqual([]);
  });
});

describe('SimVenue TRAILING_STOP_MARKET on candles (the same engine)', () => {
  const clock = new TestClock(T0);
  let venue: SimVenue;

  beforeAll(async () => {
    venue = new SimVenue({ market: 'futures', clock, instruments: catalog('futures'), quoteAsset: 'USDT', balance: d('10000') });
    await venue.start();
    venue.engine.setLastPrice('futures', 'BTCUSDT', d('50000'));
  });

  it('within a candle the adverse extreme comes first: a SELL sees the low before the high can raise its stop', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 'e1' });
    const log = new EventLog(venue);
    await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'TRAILING_STOP_MARKET', quantity: d('0.01'), callbackRate: d('1'), reduceOnly: true, clientOrderId: 'ts1' });
    // open 50000, low 49900 (above 49500), then the high 51000 raises the stop to 50490; close 50800.
    venue.onCandle('BTCUSDT', { open: 50000, high: 51000, low: 49900, close: 50800, volume: 1 });
    expect((await venue.fetchOrder('BTCUSDT', 'ts1'))?.stopPrice?.toFixed()).toBe('50490');
    const fill = log.fillOf('ts1');
    // The low 50300 crosses 50490 before the candle's high 50900 could move the stop again.
    venue.onCandle('BTCUSDT', { open: 50800, high: 50900, low: 50300, close: 50500, volume: 1 });
    expect((await fill).fill.price.toFixed()).toBe('50490');
    expect(await venue.positions()).toEqual([]);
  });

  it('refuses a callbackRate outside 0.1..5 as the engine code INVALID_CALLBACK_RATE', async () => {
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'TRAILING_STOP_MARKET', quantity: d('0.01'), callbackRate: d('0.05'), clientOrderId: 'ts-small' }), 'REJECTED', 'INVALID_CALLBACK_RATE');
  });
});
