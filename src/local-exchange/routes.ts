/**
 * Endpoint tables of the local exchange: Binance spot (/api/v3) and USD-M
 * futures (/fapi/v1, v2, v3), as ccxt's binance and binanceusdm classes use
 * them (see the conformance tests for the list). Conditional futures orders
 * live on the algo-order endpoints, as on Binance since December 2025.
 */
import { Dec } from '../core/decimal.ts';
import type { Market } from '../model/market.ts';
import type { MatchingEngine } from '../venues/sim/engine.ts';
import type { OrderListLeg, PlaceOrderRequest, PositionSide, SimOrder, SimOrderType, TimeInForce, WorkingType } from '../venues/sim/types.ts';
import { err, ERR, fromReject } from './binance-errors.ts';
import { INTERVAL_MS, type CandleStore } from './candle-store.ts';
import type { OrderLimit } from './limits.ts';
import type { ListenKeys } from './listen-keys.ts';
import { ParamError, type Params, type Route, type RouteResult } from './rest.ts';
import * as S from './serialize.ts';

export interface RouteDeps {
  engine: MatchingEngine;
  candles: CandleStore;
  listenKeys: ListenKeys;
  weightLimit: Record<Market, number>;
  orderLimits: Record<Market, readonly OrderLimit[]>;
  /** Funding settlements so far, for GET /fapi/v1/fundingRate. */
  fundingHistory: Array<{ symbol: string; fundingRate: Dec; fundingTime: number; markPrice: Dec }>;
  /** The exchange's time (server time, skew included). */
  now: () => number;
}

const ok = (body: unknown): RouteResult => ({ body });

function symbolOf(engine: MatchingEngine, market: Market, p: Params): string {
  const symbol = p.req('symbol');
  if (!engine.instrument(market, symbol)) throw new ParamError(ERR.invalidSymbol());
  return symbol;
}

function klines(deps: RouteDeps, market: Market, p: Params, maxLimit: number): RouteResult {
  const symbol = symbolOf(deps.engine, market, p);
  const interval = p.req('interval');
  if (!INTERVAL_MS[interval]) return err(400, -1120, 'Invalid interval.');
  const limit = Math.min(p.int('limit') ?? 500, maxLimit);
  if (limit < 1) return err(400, -1130, "Data sent for parameter 'limit' is not valid.");
  const startTime = p.int('startTime');
  const endTime = p.int('endTime');
  return ok(deps.candles.klines(market, symbol, interval, { limit, now: deps.now(), ...(startTime !== undefined ? { startTime } : {}), ...(endTime !== undefined ? { endTime } : {}) }).map(S.klineRow));
}

function orderRef(p: Params): { orderId?: number; clientOrderId?: string } {
  const orderId = p.int('orderId');
  if (orderId !== undefined) return { orderId };
  const cid = p.str('origClientOrderId');
  if (cid !== undefined) return { clientOrderId: cid };
  throw new ParamError(err(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"));
}

const SIDES = ['BUY', 'SELL'] as const;
const TIFS = ['GTC', 'IOC', 'FOK', 'GTX'] as const;

// ------------------------------------------------------------------ spot

export function spotRoutes(deps: RouteDeps): Route[] {
  const { engine } = deps;
  const market: Market = 'spot';
  const placeSpot = (account: string, p: Params): RouteResult => {
    const symbol = symbolOf(engine, market, p);
    const side = p.enumOf('side', SIDES, ERR.invalidSide()) ?? p.req('side');
    const type = p.req('type');
    const supported = ['MARKET', 'LIMIT', 'LIMIT_MAKER', 'STOP_LOSS_LIMIT'];
    if (!supported.includes(type)) return ERR.invalidOrderType();
    const tif = p.enumOf('timeInForce', ['GTC', 'IOC', 'FOK'] as const, ERR.invalidTif());
    if ((type === 'LIMIT' || type === 'STOP_LOSS_LIMIT') && !tif) return ERR.mandatory('timeInForce');
    if (type === 'LIMIT_MAKER' && tif) return ERR.badParam("Parameter 'timeInForce' sent when not required.");
    const quantity = p.dec('quantity');
    const quoteOrderQty = p.dec('quoteOrderQty');
    if (quantity && quoteOrderQty) return err(400, -1106, "Parameter 'quoteOrderQty' sent when not required.");
    const price = p.dec('price');
    const stopPrice = p.dec('stopPrice');
    const clientOrderId = p.str('newClientOrderId');
    if (clientOrderId !== undefined && !/^[.A-Z:/a-z0-9_-]{1,36}$/.test(clientOrderId)) return err(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.");
    const req: PlaceOrderRequest = {
      market,
      symbol,
      side: side as 'BUY' | 'SELL',
      type: type as SimOrderType,
      ...(quantity ? { quantity } : {}),
      ...(quoteOrderQty ? { quoteOrderQty } : {}),
      ...(price ? { price } : {}),
      ...(stopPrice ? { stopPrice } : {}),
      ...(tif ? { timeInForce: tif } : {}),
      ...(clientOrderId ? { clientOrderId } : {}),
    };
    const r = engine.placeOrder(account, req);
    if (!r.ok) return fromReject(market, r);
    const respType = p.str('newOrderRespType') ?? (type === 'MARKET' || type === 'LIMIT' ? 'FULL' : 'ACK');
    const fills = engine.trades(account, market, symbol, { orderId: r.value.orderId });
    return ok(S.spotNewOrder(r.value, fills, respType));
  };

  /**
   * "New Order list - OCO (TRADE)", POST /api/v3/orderList/oco. Leg types: the
   * documented OCO types, of which the symbols here enable LIMIT_MAKER and
   * STOP_LOSS_LIMIT (exchangeInfo orderTypes); Binance answers the others
   * with "... orders are not supported for this symbol." (-2010).
   */
  const placeOco = (account: string, p: Params): RouteResult => {
    const symbol = symbolOf(engine, market, p);
    const side = (p.enumOf('side', SIDES, ERR.invalidSide()) ?? p.req('side')) as 'BUY' | 'SELL';
    const quantity = p.dec('quantity');
    if (!quantity) return ERR.mandatory('quantity');
    const OCO_TYPES = ['STOP_LOSS_LIMIT', 'STOP_LOSS', 'LIMIT_MAKER', 'TAKE_PROFIT', 'TAKE_PROFIT_LIMIT'] as const;
    const NOT_ENABLED: Record<string, string> = { STOP_LOSS: 'Stop loss', TAKE_PROFIT: 'Take profit', TAKE_PROFIT_LIMIT: 'Take profit limit' };
    const leg = (at: 'above' | 'below'): OrderListLeg | RouteResult => {
      const type = p.enumOf(`${at}Type`, OCO_TYPES, err(400, -1158, 'Order type not supported in OCO.')) ?? p.req(`${at}Type`);
      if (NOT_ENABLED[type]) return err(400, -2010, `${NOT_ENABLED[type]} orders are not supported for this symbol.`);
      if (p.has(`${at}TrailingDelta`)) return err(400, -2010, 'Trailing stop orders are not supported for this symbol.');
      const price = p.dec(`${at}Price`);
      const stopPrice = p.dec(`${at}StopPrice`);
      const tif = p.enumOf(`${at}TimeInForce`, ['GTC', 'IOC', 'FOK'] as const, ERR.invalidTif());
      const clientOrderId = p.str(`${at}ClientOrderId`);
      if (clientOrderId !== undefined && !/^[.A-Z:/a-z0-9_-]{1,36}$/.test(clientOrderId)) return err(400, -1100, `Illegal characters found in parameter '${at}ClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.`);
      if (!price) return ERR.mandatory(`${at}Price`);
      if (type === 'LIMIT_MAKER') {
        if (stopPrice) return ERR.badParam(`Parameter '${at}StopPrice' sent when not required.`);
        if (tif) return ERR.badParam(`Parameter '${at}TimeInForce' sent when not required.`);
      } else {
        if (!stopPrice) return err(400, -1102, `Param '${at}StopPrice' or '${at}TrailingDelta' must be sent, but both were empty/null!`);
        if (!tif) return ERR.mandatory(`${at}TimeInForce`);
      }
      return { type: type as OrderListLeg['type'], price, ...(stopPrice ? { stopPrice } : {}), ...(tif ? { timeInForce: tif } : {}), ...(clientOrderId ? { clientOrderId } : {}) };
    };
    const above = leg('above');
    if (!('type' in above)) return above;
    const below = leg('below');
    if (!('type' in below)) return below;
    const listClientOrderId = p.str('listClientOrderId');
    if (listClientOrderId !== undefined && !/^[.A-Z:/a-z0-9_-]{1,36}$/.test(listClientOrderId)) return err(400, -1100, "Illegal characters found in parameter 'listClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.");
    const r = engine.placeOrderList(account, { symbol, side, quantity, above, below, ...(listClientOrderId ? { listClientOrderId } : {}) });
    if (!r.ok) return fromReject(market, r);
    const respType = p.enumOf('newOrderRespType', ['ACK', 'RESULT', 'FULL'] as const, err(400, -1136, 'Invalid newOrderRespType')) ?? 'FULL';
    return ok(S.orderListNew(r.value.list, r.value.orders.map((o) => ({ order: o, fills: engine.trades(account, market, symbol, { orderId: o.orderId }) })), respType));
  };

  /** orderListId or listClientOrderId (Cancel) / origClientOrderId (Query). */
  const listRef = (p: Params, clientParam: 'listClientOrderId' | 'origClientOrderId'): { orderListId?: number; listClientOrderId?: string } => {
    const orderListId = p.int('orderListId');
    const cid = p.str(clientParam);
    if (orderListId === undefined && cid === undefined) throw new ParamError(err(400, -1102, `Param 'orderListId' or '${clientParam}' must be sent, but both were empty/null!`));
    return { ...(orderListId !== undefined ? { orderListId } : {}), ...(cid !== undefined ? { listClientOrderId: cid } : {}) };
  };

  return [
    { method: 'GET', path: '/api/v3/ping', security: 'NONE', weight: 1, handler: () => ok({}) },
    { method: 'POST', path: '/api/v3/orderList/oco', security: 'SIGNED', weight: 1, placesOrder: true, handler: ({ account, params }) => placeOco(account, params) },
    {
      method: 'DELETE',
      path: '/api/v3/orderList',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account, params }) => {
        const r = engine.cancelOrderList(account, symbolOf(engine, market, params), listRef(params, 'listClientOrderId'));
        return r.ok ? ok(S.orderListCancel(r.value.list, r.value.orders)) : ERR.unknownOrderCancel();
      },
    },
    {
      method: 'GET',
      path: '/api/v3/orderList',
      security: 'SIGNED',
      weight: 4,
      handler: ({ account, params }) => {
        const r = engine.getOrderList(account, listRef(params, 'origClientOrderId'));
        return r.ok ? ok(S.orderList(r.value.list)) : ERR.orderDoesNotExist();
      },
    },
    { method: 'GET', path: '/api/v3/openOrderList', security: 'SIGNED', weight: 6, handler: ({ account }) => ok(engine.openOrderLists(account).map(S.orderList)) },
    { method: 'GET', path: '/api/v3/time', security: 'NONE', weight: 1, handler: ({ now }) => ok({ serverTime: now }) },
    {
      method: 'GET',
      path: '/api/v3/exchangeInfo',
      security: 'NONE',
      weight: 20,
      handler: ({ now, params }) => {
        const only = params.str('symbol');
        return ok(S.spotExchangeInfo(engine.instruments(market).filter((i) => !only || i.symbol === only), now, deps.weightLimit.spot, deps.orderLimits.spot));
      },
    },
    { method: 'GET', path: '/api/v3/klines', security: 'NONE', weight: 2, handler: ({ params }) => klines(deps, market, params, 1000) },
    {
      method: 'GET',
      path: '/api/v3/ticker/price',
      security: 'NONE',
      weight: 2,
      handler: ({ params }) => {
        const symbol = symbolOf(engine, market, params);
        const last = engine.price(market, symbol).last;
        return last ? ok({ symbol, price: last.toFixed(8) }) : err(400, -1121, 'Invalid symbol.');
      },
    },
    {
      method: 'GET',
      path: '/api/v3/account',
      security: 'SIGNED',
      weight: 20,
      handler: ({ account, now }) => ok(S.spotAccount(engine.spotBalances(account), now, { maker: new Dec('0.001'), taker: new Dec('0.001') })),
    },
    { method: 'POST', path: '/api/v3/order', security: 'SIGNED', weight: 1, placesOrder: true, handler: ({ account, params }) => placeSpot(account, params) },
    {
      method: 'GET',
      path: '/api/v3/order',
      security: 'SIGNED',
      weight: 4,
      handler: ({ account, params }) => {
        const r = engine.getOrder(account, market, symbolOf(engine, market, params), orderRef(params));
        return r.ok ? ok(S.spotOrder(r.value)) : ERR.orderDoesNotExist();
      },
    },
    {
      method: 'DELETE',
      path: '/api/v3/order',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account, params }) => {
        const r = engine.cancelOrder(account, market, symbolOf(engine, market, params), orderRef(params));
        return r.ok ? ok(S.spotCancel(r.value)) : ERR.unknownOrderCancel();
      },
    },
    {
      method: 'GET',
      path: '/api/v3/openOrders',
      security: 'SIGNED',
      weight: (p) => (p.has('symbol') ? 6 : 80),
      handler: ({ account, params }) => {
        const symbol = params.has('symbol') ? symbolOf(engine, market, params) : undefined;
        return ok(engine.openOrders(account, market, symbol).map(S.spotOrder));
      },
    },
    {
      method: 'DELETE',
      path: '/api/v3/openOrders',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account, params }) => {
        const cancelled = engine.cancelAll(account, market, symbolOf(engine, market, params));
        return cancelled.length ? ok(cancelled.map(S.spotCancel)) : ERR.unknownOrderCancel();
      },
    },
    {
      method: 'GET',
      path: '/api/v3/allOrders',
      security: 'SIGNED',
      weight: 20,
      handler: ({ account, params }) =>
        ok(engine.allOrders(account, market, symbolOf(engine, market, params), query(params)).map(S.spotOrder)),
    },
    {
      method: 'GET',
      path: '/api/v3/myTrades',
      security: 'SIGNED',
      weight: 20,
      handler: ({ account, params }) => ok(engine.trades(account, market, symbolOf(engine, market, params), tradeQuery(params)).map(S.spotTrade)),
    },
  ];
}

function query(p: Params): { orderId?: number; startTime?: number; endTime?: number; limit?: number } {
  const q: { orderId?: number; startTime?: number; endTime?: number; limit?: number } = {};
  const orderId = p.int('orderId');
  const startTime = p.int('startTime');
  const endTime = p.int('endTime');
  const limit = p.int('limit');
  if (orderId !== undefined) q.orderId = orderId;
  if (startTime !== undefined) q.startTime = startTime;
  if (endTime !== undefined) q.endTime = endTime;
  if (limit !== undefined) q.limit = Math.min(limit, 1000);
  return q;
}

function tradeQuery(p: Params): { fromId?: number; startTime?: number; endTime?: number; limit?: number; orderId?: number } {
  const { orderId, startTime, endTime, limit } = query(p);
  const fromId = p.int('fromId');
  return { ...(orderId !== undefined ? { orderId } : {}), ...(startTime !== undefined ? { startTime } : {}), ...(endTime !== undefined ? { endTime } : {}), ...(limit !== undefined ? { limit } : {}), ...(fromId !== undefined ? { fromId } : {}) };
}

// --------------------------------------------------------------- futures

const CONDITIONAL: readonly string[] = ['STOP_MARKET', 'TAKE_PROFIT_MARKET', 'STOP', 'TAKE_PROFIT', 'TRAILING_STOP_MARKET'];

function isConditional(o: SimOrder): boolean {
  return o.type === 'STOP_MARKET' || o.type === 'TAKE_PROFIT_MARKET' || o.type === 'TRAILING_STOP_MARKET';
}

/** An untriggered conditional order: visible only through the algo-order endpoints. */
function onAlgoService(o: SimOrder): boolean {
  return isConditional(o) && !o.triggered;
}

function algoStatus(o: SimOrder): string {
  if (o.status === 'CANCELED') return 'CANCELED';
  if (o.status === 'EXPIRED' && !o.triggered) return 'EXPIRED';
  if (!o.triggered) return 'NEW';
  return o.status === 'FILLED' || o.status === 'EXPIRED' ? 'FINISHED' : 'TRIGGERED';
}

/** A conditional futures order as the algo-order API shows it. */
export function algoView(o: SimOrder): Record<string, unknown> {
  return {
    algoId: o.orderId,
    clientAlgoId: o.clientOrderId,
    algoType: 'CONDITIONAL',
    orderType: o.type,
    symbol: o.symbol,
    side: o.side,
    positionSide: o.positionSide,
    timeInForce: o.timeInForce,
    quantity: o.origQty.toFixed(),
    algoStatus: algoStatus(o),
    triggerPrice: o.stopPrice.toFixed(),
    price: '0',
    icebergQuantity: null,
    selfTradePreventionMode: 'EXPIRE_MAKER',
    workingType: o.workingType,
    priceMatch: 'NONE',
    closePosition: o.closePosition,
    priceProtect: false,
    reduceOnly: o.reduceOnly,
    createTime: o.time,
    updateTime: o.updateTime,
    triggerTime: o.triggered ? o.updateTime : 0,
    goodTillDate: 0,
    actualOrderId: o.triggered ? String(o.orderId) : '',
    actualPrice: o.avgPrice.toFixed(),
    // Trailing stops only, as Binance returns them.
    ...(o.type === 'TRAILING_STOP_MARKET' ? { activatePrice: (o.activatePrice ?? new Dec(0)).toFixed(), callbackRate: (o.priceRate ?? new Dec(0)).toFixed() } : {}),
  };
}

/**
 * "Query Algo Order" and "Current All Algo Open Orders" show the attached
 * take-profit / stop-loss fields too (zero when none, as here), which the
 * "New Algo Order" answer does not.
 */
function algoQueryView(o: SimOrder): Record<string, unknown> {
  return { ...algoView(o), tpTriggerPrice: '0', tpPrice: '0', slTriggerPrice: '0', slPrice: '0', tpOrderType: '' };
}

export function futuresRoutes(deps: RouteDeps): Route[] {
  const { engine } = deps;
  const market: Market = 'futures';

  const common = (p: Params): Pick<PlaceOrderRequest, 'positionSide' | 'reduceOnly' | 'workingType'> & { symbol: string; side: 'BUY' | 'SELL' } => {
    const symbol = symbolOf(engine, market, p);
    const side = (p.enumOf('side', SIDES, ERR.invalidSide()) ?? p.req('side')) as 'BUY' | 'SELL';
    const positionSide = p.enumOf('positionSide', ['BOTH', 'LONG', 'SHORT'] as const, err(400, -4060, 'Invalid position side.'));
    const reduceOnly = p.bool('reduceOnly');
    const workingType = p.enumOf('workingType', ['CONTRACT_PRICE', 'MARK_PRICE'] as const, err(400, -4038, 'Invalid working type.'));
    return { symbol, side, ...(positionSide ? { positionSide: positionSide as PositionSide } : {}), ...(reduceOnly !== undefined ? { reduceOnly } : {}), ...(workingType ? { workingType: workingType as WorkingType } : {}) };
  };

  const placeFutures = (account: string, p: Params): RouteResult => {
    const base = common(p);
    const type = p.req('type');
    if (CONDITIONAL.includes(type)) return err(400, -4120, 'Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.');
    if (type !== 'MARKET' && type !== 'LIMIT') return ERR.invalidOrderType();
    const tif = p.enumOf('timeInForce', TIFS, ERR.invalidTif());
    if (type === 'LIMIT' && !tif) return ERR.mandatory('timeInForce');
    const quantity = p.dec('quantity');
    const price = p.dec('price');
    const clientOrderId = p.str('newClientOrderId');
    if (clientOrderId !== undefined && !/^[.A-Z:/a-z0-9_-]{1,36}$/.test(clientOrderId)) return err(400, -4015, 'Client order id is not valid.');
    const r = engine.placeOrder(account, {
      market,
      ...base,
      type: type as SimOrderType,
      ...(quantity ? { quantity } : {}),
      ...(price ? { price } : {}),
      ...(tif ? { timeInForce: tif as TimeInForce } : {}),
      ...(clientOrderId ? { clientOrderId } : {}),
    });
    return r.ok ? ok(S.futuresOrder(r.value)) : fromReject(market, r);
  };

  const placeAlgo = (account: string, p: Params): RouteResult => {
    if (p.req('algoType') !== 'CONDITIONAL') return err(400, -1116, 'Invalid algoType.');
    const base = common(p);
    const type = p.req('type');
    if (type !== 'STOP_MARKET' && type !== 'TAKE_PROFIT_MARKET' && type !== 'TRAILING_STOP_MARKET') return ERR.invalidOrderType();
    const quantity = p.dec('quantity');
    const closePosition = p.bool('closePosition') ?? false;
    const clientOrderId = p.str('clientAlgoId');
    if (type === 'TRAILING_STOP_MARKET') {
      // "New Algo Order (TRADE)": activatePrice and callbackRate (this endpoint's names; the retired
      // /fapi/v1/order called it activationPrice, which the algo service does not read).
      const callbackRate = p.dec('callbackRate');
      if (!callbackRate) return ERR.mandatory('callbackRate');
      const activatePrice = p.dec('activatePrice');
      if (closePosition) return err(400, -4136, 'Target strategy invalid for orderType TRAILING_STOP_MARKET,closePosition true');
      const r = engine.placeOrder(account, { market, ...base, type, callbackRate, ...(activatePrice ? { activationPrice: activatePrice } : {}), ...(quantity ? { quantity } : {}), ...(clientOrderId ? { clientOrderId } : {}) });
      return r.ok ? ok(algoView(r.value)) : fromReject(market, r);
    }
    const triggerPrice = p.dec('triggerPrice');
    if (!triggerPrice) return ERR.mandatory('triggerPrice');
    const r = engine.placeOrder(account, {
      market,
      ...base,
      type,
      stopPrice: triggerPrice,
      closePosition,
      ...(quantity ? { quantity } : {}),
      ...(clientOrderId ? { clientOrderId } : {}),
    });
    return r.ok ? ok(algoView(r.value)) : fromReject(market, r);
  };

  const algoRef = (p: Params): { orderId?: number; clientOrderId?: string } => {
    const algoId = p.int('algoId');
    if (algoId !== undefined) return { orderId: algoId };
    const cid = p.str('clientAlgoId');
    if (cid !== undefined) return { clientOrderId: cid };
    throw new ParamError(err(400, -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"));
  };

  const account = (version: 2 | 3) => ({ account: a, now }: { account: string; now: number }) => ok(S.futuresAccount(engine.futuresAccount(a), now, version));

  return [
    { method: 'GET', path: '/fapi/v1/ping', security: 'NONE', weight: 1, handler: () => ok({}) },
    { method: 'GET', path: '/fapi/v1/time', security: 'NONE', weight: 1, handler: ({ now }) => ok({ serverTime: now }) },
    {
      method: 'GET',
      path: '/fapi/v1/exchangeInfo',
      security: 'NONE',
      weight: 1,
      handler: ({ now }) => ok(S.futuresExchangeInfo(engine.instruments(market), now, deps.weightLimit.futures, deps.orderLimits.futures)),
    },
    {
      method: 'GET',
      path: '/fapi/v1/klines',
      security: 'NONE',
      weight: (p) => {
        const l = Number(p.str('limit') ?? 500);
        return l < 100 ? 1 : l < 500 ? 2 : l <= 1000 ? 5 : 10;
      },
      handler: ({ params }) => klines(deps, market, params, 1500),
    },
    {
      method: 'GET',
      path: '/fapi/v1/premiumIndex',
      security: 'NONE',
      weight: (p) => (p.has('symbol') ? 1 : 10),
      handler: ({ params, now }) => {
        const view = (symbol: string) => {
          const px = engine.price(market, symbol);
          const mark = px.mark ?? px.last ?? new Dec(0);
          const next = Math.floor(now / 28_800_000) * 28_800_000 + 28_800_000;
          return { symbol, markPrice: mark.toFixed(8), indexPrice: mark.toFixed(8), estimatedSettlePrice: mark.toFixed(8), lastFundingRate: px.fundingRate.toFixed(8), interestRate: '0.00010000', nextFundingTime: next, time: now };
        };
        if (params.has('symbol')) return ok(view(symbolOf(engine, market, params)));
        return ok(engine.instruments(market).map((i) => view(i.symbol)));
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/fundingRate',
      security: 'NONE',
      weight: 1,
      handler: ({ params }) => {
        const symbol = params.str('symbol');
        const startTime = params.int('startTime');
        const endTime = params.int('endTime');
        const limit = Math.min(params.int('limit') ?? 100, 1000);
        const rows = deps.fundingHistory.filter((f) => (!symbol || f.symbol === symbol) && (startTime === undefined || f.fundingTime >= startTime) && (endTime === undefined || f.fundingTime <= endTime));
        return ok(rows.slice(0, limit).map((f) => ({ symbol: f.symbol, fundingRate: f.fundingRate.toFixed(8), fundingTime: f.fundingTime, markPrice: f.markPrice.toFixed(8) })));
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/leverageBracket',
      security: 'SIGNED',
      weight: 1,
      handler: ({ params, account: a }) =>
        ok(
          engine
            .instruments(market)
            .filter((i) => !params.has('symbol') || i.symbol === params.str('symbol'))
            .map((i) => ({
              symbol: i.symbol,
              notionalCoef: 1,
              brackets: [{ bracket: 1, initialLeverage: 125, notionalCap: 50_000_000, notionalFloor: 0, maintMarginRatio: (i.maintMarginRate ?? new Dec('0.01')).toNumber(), cum: 0 }],
              leverage: engine.leverageOf(a, i.symbol).leverage,
            })),
        ),
    },
    { method: 'GET', path: '/fapi/v2/account', security: 'SIGNED', weight: 5, handler: account(2) },
    { method: 'GET', path: '/fapi/v3/account', security: 'SIGNED', weight: 5, handler: account(3) },
    { method: 'GET', path: '/fapi/v2/balance', security: 'SIGNED', weight: 5, handler: ({ account: a, now }) => ok(S.futuresBalance(engine.futuresAccount(a), now)) },
    { method: 'GET', path: '/fapi/v3/balance', security: 'SIGNED', weight: 5, handler: ({ account: a, now }) => ok(S.futuresBalance(engine.futuresAccount(a), now)) },
    { method: 'GET', path: '/fapi/v2/positionRisk', security: 'SIGNED', weight: 5, handler: ({ account: a, params }) => ok(S.positionRisk(engine.positions(a, params.str('symbol')), 2)) },
    { method: 'GET', path: '/fapi/v3/positionRisk', security: 'SIGNED', weight: 5, handler: ({ account: a, params }) => ok(S.positionRisk(engine.positions(a, params.str('symbol')), 3)) },
    { method: 'POST', path: '/fapi/v1/order', security: 'SIGNED', weight: 0, placesOrder: true, handler: ({ account: a, params }) => placeFutures(a, params) },
    {
      method: 'GET',
      path: '/fapi/v1/order',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const r = engine.getOrder(a, market, symbolOf(engine, market, params), orderRef(params));
        // A conditional order waiting for its trigger lives on the algo service: the regular
        // order endpoints do not know it (-2013), as on Binance; only /fapi/v1/algoOrder does.
        return r.ok && !onAlgoService(r.value) ? ok(S.futuresOrder(r.value)) : ERR.orderDoesNotExist();
      },
    },
    {
      method: 'DELETE',
      path: '/fapi/v1/order',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        const ref = orderRef(params);
        // Likewise, an untriggered conditional order cannot be cancelled here (-2011): Binance wants DELETE /fapi/v1/algoOrder.
        const found = engine.getOrder(a, market, symbol, ref);
        if (found.ok && onAlgoService(found.value)) return ERR.unknownOrderCancel();
        const r = engine.cancelOrder(a, market, symbol, ref);
        return r.ok ? ok(S.futuresOrder(r.value)) : ERR.unknownOrderCancel();
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/openOrders',
      security: 'SIGNED',
      weight: (p) => (p.has('symbol') ? 1 : 40),
      handler: ({ account: a, params }) => {
        const symbol = params.has('symbol') ? symbolOf(engine, market, params) : undefined;
        return ok(engine.openOrders(a, market, symbol).filter((o) => !isConditional(o) || o.triggered).map(S.futuresOrder));
      },
    },
    {
      method: 'DELETE',
      path: '/fapi/v1/allOpenOrders',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        for (const o of engine.openOrders(a, market, symbol).filter((x) => !isConditional(x) || x.triggered)) engine.cancelOrder(a, market, symbol, { orderId: o.orderId });
        return ok({ code: 200, msg: 'The operation of cancel all open order is done.' });
      },
    },
    { method: 'GET', path: '/fapi/v1/allOrders', security: 'SIGNED', weight: 5, handler: ({ account: a, params }) => ok(engine.allOrders(a, market, symbolOf(engine, market, params), query(params)).filter((o) => !onAlgoService(o)).map(S.futuresOrder)) },
    { method: 'GET', path: '/fapi/v1/userTrades', security: 'SIGNED', weight: 5, handler: ({ account: a, params }) => ok(engine.trades(a, market, symbolOf(engine, market, params), tradeQuery(params)).map(S.futuresTrade)) },
    {
      method: 'POST',
      path: '/fapi/v1/leverage',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        const lev = params.int('leverage');
        if (lev === undefined) return ERR.mandatory('leverage');
        const r = engine.setLeverage(a, symbol, lev);
        return r.ok ? ok({ leverage: r.value.leverage, maxNotionalValue: r.value.maxNotionalValue.toFixed(), symbol }) : fromReject(market, r);
      },
    },
    {
      method: 'POST',
      path: '/fapi/v1/marginType',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        const mt = params.enumOf('marginType', ['ISOLATED', 'CROSSED'] as const, err(400, -4044, 'The margin type is invalid.')) ?? params.req('marginType');
        const r = engine.setMarginType(a, symbol, mt === 'ISOLATED' ? 'isolated' : 'cross');
        return r.ok ? ok({ code: 200, msg: 'success' }) : fromReject(market, r);
      },
    },
    { method: 'GET', path: '/fapi/v1/positionSide/dual', security: 'SIGNED', weight: 30, handler: ({ account: a }) => ok({ dualSidePosition: engine.futuresAccount(a).dualSidePosition }) },
    {
      method: 'POST',
      path: '/fapi/v1/positionSide/dual',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const dual = params.bool('dualSidePosition');
        if (dual === undefined) return ERR.mandatory('dualSidePosition');
        const r = engine.setPositionMode(a, dual);
        return r.ok ? ok({ code: 200, msg: 'success' }) : fromReject(market, r);
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/income',
      security: 'SIGNED',
      weight: 30,
      handler: ({ account: a, params }) => {
        const q = query(params);
        const symbol = params.str('symbol');
        const incomeType = params.str('incomeType');
        return ok(engine.incomes(a, { ...q, ...(symbol ? { symbol } : {}), ...(incomeType ? { incomeType } : {}) }).map(S.income));
      },
    },
    { method: 'POST', path: '/fapi/v1/listenKey', security: 'USER_STREAM', weight: 1, handler: ({ account: a, now }) => ok({ listenKey: deps.listenKeys.create(a, now) }) },
    {
      method: 'PUT',
      path: '/fapi/v1/listenKey',
      security: 'USER_STREAM',
      weight: 1,
      handler: ({ account: a, now }) => {
        const key = deps.listenKeys.keepAlive(a, now);
        return key ? ok({ listenKey: key }) : ERR.listenKeyNotExist();
      },
    },
    { method: 'DELETE', path: '/fapi/v1/listenKey', security: 'USER_STREAM', weight: 1, handler: ({ account: a }) => (deps.listenKeys.remove(a), ok({})) },
    { method: 'POST', path: '/fapi/v1/algoOrder', security: 'SIGNED', weight: 0, placesOrder: true, handler: ({ account: a, params }) => placeAlgo(a, params) },
    {
      method: 'GET',
      path: '/fapi/v1/algoOrder',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const r = engine.getOrder(a, market, symbolOf(engine, market, params), algoRef(params));
        return r.ok && isConditional(r.value) ? ok(algoQueryView(r.value)) : ERR.orderDoesNotExist();
      },
    },
    {
      method: 'DELETE',
      path: '/fapi/v1/algoOrder',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        const found = engine.getOrder(a, market, symbol, algoRef(params));
        if (!found.ok || !isConditional(found.value)) return ERR.unknownOrderCancel();
        const r = engine.cancelOrder(a, market, symbol, { orderId: found.value.orderId });
        return r.ok ? ok({ algoId: r.value.orderId, clientAlgoId: r.value.clientOrderId, code: '200', msg: 'success' }) : ERR.unknownOrderCancel();
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/openAlgoOrders',
      security: 'SIGNED',
      weight: (p) => (p.has('symbol') ? 1 : 40),
      handler: ({ account: a, params }) => {
        const symbol = params.has('symbol') ? symbolOf(engine, market, params) : undefined;
        return ok(engine.openOrders(a, market, symbol).filter((o) => isConditional(o) && !o.triggered).map(algoQueryView));
      },
    },
    {
      method: 'GET',
      path: '/fapi/v1/allAlgoOrders',
      security: 'SIGNED',
      weight: 5,
      handler: ({ account: a, params }) => ok(engine.allOrders(a, market, symbolOf(engine, market, params), query(params)).filter(isConditional).map(algoQueryView)),
    },
    {
      method: 'DELETE',
      path: '/fapi/v1/algoOpenOrders',
      security: 'SIGNED',
      weight: 1,
      handler: ({ account: a, params }) => {
        const symbol = symbolOf(engine, market, params);
        for (const o of engine.openOrders(a, market, symbol).filter((x) => isConditional(x) && !x.triggered)) engine.cancelOrder(a, market, symbol, { orderId: o.orderId });
        return ok({ code: 200, msg: 'The operation of cancel all open order is done.' });
      },
    },
  ];
}
