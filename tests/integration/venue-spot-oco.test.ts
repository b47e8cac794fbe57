/**
 * Spot OCO at the venue edge: BinanceVenue.placeOco / cancelOrderList
 * through the real ccxt and the spot user-data stream against the local
 * exchange, and the sim venue on the same engine.
 *
 * Binance documentation relied on (binance-spot-api-docs, developers.binance.com):
 *  - "New Order list - OCO (TRADE)", POST /api/v3/orderList/oco (not the
 *    deprecated POST /api/v3/order/oco): parameters symbol, side, quantity,
 *    listClientOrderId, aboveType / belowType, above|belowClientOrderId,
 *    above|belowPrice, above|belowStopPrice, above|belowTimeInForce,
 *    newOrderRespType. "One of the orders must be a LIMIT_MAKER/TAKE_PROFIT/
 *    TAKE_PROFIT_LIMIT order and the other must be STOP_LOSS or
 *    STOP_LOSS_LIMIT"; SELL: "LIMIT_MAKER price > Last Traded Price >
 *    STOP_LOSS/STOP_LOSS_LIMIT stopPrice"; BUY: "LIMIT_MAKER price < Last
 *    Traded Price < stopPrice". Fixture: spot/order-list-oco.json.
 *  - "Cancel Order list (TRADE)", DELETE /api/v3/orderList: "Canceling an
 *    individual order from an order list will cancel the entire order list."
 *    Fixture: spot/order-list-cancel.json.
 *  - "Query Order list (USER_DATA)", GET /api/v3/orderList. Fixture: spot/order-list-query.json.
 *  - User Data Stream "Order Update": executionReport "g" = OrderListId;
 *    "If the order is an order list, an event named ListStatus will be sent
 *    in addition to the executionReport event"; Order Expiry Reason
 *    OCO_TRIGGER: "canceled because the other order of the pair started
 *    working". Fixtures: spot/execution-report.json, spot/list-status.json.
 *  - Errors: -2010 "The relationship of the prices for the orders is not
 *    correct.", -1158 OCO_ORDER_TYPE_REJECTED, -1166
 *    SELL_OCO_LIMIT_MUST_BE_ABOVE, -1168 BOTH_OCO_ORDERS_CANNOT_BE_LIMIT,
 *    -2010 "Stop loss orders are not supported for this symbol.".
 *  - exchangeInfo: "ocoAllowed": true, "otoAllowed": true.
 *
 * BTCUSDT spot: tick 0.01, step 0.00001; fee 0.1 % of what is received. One
 * TestClock for both sides; waits on events, never sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import type { PlaceOco, VenueEvent, VenueOrder } from '../../src/venues/venue.ts';
import { EventLog, expectVenueError, fixture, keyPaths, rawClients, sendRawToUserStreams, thrown, venueFor } from '../support/venue-harness.ts';

const d = (s: string): Dec => new Dec(s);
const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);
type OrderEvent = Extract<VenueEvent, { type: 'order' }>;

const sellOco = (id: string, o: Partial<PlaceOco> = {}): PlaceOco => ({
  symbol: 'BTCUSDT',
  side: 'SELL',
  quantity: d('0.05'),
  listClientOrderId: id,
  limit: { clientOrderId: `${id}-tp`, price: d('21000') },
  stop: { clientOrderId: `${id}-sl`, stopPrice: d('19000'), price: d('18900') },
  ...o,
});
const legs = (xs: readonly VenueOrder[]): string[][] => xs.map((x) => [x.clientOrderId, x.type, x.status, x.listClientOrderId ?? '-']);

describe('BinanceVenue spot OCO against the local exchange', () => {
  const clock = new TestClock(T0);
  let ex: LocalExchange;
  let venue: BinanceVenue;
  let log: EventLog;
  /** Every spot user-data event the exchange pushed, as sent. */
  const frames: Array<Record<string, unknown>> = [];
  const btc = async (): Promise<[string, string]> => {
    const b = (await venue.account()).balances.find((x) => x.asset === 'BTC');
    return [b?.free.toFixed() ?? '0', b?.locked.toFixed() ?? '0'];
  };

  beforeAll(async () => {
    ex = await LocalExchange.start({ clock, funding: false });
    const hub = ex.hub as unknown as { toSpot(account: string, event: Record<string, unknown>): void };
    const toSpot = hub.toSpot.bind(hub);
    hub.toSpot = (account, event) => {
      frames.push(event);
      toSpot(account, event);
    };
    ex.setPrice('spot', 'BTCUSDT', d('20000'));
    venue = venueFor(ex, clock, 'spot');
    log = new EventLog(venue);
    await venue.start();
    // 0.1 BTC bought, 0.0001 of it paid as fee.
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'buy-btc' });
  });
  afterAll(async () => {
    await venue.stop();
    await ex.close();
  });

  it('exchangeInfo lists OCO and OTO as allowed, as Binance does', async () => {
    const { spot } = rawClients(ex, clock);
    const markets = await spot.loadMarkets();
    expect(markets['BTC/USDT']?.info).toMatchObject({ ocoAllowed: true, otoAllowed: true });
  });

  it('a SELL OCO: both legs NEW with the list ids, the quantity locked once, executionReports carrying "g" and a listStatus EXEC_STARTED', async () => {
    const tpNew = log.order('oco-1-tp', 'NEW');
    const placed = await venue.placeOco(sellOco('oco-1'));
    expect(legs(placed), '[take-profit, stop]').toEqual([
      ['oco-1-tp', 'LIMIT_MAKER', 'NEW', 'oco-1'],
      ['oco-1-sl', 'STOP_LOSS_LIMIT', 'NEW', 'oco-1'],
    ]);
    const listId = placed[0]!.orderListId;
    expect(listId).toMatch(/^\d+$/);
    expect(placed[1]!.orderListId).toBe(listId);
    expect([placed[0]!.price?.toFixed(), placed[1]!.stopPrice?.toFixed(), placed[1]!.price?.toFixed()]).toEqual(['21000', '19000', '18900']);
    expect((await tpNew).order.orderListId, 'executionReport "g"').toBe(listId);
    expect((await venue.openOrders('BTCUSDT')).map((o) => [o.clientOrderId, o.orderListId, o.listClientOrderId])).toEqual([
      ['oco-1-sl', listId, 'oco-1'],
      ['oco-1-tp', listId, 'oco-1'],
    ]);
    expect((await venue.fetchOrder('BTCUSDT', 'oco-1-sl'))?.orderListId, 'GET /api/v3/order orderListId').toBe(listId);
    expect(await btc(), '0.05 of 0.0999 locked, once for both legs').toEqual(['0.0499', '0.05']);
    const status = frames.find((f) => f.e === 'listStatus' && f.C === 'oco-1');
    expect(status).toMatchObject({ c: 'OCO', l: 'EXEC_STARTED', L: 'EXECUTING', g: Number(listId) });
  });

  it('the take-profit fills: the stop leg EXPIRED (OCO_TRIGGER), the list ALL_DONE, nothing left locked', async () => {
    const slExpired = log.order('oco-1-sl', 'EXPIRED');
    const fill = log.fillOf('oco-1-tp');
    ex.setPrice('spot', 'BTCUSDT', d('21100'));
    // 0.05 * 21000 = 1050 USDT; maker fee 0.1 % = 1.05 USDT.
    const f = (await fill).fill;
    expect([f.price.toFixed(), f.quantity.toFixed(), f.fee.toFixed(), f.feeAsset, f.isMaker]).toEqual(['21000', '0.05', '1.05', 'USDT', true]);
    const expired = (await slExpired).order;
    const tp = await venue.fetchOrder('BTCUSDT', 'oco-1-tp');
    expect(tp).toMatchObject({ status: 'FILLED', listClientOrderId: 'oco-1' });
    expect([expired.orderListId, expired.listClientOrderId], 'the list client id, known from the listStatus').toEqual([tp?.orderListId, 'oco-1']);
    const report = frames.find((e) => e.e === 'executionReport' && e.c === 'oco-1-sl' && e.x === 'EXPIRED');
    expect(report).toMatchObject({ X: 'EXPIRED', eR: 'OCO_TRIGGER' });
    expect(frames.filter((e) => e.e === 'listStatus' && e.C === 'oco-1').map((e) => e.l)).toEqual(['EXEC_STARTED', 'ALL_DONE']);
    expect(await btc()).toEqual(['0.0499', '0']);
    expect(await venue.openOrders('BTCUSDT')).toEqual([]);
  });

  it('the stop triggers: the take-profit leg EXPIRED first, then the stop (a limit at 19900) fills at the trigger 20000', async () => {
    await venue.placeOco(sellOco('oco-2', { quantity: d('0.04'), limit: { clientOrderId: 'oco-2-tp', price: d('22000') }, stop: { clientOrderId: 'oco-2-sl', stopPrice: d('20000'), price: d('19900') } }));
    const before = log.events.length;
    const fill = log.fillOf('oco-2-sl');
    ex.setPrice('spot', 'BTCUSDT', d('19950'));
    const f = (await fill).fill;
    expect([f.price.toFixed(), f.quantity.toFixed(), f.isMaker]).toEqual(['20000', '0.04', false]);
    const seq = log.events.slice(before).flatMap((e) => (e.type === 'order' ? [`${e.order.clientOrderId} ${e.order.status}`] : []));
    expect(seq, 'the other leg goes before the stop trades').toEqual(['oco-2-tp EXPIRED', 'oco-2-sl FILLED']);
    expect(await btc()).toEqual(['0.0099', '0']);
  });

  it('cancelOrderList: both legs CANCELED and the funds released; again, the legs as they ended', async () => {
    ex.setPrice('spot', 'BTCUSDT', d('20000'));
    await venue.placeOco(sellOco('oco-3', { quantity: d('0.005') }));
    expect(await btc()).toEqual(['0.0049', '0.005']);
    const cancelled = await venue.cancelOrderList('BTCUSDT', 'oco-3');
    expect(legs(cancelled).sort()).toEqual([
      ['oco-3-sl', 'STOP_LOSS_LIMIT', 'CANCELED', 'oco-3'],
      ['oco-3-tp', 'LIMIT_MAKER', 'CANCELED', 'oco-3'],
    ]);
    expect(await btc()).toEqual(['0.0099', '0']);
    expect(legs(await venue.cancelOrderList('BTCUSDT', 'oco-3')).sort(), 'already ended: -2011, then looked up').toEqual([
      ['oco-3-sl', 'STOP_LOSS_LIMIT', 'CANCELED', 'oco-3'],
      ['oco-3-tp', 'LIMIT_MAKER', 'CANCELED', 'oco-3'],
    ]);
    await expectVenueError(venue.cancelOrderList('BTCUSDT', 'never-placed'), 'UNKNOWN_ORDER');
  });

  it('cancelling one leg cancels the whole list ("Cancel Order list (TRADE)" notes)', async () => {
    await venue.placeOco(sellOco('oco-4', { quantity: d('0.005') }));
    const other = log.order('oco-4-tp', 'CANCELED');
    expect((await venue.cancel('BTCUSDT', 'oco-4-sl')).status).toBe('CANCELED');
    expect((await other).order.orderListId).toBeDefined();
    expect(await venue.openOrders('BTCUSDT')).toEqual([]);
    expect(await btc()).toEqual(['0.0099', '0']);
  });

  it('a BUY OCO locks the quote its dearer leg needs, once; when the cheaper limit fills the rest is released', async () => {
    const usdt = async (): Promise<[string, string]> => {
      const b = (await venue.account()).balances.find((x) => x.asset === 'USDT')!;
      return [b.free.toFixed(), b.locked.toFixed()];
    };
    const [free0] = await usdt();
    const placed = await venue.placeOco({ symbol: 'BTCUSDT', side: 'BUY', quantity: d('0.01'), listClientOrderId: 'oco-b', limit: { clientOrderId: 'oco-b-tp', price: d('19000') }, stop: { clientOrderId: 'oco-b-sl', stopPrice: d('21000'), price: d('21100') } });
    expect(legs(placed)).toEqual([
      ['oco-b-tp', 'LIMIT_MAKER', 'NEW', 'oco-b'],
      ['oco-b-sl', 'STOP_LOSS_LIMIT', 'NEW', 'oco-b'],
    ]);
    // max(0.01 * 19000, 0.01 * 21100) = 211.
    expect(await usdt()).toEqual([new Dec(free0).minus(211).toFixed(), '211']);
    const expired = log.order('oco-b-sl', 'EXPIRED');
    ex.setPrice('spot', 'BTCUSDT', d('18900'));
    await expired;
    // Paid 190 for 0.01 BTC (fee in BTC); the other 21 is free again.
    expect(await usdt()).toEqual([new Dec(free0).minus(190).toFixed(), '0']);
  });

  it('refusals as Binance makes them', async () => {
    ex.setPrice('spot', 'BTCUSDT', d('20000'));
    const rel = await expectVenueError(venue.placeOco(sellOco('bad-1', { quantity: d('0.001'), limit: { clientOrderId: 'bad-1-tp', price: d('19500') } })), 'REJECTED', -2010);
    expect(rel.message).toContain('The relationship of the prices for the orders is not correct.');
    await expectVenueError(venue.placeOco(sellOco('bad-2', { quantity: d('0.001'), stop: { clientOrderId: 'bad-2-sl', stopPrice: d('20500'), price: d('20400') } })), 'REJECTED', -2010);
    const poor = await expectVenueError(venue.placeOco(sellOco('bad-3', { quantity: d('1') })), 'REJECTED', -2010);
    expect(poor.message).toContain('insufficient balance');
    await venue.placeOco(sellOco('dup', { quantity: d('0.001') }));
    // A listClientOrderId still in use: "Duplicate order sent." (-2010), which the venue reports as DUPLICATE.
    await expectVenueError(venue.placeOco(sellOco('dup', { quantity: d('0.001'), limit: { clientOrderId: 'dup-tp2', price: d('21000') }, stop: { clientOrderId: 'dup-sl2', stopPrice: d('19000'), price: d('18900') } })), 'DUPLICATE', -2010);
    await venue.cancelOrderList('BTCUSDT', 'dup');

    // Leg types and parameters the venue never sends wrong, sent raw.
    const { spot } = rawClients(ex, clock);
    const raw = (p: Record<string, string>) => thrown(spot.privatePostOrderListOco({ symbol: 'BTCUSDT', side: 'SELL', quantity: '0.001', ...p }));
    const sl = { belowType: 'STOP_LOSS_LIMIT', belowStopPrice: '19000', belowPrice: '18900', belowTimeInForce: 'GTC' };
    expect((await raw({ aboveType: 'STOP_LOSS_LIMIT', aboveStopPrice: '21000', abovePrice: '21000', aboveTimeInForce: 'GTC', belowType: 'LIMIT_MAKER', belowPrice: '19000' })).message).toContain('"code":-1166');
    expect((await raw({ aboveType: 'LIMIT_MAKER', abovePrice: '21000', belowType: 'LIMIT_MAKER', belowPrice: '19000' })).message).toContain('"code":-1168,"msg":"At least one OCO order must be contingent."');
    expect((await raw({ aboveType: 'MARKET', ...sl })).message).toContain('"code":-1158,"msg":"Order type not supported in OCO."');
    expect((await raw({ aboveType: 'LIMIT_MAKER', abovePrice: '21000', belowType: 'STOP_LOSS', belowStopPrice: '19000' })).message).toContain('"code":-2010,"msg":"Stop loss orders are not supported for this symbol."');
    expect((await raw({ aboveType: 'LIMIT_MAKER', abovePrice: '21000', ...sl, belowTimeInForce: '' })).message).toContain('"code":-1102');
    expect(await venue.openOrders('BTCUSDT')).toEqual([]);
  });

  it('the local exchange answers and pushes the documented shapes (fixtures of the OCO, cancel and query examples, executionReport and ListStatus)', async () => {
    const { spot } = rawClients(ex, clock);
    const placed = (await spot.privatePostOrderListOco({ symbol: 'BTCUSDT', side: 'SELL', quantity: '0.001', listClientOrderId: 'shape', aboveType: 'LIMIT_MAKER', abovePrice: '21000', belowType: 'STOP_LOSS_LIMIT', belowStopPrice: '19000', belowPrice: '18900', belowTimeInForce: 'GTC', newOrderRespType: 'RESULT' })) as Record<string, unknown>;
    // The documented example's first leg is an iceberg order: icebergQty appears only for those.
    const noIceberg = (paths: string[]): string[] => paths.filter((p) => p !== 'orderReports[].icebergQty');
    expect(keyPaths(placed), 'POST /api/v3/orderList/oco').toEqual(noIceberg(keyPaths(fixture('spot/order-list-oco.json').payload)));
    const queried = (await spot.privateGetOrderList({ origClientOrderId: 'shape' })) as Record<string, unknown>;
    expect(keyPaths(queried), 'GET /api/v3/orderList').toEqual(keyPaths(fixture('spot/order-list-query.json').payload));
    const cancelled = (await spot.privateDeleteOrderList({ symbol: 'BTCUSDT', listClientOrderId: 'shape' })) as Record<string, unknown>;
    expect(keyPaths(cancelled), 'DELETE /api/v3/orderList').toEqual(keyPaths(fixture('spot/order-list-cancel.json').payload));
    expect(cancelled).toMatchObject({ listStatusType: 'ALL_DONE', listOrderStatus: 'ALL_DONE', contingencyType: 'OCO' });

    const docEvent = (name: string): Record<string, unknown> => fixture<{ payload: { event: Record<string, unknown> } }>(name).payload.event;
    const status = frames.find((f) => f.e === 'listStatus' && f.C === 'shape');
    expect(keyPaths(status), 'ListStatus').toEqual(keyPaths(docEvent('spot/list-status.json')));
    const report = frames.find((f) => f.e === 'executionReport' && f.g === placed.orderListId);
    // "v" (prevented match id) is only there after a self-trade prevention.
    expect(keyPaths(report), 'executionReport').toEqual(keyPaths(docEvent('spot/execution-report.json')).filter((p) => p !== 'v'));
  });

  it('the documented ListStatus and an executionReport of its leg: the leg carries orderListId and the list client id', async () => {
    const status = fixture<{ payload: { event: { g: number; C: string } } }>('spot/list-status.json').payload;
    const report = fixture<{ payload: { event: Record<string, unknown> } }>('spot/execution-report.json').payload;
    const got = log.next<OrderEvent>('the documented executionReport', (e) => e.type === 'order' && e.order.clientOrderId === report.event.c);
    sendRawToUserStreams(ex, JSON.stringify(status));
    // The documented report is not a list leg (g -1); as the leg of list 2 it would carry g 2.
    sendRawToUserStreams(ex, JSON.stringify({ ...report, event: { ...report.event, g: status.event.g } }));
    const { order } = await got;
    expect([order.orderListId, order.listClientOrderId, order.type, order.status]).toEqual(['2', status.event.C, 'LIMIT', 'NEW']);
  });
});

describe('SimVenue spot OCO (the same engine, on candles)', () => {
  const clock = new TestClock(T0);
  let venue: SimVenue;

  beforeAll(async () => {
    venue = new SimVenue({ market: 'spot', clock, instruments: catalog('spot'), quoteAsset: 'USDT', balance: d('10000') });
    await venue.start();
    venue.engine.setLastPrice('spot', 'BTCUSDT', d('20000'));
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'buy' });
  });

  it('a candle through the stop: the take-profit EXPIRED, the stop fills; cancelOrderList of the next list; the price rule', async () => {
    const log = new EventLog(venue);
    const placed = await venue.placeOco(sellOco('s-1'));
    expect(legs(placed)).toEqual([
      ['s-1-tp', 'LIMIT_MAKER', 'NEW', 's-1'],
      ['s-1-sl', 'STOP_LOSS_LIMIT', 'NEW', 's-1'],
    ]);
    const fill = log.fillOf('s-1-sl');
    venue.onCandle('BTCUSDT', { open: 20000, high: 20100, low: 18950, close: 19000, volume: 1 });
    expect((await fill).fill.price.toFixed(), 'a limit at 18900 triggered at 19000 fills there').toBe('19000');
    expect((await venue.fetchOrder('BTCUSDT', 's-1-tp'))?.status).toBe('EXPIRED');

    await venue.placeOco(sellOco('s-2', { quantity: d('0.01'), limit: { clientOrderId: 's-2-tp', price: d('20000') }, stop: { clientOrderId: 's-2-sl', stopPrice: d('18000'), price: d('17900') } }));
    expect(legs(await venue.cancelOrderList('BTCUSDT', 's-2')).sort()).toEqual([
      ['s-2-sl', 'STOP_LOSS_LIMIT', 'CANCELED', 's-2'],
      ['s-2-tp', 'LIMIT_MAKER', 'CANCELED', 's-2'],
    ]);
    await expectVenueError(venue.placeOco(sellOco('s-3', { quantity: d('0.01'), limit: { clientOrderId: 's-3-tp', price: d('18500') } })), 'REJECTED', 'ORDER_LIST_PRICES');
  });
});
