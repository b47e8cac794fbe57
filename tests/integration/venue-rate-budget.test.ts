/**
 * Rate limits as Binance publishes them (issue 18), through the real ccxt
 * against the local exchange on 127.0.0.1, both on one TestClock.
 *
 * Binance counts request weight per IP and orders per account in fixed
 * windows and reports both in response headers; exchangeInfo `rateLimits`
 * names the limits:
 *  - USD-M: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits
 *    (2,400 weight/min; 1,200 orders/min and 300 per 10 s:
 *    https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3);
 *    New Order costs "1 on 10s order rate limit; 1 on 1min order rate limit;
 *    0 on IP rate limit" (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api);
 *  - spot: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
 *    (an OCO list adds 2 to the unfilled order count: rest-api.md "New Order list - OCO");
 *  - an order past the limit is refused with 429 and -1015 "Too many new
 *    orders; current limit is %s orders per %s." (errors.md,
 *    https://github.com/binance/binance-spot-api-docs/blob/master/faqs/order_count_decrement.md).
 *
 * ccxt's generic throttle (enableRateLimit) spaced every USD-M order 100 ms
 * apart across all symbols (cost 4 at 25 ms a unit), so 200 symbols
 * signalling together took 20 s to send. The venue now budgets by the
 * published limits: the 200 go at once, an order past the order limit is
 * refused at once and never sent, other requests wait for weight.
 */
import ccxt from 'ccxt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { createFuturesClient } from '../../src/venues/binance/ccxt-clients.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { expectVenueError, rawClients, thrown, venueFor } from '../support/venue-harness.ts';

const d = (s: string): Dec => new Dec(s);
/** Three seconds into a 10 s order window and into a minute, so neither ends during a test unless it says so. */
const T0 = Date.UTC(2030, 0, 1, 0, 0, 3);
const SYMBOLS = 200;
const symbolAt = (i: number): string => `S${String(i).padStart(3, '0')}USDT`;

function manySymbols(): Instrument[] {
  const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
  // Distinct base assets: ccxt keys markets by BASE/QUOTE:SETTLE.
  return Array.from({ length: SYMBOLS }, (_, i) => ({ ...algo, symbol: symbolAt(i), baseAsset: `S${String(i).padStart(3, '0')}` }));
}

let ex: LocalExchange | undefined;
let venue: BinanceVenue | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await venue?.stop();
  await ex?.close();
  venue = undefined;
  ex = undefined;
});

describe('USD-M: orders budgeted by the published order limits, not spaced by ccxt', () => {
  it('200 orders on 200 symbols go out at once: ccxt never throttles, and the budget admits all 200 within one 10 s window (300 allowed)', async () => {
    const clock = new TestClock(T0);
    ex = await LocalExchange.start({ clock, funding: false, instruments: manySymbols() });
    for (let i = 0; i < SYMBOLS; i++) ex.setPrice('futures', symbolAt(i), d('0.25'));
    expect(createFuturesClient({ spotBase: ex.url, futuresBase: ex.url }).enableRateLimit, "the project's ccxt clients are built without ccxt's throttle").toBe(false);
    const v = venueFor(ex, clock, 'futures', { userStream: false, enableRateLimit: undefined });
    venue = v;
    await v.start();
    // ccxt's fetch2 awaits this.throttle(cost), which is its Throttler's throttle, when enableRateLimit is on: never here.
    const throttle = vi.spyOn(ccxt.Throttler.prototype, 'throttle');

    const placed = await Promise.all(Array.from({ length: SYMBOLS }, (_, i) => v.place({ symbol: symbolAt(i), side: 'BUY', type: 'MARKET', quantity: d('40'), clientOrderId: `burst-${i}` })));

    expect(placed.map((o) => o.status), 'all 200 filled').toEqual(Array(SYMBOLS).fill('FILLED'));
    expect(throttle, 'ccxt slept before none of them').not.toHaveBeenCalled();
    const usage = v.usage();
    expect(usage.orderCount10s, "the exchange counted all 200 in one of its 10 s windows (X-MBX-ORDER-COUNT-10S)").toBe(SYMBOLS);
    expect(usage.budget?.filter((b) => b.rateLimitType === 'ORDERS').map((b) => [b.intervalNum, b.interval, b.limit, b.used]), "the budget, from exchangeInfo: 200 of 300 per 10 s, 200 of 1,200 a minute").toEqual([
      [1, 'MINUTE', 1200, SYMBOLS],
      [10, 'SECOND', 300, SYMBOLS],
    ]);
  });

  it('exchangeInfo says 10 orders per 10 s: the 11th is refused at once (RATE_LIMITED, ORDER_BUDGET) and never reaches the exchange; reads go on; the next window takes orders again', async () => {
    const clock = new TestClock(T0);
    ex = await LocalExchange.start({ clock, funding: false, orderLimits: { futures: [{ interval: 'MINUTE', intervalNum: 1, limit: 1200 }, { interval: 'SECOND', intervalNum: 10, limit: 10 }] } });
    ex.setPrice('futures', 'BTCUSDT', d('50000'));
    const v = venueFor(ex, clock, 'futures', { userStream: false });
    venue = v;
    await v.start();
    expect(v.usage().budget?.find((b) => b.rateLimitType === 'ORDERS' && b.interval === 'SECOND')?.limit, 'the limit exchangeInfo gave').toBe(10);
    const order = (id: string): Parameters<BinanceVenue['place']>[0] => ({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.003'), clientOrderId: id });

    await Promise.all(Array.from({ length: 10 }, (_, i) => v.place(order(`ten-${i}`))));
    const refused = await expectVenueError(v.place(order('eleventh')), 'RATE_LIMITED', 'ORDER_BUDGET');
    expect(refused.details.retryAfterMs, 'until the 00:00:10 window ends').toBe(7_000);
    expect(await v.fetchOrder('BTCUSDT', 'eleventh'), 'the exchange never saw it').toBeUndefined();
    expect(v.usage().orderCount10s, 'the exchange counted ten').toBe(10);
    expect(v.sendingHeld(), 'a local refusal holds nothing: reads and cancels go on').toBeUndefined();
    await expect(v.account()).resolves.toBeDefined();

    // The local exchange refuses what Binance refuses: an 11th order from a client without the budget.
    const raw = rawClients(ex, clock).futures;
    const e = await thrown(raw.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.003, undefined, { clientOrderId: 'raw-eleventh' }));
    expect(e.message, '429, -1015').toContain('"code":-1015');
    expect(e.message).toContain('Too many new orders; current limit is 10 orders per 10 SECOND.');

    clock.advanceBy(7_000);
    await expect(v.place(order('next-window')), 'a new 10 s window').resolves.toMatchObject({ status: 'FILLED' });
  });
});

describe('spot: the unfilled order count, OCO lists counting two', () => {
  it('with 5 orders per 10 s, four orders leave no room for an OCO (2) but room for one order', async () => {
    const clock = new TestClock(T0);
    ex = await LocalExchange.start({ clock, funding: false, orderLimits: { spot: [{ interval: 'SECOND', intervalNum: 10, limit: 5 }, { interval: 'DAY', intervalNum: 1, limit: 200_000 }] } });
    ex.setPrice('spot', 'BTCUSDT', d('20000'));
    const v = venueFor(ex, clock, 'spot', { userStream: false });
    venue = v;
    await v.start();
    for (let i = 0; i < 4; i++) await v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', price: d('10000'), quantity: d('0.001'), clientOrderId: `rest-${i}` });
    await expectVenueError(
      v.placeOco({ symbol: 'BTCUSDT', side: 'SELL', quantity: d('0.001'), listClientOrderId: 'oco', limit: { clientOrderId: 'oco-tp', price: d('30000') }, stop: { clientOrderId: 'oco-sl', stopPrice: d('15000'), price: d('14900') } }),
      'RATE_LIMITED',
      'ORDER_BUDGET',
    );
    expect(await v.fetchOrder('BTCUSDT', 'oco-tp'), 'not sent').toBeUndefined();
    await expect(v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', price: d('10000'), quantity: d('0.001'), clientOrderId: 'fifth' })).resolves.toMatchObject({ status: 'NEW' });
    expect(v.usage().orderCount10s).toBe(5);
  });
});

describe('request weight: a read waits for the window instead of drawing a 429', () => {
  it('exchangeInfo says 30 weight a minute: the account read that would pass it waits for the next minute, then goes; nothing is refused', async () => {
    const clock = new TestClock(T0);
    ex = await LocalExchange.start({ clock, funding: false, weightLimit: { futures: 30 } });
    const lines: string[] = [];
    let parked: (() => void) | undefined;
    const waited = new Promise<void>((resolve) => (parked = resolve));
    const { logger } = createLogger({ level: 'warn', format: 'json', stdout: { write: (l: string) => (lines.push(l), l.includes('request weight budget used') && parked?.()) } });
    const v = venueFor(ex, clock, 'futures', { userStream: false, logger });
    venue = v;
    await v.start();
    const used = (): number => v.usage().budget!.find((b) => b.rateLimitType === 'REQUEST_WEIGHT')!.used;
    expect(v.usage().budget?.find((b) => b.rateLimitType === 'REQUEST_WEIGHT')?.limit).toBe(30);
    // GET /fapi/v3/account: weight 5.
    while (used() + 5 <= 30) await v.account();
    const usedBefore = used();

    let settled = false;
    const next = v.account().finally(() => (settled = true));
    await waited;
    expect(settled, 'parked until the minute ends').toBe(false);
    expect(v.sendingHeld(), 'no 429 was drawn').toBeUndefined();
    expect(JSON.parse(lines.find((l) => l.includes('request weight budget used'))!)).toMatchObject({ waitMs: 57_000, used: usedBefore });

    clock.advanceBy(57_000);
    await expect(next, 'the new minute: it goes').resolves.toBeDefined();
    expect(v.usage().usedWeight1m, "the exchange's count for the new minute").toBe(5);
  });
});
