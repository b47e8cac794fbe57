/**
 * The "answered 5xx, executed later" fault of the local exchange, through the
 * real ccxt clients: the placement is answered at once with Binance's
 * unknown-outcome error and the order is placed delayMs later on the
 * exchange's clock, unless that is after timestamp + recvWindow, when
 * Binance's matching engine would no longer take it.
 *
 * Docs:
 *  - spot Timing security (the second check, before forwarding to the matching engine):
 *    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type
 *    (github.com/binance/binance-spot-api-docs rest-api.md#timing-security); 5XX = UNKNOWN and
 *    -1007 TIMEOUT: rest-api.md "HTTP Return Codes", errors.md.
 *  - USD-M: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
 *    (#timing-security; "HTTP 503 Status: Message Variants & Handling", variant A).
 *  - newClientOrderId "A unique id among open orders": spot -2010 "Duplicate order sent.",
 *    USD-M -4116 "ClientOrderId is duplicated." (USD-M error codes), accepted again once the
 *    first order is final.
 *
 * The exchange runs on a TestClock; ccxt's timestamps are read from it
 * (see follow), so "later" is an advance of the clock, not a sleep.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { createFuturesClient, createSpotClient } from '../../src/venues/binance/ccxt-clients.ts';

const BTC = 'BTC/USDT:USDT';
let ex: LocalExchange | undefined;
afterEach(async () => {
  await ex?.close();
  ex = undefined;
});

async function start(): Promise<{ ex: LocalExchange; clock: TestClock }> {
  const clock = new TestClock(Date.UTC(2030, 0, 1, 0, 0, 30));
  ex = await LocalExchange.start({ clock, funding: false });
  ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
  ex.engine.setMarkPrice('BTCUSDT', new Dec('50000'));
  ex.setPrice('spot', 'BTCUSDT', new Dec('20000'));
  return { ex, clock };
}

/**
 * ccxt signs with timestamp = nonce() = milliseconds() - options.timeDifference;
 * here nonce() reads the exchange's TestClock instead of the wall clock, so
 * every timestamp is exact (timeDifference still shifts it).
 */
function follow<T extends { options: Record<string, unknown>; nonce(): number }>(client: T, clock: TestClock): T {
  client.options['timeDifference'] = 0;
  client.nonce = () => clock.now() - (client.options['timeDifference'] as number);
  return client;
}


function clients(x: LocalExchange, clock: TestClock, recvWindowMs = 5000) {
  const o = { spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false, recvWindowMs };
  return { spot: follow(createSpotClient(o), clock), fut: follow(createFuturesClient(o), clock) };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail');
}

function ordersWith(x: LocalExchange, market: 'spot' | 'futures', cid: string) {
  return x.engine.allOrders(x.accountOf(DEFAULT_ACCOUNT.apiKey), market, 'BTCUSDT', {}).filter((o) => o.clientOrderId === cid);
}

describe('lateExecute: 5xx now, the order later', () => {
  it('USD-M: 503 without a code (the gateway body), the order appears 2 s later, inside recvWindow', async () => {
    const { ex: x, clock } = await start();
    const { fut } = clients(x, clock);
    x.faults.lateExecute({ delayMs: 2000, pathPrefix: '/fapi/v1/order' });
    const e = await failure(fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'late-1' }));
    // Documented variant A: "Unknown error, please check your request or try again later." = execution UNKNOWN.
    // No code in the body, so ccxt falls back to its HTTP-status map: 503 -> ExchangeNotAvailable.
    expect(e.constructor.name, e.message).toBe('ExchangeNotAvailable');
    const body = JSON.parse(String(fut.last_http_response)) as Record<string, unknown>;
    expect(body).toEqual({ timestamp: clock.now(), path: '/fapi/v1/order', msg: 'Unknown error, please check your request or try again later.' });
    expect(ordersWith(x, 'futures', 'late-1'), 'not yet placed').toHaveLength(0);
    const early = await failure(fut.fetchOrder('', BTC, { clientOrderId: 'late-1' }));
    expect(early.constructor.name, 'a lookup before the engine got to it: -2013').toBe('OrderNotFound');

    clock.advanceBy(1999);
    expect(ordersWith(x, 'futures', 'late-1')).toHaveLength(0);
    clock.advanceBy(1);
    const found = await fut.fetchOrder('', BTC, { clientOrderId: 'late-1' });
    expect([found.clientOrderId, found.status, found.amount, found.price]).toEqual(['late-1', 'open', 0.01, 49000]);
    expect(x.faults.lateOutcomes).toEqual([{ path: '/fapi/v1/order', clientOrderId: 'late-1', at: clock.now(), placed: true }]);
  });

  it('USD-M: a delay beyond timestamp + recvWindow never places the order; a larger recvWindow lets the same delay through', async () => {
    const { ex: x, clock } = await start();
    const { fut } = clients(x, clock);
    x.faults.lateExecute({ delayMs: 6000 });
    await failure(fut.createOrder(BTC, 'market', 'buy', 0.01, undefined, { clientOrderId: 'late-too' }));
    clock.advanceBy(10_000);
    expect(ordersWith(x, 'futures', 'late-too'), 'refused by the matching engine gate: serverTime - timestamp > recvWindow').toHaveLength(0);
    expect(x.faults.lateOutcomes.map((o) => [o.clientOrderId, o.placed, o.reason])).toEqual([['late-too', false, 'RECV_WINDOW']]);
    expect(await fut.fetchPositions([BTC]).then((p) => p.map((q) => q.contracts ?? 0).filter((c) => c !== 0)), 'no position').toEqual([]);

    // recvWindow 10 000 (sent by ccxt as a parameter): 6 s is inside it.
    const wide = clients(x, clock, 10_000).fut;
    x.faults.lateExecute({ delayMs: 6000 });
    await failure(wide.createOrder(BTC, 'market', 'buy', 0.01, undefined, { clientOrderId: 'late-wide' }));
    clock.advanceBy(6000);
    expect(ordersWith(x, 'futures', 'late-wide').map((o) => o.status)).toEqual(['FILLED']);
  });

  it('USD-M algo orders (POST /fapi/v1/algoOrder) are executed late the same way, under their clientAlgoId', async () => {
    const { ex: x, clock } = await start();
    const { fut } = clients(x, clock);
    x.faults.lateExecute({ delayMs: 500, pathPrefix: '/fapi/v1/algoOrder' });
    await failure(fut.createOrder(BTC, 'STOP_MARKET', 'sell', 0.01, undefined, { triggerPrice: 45000, clientOrderId: 'late-stop' }));
    expect(ordersWith(x, 'futures', 'late-stop')).toHaveLength(0);
    clock.advanceBy(500);
    const algo = await fut.fetchOrder('', BTC, { clientOrderId: 'late-stop', trigger: true });
    expect([algo.clientOrderId, algo.status, algo.triggerPrice]).toEqual(['late-stop', 'open', 45000]);
  });

  it('spot: 503 with -1007 TIMEOUT ("execution status unknown"), placed later; beyond recvWindow never', async () => {
    const { ex: x, clock } = await start();
    const { spot } = clients(x, clock);
    x.faults.lateExecute({ delayMs: 3000, pathPrefix: '/api/v3/order' });
    const e = await failure(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'late-s1' }));
    expect(JSON.parse(String(spot.last_http_response))).toEqual({ code: -1007, msg: 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.' });
    expect(e.constructor.name, `${e.message}: ccxt's spot map says -1007 is a RequestTimeout`).toBe('RequestTimeout');
    clock.advanceBy(3000);
    expect(ordersWith(x, 'spot', 'late-s1').map((o) => o.status)).toEqual(['NEW']);

    // The boundary: serverTime - timestamp <= recvWindow is forwarded, one ms more is not.
    x.faults.lateExecute({ delayMs: 5000, pathPrefix: '/api/v3/order' });
    await failure(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'late-s2' }));
    x.faults.lateExecute({ delayMs: 5001, pathPrefix: '/api/v3/order' });
    await failure(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'late-s3' }));
    clock.advanceBy(5001);
    expect(ordersWith(x, 'spot', 'late-s2').map((o) => o.status), 'held 5 s: placed').toEqual(['NEW']);
    expect(ordersWith(x, 'spot', 'late-s3'), 'held 5.001 s: never').toHaveLength(0);
  });

  it('a client order id re-sent while the late order is still on its way: both execute when the first fills at once (why the bot must not re-send inside the window)', async () => {
    const { ex: x, clock } = await start();
    const { fut } = clients(x, clock);
    x.faults.lateExecute({ delayMs: 2000 });
    await failure(fut.createOrder(BTC, 'market', 'buy', 0.002, undefined, { clientOrderId: 'twice' }));
    // The re-send arrives first and fills at once; the late one is then not a duplicate
    // of any OPEN order, so Binance takes it too.
    await fut.createOrder(BTC, 'market', 'buy', 0.002, undefined, { clientOrderId: 'twice' });
    clock.advanceBy(2000);
    expect(ordersWith(x, 'futures', 'twice').map((o) => o.status)).toEqual(['FILLED', 'FILLED']);
    const pos = (await fut.fetchPositions([BTC])).find((p) => (p.contracts ?? 0) !== 0);
    expect(pos?.contracts, 'two fills: 0.004 instead of 0.002').toBe(0.004);
  });
});

describe('timing and client order ids, as Binance refuses them', () => {
  it('-1021 at arrival: a timestamp older than recvWindow, or 1 s or more ahead of the server (ccxt: InvalidNonce)', async () => {
    const { ex: x, clock } = await start();
    const { fut, spot } = clients(x, clock);
    fut.options['timeDifference'] = (fut.options['timeDifference'] as number) + 5100;
    const old = await failure(fut.createOrder(BTC, 'market', 'buy', 0.01));
    expect([old.constructor.name, JSON.parse(String(fut.last_http_response))]).toEqual(['InvalidNonce', { code: -1021, msg: 'Timestamp for this request is outside of the recvWindow.' }]);
    // "timestamp < serverTime + 1000" is processed: 999 ms ahead passes, 1000 does not.
    spot.options['timeDifference'] = -999;
    expect((await spot.fetchBalance()).info).toBeDefined();
    spot.options['timeDifference'] = -1000;
    const ahead = await failure(spot.fetchBalance());
    expect([ahead.constructor.name, JSON.parse(String(spot.last_http_response))]).toEqual(['InvalidNonce', { code: -1021, msg: "Timestamp for this request was 1000ms ahead of the server's time." }]);
    expect(x.engine.allOrders(x.accountOf(DEFAULT_ACCOUNT.apiKey), 'futures', 'BTCUSDT', {}), 'nothing placed').toEqual([]);
  });

  it('a client order id in use by an open order is refused (spot -2010, USD-M -4116) and accepted again once that order is final', async () => {
    const { ex: x, clock } = await start();
    const { fut, spot } = clients(x, clock);
    const f1 = await fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'reuse' });
    const dupF = await failure(fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'reuse' }));
    expect([dupF.constructor.name, JSON.parse(String(fut.last_http_response))]).toEqual(['InvalidOrder', { code: -4116, msg: 'ClientOrderId is duplicated.' }]);
    await fut.cancelOrder(String(f1.id), BTC);
    expect((await fut.createOrder(BTC, 'market', 'buy', 0.01, undefined, { clientOrderId: 'reuse' })).status, 'accepted after the first was cancelled').toBe('closed');
    expect((await fut.createOrder(BTC, 'market', 'sell', 0.01, undefined, { clientOrderId: 'reuse' })).status, 'and after a fill').toBe('closed');

    const s1 = await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'reuse' });
    const dupS = await failure(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'reuse' }));
    expect([dupS.constructor.name, JSON.parse(String(spot.last_http_response))]).toEqual(['InvalidOrder', { code: -2010, msg: 'Duplicate order sent.' }]);
    await spot.cancelOrder(String(s1.id), 'BTC/USDT');
    expect((await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'reuse' })).status).toBe('open');
  });
});

describe('control API', () => {
  it('POST /control/order/late-execute sets the fault; /control/order/late-outcomes reports what became of each', async () => {
    const { ex: x, clock } = await start();
    const { fut } = clients(x, clock);
    const post = async (path: string, body: unknown): Promise<unknown> => (await fetch(`${x.urls().control}${path}`, { method: 'POST', body: JSON.stringify(body) })).json();
    expect(await post('/order/late-execute', { count: 2, delayMs: 1000, status: 502, code: -1006, msg: 'An unexpected response was received from the message bus. Execution status unknown.' })).toEqual({ ok: true });
    await failure(fut.createOrder(BTC, 'market', 'buy', 0.01, undefined, { clientOrderId: 'ctl-1' }));
    expect(JSON.parse(String(fut.last_http_response))).toEqual({ code: -1006, msg: 'An unexpected response was received from the message bus. Execution status unknown.' });
    clock.advanceBy(1000);
    await failure(fut.createOrder(BTC, 'market', 'buy', 0.01, undefined, { clientOrderId: 'ctl-2' }));
    clock.advanceBy(7000);
    expect(await post('/order/late-outcomes', {})).toEqual({
      outcomes: [
        { path: '/fapi/v1/order', clientOrderId: 'ctl-1', at: Date.UTC(2030, 0, 1, 0, 0, 31), placed: true },
        { path: '/fapi/v1/order', clientOrderId: 'ctl-2', at: Date.UTC(2030, 0, 1, 0, 0, 32), placed: true },
      ],
    });
  });
});
