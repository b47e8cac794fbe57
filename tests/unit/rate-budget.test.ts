/**
 * The request budget (src/venues/binance/rate-budget.ts) on an injected
 * clock. The figures and rules are Binance's:
 *  - spot LIMITS (weight, unfilled order count, 429):
 *    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
 *  - spot unfilled order count (fills take orders off the count; intervals
 *    reset on fixed boundaries, DAY at 00:00 UTC):
 *    https://github.com/binance/binance-spot-api-docs/blob/master/faqs/order_count_decrement.md
 *  - interval accounting ("10 SECOND intervals reset at 00, 10, 20...
 *    seconds of each minute"):
 *    https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/rate-limits
 *  - USD-M LIMITS (IP weight, order rate limits, X-MBX-ORDER-COUNT-*):
 *    https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits
 *  - USD-M default figures (2,400 weight/min, 1,200 orders/min, 300/10 s):
 *    https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3
 *  - USD-M New Order "1 on 10s order rate limit; 1 on 1min order rate limit;
 *    0 on IP rate limit", New Algo Order "0 on IP rate limit":
 *    https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS, headerOf, orderCost, RateBudget, rateLimitsSchema, requestCost, type RateLimit } from '../../src/venues/binance/rate-budget.ts';
import { fixture } from '../support/venue-harness.ts';

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

function clockAt(t: number): { now: () => number; set: (t: number) => void } {
  let now = t;
  return { now: () => now, set: (x) => (now = x) };
}

const orders10s = (limit: number): RateLimit => ({ rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit });
const weight1m = (limit: number): RateLimit => ({ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit });

describe('Binance rate limits: figures and headers', () => {
  it('defaults are the published figures, and each limit names its header', () => {
    expect(DEFAULT_RATE_LIMITS.spot, 'spot: 6,000 weight/min, 100 orders/10 s, 200,000/day, 300,000 raw requests/5 min').toEqual([
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 100 },
      { rateLimitType: 'ORDERS', interval: 'DAY', intervalNum: 1, limit: 200_000 },
      { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 300_000 },
    ]);
    expect(DEFAULT_RATE_LIMITS.futures, 'USD-M: 2,400 weight/min, 1,200 orders/min, 300 orders/10 s').toEqual([
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 2400 },
      { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
    ]);
    expect(DEFAULT_RATE_LIMITS.spot.map(headerOf)).toEqual(['X-MBX-USED-WEIGHT-1M', 'X-MBX-ORDER-COUNT-10S', 'X-MBX-ORDER-COUNT-1D', undefined]);
    expect(DEFAULT_RATE_LIMITS.futures.map(headerOf)).toEqual(['X-MBX-USED-WEIGHT-1M', 'X-MBX-ORDER-COUNT-1M', 'X-MBX-ORDER-COUNT-10S']);
  });

  it("parses exchangeInfo's rateLimits as documented (enums.md examples), dropping types it does not budget", () => {
    // binance-spot-api-docs enums.md "Rate limiters (rateLimitType)" examples, plus the WebSocket API's CONNECTIONS.
    const raw = [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 1, limit: 10 },
      { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 61000 },
      { rateLimitType: 'CONNECTIONS', interval: 'MINUTE', intervalNum: 5, limit: 300 },
    ];
    expect(rateLimitsSchema.parse(raw).map((l) => l.rateLimitType)).toEqual(['REQUEST_WEIGHT', 'ORDERS', 'RAW_REQUESTS']);
    expect(rateLimitsSchema.parse([{ rateLimitType: 'ORDERS', interval: 'WEEK', intervalNum: 1, limit: 1 }]), 'an interval Binance does not define is dropped').toEqual([]);
  });

  it('the documented exchangeInfo examples (fixtures): USD-M lists weight and the 1-minute order limit, the 10 s limit (FAQ) stays; spot shows a placeholder', () => {
    const usdm = fixture<{ url: string; payload: { rateLimits: unknown } }>('usdm/exchange-info.json');
    expect(usdm.url).toBe('https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information');
    const b = new RateBudget('futures', () => T0);
    b.setLimits(rateLimitsSchema.parse(usdm.payload.rateLimits));
    expect(b.limits()).toEqual([
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 2400 },
      { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
    ]);
    const spot = fixture<{ payload: { rateLimits: unknown } }>('spot/exchange-info.json');
    expect(rateLimitsSchema.parse(spot.payload.rateLimits), 'rest-api.md shows `{}` ("All limits are optional"): nothing to take, the defaults stay').toEqual([]);
  });
});

describe('RateBudget: orders', () => {
  it('admits orders up to the 10 s limit, refuses the next at once until the window ends, then admits again', () => {
    const c = clockAt(T0 + 3_000);
    const b = new RateBudget('futures', c.now, [orders10s(10), weight1m(2400)]);
    const admitted = Array.from({ length: 10 }, () => b.admit(orderCost('futures', 'order')));
    expect(admitted.map((a) => a.kind)).toEqual(Array(10).fill('go'));
    const refused = b.admit(orderCost('futures', 'order'));
    expect(refused, 'the 11th: refused, with the time left in the 00:00:00-00:00:10 window').toMatchObject({ kind: 'refuse', retryAfterMs: 7_000, used: 10, limit: { rateLimitType: 'ORDERS', limit: 10 } });
    expect(b.admit(orderCost('futures', 'conditional')).kind, 'a USD-M algo order takes no order count').toBe('go');
    c.set(T0 + 10_000);
    expect(b.admit(orderCost('futures', 'order')).kind, 'orders still unanswered may land in the next window: they count there too').toBe('refuse');
    for (const a of admitted) if (a.kind === 'go') a.ticket.done();
    expect(b.admit(orderCost('futures', 'order')).kind, 'answered: a new window, 10 more').toBe('go');
  });

  it('an order is refused, never told to wait, when the weight is what is short (spot: New order weight 1)', () => {
    const c = clockAt(T0);
    const b = new RateBudget('spot', c.now, [weight1m(20), orders10s(100)]);
    expect(b.admit({ weight: 20, orders: 0 }).kind).toBe('go');
    expect(b.admit(orderCost('spot', 'order'))).toMatchObject({ kind: 'refuse', retryAfterMs: 60_000, limit: { rateLimitType: 'REQUEST_WEIGHT' } });
  });

  it('an OCO takes two orders of the spot count', () => {
    const b = new RateBudget('spot', () => T0, [orders10s(5), weight1m(6000)]);
    for (let i = 0; i < 4; i++) b.admit(orderCost('spot', 'order'));
    expect(b.admit(orderCost('spot', 'oco')).kind, '4 + 2 > 5').toBe('refuse');
    expect(b.admit(orderCost('spot', 'order')).kind, '4 + 1 = 5').toBe('go');
  });

  it("spot counts unfilled orders: the header's lower count (fills took orders off) is believed; USD-M's is never lower than ours", () => {
    const c = clockAt(T0);
    const spot = new RateBudget('spot', c.now, [orders10s(10), weight1m(6000)]);
    for (let i = 0; i < 10; i++) spot.admit(orderCost('spot', 'order'));
    expect(spot.admit(orderCost('spot', 'order')).kind).toBe('refuse');
    spot.observe({ 'x-mbx-order-count-10s': '3' });
    // The ten tickets are still in flight, so they count on top of what Binance reported.
    expect(spot.view().find((v) => v.rateLimitType === 'ORDERS')?.used).toBe(13);

    const fut = new RateBudget('futures', c.now, [orders10s(10), weight1m(2400)]);
    const tickets = Array.from({ length: 10 }, () => fut.admit(orderCost('futures', 'order')));
    for (const t of tickets) if (t.kind === 'go') t.ticket.done();
    fut.observe({ 'X-MBX-ORDER-COUNT-10S': '3' });
    expect(fut.admit(orderCost('futures', 'order')).kind, 'USD-M counts every order: a lower header does not free the window').toBe('refuse');

    const spot2 = new RateBudget('spot', c.now, [orders10s(10), weight1m(6000)]);
    const t2 = Array.from({ length: 10 }, () => spot2.admit(orderCost('spot', 'order')));
    for (const t of t2) if (t.kind === 'go') t.ticket.done();
    spot2.observe({ 'X-MBX-ORDER-COUNT-10S': '3' });
    expect(spot2.view().find((v) => v.rateLimitType === 'ORDERS')?.used, 'answered: the header is the count').toBe(3);
    expect(spot2.admit(orderCost('spot', 'order')).kind, 'seven orders filled: room again').toBe('go');
  });

  it("Binance's higher count (another client on the account or IP) is adopted", () => {
    const b = new RateBudget('futures', () => T0, [orders10s(10), weight1m(100)]);
    b.observe({ 'X-MBX-USED-WEIGHT-1M': '95', 'X-MBX-ORDER-COUNT-10S': '10' });
    expect(b.admit(orderCost('futures', 'order')).kind).toBe('refuse');
    expect(b.admit({ weight: 10, orders: 0 })).toMatchObject({ kind: 'wait', ms: 60_000, used: 95 });
  });
});

describe('RateBudget: weight', () => {
  it('a request waits for the minute to end when its weight does not fit; in-flight requests count; a request larger than a whole window goes when it is empty', () => {
    const c = clockAt(T0 + 45_000);
    const b = new RateBudget('futures', c.now, [weight1m(100)]);
    const first = b.admit({ weight: 60, orders: 0 });
    expect(first.kind).toBe('go');
    expect(b.admit({ weight: 40, orders: 0 }).kind, '60 + 40 = 100').toBe('go');
    expect(b.admit({ weight: 1, orders: 0 }), 'full: wait the 15 s left of the minute').toMatchObject({ kind: 'wait', ms: 15_000, used: 100 });
    if (first.kind === 'go') first.ticket.done();
    expect(b.admit({ weight: 1, orders: 0 }).kind, 'answered is still used this minute').toBe('wait');
    c.set(T0 + 60_000);
    expect(b.admit({ weight: 1, orders: 0 }).kind, 'a new minute; the 40 still in flight are carried over (they may land in it)').toBe('go');
    expect(b.view()[0]?.used).toBe(41);
    expect(new RateBudget('futures', c.now, [weight1m(100)]).admit({ weight: 500, orders: 0 }).kind, 'waiting would not make it fit').toBe('go');
  });

  it('new limits (exchangeInfo at start) replace the defaults and keep the counts of the limits that stay', () => {
    const b = new RateBudget('futures', () => T0);
    expect(b.limitsFrom).toBe('default');
    b.admit({ weight: 50, orders: 1 });
    b.setLimits([weight1m(60), orders10s(1)]);
    expect(b.limitsFrom).toBe('exchangeInfo');
    expect(b.view().map((v) => [v.rateLimitType, v.intervalNum, v.interval, v.limit, v.used]), 'the 1-minute order limit it did not list stays at its default').toEqual([
      ['REQUEST_WEIGHT', 1, 'MINUTE', 60, 50],
      ['ORDERS', 10, 'SECOND', 1, 1],
      ['ORDERS', 1, 'MINUTE', 1200, 1],
    ]);
    expect(b.admit(orderCost('futures', 'order')).kind).toBe('refuse');
  });
});

describe('requestCost: Binance weights from ccxt endpoint costs', () => {
  it('spot costs are 0.2 per weight, USD-M costs are the weight; order placements cost what Binance documents, not what ccxt spaces them by', () => {
    expect(requestCost('spot', 'private', 'GET', 'account', 4), 'GET /api/v3/account: weight 20').toEqual({ weight: 20, orders: 0 });
    expect(requestCost('spot', 'private', 'GET', 'openOrders', 16), 'GET /api/v3/openOrders, no symbol: 80').toEqual({ weight: 80, orders: 0 });
    expect(requestCost('futures', 'fapiPrivate', 'GET', 'openOrders', 40), 'GET /fapi/v1/openOrders, no symbol: 40').toEqual({ weight: 40, orders: 0 });
    expect(requestCost('futures', 'fapiPrivateV3', 'GET', 'account', 1), 'GET /fapi/v3/account: Binance 5 where ccxt says 1').toEqual({ weight: 5, orders: 0 });
    expect(requestCost('futures', 'fapiPrivate', 'POST', 'order', 4), 'POST /fapi/v1/order: ccxt cost 4, Binance 0 weight and 1 order').toEqual({ weight: 0, orders: 1 });
    expect(requestCost('futures', 'fapiPrivate', 'POST', 'algoOrder', 1)).toEqual({ weight: 0, orders: 0 });
    expect(requestCost('futures', 'fapiPrivate', 'POST', 'batchOrders', 5, { batchOrders: JSON.stringify([{}, {}, {}]) })).toEqual({ weight: 0, orders: 3 });
    expect(requestCost('spot', 'private', 'POST', 'order', 0.2)).toEqual({ weight: 1, orders: 1 });
    expect(requestCost('spot', 'private', 'POST', 'orderList/oco', 0.2)).toEqual({ weight: 1, orders: 2 });
    expect(requestCost('spot', 'private', 'DELETE', 'order', 0.2), 'a cancel places nothing').toEqual({ weight: 1, orders: 0 });
  });
});
