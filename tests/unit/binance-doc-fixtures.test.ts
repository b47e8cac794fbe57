/**
 * Documentation conformance: every Binance REST answer and stream event the
 * bot reads, as Binance's documentation shows it (tests/fixtures/binance/
 * {spot,usdm}/*.json, each naming its page), parsed by the schemas the bot
 * parses the live payloads with (src/venues/binance/{spot,usdm}-payloads.ts,
 * payloads.ts, exchange-info.ts; src/market-data/ws-payloads.ts) and mapped
 * by mappers.ts. tests/integration/local-exchange-doc-shapes.test.ts holds
 * the local exchange's own answers to the same schemas and key paths.
 *
 * Sources: spot, github.com/binance/binance-spot-api-docs at a5e0bc3
 * (rest-api.md, user-data-stream.md, web-socket-api.md, web-socket-streams.md,
 * filters.md); USD-M, the pages of developers.binance.com/docs/derivatives/
 * usds-margined-futures/ named in each fixture (as of 2026-01-15). Where a
 * published example is not valid JSON, the fixture's "note" says what was
 * repaired (punctuation only).
 *
 * Where the documentation and ccxt (4.5.84) disagree, the bot follows the
 * documentation:
 *  1. USD-M 503 "Unknown error, please check your request or try again later."
 *     (general-info, "HTTP 503 Status", variant A: execution status UNKNOWN) comes
 *     without a code, so ccxt raises ExchangeNotAvailable from the HTTP status, the
 *     class it also uses for "Service Unavailable." (variant B, a certain failure).
 *     The bot must tell them apart by the message, not ccxt's class.
 *  2. -1001 "Internal error; unable to process your request. Please try again." is a
 *     documented FAILURE on USD-M (variant C: "you can resend"); ccxt maps it to
 *     OperationFailed like -1000 and -1006, whose outcome is unknown. (The venue's
 *     errors.ts counts -1001 as unknown: the cautious side; see the report.)
 *  3. -1007 TIMEOUT ("Send status unknown; execution status unknown.", spot errors.md):
 *     ccxt raises RequestTimeout, the class of a client-side timeout; both mean unknown.
 *  4. Trailing stops on POST /fapi/v1/algoOrder: the docs name the activation price
 *     `activatePrice`; ccxt sends `activationPrice` (the retired /fapi/v1/order name),
 *     which the algo service does not read. The venue sends activatePrice itself.
 *  5. "Cancel Order (TRADE)" on USD-M documents no avgPrice; the venue's schema required
 *     it (and would have refused the documented answer). It is optional now.
 *  6. USD-M user data: ccxt (REST only here) knows nothing of the /private route; the
 *     venue builds <base>/private/ws?listenKey=&events= per the WebSocket Change Notice.
 *  7. USD-M "Account Trade List" shows a negative commission; ccxt and the bot take
 *     commission as sent (negative = rebate), without flipping its sign.
 *  8. USD-M exchangeInfo's example calls the order types "OrderType"; ccxt and the live
 *     API use "orderTypes". The bot reads neither.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { klineEvent, markPriceEvent, restKlines } from '../../src/market-data/ws-payloads.ts';
import { ExchangeInfoError, instrumentFromBinance } from '../../src/venues/binance/exchange-info.ts';
import * as M from '../../src/venues/binance/mappers.ts';
import { wsApiResponse } from '../../src/venues/binance/payloads.ts';
import * as S from '../../src/venues/binance/spot-payloads.ts';
import * as U from '../../src/venues/binance/usdm-payloads.ts';
import { futuresUserStreamUrl } from '../../src/venues/binance/user-data.ts';

interface Fixture {
  source: string;
  url?: string;
  note?: string;
  payload: unknown;
  filterExamples?: { url: string; filters: unknown[] };
}

function load(path: string): Fixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/binance/${path}`, import.meta.url), 'utf8')) as Fixture;
}

/** The fixture, checked to be the page the test names. */
function doc(path: string, url: string): Fixture {
  const f = load(path);
  expect(f.url ?? f.source, `${path} names its page`).toContain(url);
  return f;
}

/** Parses with the bot's schema; a failure names the field. */
function parse<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new Error(`${what}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
const SPOT = 'https://github.com/binance/binance-spot-api-docs/blob/master/';
const USDM = 'https://developers.binance.com/docs/derivatives/usds-margined-futures/';

describe('spot REST', () => {
  it('GET /api/v3/exchangeInfo: the symbol maps once it has the filters filters.md documents; without them the bot refuses it', () => {
    const f = doc('spot/exchange-info.json', `${SPOT}rest-api.md#exchange-information`);
    const symbol = (f.payload as { symbols: Array<Record<string, unknown>> }).symbols[0]!;
    // The example's filters list is empty ("These are defined in the Filters section").
    expect(() => instrumentFromBinance(symbol, 'spot')).toThrow(ExchangeInfoError);
    expect(f.filterExamples!.url).toBe(`${SPOT}filters.md`);
    const i = instrumentFromBinance({ ...symbol, filters: f.filterExamples!.filters }, 'spot');
    expect(plain([i.symbol, i.baseAsset, i.quoteAsset, i.status, i.filters.price, i.filters.lot, i.filters.notional, i.filters.maxNumOrders, i.filters.maxNumAlgoOrders])).toEqual([
      'ETHBTC', 'ETH', 'BTC', 'TRADING',
      { minPrice: '0.000001', maxPrice: '100000', tickSize: '0.000001' },
      { minQty: '0.001', maxQty: '100000', stepSize: '0.001' },
      { minNotional: '10', maxNotional: '10000', applyMinToMarket: false, applyMaxToMarket: false },
      25, 5,
    ]);
  });

  it('GET /api/v3/ticker/price: the price the venue reads', () => {
    const f = doc('spot/ticker-price.json', `${SPOT}rest-api.md#symbol-price-ticker`);
    expect(parse(z.object({ price: z.string() }), f.payload, 'ticker/price').price).toBe('4.00000200');
  });

  it('GET /api/v3/klines: a row is [openTime, o, h, l, c, v, closeTime, ...]', () => {
    const f = doc('spot/klines.json', `${SPOT}rest-api.md#klinecandlestick-data`);
    expect(parse(restKlines, f.payload, 'klines')[0]!.slice(0, 7)).toEqual([1499040000000, '0.01634790', '0.80000000', '0.01575800', '0.01577100', '148976.11427815', 1499644799999]);
  });

  it('POST /api/v3/order, RESULT and FULL (ccxt asks FULL for MARKET/LIMIT, RESULT otherwise): the order, average price from the cumulative quote', () => {
    for (const path of ['spot/order-new-result.json', 'spot/order-new-full.json']) {
      const o = M.spotOrder(parse(S.spotOrderRaw, doc(path, `${SPOT}rest-api.md#new-order-trade`).payload, path));
      expect(plain(o), path).toEqual({ symbol: 'BTCUSDT', clientOrderId: '6gCrw2kRUAF9CvJDGP16IP', exchangeOrderId: '28', side: 'SELL', type: 'MARKET', status: 'FILLED', quantity: '10', filledQuantity: '10', averagePrice: '1', reduceOnly: false, updateTime: 1507725176595 });
    }
  });

  it('DELETE /api/v3/order: clientOrderId is the cancel request\'s own id; the order\'s is origClientOrderId', () => {
    const f = doc('spot/order-cancel.json', `${SPOT}rest-api.md#cancel-order-trade`);
    const o = M.spotOrder(parse(S.spotOrderRaw, f.payload, 'cancel'));
    expect([o.clientOrderId, o.exchangeOrderId, o.status, o.price?.toFixed(), o.filledQuantity.toFixed(), o.updateTime]).toEqual(['myOrder1', '4', 'CANCELED', '2', '0', 1684804350068]);
  });

  it('GET /api/v3/order and GET /api/v3/openOrders: the working order; stopPrice "0.0" means none', () => {
    const one = M.spotOrder(parse(S.spotOrderRaw, doc('spot/order-query.json', `${SPOT}rest-api.md#query-order-user_data`).payload, 'order'));
    const open = parse(z.array(S.spotOrderRaw), doc('spot/open-orders.json', `${SPOT}rest-api.md#current-open-orders-user_data`).payload, 'openOrders').map(M.spotOrder);
    for (const o of [one, ...open]) {
      expect(plain(o)).toEqual({ symbol: 'LTCBTC', clientOrderId: 'myOrder1', exchangeOrderId: '1', side: 'BUY', type: 'LIMIT', status: 'NEW', quantity: '1', filledQuantity: '0', price: '0.1', reduceOnly: false, updateTime: 1499827319559 });
    }
  });

  it('GET /api/v3/account: balances, exact', () => {
    const a = M.spotAccount(parse(S.spotAccountRaw, doc('spot/account.json', `${SPOT}rest-api.md#account-information-user_data`).payload, 'account'));
    expect(plain(a)).toEqual({ balances: [ { asset: 'BTC', free: '4723846.89208129', locked: '0' }, { asset: 'LTC', free: '4763368.68006011', locked: '0' } ] });
  });

  it('GET /api/v3/myTrades: the fill, side from isBuyer', () => {
    const [t] = parse(z.array(S.spotTradeRaw), doc('spot/my-trades.json', `${SPOT}rest-api.md#account-trade-list-user_data`).payload, 'myTrades').map(M.spotFill);
    expect(plain(t)).toEqual({ symbol: 'BNBBTC', tradeId: '28457', exchangeOrderId: '100234', side: 'BUY', price: '4.000001', quantity: '12', fee: '10.1', feeAsset: 'BNB', isMaker: false, time: 1499865549590 });
  });

  it('order lists (POST /api/v3/orderList/oco, DELETE and GET /api/v3/orderList) parse', () => {
    const cases = [
      ['spot/order-list-oco.json', `${SPOT}rest-api.md#new-order-list---oco-trade`, S.orderListRaw],
      ['spot/order-list-cancel.json', `${SPOT}rest-api.md#cancel-order-list-trade`, S.orderListRaw],
      ['spot/order-list-query.json', `${SPOT}rest-api.md#query-order-list-user_data`, S.orderListViewRaw],
    ] as const;
    for (const [path, url, schema] of cases) expect(() => parse(schema as z.ZodType, doc(path, url).payload, path), path).not.toThrow();
  });
});

describe('spot streams', () => {
  it('WebSocket API userDataStream.subscribe.signature: the answer with its subscriptionId', () => {
    const r = parse(wsApiResponse, doc('spot/ws-api-subscribe-signature.json', `${SPOT}web-socket-api.md#subscribe-to-user-data-stream-through-signature-subscription-user_stream`).payload, 'subscribe');
    expect([r.status, r.result]).toEqual([200, { subscriptionId: 0 }]);
  });

  it('executionReport, listStatus, outboundAccountPosition (in the WebSocket API envelope)', () => {
    const er = doc('spot/execution-report.json', `${SPOT}user-data-stream.md#order-update`).payload as { event: unknown };
    const ev = M.fromExecutionReport(parse(S.executionReport, er.event, 'executionReport'));
    expect(ev.type === 'order' && [ev.order.clientOrderId, ev.order.status, ev.fill]).toEqual(['mUvoqJxFIILMdfAW5iGSOW', 'NEW', undefined]);
    expect(() => parse(S.listStatus, (doc('spot/list-status.json', `${SPOT}user-data-stream.md#order-update`).payload as { event: unknown }).event, 'listStatus')).not.toThrow();
    const oap = doc('spot/outbound-account-position.json', `${SPOT}user-data-stream.md#account-update`).payload as { subscriptionId: number; event: unknown };
    expect(plain(M.fromOutboundAccountPosition(parse(S.outboundAccountPosition, oap.event, 'outboundAccountPosition')))).toEqual({ type: 'account', account: { balances: [{ asset: 'ETH', free: '10000', locked: '0' }] } });
  });

  it('<symbol>@kline_1m: the candle the feed reads', () => {
    const k = parse(klineEvent, doc('spot/kline-stream.json', `${SPOT}web-socket-streams.md#klinecandlestick-streams-for-utc`).payload, 'kline');
    expect([k.s, k.k.t, k.k.o, k.k.c, k.k.x]).toEqual(['BNBBTC', 1672515780000, '0.0010', '0.0020', false]);
  });
});

describe('USD-M REST', () => {
  it('GET /fapi/v1/exchangeInfo: the instrument, filters and precisions exact', () => {
    const f = doc('usdm/exchange-info.json', `${USDM}market-data/rest-api/Exchange-Information`);
    const i = instrumentFromBinance((f.payload as { symbols: unknown[] }).symbols[0], 'futures');
    expect(plain([i.symbol, i.pricePrecision, i.quantityPrecision, i.filters.price.tickSize, i.filters.lot, i.filters.marketLot.maxQty, i.filters.notional.minNotional, i.filters.percentPrice, i.filters.maxNumOrders, i.liquidationFee])).toEqual([
      'BLZUSDT', 5, 0, '0.0001', { minQty: '1', maxQty: '10000000', stepSize: '1' }, '590119', '5', { multiplierUp: '1.15', multiplierDown: '0.85' }, 200, '0.01',
    ]);
  });

  it('GET /fapi/v1/premiumIndex: the mark price the venue reads', () => {
    expect(parse(z.object({ markPrice: z.string() }), doc('usdm/premium-index.json', `${USDM}market-data/rest-api/Mark-Price`).payload, 'premiumIndex').markPrice).toBe('11793.63104562');
  });

  it('GET /fapi/v1/klines', () => {
    expect(parse(restKlines, doc('usdm/klines.json', `${USDM}market-data/rest-api/Kline-Candlestick-Data`).payload, 'klines')[0]!.slice(0, 7)).toEqual([1499040000000, '0.01634790', '0.80000000', '0.01575800', '0.01577100', '148976.11427815', 1499644799999]);
  });

  it('GET /fapi/v1/leverageBracket: the first bracket\'s maintenance margin ratio', () => {
    const [b] = parse(U.bracketsRaw, doc('usdm/leverage-bracket.json', `${USDM}account/rest-api/Notional-and-Leverage-Brackets`).payload, 'leverageBracket');
    expect([b!.symbol, b!.brackets[0]!.maintMarginRatio]).toEqual(['ETHUSDT', 0.0065]);
  });

  it('GET /fapi/v1/order, GET /fapi/v1/openOrders, DELETE /fapi/v1/order (documented without avgPrice)', () => {
    const query = M.futuresOrder(parse(U.futuresOrderRaw, doc('usdm/order-query.json', `${USDM}trade/rest-api/Query-Order`).payload, 'order'));
    expect(plain(query)).toEqual({ symbol: 'BTCUSDT', clientOrderId: 'abc', exchangeOrderId: '1917641', side: 'BUY', type: 'TRAILING_STOP_MARKET', status: 'NEW', quantity: '0.4', filledQuantity: '0', stopPrice: '9300', reduceOnly: false, updateTime: 1579276756075, positionSide: 'SHORT' });
    const open = parse(z.array(U.futuresOrderRaw), doc('usdm/open-orders.json', `${USDM}trade/rest-api/Current-All-Open-Orders`).payload, 'openOrders').map(M.futuresOrder);
    expect(open.map((o) => [o.clientOrderId, o.status])).toEqual([['abc', 'NEW']]);
    // On 3427db1 the schema required avgPrice and refused the documented answer.
    const cancel = M.futuresOrder(parse(U.futuresOrderRaw, doc('usdm/order-cancel.json', `${USDM}trade/rest-api/Cancel-Order`).payload, 'cancel'));
    expect([cancel.clientOrderId, cancel.status, cancel.averagePrice, cancel.quantity.toFixed()]).toEqual(['myOrder1', 'CANCELED', undefined, '11']);
  });

  it('the algo service: POST/GET /fapi/v1/algoOrder and GET /fapi/v1/openAlgoOrders map to the conditional order; DELETE answers algoId and clientAlgoId', () => {
    const placed = M.algoOrder(parse(U.algoOrderRaw, doc('usdm/algo-order-new.json', `${USDM}trade/rest-api/New-Algo-Order`).payload, 'algoOrder new'));
    expect(plain(placed)).toEqual({ symbol: 'BNBUSDT', clientOrderId: '6B2I9XVcJpCjqPAJ4YoFX7', exchangeOrderId: '2146760', side: 'SELL', type: 'TAKE_PROFIT', status: 'NEW', quantity: '0.01', filledQuantity: '0', stopPrice: '750', reduceOnly: false, updateTime: 1750485492076, positionSide: 'BOTH' });
    const queried = M.algoOrder(parse(U.algoOrderRaw, doc('usdm/algo-order-query.json', `${USDM}trade/rest-api/Query-Algo-Order`).payload, 'algoOrder'));
    expect([queried.status, queried.updateTime]).toEqual(['CANCELED', 1750514545091]);
    const open = parse(z.array(U.algoOrderRaw), doc('usdm/algo-open-orders.json', `${USDM}trade/rest-api/Current-All-Algo-Open-Orders`).payload, 'openAlgoOrders');
    expect(open.map((a) => [a.clientAlgoId, a.algoStatus, a.actualOrderId])).toEqual([['MRumok0dkhrP4kCm12AHaB', 'NEW', undefined]]);
    expect(doc('usdm/algo-order-cancel.json', `${USDM}trade/rest-api/Cancel-Algo-Order`).payload).toMatchObject({ algoId: 2146760, clientAlgoId: '6B2I9XVcJpCjqPAJ4YoFX7' });
  });

  it('GET /fapi/v1/userTrades: the fill with realized PnL; the documented negative commission is kept as sent', () => {
    const [t] = parse(z.array(U.futuresTradeRaw), doc('usdm/user-trades.json', `${USDM}trade/rest-api/Account-Trade-List`).payload, 'userTrades').map(M.futuresFill);
    expect(plain(t)).toEqual({ symbol: 'BTCUSDT', tradeId: '698759', exchangeOrderId: '25851813', side: 'SELL', price: '7819.01', quantity: '0.002', fee: '-0.0781901', feeAsset: 'USDT', isMaker: false, realizedPnl: '-0.91539999', time: 1569514978020 });
  });

  it('GET /fapi/v3/account (ccxt fetchBalance) and GET /fapi/v3/positionRisk (ccxt fetchPositions)', () => {
    const a = M.futuresAccount(parse(U.futuresAccountRaw, doc('usdm/account-v3.json', `${USDM}account/rest-api/Account-Information-V3`).payload, 'account'));
    expect(plain(a)).toEqual({ balances: [{ asset: 'USDT', free: '23.72469206', locked: '0' }, { asset: 'USDC', free: '103.12345678', locked: '0' }], walletBalance: '103.12345678', availableBalance: '103.12345678' });
    const [p] = parse(z.array(U.positionRaw), doc('usdm/position-risk-v3.json', `${USDM}trade/rest-api/Position-Information-V3`).payload, 'positionRisk').map(M.futuresPosition);
    expect(plain(p)).toEqual({ symbol: 'ADAUSDT', positionSide: 'BOTH', quantity: '30', entryPrice: '0.385', markPrice: '0.4104759', unrealizedPnl: '0.764277' });
  });

  it('POST /fapi/v1/listenKey: the key, which goes into the /private URL', () => {
    const { listenKey } = parse(U.listenKeyRaw, doc('usdm/listen-key.json', `${USDM}user-data-streams/Start-User-Data-Stream`).payload, 'listenKey');
    expect(futuresUserStreamUrl('wss://fstream.binance.com', listenKey)).toBe(`wss://fstream.binance.com/private/ws?listenKey=${listenKey}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE/listenKeyExpired`);
  });
});

describe('USD-M streams', () => {
  it('ORDER_TRADE_UPDATE: the order as it changed', () => {
    const ev = M.fromOrderTradeUpdate(parse(U.futuresOrderUpdate, doc('usdm/order-trade-update.json', `${USDM}user-data-streams/Event-Order-Update`).payload, 'ORDER_TRADE_UPDATE'));
    expect(ev.type === 'order' && [ev.order.clientOrderId, ev.order.type, ev.order.status, ev.order.positionSide, ev.fill]).toEqual(['TEST', 'TRAILING_STOP_MARKET', 'NEW', 'LONG', undefined]);
  });

  it('ACCOUNT_UPDATE: the USDT wallet balance', () => {
    const ev = M.fromAccountUpdate(parse(U.futuresAccountUpdate, doc('usdm/account-update.json', `${USDM}user-data-streams/Event-Balance-and-Position-Update`).payload, 'ACCOUNT_UPDATE'));
    expect(plain(ev)).toEqual({ type: 'account', account: { balances: [{ asset: 'USDT', free: '122624.12345678', locked: '0' }, { asset: 'BUSD', free: '1', locked: '0' }], walletBalance: '122624.12345678' } });
  });

  it('ALGO_UPDATE: the conditional order CANCELED', () => {
    const ev = M.fromAlgoUpdate(parse(U.algoUpdate, doc('usdm/algo-update.json', `${USDM}user-data-streams/Event-Algo-Order-Update`).payload, 'ALGO_UPDATE'));
    expect(plain(ev)).toEqual({ type: 'order', order: { symbol: 'BNBUSDT', clientOrderId: 'Q5xaq5EGKgXXa0fD7fs0Ip', exchangeOrderId: '2148719', side: 'SELL', type: 'TAKE_PROFIT', status: 'CANCELED', quantity: '0.01', filledQuantity: '0', stopPrice: '750', reduceOnly: false, updateTime: 1750515742297, positionSide: 'BOTH' } });
  });

  it('listenKeyExpired: the event type the stream restarts on (E a string here)', () => {
    expect(doc('usdm/listen-key-expired.json', `${USDM}user-data-streams/Event-User-Data-Stream-Expired`).payload).toMatchObject({ e: 'listenKeyExpired', E: '1736996475556' });
  });

  it('<symbol>@kline_1m and <symbol>@markPrice@1s on /market', () => {
    const k = parse(klineEvent, doc('usdm/kline-stream.json', `${USDM}websocket-market-streams/Kline-Candlestick-Streams`).payload, 'kline');
    expect([k.s, k.k.i, k.k.c, k.k.x]).toEqual(['BTCUSDT', '1m', '0.0020', false]);
    const m = parse(markPriceEvent, doc('usdm/mark-price-stream.json', `${USDM}websocket-market-streams/Mark-Price-Stream`).payload, 'markPrice');
    expect([m.s, m.p, m.r, m.T]).toEqual(['BTCUSDT', '11794.15000000', '0.00038167', 1562306400000]);
  });
});
