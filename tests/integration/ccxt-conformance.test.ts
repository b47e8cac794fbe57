/**
 * Conformance of the local exchange with what the REAL ccxt (4.5.84) expects
 * from Binance: the project's client factory (createSpotClient /
 * createFuturesClient) talks to LocalExchange on 127.0.0.1, and every value
 * that involves money is checked against a hand computation.
 *
 * Instruments are the shipped catalog: spot BTCUSDT tick 0.01 step 0.00001
 * min notional 5; futures BTCUSDT tick 0.1 step 0.001 min notional 100,
 * ETHUSDT tick 0.01 step 0.001 min notional 20; ALGOUSDT tick 0.0001 step
 * 0.1. Fees: spot 0.1% charged in the received asset; futures 0.02% maker,
 * 0.05% taker, in USDT. Default leverage 20, cross margin, one-way mode.
 * No slippage (default fill model): a market order fills at the last price.
 *
 * Error classes are those ccxt raises against binance.com / fapi.binance.com
 * (the "patched" columns of the ccxt notes: the factory merges ccxt's
 * per-market error maps, which ccxt itself only applies to binance.com URLs).
 */
import { fileURLToPath } from 'node:url';
import ccxt, { type Order } from 'ccxt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { loadKlineFile, type RawKline } from '../../src/market-data/kline-files.ts';
import { createFuturesClient, createSpotClient, type CcxtClientOptions } from '../../src/venues/binance/ccxt-clients.ts';

const KEY = DEFAULT_ACCOUNT.apiKey;
const SECRET = DEFAULT_ACCOUNT.secret;
const ALGO_FILE = fileURLToPath(new URL('../../../shared/data/binance-um-1m/ALGOUSDT-1m-2023-02.csv.gz', import.meta.url));

type Spot = ReturnType<typeof createSpotClient>;
type Futures = ReturnType<typeof createFuturesClient>;

function spotClient(ex: LocalExchange, o: Partial<CcxtClientOptions> = {}): Spot {
  return createSpotClient({ spotBase: ex.url, futuresBase: ex.url, apiKey: KEY, secret: SECRET, enableRateLimit: false, ...o });
}

function futuresClient(ex: LocalExchange, o: Partial<CcxtClientOptions> = {}): Futures {
  return createFuturesClient({ spotBase: ex.url, futuresBase: ex.url, apiKey: KEY, secret: SECRET, enableRateLimit: false, ...o });
}

/** A ccxt number as an exact decimal string (ccxt parses Binance's strings to JS numbers). */
function d(x: number | string | undefined | null): string {
  if (x === undefined || x === null) return String(x);
  return new Dec(x).toFixed();
}

/** An order ccxt parsed from a create response: it must carry the exchange's numeric id. */
function placed(o: Order): Order & { id: string } {
  expect(o.id).toMatch(/^\d+$/);
  return o as Order & { id: string };
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Awaits p and checks it failed with exactly `cls` (not a subclass, not a
 * parent: InsufficientFunds and ExchangeError must not be confused) and,
 * when given, that ccxt's message (which carries Binance's JSON) matches.
 */
async function expectCcxtError(p: Promise<unknown>, cls: ErrorClass, message?: string | RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${cls.name}, but the call succeeded`).toBeInstanceOf(Error);
  const e = caught as Error;
  expect(e.constructor.name, e.message).toBe(cls.name);
  expect(e).toBeInstanceOf(cls);
  if (message !== undefined) expect(e.message).toMatch(message);
  return e;
}

function header(h: unknown, name: string): string | undefined {
  const headers = h as Record<string, string> | undefined;
  if (!headers) return undefined;
  const k = Object.keys(headers).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : headers[k];
}

// ======================================================================= spot

describe('binance (spot) against the local exchange', () => {
  let ex: LocalExchange;
  let spot: Spot;
  const account = (): string => ex.accountOf(KEY);

  beforeAll(async () => {
    ex = await LocalExchange.start({ funding: false });
    ex.setPrice('spot', 'BTCUSDT', new Dec('20000'));
    ex.setPrice('spot', 'ETHUSDT', new Dec('1000'));
    spot = spotClient(ex);
    await spot.loadMarkets();
  });
  afterAll(async () => {
    await ex.close();
  });

  it('loadMarkets: symbols, precision from tick/step, limits from the filters', () => {
    expect(Object.keys(spot.markets ?? {}).sort()).toEqual(['BTC/USDT', 'ETH/USDT']);
    const m = spot.market('BTC/USDT');
    expect(m).toMatchObject({ id: 'BTCUSDT', base: 'BTC', quote: 'USDT', spot: true, swap: false, contract: false, active: true });
    expect(d(m.precision.amount)).toBe('0.00001');
    expect(d(m.precision.price)).toBe('0.01');
    expect(d(m.limits.cost?.min)).toBe('5');
    expect(d(m.limits.cost?.max)).toBe('9000000');
    expect(d(m.limits.amount?.min)).toBe('0.00001');
    expect(d(m.limits.amount?.max)).toBe('9000');
    expect(d(m.limits.price?.min)).toBe('0.01');
    expect(d(m.limits.price?.max)).toBe('1000000');
    expect(d(spot.market('ETH/USDT').precision.amount)).toBe('0.0001');
  });

  it('fetchTime is the server clock', async () => {
    const t = await spot.fetchTime();
    expect(Math.abs((t ?? 0) - Date.now())).toBeLessThan(2000);
  });

  it('fetchBalance: 10000 USDT free', async () => {
    const b = await spot.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 10000, used: 0, total: 10000 });
  });

  it('market buy: fills at the last price, 0.1% fee in the base asset', async () => {
    const o = placed(await spot.createOrder('BTC/USDT', 'market', 'buy', 0.01));
    expect(o).toMatchObject({ symbol: 'BTC/USDT', type: 'market', side: 'buy', status: 'closed' });
    expect(d(o.amount)).toBe('0.01');
    expect(d(o.filled)).toBe('0.01');
    expect(d(o.remaining)).toBe('0');
    expect(d(o.average)).toBe('20000');
    expect(d(o.cost)).toBe('200');
    // 0.01 BTC * 0.1% = 0.00001 BTC
    expect(o.fee?.currency).toBe('BTC');
    expect(d(o.fee?.cost)).toBe('0.00001');
    expect(o.trades).toHaveLength(1);
    // the first order of this account: order-rate headers as spot sends them
    expect(header(spot.last_response_headers, 'X-MBX-ORDER-COUNT-10S')).toBe('1');
    expect(header(spot.last_response_headers, 'X-MBX-ORDER-COUNT-1D')).toBe('1');
    const b = await spot.fetchBalance();
    expect(d(b.BTC?.free)).toBe('0.00999');
    expect(d(b.USDT?.free)).toBe('9800');
    expect(d(b.USDT?.total)).toBe('9800');
  });

  it('market buy by cost (quoteOrderQty)', async () => {
    const o = placed(await spot.createMarketBuyOrderWithCost('BTC/USDT', 100));
    expect(o.status).toBe('closed');
    // 100 USDT / 20000 = 0.005 BTC; fee 0.000005 BTC
    expect(d(o.filled)).toBe('0.005');
    expect(d(o.cost)).toBe('100');
    expect(d(o.fee?.cost)).toBe('0.000005');
    const b = await spot.fetchBalance();
    expect(d(b.BTC?.free)).toBe('0.014985');
    expect(d(b.USDT?.free)).toBe('9700');
  });

  it('limit GTC rests (funds locked), is listed, found by id and by clientOrderId, and cancels', async () => {
    const o = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 19000, { clientOrderId: 'spot-gtc-1' }));
    expect(o).toMatchObject({ status: 'open', type: 'limit', side: 'buy', timeInForce: 'GTC', clientOrderId: 'spot-gtc-1', postOnly: false });
    expect(d(o.price)).toBe('19000');
    expect(d(o.filled)).toBe('0');
    expect(d(o.remaining)).toBe('0.01');
    let b = await spot.fetchBalance();
    // 0.01 * 19000 = 190 USDT locked
    expect(b.USDT).toMatchObject({ free: 9510, used: 190, total: 9700 });

    const open = await spot.fetchOpenOrders('BTC/USDT');
    expect(open.map((x) => x.id)).toEqual([o.id]);
    const byId = await spot.fetchOrder(o.id, 'BTC/USDT');
    expect(byId).toMatchObject({ id: o.id, status: 'open', clientOrderId: 'spot-gtc-1' });
    const byCid = await spot.fetchOrder('', 'BTC/USDT', { clientOrderId: 'spot-gtc-1' });
    expect(byCid.id).toBe(o.id);

    const c = await spot.cancelOrder(o.id, 'BTC/USDT');
    expect(c).toMatchObject({ id: o.id, status: 'canceled' });
    expect((await spot.fetchOrder(o.id, 'BTC/USDT')).status).toBe('canceled');
    expect(await spot.fetchOpenOrders('BTC/USDT')).toEqual([]);
    b = await spot.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 9700, used: 0, total: 9700 });
  });

  it('a resting limit fills as maker when the price trades through it', async () => {
    const o = placed(await spot.createOrder('ETH/USDT', 'limit', 'buy', 0.1, 990));
    expect(o.status).toBe('open');
    ex.setPrice('spot', 'ETHUSDT', new Dec('985'));
    const f = await spot.fetchOrder(o.id, 'ETH/USDT');
    expect(f.status).toBe('closed');
    expect(d(f.average)).toBe('990');
    expect(d(f.cost)).toBe('99');
    const [t] = await spot.fetchMyTrades('ETH/USDT');
    // maker 0.1%: 0.1 ETH * 0.001 = 0.0001 ETH
    expect(t).toMatchObject({ order: o.id, side: 'buy', takerOrMaker: 'maker' });
    expect(d(t?.price)).toBe('990');
    expect(d(t?.amount)).toBe('0.1');
    expect(d(t?.fee?.cost)).toBe('0.0001');
    expect(t?.fee?.currency).toBe('ETH');
    ex.setPrice('spot', 'ETHUSDT', new Dec('1000'));
  });

  it('IOC and FOK: expire when not marketable, fill as taker when marketable', async () => {
    const ioc = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { timeInForce: 'IOC' }));
    expect(ioc).toMatchObject({ status: 'expired', timeInForce: 'IOC' });
    expect(d(ioc.filled)).toBe('0');
    const fok = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { timeInForce: 'FOK' }));
    expect(fok).toMatchObject({ status: 'expired', timeInForce: 'FOK' });

    const iocFill = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 20100, { timeInForce: 'IOC' }));
    expect(iocFill.status).toBe('closed');
    // never worse than the market: fills at 20000, not at the 20100 limit
    expect(d(iocFill.average)).toBe('20000');
    expect(d(iocFill.fee?.cost)).toBe('0.000001');
    const fokFill = placed(await spot.createOrder('BTC/USDT', 'limit', 'sell', 0.001, 19900, { timeInForce: 'FOK' }));
    expect(fokFill.status).toBe('closed');
    expect(d(fokFill.average)).toBe('20000');
    // a sell receives USDT: 0.001 * 20000 * 0.1% = 0.02 USDT
    expect(fokFill.fee).toMatchObject({ currency: 'USDT' });
    expect(d(fokFill.fee?.cost)).toBe('0.02');
    const b = await spot.fetchBalance();
    // 9700 - 99 (ETH buy) - 20 (IOC buy) + 20 - 0.02 (FOK sell)
    expect(d(b.USDT?.free)).toBe('9600.98');
    // 0.014985 + 0.001 - 0.000001 - 0.001
    expect(d(b.BTC?.free)).toBe('0.014984');
  });

  it('post-only becomes LIMIT_MAKER; one that would take is OrderImmediatelyFillable', async () => {
    const o = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19500, { postOnly: true }));
    expect(o.info.type).toBe('LIMIT_MAKER');
    expect(o).toMatchObject({ status: 'open', postOnly: true, type: 'limit' });
    // ccxt matches Binance's message exactly (and then reports just the message)
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 20100, { postOnly: true }), ccxt.OrderImmediatelyFillable, /^binance Order would immediately match and take\.$/);
    expect(JSON.parse(String(spot.last_http_response))).toEqual({ code: -2010, msg: 'Order would immediately match and take.' });
    await spot.cancelOrder(o.id, 'BTC/USDT');
  });

  it('stop-loss-limit rests until the trigger, then fills; one that would trigger now is refused', async () => {
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'sell', 0.005, 20400, { triggerPrice: 20500 }), ccxt.OrderImmediatelyFillable, /Stop price would trigger immediately/);
    expect(JSON.parse(String(spot.last_http_response))).toEqual({ code: -2010, msg: 'Stop price would trigger immediately.' });
    const o = placed(await spot.createOrder('BTC/USDT', 'limit', 'sell', 0.005, 19000, { triggerPrice: 19500 }));
    expect(o.info.type).toBe('STOP_LOSS_LIMIT');
    expect(o).toMatchObject({ status: 'open', type: 'limit', side: 'sell' });
    expect(d(o.triggerPrice)).toBe('19500');
    expect(d(o.price)).toBe('19000');
    let b = await spot.fetchBalance();
    expect(d(b.BTC?.used)).toBe('0.005');

    ex.setPrice('spot', 'BTCUSDT', new Dec('19400'));
    const f = await spot.fetchOrder(o.id, 'BTC/USDT');
    expect(f.status).toBe('closed');
    // the path crossed the trigger at 19500 and the limit (19000) was marketable there
    expect(d(f.average)).toBe('19500');
    expect(d(f.cost)).toBe('97.5');
    b = await spot.fetchBalance();
    // 9600.98 + 97.5 - 0.0975 fee
    expect(d(b.USDT?.free)).toBe('9698.3825');
    expect(d(b.BTC?.total)).toBe('0.009984');
    ex.setPrice('spot', 'BTCUSDT', new Dec('20000'));
  });

  it('fetchMyTrades: amounts, prices, fees, sides, maker/taker', async () => {
    const trades = await spot.fetchMyTrades('BTC/USDT');
    const rows = trades.map((t) => [t.side, d(t.amount), d(t.price), d(t.cost), d(t.fee?.cost), t.fee?.currency, t.takerOrMaker]);
    expect(rows).toEqual([
      ['buy', '0.01', '20000', '200', '0.00001', 'BTC', 'taker'],
      ['buy', '0.005', '20000', '100', '0.000005', 'BTC', 'taker'],
      ['buy', '0.001', '20000', '20', '0.000001', 'BTC', 'taker'],
      ['sell', '0.001', '20000', '20', '0.02', 'USDT', 'taker'],
      ['sell', '0.005', '19500', '97.5', '0.0975', 'USDT', 'taker'],
    ]);
    for (const t of trades) expect(t.symbol).toBe('BTC/USDT');
    expect(new Set(trades.map((t) => t.id)).size).toBe(5);
  });

  it('filter failures: LOT_SIZE and PRICE_FILTER -> InvalidOrder, NOTIONAL -> BadRequest (-1013)', async () => {
    // above maxQty 9000 (checked before the balance, as Binance does)
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 9001, 20000), ccxt.InvalidOrder, /"code":-1013,"msg":"Filter failure: LOT_SIZE"/);
    // quantity off the step, sent raw (ccxt itself would truncate it)
    await expectCcxtError(spot.privatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', quantity: '0.000015', price: '20000' }), ccxt.InvalidOrder, /LOT_SIZE/);
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 2000000), ccxt.InvalidOrder, /"code":-1013,"msg":"Filter failure: PRICE_FILTER"/);
    // 0.0001 * 20000 = 2 USDT < 5: ccxt maps -1013 without LOT_SIZE/PRICE_FILTER in the text to BadRequest
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.0001, 20000), ccxt.BadRequest, /"code":-1013,"msg":"Filter failure: NOTIONAL"/);
    // 5x above the average price: PERCENT_PRICE_BY_SIDE (broad map) -> InvalidOrder
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 150000), ccxt.InvalidOrder, /PERCENT_PRICE_BY_SIDE/);
  });

  it('insufficient balance (-2010) -> InsufficientFunds; unknown orders (-2011, -2013) -> OrderNotFound; bad symbol (-1121) -> BadSymbol', async () => {
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 1, 20000), ccxt.InsufficientFunds, /Account has insufficient balance for requested action/);
    expect(JSON.parse(String(spot.last_http_response))).toEqual({ code: -2010, msg: 'Account has insufficient balance for requested action.' });
    await expectCcxtError(spot.cancelOrder('999999', 'BTC/USDT'), ccxt.OrderNotFound, /"code":-2011/);
    await expectCcxtError(spot.fetchOrder('999999', 'BTC/USDT'), ccxt.OrderNotFound, /"code":-2013/);
    await expectCcxtError(spot.privateGetOrder({ symbol: 'NOPEUSDT', orderId: 1 }), ccxt.BadSymbol, /"code":-1121/);
    await expectCcxtError(spot.publicGetKlines({ symbol: 'NOPEUSDT', interval: '1m' }), ccxt.BadSymbol, /"code":-1121/);
    // nothing was left behind by the refusals
    expect(ex.engine.openOrders(account(), 'spot')).toEqual([]);
  });

  it('duplicate clientOrderId of an open order: -2010 InvalidOrder', async () => {
    const o = placed(await spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'dup-1' }));
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000, { clientOrderId: 'dup-1' }), ccxt.InvalidOrder, /"code":-2010,"msg":"Duplicate order sent."/);
    await spot.cancelOrder(o.id, 'BTC/USDT');
  });
});

// ==================================================================== futures

describe('binanceusdm against the local exchange', () => {
  let ex: LocalExchange;
  let fut: Futures;
  const BTC = 'BTC/USDT:USDT';
  const ETH = 'ETH/USDT:USDT';

  beforeAll(async () => {
    ex = await LocalExchange.start({ funding: false });
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    fut = futuresClient(ex);
    await fut.loadMarkets();
  });
  afterAll(async () => {
    await ex.close();
  });

  it('loadMarkets: linear perpetuals, precision from tick/step, min cost from MIN_NOTIONAL', () => {
    expect(Object.keys(fut.markets ?? {}).sort()).toEqual(['ALGO/USDT:USDT', 'AVAX/USDT:USDT', 'BTC/USDT:USDT', 'DOT/USDT:USDT', 'ETH/USDT:USDT', 'FIL/USDT:USDT', 'LINK/USDT:USDT', 'NEAR/USDT:USDT']);
    const m = fut.market(BTC);
    expect(m).toMatchObject({ id: 'BTCUSDT', base: 'BTC', quote: 'USDT', settle: 'USDT', swap: true, linear: true, contract: true, contractSize: 1, active: true });
    expect(d(m.precision.amount)).toBe('0.001');
    expect(d(m.precision.price)).toBe('0.1');
    expect(d(m.limits.cost?.min)).toBe('100');
    expect(d(m.limits.amount?.min)).toBe('0.001');
    expect(d(m.limits.amount?.max)).toBe('1000');
    expect(d(m.limits.market?.max)).toBe('120');
    const algo = fut.market('ALGO/USDT:USDT');
    expect(d(algo.precision.amount)).toBe('0.1');
    expect(d(algo.precision.price)).toBe('0.0001');
    expect(d(algo.limits.cost?.min)).toBe('5');
  });

  it('fetchTime is the server clock', async () => {
    const t = await fut.fetchTime();
    expect(Math.abs((t ?? 0) - Date.now())).toBeLessThan(2000);
  });

  it('fetchBalance before any order', async () => {
    const b = await fut.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 10000, used: 0, total: 10000 });
  });

  it('market buy, then balance and position reflect fee, margin and unrealized PnL', async () => {
    const o = placed(await fut.createOrder(BTC, 'market', 'buy', 0.01));
    expect(o).toMatchObject({ symbol: BTC, type: 'market', side: 'buy', status: 'closed', reduceOnly: false });
    expect(d(o.filled)).toBe('0.01');
    expect(d(o.average)).toBe('50000');
    expect(d(o.cost)).toBe('500');
    expect(header(fut.last_response_headers, 'X-MBX-ORDER-COUNT-10S')).toBe('1');
    expect(header(fut.last_response_headers, 'X-MBX-ORDER-COUNT-1M')).toBe('1');

    // fee 500 * 0.05% = 0.25; initial margin 500 / 20 = 25
    let b = await fut.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 9974.75, used: 25, total: 9999.75 });

    ex.setPrice('futures', 'BTCUSDT', new Dec('51000'));
    const [p, ...rest] = await fut.fetchPositions([BTC]);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ symbol: BTC, side: 'long', marginMode: 'cross', hedged: false });
    expect(d(p?.contracts)).toBe('0.01');
    expect(d(p?.entryPrice)).toBe('50000');
    expect(d(p?.markPrice)).toBe('51000');
    expect(d(p?.unrealizedPnl)).toBe('10');
    expect(d(p?.notional)).toBe('510');
    expect(d(p?.initialMargin)).toBe('25.5');
    // v3 positionRisk carries no leverage (as on Binance); ccxt derives the margin rate 1/20
    expect(p?.leverage).toBeUndefined();
    expect(d(p?.initialMarginPercentage)).toBe('0.05');

    // margin balance 9999.75 + 10; margin 510 / 20 = 25.5
    b = await fut.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 9984.25, used: 25.5, total: 10009.75 });
  });

  it('reduce-only: reduces the position, realizes PnL; one that would increase it is -2022 InvalidOrder', async () => {
    const o = placed(await fut.createOrder(BTC, 'market', 'sell', 0.004, undefined, { reduceOnly: true }));
    expect(o).toMatchObject({ status: 'closed', reduceOnly: true });
    expect(o.info.reduceOnly).toBe(true);
    expect(d(o.average)).toBe('51000');
    const [p] = await fut.fetchPositions([BTC]);
    expect(d(p?.contracts)).toBe('0.006');
    expect(d(p?.unrealizedPnl)).toBe('6');
    // realized (51000 - 50000) * 0.004 = 4; fee 0.004 * 51000 * 0.05% = 0.102
    const acct = ex.engine.futuresAccount(ex.accountOf(KEY));
    expect(acct.walletBalance.toFixed()).toBe('10003.648');
    await expectCcxtError(fut.createOrder(BTC, 'market', 'buy', 0.001, undefined, { reduceOnly: true }), ccxt.InvalidOrder, /"code":-2022,"msg":"ReduceOnly Order is rejected."/);
  });

  it('limit GTC rests (order margin held), listed, found by id and clientOrderId, cancelled', async () => {
    const o = placed(await fut.createOrder(BTC, 'limit', 'buy', 0.01, 50000, { clientOrderId: 'fut-gtc-1' }));
    expect(o).toMatchObject({ status: 'open', type: 'limit', timeInForce: 'GTC', clientOrderId: 'fut-gtc-1', postOnly: false });
    expect(d(o.price)).toBe('50000');
    const b = await fut.fetchBalance();
    // position margin 0.006 * 51000 / 20 = 15.3, order margin 0.01 * 50000 / 20 = 25
    expect(d(b.USDT?.used)).toBe('40.3');

    const open = await fut.fetchOpenOrders(BTC);
    expect(open.map((x) => [x.id, x.status])).toEqual([[o.id, 'open']]);
    expect((await fut.fetchOrder(o.id, BTC)).clientOrderId).toBe('fut-gtc-1');
    expect((await fut.fetchOrder('', BTC, { clientOrderId: 'fut-gtc-1' })).id).toBe(o.id);

    const c = await fut.cancelOrder(o.id, BTC);
    expect(c).toMatchObject({ id: o.id, status: 'canceled' });
    expect(await fut.fetchOpenOrders(BTC)).toEqual([]);
    await expectCcxtError(fut.cancelOrder(o.id, BTC), ccxt.OrderNotFound, /"code":-2011/);
  });

  it('IOC / FOK limits: expire when not marketable, fill as taker at the market when marketable', async () => {
    const ioc = placed(await fut.createOrder(ETH, 'limit', 'buy', 0.1, 2950, { timeInForce: 'IOC' }));
    expect(ioc).toMatchObject({ status: 'expired', timeInForce: 'IOC' });
    expect(d(ioc.filled)).toBe('0');
    const fill = placed(await fut.createOrder(ETH, 'limit', 'buy', 0.1, 3010, { timeInForce: 'IOC' }));
    expect(fill).toMatchObject({ status: 'closed', timeInForce: 'IOC' });
    expect(d(fill.average)).toBe('3000');
    const fok = placed(await fut.createOrder(ETH, 'limit', 'sell', 0.1, 2990, { timeInForce: 'FOK' }));
    expect(fok).toMatchObject({ status: 'closed', timeInForce: 'FOK' });
    expect(d(fok.average)).toBe('3000');
    // a FOK that cannot fill in full is rejected (-5021) and not recorded
    await expectCcxtError(fut.createOrder(ETH, 'limit', 'buy', 0.1, 2950, { timeInForce: 'FOK' }), ccxt.OrderNotFillable, /"code":-5021/);
  });

  it('post-only becomes GTX; one that would take is -5022 OrderNotFillable', async () => {
    const o = placed(await fut.createOrder(ETH, 'limit', 'buy', 0.1, 2990, { postOnly: true }));
    expect(o.info.timeInForce).toBe('GTX');
    expect(o).toMatchObject({ status: 'open', postOnly: true, timeInForce: 'PO' });
    await expectCcxtError(fut.createOrder(ETH, 'limit', 'buy', 0.1, 3010, { postOnly: true }), ccxt.OrderNotFillable, /"code":-5022/);
    await fut.cancelOrder(o.id, ETH);
  });

  it('stop-market via {stopPrice} goes to the algo endpoint, listed with {trigger:true}, cancelled with {trigger:true}', async () => {
    const o = placed(await fut.createOrder(BTC, 'market', 'sell', 0.006, undefined, { stopPrice: 49000, reduceOnly: true, clientOrderId: 'sl-1' }));
    expect(o.info).toMatchObject({ algoType: 'CONDITIONAL', orderType: 'STOP_MARKET', algoStatus: 'NEW', clientAlgoId: 'sl-1', reduceOnly: true });
    expect(o).toMatchObject({ status: 'open', side: 'sell', reduceOnly: true, clientOrderId: 'sl-1' });
    expect(d(o.triggerPrice)).toBe('49000');

    const trig = await fut.fetchOpenOrders(BTC, undefined, undefined, { trigger: true });
    expect(trig.map((x) => x.id)).toEqual([o.id]);
    // not among the regular open orders, and unknown to the regular order endpoints
    expect(await fut.fetchOpenOrders(BTC)).toEqual([]);
    await expectCcxtError(fut.fetchOrder(o.id, BTC), ccxt.OrderNotFound, /"code":-2013/);
    await expectCcxtError(fut.cancelOrder(o.id, BTC), ccxt.OrderNotFound, /"code":-2011/);
    const byId = await fut.fetchOrder(o.id, BTC, { trigger: true });
    expect(byId).toMatchObject({ id: o.id, status: 'open' });
    const byCid = await fut.fetchOrder('', BTC, { trigger: true, clientOrderId: 'sl-1' });
    expect(byCid.id).toBe(o.id);

    const c = await fut.cancelOrder(o.id, BTC, { trigger: true });
    expect(c.info).toMatchObject({ algoId: Number(o.id), code: '200', msg: 'success' });
    expect(await fut.fetchOpenOrders(BTC, undefined, undefined, { trigger: true })).toEqual([]);
    expect((await fut.fetchOrder(o.id, BTC, { trigger: true })).status).toBe('canceled');
    await expectCcxtError(fut.cancelOrder(o.id, BTC, { trigger: true }), ccxt.OrderNotFound, /"code":-2011/);
  });

  it('STOP_MARKET via {triggerPrice}; one that would trigger at once is -2021 OrderImmediatelyFillable', async () => {
    const o = placed(await fut.createOrder(BTC, 'STOP_MARKET', 'sell', 0.006, undefined, { triggerPrice: 48000, reduceOnly: true }));
    expect(o.info).toMatchObject({ orderType: 'STOP_MARKET', triggerPrice: '48000' });
    expect(o.status).toBe('open');
    await fut.cancelOrder(o.id, BTC, { trigger: true });
    // a sell stop above the last price (51000) would trigger immediately
    await expectCcxtError(fut.createOrder(BTC, 'STOP_MARKET', 'sell', 0.006, undefined, { triggerPrice: 52000, reduceOnly: true }), ccxt.OrderImmediatelyFillable, /"code":-2021/);
  });

  it('take-profit-market triggers on the price path and closes the position', async () => {
    const o = placed(await fut.createOrder(BTC, 'market', 'sell', 0.006, undefined, { takeProfitPrice: 53000, reduceOnly: true }));
    expect(o.info).toMatchObject({ orderType: 'TAKE_PROFIT_MARKET', triggerPrice: '53000' });
    ex.setPrice('futures', 'BTCUSDT', new Dec('53100'));
    const f = await fut.fetchOrder(o.id, BTC, { trigger: true });
    expect(f.info.algoStatus).toBe('FINISHED');
    expect(f.status).toBe('closed');
    expect(await fut.fetchPositions([BTC])).toEqual([]);
    // 10003.648 - 0.3 (two ETH taker fills of 300 at 0.05%) + realized (53000 - 50000) * 0.006 = 18 - fee 0.006 * 53000 * 0.05% = 0.159
    expect(ex.engine.futuresAccount(ex.accountOf(KEY)).walletBalance.toFixed()).toBe('10021.189');
  });

  it('fetchMyTrades: prices, amounts, taker 0.05% / maker 0.02% fees in USDT', async () => {
    const trades = await fut.fetchMyTrades(BTC);
    const rows = trades.map((t) => [t.side, d(t.amount), d(t.price), d(t.cost), d(t.fee?.cost), t.fee?.currency, t.takerOrMaker, t.info.realizedPnl]);
    expect(rows).toEqual([
      ['buy', '0.01', '50000', '500', '0.25', 'USDT', 'taker', '0'],
      ['sell', '0.004', '51000', '204', '0.102', 'USDT', 'taker', '4'],
      ['sell', '0.006', '53000', '318', '0.159', 'USDT', 'taker', '18'],
    ]);
    // a maker fill: resting limit sell crossed by the path
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    const o = placed(await fut.createOrder(ETH, 'limit', 'buy', 0.1, 2980));
    ex.setPrice('futures', 'ETHUSDT', new Dec('2970'));
    expect((await fut.fetchOrder(o.id, ETH)).status).toBe('closed');
    const eth = await fut.fetchMyTrades(ETH);
    const last = eth.at(-1);
    // 0.1 * 2980 = 298; maker fee 298 * 0.02% = 0.0596
    expect([last?.takerOrMaker, d(last?.price), d(last?.fee?.cost)]).toEqual(['maker', '2980', '0.0596']);
  });

  it('setLeverage changes the margin of the next position', async () => {
    const r = await fut.setLeverage(10, 'LINK/USDT:USDT');
    expect(r).toMatchObject({ leverage: 10, symbol: 'LINKUSDT' });
    ex.setPrice('futures', 'LINKUSDT', new Dec('10'));
    await fut.createOrder('LINK/USDT:USDT', 'market', 'buy', 5);
    const [p] = await fut.fetchPositions(['LINK/USDT:USDT']);
    // 5 * 10 = 50 notional at 10x: 5 initial margin
    expect(d(p?.initialMargin)).toBe('5');
    expect(d(p?.initialMarginPercentage)).toBe('0.1');
  });

  it('fetchFundingRate: mark price, rate, next funding time on the 8 h grid', async () => {
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    const fr = await fut.fetchFundingRate(BTC);
    expect(d(fr.markPrice)).toBe('50000');
    expect(d(fr.fundingRate)).toBe('0.0001');
    const ts = fr.timestamp ?? 0;
    expect(Math.abs(ts - Date.now())).toBeLessThan(2000);
    expect(fr.fundingTimestamp).toBe(Math.floor(ts / 28_800_000) * 28_800_000 + 28_800_000);
  });

  it('margin insufficient (-2019) -> InsufficientFunds; notional too small (-4164) -> InvalidOrder; bad symbol (-1121) -> BadSymbol; unknown order (-2013) -> OrderNotFound', async () => {
    // 5 BTC * 50000 / 20 = 12500 > ~10000 available
    await expectCcxtError(fut.createOrder(BTC, 'market', 'buy', 5), ccxt.InsufficientFunds, /"code":-2019,"msg":"Margin is insufficient."/);
    // 0.001 * 50000 = 50 < 100
    await expectCcxtError(fut.createOrder(BTC, 'market', 'buy', 0.001), ccxt.InvalidOrder, /"code":-4164/);
    await expectCcxtError(fut.fapiPrivateGetOrder({ symbol: 'NOPEUSDT', orderId: 1 }), ccxt.BadSymbol, /"code":-1121/);
    await expectCcxtError(fut.fapiPublicGetKlines({ symbol: 'NOPEUSDT', interval: '1m' }), ccxt.BadSymbol, /"code":-1121/);
    await expectCcxtError(fut.fetchOrder('999999', BTC), ccxt.OrderNotFound, /"code":-2013/);
    await expectCcxtError(fut.fetchOrder('999999', BTC, { trigger: true }), ccxt.OrderNotFound, /"code":-2013/);
  });

  it('USD-M filter failures carry their own codes (ccxt: BadRequest), duplicate clientOrderId is -4116 InvalidOrder', async () => {
    // mark 50000, PERCENT_PRICE 0.95 .. 1.05
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'buy', 0.01, 53000), ccxt.BadRequest, /"code":-4016,"msg":"Price is higher than mark price multiplier cap."/);
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'sell', 0.01, 47000), ccxt.BadRequest, /"code":-4024,"msg":"Price is lower than mark price multiplier floor."/);
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'buy', 0.01, 5000000), ccxt.BadRequest, /"code":-4002,"msg":"Price greater than max price."/);
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'buy', 1001, 50000), ccxt.BadRequest, /"code":-4005/);
    // off the tick / step, sent raw (ccxt would truncate them)
    await expectCcxtError(fut.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', quantity: '0.01', price: '50000.05' }), ccxt.BadRequest, /"code":-4014/);
    await expectCcxtError(fut.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', quantity: '0.0105', price: '50000' }), ccxt.BadRequest, /"code":-1111/);
    const o = placed(await fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'dup-1' }));
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'dup-1' }), ccxt.InvalidOrder, /"code":-4116/);
    await fut.cancelOrder(o.id, BTC);
  });
});

// ============================================================ futures settings

describe('binanceusdm account settings', () => {
  let ex: LocalExchange;
  let fut: Futures;
  const BTC = 'BTC/USDT:USDT';

  beforeAll(async () => {
    ex = await LocalExchange.start({ funding: false });
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    fut = futuresClient(ex);
    await fut.loadMarkets();
  });
  afterAll(async () => {
    await ex.close();
  });

  it('setMarginMode: isolated, again (-4046 MarginModeAlreadySet), back to cross', async () => {
    expect(await fut.setMarginMode('isolated', BTC)).toMatchObject({ code: 200, msg: 'success' });
    expect(ex.engine.leverageOf(ex.accountOf(KEY), 'BTCUSDT').marginType).toBe('isolated');
    await expectCcxtError(fut.setMarginMode('isolated', BTC), ccxt.MarginModeAlreadySet, /"code":-4046/);
    expect(await fut.setMarginMode('cross', BTC)).toMatchObject({ code: 200, msg: 'success' });
    await expectCcxtError(fut.setMarginMode('cross', BTC), ccxt.MarginModeAlreadySet, /No need to change margin type/);
  });

  it('setPositionMode: hedged, no need to change (-4059 OperationRejected), hedged orders, back to one-way', async () => {
    await expectCcxtError(fut.setPositionMode(false), ccxt.OperationRejected, /"code":-4059,"msg":"No need to change position side."/);
    expect(await fut.setPositionMode(true)).toMatchObject({ code: 200, msg: 'success' });
    await expectCcxtError(fut.setPositionMode(true), ccxt.OperationRejected, /"code":-4059/);

    const open = placed(await fut.createOrder(BTC, 'market', 'buy', 0.01, undefined, { hedged: true }));
    expect(open.info.positionSide).toBe('LONG');
    const [p] = await fut.fetchPositions([BTC]);
    expect(p).toMatchObject({ side: 'long', hedged: true });
    expect(d(p?.contracts)).toBe('0.01');
    // ccxt sends a hedged reduce-only sell as positionSide=LONG without reduceOnly
    const close = placed(await fut.createOrder(BTC, 'market', 'sell', 0.01, undefined, { hedged: true, reduceOnly: true }));
    expect(close.info.positionSide).toBe('LONG');
    expect(await fut.fetchPositions([BTC])).toEqual([]);

    expect(await fut.setPositionMode(false)).toMatchObject({ code: 200, msg: 'success' });
    expect(ex.engine.futuresAccount(ex.accountOf(KEY)).dualSidePosition).toBe(false);
    // fees only: 2 * 500 * 0.05%
    expect(ex.engine.futuresAccount(ex.accountOf(KEY)).walletBalance.toFixed()).toBe('9999.5');
  });

  it('isolated position: margin in its own wallet, collateral, liquidation price', async () => {
    const ETH = 'ETH/USDT:USDT';
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    await fut.setMarginMode('isolated', ETH);
    await fut.createOrder(ETH, 'market', 'buy', 1);
    ex.setPrice('futures', 'ETHUSDT', new Dec('3030'));
    const [p] = await fut.fetchPositions([ETH]);
    expect(p).toMatchObject({ side: 'long', marginMode: 'isolated' });
    // isolated wallet 3000 / 20 = 150, plus unrealized (3030 - 3000) * 1 = 30
    expect(d(p?.collateral)).toBe('180');
    expect(d(p?.unrealizedPnl)).toBe('30');
    // (1 * 3000 - 150) / (1 * (1 - 0.004)) = 2861.4457... -> 2861.45 (tick 0.01)
    expect(d(p?.liquidationPrice)).toBe('2861.45');
    // wallet 9999.5 - fee 1.5; isolated margin is not available; margin balance includes the unrealized PnL
    const b = await fut.fetchBalance();
    expect(b.USDT).toMatchObject({ free: 9848, used: 150, total: 10028 });
  });
});

// ================================================================== klines

describe('fetchOHLCV over replayed Binance klines (ALGOUSDT 2023-02)', () => {
  let ex: LocalExchange;
  let fut: Futures;
  let rows: RawKline[];
  const SYM = 'ALGO/USDT:USDT';
  const byTime = new Map<number, RawKline>();

  beforeAll(async () => {
    rows = loadKlineFile(ALGO_FILE).klines;
    for (const r of rows) byTime.set(r.openTime, r);
    ex = await LocalExchange.start({ funding: false, replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [ALGO_FILE] }], speed: 'max' } });
    const done = await ex.replay!.done;
    expect(done.candles).toBe(rows.length);
    fut = futuresClient(ex);
    await fut.loadMarkets();
  });
  afterAll(async () => {
    await ex.close();
  });

  /** Checks candles against the file: exact OHLCV, ascending, no duplicates. */
  function expectFileRows(candles: ReadonlyArray<ReadonlyArray<number | undefined>>): void {
    let prev = -Infinity;
    for (const c of candles) {
      const t = c[0]!;
      expect(t).toBeGreaterThan(prev);
      prev = t;
      const r = byTime.get(t);
      expect(r, `candle ${t} is not in the file`).toBeDefined();
      expect(c.slice(1, 6).map(d)).toEqual([r!.open, r!.high, r!.low, r!.close, r!.volume].map(d));
    }
  }

  it('the file is what we think it is', () => {
    expect(rows.length).toBe(28 * 1440);
    expect(rows[0]!.openTime).toBe(Date.UTC(2023, 1, 1));
  });

  it('paginate: true (with until) returns 2500 consecutive 1m candles equal to the file', async () => {
    const since = Date.UTC(2023, 1, 3);
    const candles = await fut.fetchOHLCV(SYM, '1m', since, 2500, { paginate: true, until: since + 2500 * 60_000 - 1 });
    expect(candles).toHaveLength(2500);
    expect(candles[0]![0]).toBe(since);
    expect(candles.at(-1)![0]).toBe(since + 2499 * 60_000);
    expectFileRows(candles);
  });

  it('manual paging with since walks to the end of the data', async () => {
    const start = Date.UTC(2023, 1, 26, 7, 13);
    const all: number[][] = [];
    let since = start;
    let pages = 0;
    for (;;) {
      const page = await fut.fetchOHLCV(SYM, '1m', since, 1000);
      pages++;
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(1000);
      all.push(...(page as number[][]));
      since = page.at(-1)![0]! + 60_000;
      expect(pages).toBeLessThan(10);
    }
    const expected = rows.filter((r) => r.openTime >= start);
    expect(all).toHaveLength(expected.length);
    // 3887 candles: four full-or-partial pages, then an empty one
    expect(expected.length).toBe(3887);
    expect(pages).toBe(5);
    expect(all.map((c) => c[0])).toEqual(expected.map((r) => r.openTime));
    expectFileRows(all);
  });

  it('without since: the most recent candles', async () => {
    const candles = await fut.fetchOHLCV(SYM, '1m', undefined, 10);
    expect(candles.map((c) => c[0])).toEqual(rows.slice(-10).map((r) => r.openTime));
    expectFileRows(candles);
  });

  it('1h candles are the aggregation of the 1m rows', async () => {
    const since = Date.UTC(2023, 1, 10, 5);
    const candles = await fut.fetchOHLCV(SYM, '1h', since, 30);
    expect(candles).toHaveLength(30);
    candles.forEach((c, i) => {
      const start = since + i * 3_600_000;
      expect(c[0]).toBe(start);
      const mins = rows.filter((r) => r.openTime >= start && r.openTime < start + 3_600_000);
      expect(mins).toHaveLength(60);
      const high = mins.reduce((m, r) => Dec.max(m, new Dec(r.high)), new Dec(mins[0]!.high));
      const low = mins.reduce((m, r) => Dec.min(m, new Dec(r.low)), new Dec(mins[0]!.low));
      const volume = mins.reduce((s, r) => s.plus(r.volume), new Dec(0));
      expect(c.slice(1, 6).map(d)).toEqual([d(mins[0]!.open), high.toFixed(), low.toFixed(), d(mins.at(-1)!.close), volume.toFixed()]);
    });
  });

  it('fetchFundingRate after the replay: mark is the last close', async () => {
    const fr = await fut.fetchFundingRate(SYM);
    expect(d(fr.markPrice)).toBe(d(rows.at(-1)!.close));
  });
});

// =================================================================== errors

describe('error mapping: auth, clock, rate limits, injected faults', () => {
  let ex: LocalExchange;
  let fut: Futures;
  let spot: Spot;
  const BTC = 'BTC/USDT:USDT';

  beforeAll(async () => {
    ex = await LocalExchange.start({ funding: false });
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    ex.setPrice('spot', 'BTCUSDT', new Dec('20000'));
    fut = futuresClient(ex);
    spot = spotClient(ex);
    await Promise.all([fut.loadMarkets(), spot.loadMarkets()]);
  });
  afterEach(() => {
    ex.faults.reset();
  });
  afterAll(async () => {
    await ex.close();
  });

  it('-1021: server clock 60 s ahead or behind -> InvalidNonce', async () => {
    ex.faults.clockSkewMs = 60_000;
    await expectCcxtError(fut.fetchBalance(), ccxt.InvalidNonce, /"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."/);
    await expectCcxtError(spot.fetchBalance(), ccxt.InvalidNonce, /"code":-1021/);
    ex.faults.clockSkewMs = -60_000;
    await expectCcxtError(fut.fetchBalance(), ccxt.InvalidNonce, /"code":-1021,"msg":"Timestamp for this request was 1000ms ahead of the server's time."/);
    ex.faults.clockSkewMs = 0;
    expect((await fut.fetchBalance()).USDT?.total).toBe(10000);
  });

  it('-1022: wrong secret -> AuthenticationError', async () => {
    const bad = futuresClient(ex, { secret: 'not-the-secret' });
    await expectCcxtError(bad.fetchBalance(), ccxt.AuthenticationError, /"code":-1022,"msg":"Signature for this request is not valid."/);
    const badSpot = spotClient(ex, { secret: 'not-the-secret' });
    await expectCcxtError(badSpot.fetchBalance(), ccxt.AuthenticationError, /"code":-1022/);
  });

  it('-2015: unknown API key -> AuthenticationError', async () => {
    const bad = futuresClient(ex, { apiKey: 'nobody' });
    await expectCcxtError(bad.fetchBalance(), ccxt.AuthenticationError, /"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."/);
    const badSpot = spotClient(ex, { apiKey: 'nobody' });
    await expectCcxtError(badSpot.fetchBalance(), ccxt.AuthenticationError, /"code":-2015/);
  });

  it('-2015 on spot after a successful private call is DDoSProtection (ccxt binance quirk, same on binance.com)', async () => {
    const s = spotClient(ex);
    await s.fetchBalance();
    ex.faults.fails.push({ count: 1, status: 401, code: -2015, msg: 'Invalid API-key, IP, or permissions for action.', pathPrefix: '/api/v3/account' });
    await expectCcxtError(s.fetchBalance(), ccxt.DDoSProtection, /"code":-2015/);
  });

  it('the error-map merge matters: a bare binanceusdm raises ExchangeError for -2019, the factory client InsufficientFunds', async () => {
    const bare = new ccxt.binanceusdm({ apiKey: KEY, secret: SECRET, enableRateLimit: false, options: { fetchCurrencies: false, fetchMargins: false } });
    const api = (bare.urls as { api: Record<string, string> }).api;
    bare.urls = { ...bare.urls, api: Object.fromEntries(Object.entries(api).map(([k, v]) => [k, ex.url + new URL(v).pathname])) } as typeof bare.urls;
    await bare.loadMarkets();
    await expectCcxtError(bare.createOrder(BTC, 'market', 'buy', 5), ccxt.ExchangeError, /"code":-2019/);
    await expectCcxtError(fut.createOrder(BTC, 'market', 'buy', 5), ccxt.InsufficientFunds, /"code":-2019/);
    // and -4164 likewise
    await expectCcxtError(bare.createOrder(BTC, 'market', 'buy', 0.001), ccxt.ExchangeError, /"code":-4164/);
    await expectCcxtError(fut.createOrder(BTC, 'market', 'buy', 0.001), ccxt.InvalidOrder, /"code":-4164/);
  });

  it('429 and 418 (forced) -> DDoSProtection, with Retry-After', async () => {
    ex.faults.force429 = 1;
    await expectCcxtError(fut.fetchTime(), ccxt.DDoSProtection, /"code":-1003/);
    expect(Number(header(fut.last_response_headers, 'Retry-After'))).toBeGreaterThan(0);
    expect(await fut.fetchTime()).toBeGreaterThan(0);

    ex.faults.bannedUntil = ex.now() + 120_000;
    await expectCcxtError(fut.fetchTime(), ccxt.DDoSProtection, /IP banned until/);
    const retry = Number(header(fut.last_response_headers, 'Retry-After'));
    expect(retry).toBeGreaterThanOrEqual(119);
    expect(retry).toBeLessThanOrEqual(120);
    await expectCcxtError(spot.fetchTime(), ccxt.DDoSProtection);
    ex.faults.bannedUntil = 0;
    expect(await fut.fetchTime()).toBeGreaterThan(0);
  });

  it('injected 503 {code:-1001} -> OperationFailed (by code, not by HTTP status); the next call succeeds', async () => {
    ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.', pathPrefix: '/fapi/v3/account' });
    await expectCcxtError(fut.fetchBalance(), ccxt.OperationFailed, /"code":-1001/);
    expect((await fut.fetchBalance()).USDT?.total).toBe(10000);
  });

  it('injected order rejection -> InvalidOrder (-2010), and nothing was placed', async () => {
    ex.faults.rejectOrders = 1;
    await expectCcxtError(fut.createOrder(BTC, 'limit', 'buy', 0.01, 49000), ccxt.InvalidOrder, /"code":-2010/);
    expect(ex.engine.openOrders(ex.accountOf(KEY), 'futures')).toEqual([]);
    ex.faults.rejectOrders = 1;
    await expectCcxtError(spot.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 19000), ccxt.InvalidOrder, /"code":-2010/);
    expect(ex.engine.openOrders(ex.accountOf(KEY), 'spot')).toEqual([]);
  });

  it('black-holed order: ccxt RequestTimeout, yet the order exists and is found by its clientOrderId', async () => {
    ex.faults.blackholeOrders = 1;
    const slow = futuresClient(ex, { timeoutMs: 1500 });
    await slow.loadMarkets();
    await expectCcxtError(slow.createOrder(BTC, 'limit', 'buy', 0.01, 49000, { clientOrderId: 'lost-answer-1' }), ccxt.RequestTimeout);
    const o = placed(await fut.fetchOrder('', BTC, { clientOrderId: 'lost-answer-1' }));
    expect(o).toMatchObject({ clientOrderId: 'lost-answer-1', status: 'open', side: 'buy' });
    expect(d(o.price)).toBe('49000');
    expect(d(o.amount)).toBe('0.01');
    expect(ex.engine.openOrders(ex.accountOf(KEY), 'futures').map((x) => x.clientOrderId)).toEqual(['lost-answer-1']);
    await fut.cancelOrder(o.id, BTC);
  });
});

describe('real weight exhaustion (limit 20 per minute on a frozen clock)', () => {
  let ex: LocalExchange;
  let fut: Futures;
  // Mid-minute on a clock that does not move: the weight window never rolls over during the test.
  const clock = new TestClock(Date.UTC(2030, 0, 1, 0, 0, 30));

  beforeAll(async () => {
    ex = await LocalExchange.start({ funding: false, clock, weightLimit: { futures: 20 } });
    fut = futuresClient(ex);
  });
  afterAll(async () => {
    await ex.close();
  });

  it('20 calls pass with X-MBX-USED-WEIGHT-1M counting up; then 429 with Retry-After; hammering on gets 418', async () => {
    for (let i = 1; i <= 20; i++) {
      expect(await fut.fetchTime()).toBe(clock.now());
      expect(header(fut.last_response_headers, 'X-MBX-USED-WEIGHT-1M')).toBe(String(i));
    }
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      await expectCcxtError(fut.fetchTime(), ccxt.DDoSProtection);
      const raw = await fetch(`${ex.url}/fapi/v1/time`);
      statuses.push(raw.status);
      await raw.text();
      if (raw.status === 418) {
        expect(raw.headers.get('Retry-After')).toBe('120');
        break;
      }
      expect(raw.status).toBe(429);
      // 30 s left in the minute
      expect(raw.headers.get('Retry-After')).toBe('30');
      expect(raw.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('20');
    }
    expect(statuses.at(-1)).toBe(418);
    await expectCcxtError(fut.fetchTime(), ccxt.DDoSProtection, /IP banned/);
    // spot has its own budget
    const spot = spotClient(ex);
    expect(await spot.fetchTime()).toBe(clock.now());
    // the ban ends
    clock.advanceBy(121_000);
    expect(await fut.fetchTime()).toBe(clock.now());
  });

  it('a client that waits out each 429 (forced ones too) is never banned', async () => {
    // Past the previous test's ban, at a fresh minute.
    clock.advanceBy(60_000 - (clock.now() % 60_000) + 30_000);
    ex.faults.force429 = 6;
    for (let i = 0; i < 6; i++) {
      const raw = await fetch(`${ex.url}/fapi/v1/time`);
      await raw.text();
      expect(raw.status, `429 number ${i + 1}, each after the previous Retry-After`).toBe(429);
      clock.advanceBy(Number(raw.headers.get('Retry-After')) * 1000);
    }
    expect(await fut.fetchTime()).toBe(clock.now());
  });
});
