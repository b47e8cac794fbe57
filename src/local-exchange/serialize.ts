/**
 * Binance's JSON shapes for what the engine holds. Decimals go out as
 * strings, exactly (no float anywhere), as Binance sends them.
 */
import { Dec } from '../core/decimal.ts';
import type { Instrument } from '../model/instrument.ts';
import type { RawKline } from '../market-data/kline-files.ts';
import type { Income } from '../venues/sim/engine.ts';
import type { FuturesAccountView, FuturesPosition, SimOrder, SimOrderList, SimTrade, SpotBalance } from '../venues/sim/types.ts';
import { DEFAULT_ORDER_LIMITS, type OrderLimit } from './limits.ts';

/** Spot prints 8 decimals ("0.01000000"); futures prints the plain value. */
const s8 = (d: Dec): string => d.toFixed(8);
const plain = (d: Dec): string => d.toFixed();

export function spotExchangeInfo(instruments: readonly Instrument[], serverTime: number, weightLimit: number, orderLimits: readonly OrderLimit[] = DEFAULT_ORDER_LIMITS.spot): unknown {
  return {
    timezone: 'UTC',
    serverTime,
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: weightLimit },
      ...orderLimits.map((l) => ({ rateLimitType: 'ORDERS', ...l })),
      // 300,000 per 5 minutes since 2026-04-02 (spot CHANGELOG 2026-03-27).
      { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 300000 },
    ],
    exchangeFilters: [],
    symbols: instruments.map((i) => {
      const f = i.filters;
      return {
        symbol: i.symbol,
        status: i.status,
        baseAsset: i.baseAsset,
        baseAssetPrecision: 8,
        quoteAsset: i.quoteAsset,
        quotePrecision: 8,
        quoteAssetPrecision: 8,
        baseCommissionPrecision: 8,
        quoteCommissionPrecision: 8,
        orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS_LIMIT'],
        icebergAllowed: false,
        // As Binance lists them (exchangeInfo example). OCO is served (POST /api/v3/orderList/oco); OTO
        // (/api/v3/orderList/oto) is not yet, so a request for it is answered "Unknown endpoint".
        ocoAllowed: true,
        otoAllowed: true,
        quoteOrderQtyMarketAllowed: true,
        allowTrailingStop: false,
        cancelReplaceAllowed: false,
        amendAllowed: false,
        isSpotTradingAllowed: true,
        isMarginTradingAllowed: false,
        filters: [
          { filterType: 'PRICE_FILTER', minPrice: s8(f.price.minPrice), maxPrice: s8(f.price.maxPrice), tickSize: s8(f.price.tickSize) },
          { filterType: 'LOT_SIZE', minQty: s8(f.lot.minQty), maxQty: s8(f.lot.maxQty), stepSize: s8(f.lot.stepSize) },
          { filterType: 'MARKET_LOT_SIZE', minQty: s8(f.marketLot.minQty), maxQty: s8(f.marketLot.maxQty), stepSize: s8(f.marketLot.stepSize) },
          ...(f.percentPriceBySide
            ? [
                {
                  filterType: 'PERCENT_PRICE_BY_SIDE',
                  bidMultiplierUp: f.percentPriceBySide.bidMultiplierUp.toFixed(),
                  bidMultiplierDown: f.percentPriceBySide.bidMultiplierDown.toFixed(),
                  askMultiplierUp: f.percentPriceBySide.askMultiplierUp.toFixed(),
                  askMultiplierDown: f.percentPriceBySide.askMultiplierDown.toFixed(),
                  avgPriceMins: 5,
                },
              ]
            : []),
          {
            filterType: 'NOTIONAL',
            minNotional: s8(f.notional.minNotional),
            applyMinToMarket: f.notional.applyMinToMarket,
            maxNotional: s8(f.notional.maxNotional ?? new Dec('9000000')),
            applyMaxToMarket: f.notional.applyMaxToMarket,
            avgPriceMins: 5,
          },
          { filterType: 'MAX_NUM_ORDERS', maxNumOrders: f.maxNumOrders },
          { filterType: 'MAX_NUM_ALGO_ORDERS', maxNumAlgoOrders: f.maxNumAlgoOrders },
        ],
        permissions: [],
        permissionSets: [['SPOT']],
        defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
        allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH', 'NONE'],
      };
    }),
  };
}

export function futuresExchangeInfo(instruments: readonly Instrument[], serverTime: number, weightLimit: number, orderLimits: readonly OrderLimit[] = DEFAULT_ORDER_LIMITS.futures): unknown {
  return {
    timezone: 'UTC',
    serverTime,
    futuresType: 'U_MARGINED',
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: weightLimit },
      ...orderLimits.map((l) => ({ rateLimitType: 'ORDERS', ...l })),
    ],
    exchangeFilters: [],
    assets: [{ asset: 'USDT', marginAvailable: true, autoAssetExchange: '-10000' }],
    symbols: instruments.map((i) => {
      const f = i.filters;
      return {
        symbol: i.symbol,
        pair: i.symbol,
        contractType: 'PERPETUAL',
        deliveryDate: 4133404800000,
        onboardDate: 1569398400000,
        status: i.status,
        maintMarginPercent: '2.5000',
        requiredMarginPercent: '5.0000',
        baseAsset: i.baseAsset,
        quoteAsset: i.quoteAsset,
        marginAsset: 'USDT',
        pricePrecision: i.pricePrecision,
        quantityPrecision: i.quantityPrecision,
        baseAssetPrecision: 8,
        quotePrecision: 8,
        underlyingType: 'COIN',
        underlyingSubType: [],
        triggerProtect: '0.0500',
        liquidationFee: (i.liquidationFee ?? new Dec('0.0125')).toFixed(6),
        marketTakeBound: '0.05',
        maxMoveOrderLimit: 10000,
        filters: [
          { filterType: 'PRICE_FILTER', minPrice: plain(f.price.minPrice), maxPrice: plain(f.price.maxPrice), tickSize: plain(f.price.tickSize) },
          { filterType: 'LOT_SIZE', minQty: plain(f.lot.minQty), maxQty: plain(f.lot.maxQty), stepSize: plain(f.lot.stepSize) },
          { filterType: 'MARKET_LOT_SIZE', minQty: plain(f.marketLot.minQty), maxQty: plain(f.marketLot.maxQty), stepSize: plain(f.marketLot.stepSize) },
          { filterType: 'MAX_NUM_ORDERS', limit: f.maxNumOrders },
          { filterType: 'MAX_NUM_ALGO_ORDERS', limit: f.maxNumAlgoOrders },
          { filterType: 'MIN_NOTIONAL', notional: plain(f.notional.minNotional) },
          ...(f.percentPrice ? [{ filterType: 'PERCENT_PRICE', multiplierUp: f.percentPrice.multiplierUp.toFixed(4), multiplierDown: f.percentPrice.multiplierDown.toFixed(4), multiplierDecimal: '4' }] : []),
        ],
        orderTypes: ['LIMIT', 'MARKET', 'STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET'],
        timeInForce: ['GTC', 'IOC', 'FOK', 'GTX'],
        permissionSets: ['GRID', 'COPY'],
      };
    }),
  };
}

export function klineRow(k: RawKline): unknown[] {
  return [k.openTime, k.open, k.high, k.low, k.close, k.volume, k.closeTime, k.quoteVolume, k.trades, k.takerBuyVolume, k.takerBuyQuoteVolume, '0'];
}

function spotStatusType(o: SimOrder): { type: string } {
  return { type: o.type === 'LIQUIDATION' ? 'MARKET' : o.type };
}

/** Spot order as GET /api/v3/order returns it. */
export function spotOrder(o: SimOrder): Record<string, unknown> {
  return {
    symbol: o.symbol,
    orderId: o.orderId,
    orderListId: o.orderListId ?? -1,
    clientOrderId: o.clientOrderId,
    price: s8(o.price),
    origQty: s8(o.origQty),
    executedQty: s8(o.executedQty),
    cummulativeQuoteQty: s8(o.cumQuote),
    status: o.status,
    timeInForce: o.timeInForce,
    ...spotStatusType(o),
    side: o.side,
    stopPrice: s8(o.stopPrice),
    icebergQty: '0.00000000',
    time: o.time,
    updateTime: o.updateTime,
    isWorking: o.type !== 'STOP_LOSS_LIMIT' || o.triggered,
    workingTime: o.time,
    origQuoteOrderQty: '0.00000000',
    selfTradePreventionMode: 'NONE',
  };
}

/** Spot order as POST /api/v3/order answers with newOrderRespType=FULL. */
export function spotNewOrder(o: SimOrder, fills: readonly SimTrade[], respType: string): Record<string, unknown> {
  const ack = { symbol: o.symbol, orderId: o.orderId, orderListId: o.orderListId ?? -1, clientOrderId: o.clientOrderId, transactTime: o.time };
  if (respType === 'ACK') return ack;
  const result = {
    ...ack,
    price: s8(o.price),
    origQty: s8(o.origQty),
    executedQty: s8(o.executedQty),
    origQuoteOrderQty: '0.00000000',
    cummulativeQuoteQty: s8(o.cumQuote),
    status: o.status,
    timeInForce: o.timeInForce,
    ...spotStatusType(o),
    side: o.side,
    ...(o.stopPrice.gt(0) ? { stopPrice: s8(o.stopPrice) } : {}),
    // -1 while a stop waits for its trigger (the OCO example's stop leg).
    workingTime: o.type === 'STOP_LOSS_LIMIT' && !o.triggered ? -1 : o.time,
    selfTradePreventionMode: 'NONE',
  };
  if (respType === 'RESULT') return result;
  return { ...result, fills: fills.map((t) => ({ price: s8(t.price), qty: s8(t.qty), commission: s8(t.commission), commissionAsset: t.commissionAsset, tradeId: t.tradeId })) };
}

export function spotCancel(o: SimOrder): Record<string, unknown> {
  const { time: _t, updateTime: _u, isWorking: _w, workingTime: _wt, icebergQty: _i, ...rest } = spotOrder(o);
  return { ...rest, origClientOrderId: o.clientOrderId, transactTime: o.updateTime };
}

/** An order list as "Query Order list (USER_DATA)" returns it (no orderReports). */
export function orderList(l: SimOrderList): Record<string, unknown> {
  return {
    orderListId: l.orderListId,
    contingencyType: l.contingencyType,
    listStatusType: l.listStatusType,
    listOrderStatus: l.listOrderStatus,
    listClientOrderId: l.listClientOrderId,
    transactionTime: l.transactionTime,
    symbol: l.symbol,
    orders: l.orders.map((o) => ({ symbol: l.symbol, orderId: o.orderId, clientOrderId: o.clientOrderId })),
  };
}

/** "New Order list - OCO (TRADE)" answer: the list and one report per leg in the newOrderRespType format. */
export function orderListNew(l: SimOrderList, legs: ReadonlyArray<{ order: SimOrder; fills: readonly SimTrade[] }>, respType: string): Record<string, unknown> {
  return { ...orderList(l), orderReports: legs.map((x) => spotNewOrder(x.order, x.fills, respType)) };
}

/** "Cancel Order list (TRADE)" answer. */
export function orderListCancel(l: SimOrderList, legs: readonly SimOrder[]): Record<string, unknown> {
  return { ...orderList(l), orderReports: legs.map(spotCancel) };
}

export function spotTrade(t: SimTrade): Record<string, unknown> {
  return {
    symbol: t.symbol,
    id: t.tradeId,
    orderId: t.orderId,
    orderListId: -1,
    price: s8(t.price),
    qty: s8(t.qty),
    quoteQty: s8(t.quoteQty),
    commission: s8(t.commission),
    commissionAsset: t.commissionAsset,
    time: t.time,
    isBuyer: t.side === 'BUY',
    isMaker: t.isMaker,
    isBestMatch: true,
  };
}

export function spotAccount(balances: readonly SpotBalance[], now: number, rates: { maker: Dec; taker: Dec }): Record<string, unknown> {
  return {
    makerCommission: rates.maker.times(10_000).toNumber(),
    takerCommission: rates.taker.times(10_000).toNumber(),
    buyerCommission: 0,
    sellerCommission: 0,
    commissionRates: { maker: s8(rates.maker), taker: s8(rates.taker), buyer: '0.00000000', seller: '0.00000000' },
    canTrade: true,
    canWithdraw: true,
    canDeposit: true,
    brokered: false,
    requireSelfTradePrevention: false,
    preventSor: false,
    updateTime: now,
    accountType: 'SPOT',
    balances: balances.map((b) => ({ asset: b.asset, free: s8(b.free), locked: s8(b.locked) })),
    permissions: ['SPOT'],
    uid: 1,
  };
}

/** USD-M order (GET/POST/DELETE /fapi/v1/order). */
export function futuresOrder(o: SimOrder): Record<string, unknown> {
  return {
    orderId: o.orderId,
    symbol: o.symbol,
    status: o.status,
    clientOrderId: o.clientOrderId,
    price: plain(o.price),
    avgPrice: plain(o.avgPrice),
    origQty: plain(o.origQty),
    executedQty: plain(o.executedQty),
    cumQty: plain(o.executedQty),
    cumQuote: plain(o.cumQuote),
    timeInForce: o.timeInForce,
    type: o.type,
    reduceOnly: o.reduceOnly,
    closePosition: o.closePosition,
    side: o.side,
    positionSide: o.positionSide,
    stopPrice: plain(o.stopPrice),
    workingType: o.workingType,
    priceProtect: false,
    origType: o.type,
    priceMatch: 'NONE',
    selfTradePreventionMode: 'EXPIRE_MAKER',
    goodTillDate: 0,
    time: o.time,
    updateTime: o.updateTime,
    // "activatePrice" and "priceRate": only returned with TRAILING_STOP_MARKET orders (Query Order).
    ...(o.type === 'TRAILING_STOP_MARKET' ? { activatePrice: plain(o.activatePrice ?? new Dec(0)), priceRate: plain(o.priceRate ?? new Dec(0)) } : {}),
  };
}

export function futuresTrade(t: SimTrade): Record<string, unknown> {
  return {
    buyer: t.side === 'BUY',
    commission: plain(t.commission),
    commissionAsset: t.commissionAsset,
    id: t.tradeId,
    maker: t.isMaker,
    orderId: t.orderId,
    price: plain(t.price),
    qty: plain(t.qty),
    quoteQty: plain(t.quoteQty),
    realizedPnl: plain(t.realizedPnl),
    side: t.side,
    positionSide: t.positionSide,
    symbol: t.symbol,
    time: t.time,
  };
}

/** Unrealized PnL of cross-margin positions (isolated PnL stays in their own wallets). */
function crossUnrealized(v: FuturesAccountView): Dec {
  return v.positions.filter((p) => p.marginType === 'cross').reduce((s, p) => s.plus(p.unrealizedPnl), new Dec(0));
}

function positionInitialMargin(p: FuturesPosition): Dec {
  return p.notional.abs().div(p.leverage);
}

export function futuresAccount(v: FuturesAccountView, now: number, version: 2 | 3): Record<string, unknown> {
  const asset = {
    asset: 'USDT',
    walletBalance: plain(v.walletBalance),
    unrealizedProfit: plain(v.unrealizedPnl),
    marginBalance: plain(v.marginBalance),
    maintMargin: plain(v.totalMaintMargin),
    initialMargin: plain(v.totalInitialMargin),
    positionInitialMargin: plain(v.positionInitialMargin),
    openOrderInitialMargin: plain(v.openOrderInitialMargin),
    crossWalletBalance: plain(v.crossWalletBalance),
    crossUnPnl: plain(crossUnrealized(v)),
    availableBalance: plain(v.availableBalance),
    maxWithdrawAmount: plain(v.availableBalance),
    marginAvailable: true,
    updateTime: now,
  };
  const positions = v.positions.map((p) => ({
    symbol: p.symbol,
    positionSide: p.positionSide,
    positionAmt: plain(p.positionAmt),
    unrealizedProfit: plain(p.unrealizedPnl),
    isolatedMargin: plain(p.isolatedWallet.plus(p.marginType === 'isolated' ? p.unrealizedPnl : 0)),
    notional: plain(p.notional),
    isolatedWallet: plain(p.isolatedWallet),
    initialMargin: plain(positionInitialMargin(p)),
    maintMargin: plain(p.maintMargin),
    updateTime: p.updateTime,
    ...(version === 2 ? { leverage: String(p.leverage), isolated: p.marginType === 'isolated', entryPrice: plain(p.entryPrice), maxNotional: '1000000', positionInitialMargin: plain(positionInitialMargin(p)), openOrderInitialMargin: '0' } : {}),
  }));
  return {
    feeTier: 0,
    canTrade: true,
    canDeposit: true,
    canWithdraw: true,
    updateTime: 0,
    multiAssetsMargin: false,
    tradeGroupId: -1,
    totalInitialMargin: asset.initialMargin,
    totalMaintMargin: asset.maintMargin,
    totalWalletBalance: asset.walletBalance,
    totalUnrealizedProfit: asset.unrealizedProfit,
    totalMarginBalance: asset.marginBalance,
    totalPositionInitialMargin: asset.positionInitialMargin,
    totalOpenOrderInitialMargin: asset.openOrderInitialMargin,
    totalCrossWalletBalance: asset.crossWalletBalance,
    totalCrossUnPnl: asset.crossUnPnl,
    availableBalance: asset.availableBalance,
    maxWithdrawAmount: asset.maxWithdrawAmount,
    assets: [asset],
    positions,
  };
}

export function futuresBalance(v: FuturesAccountView, now: number): unknown[] {
  return [
    {
      accountAlias: 'SgsR',
      asset: 'USDT',
      balance: plain(v.walletBalance),
      crossWalletBalance: plain(v.crossWalletBalance),
      crossUnPnl: plain(crossUnrealized(v)),
      availableBalance: plain(v.availableBalance),
      maxWithdrawAmount: plain(v.availableBalance),
      marginAvailable: true,
      updateTime: now,
    },
  ];
}

export function positionRisk(positions: readonly FuturesPosition[], version: 2 | 3): unknown[] {
  return positions.map((p) => {
    const common = {
      symbol: p.symbol,
      positionSide: p.positionSide,
      positionAmt: plain(p.positionAmt),
      entryPrice: plain(p.entryPrice),
      breakEvenPrice: plain(p.entryPrice),
      markPrice: plain(p.markPrice),
      unRealizedProfit: plain(p.unrealizedPnl),
      liquidationPrice: plain(p.liquidationPrice),
      isolatedMargin: plain(p.marginType === 'isolated' ? p.isolatedWallet.plus(p.unrealizedPnl) : new Dec(0)),
      notional: plain(p.notional),
      isolatedWallet: plain(p.isolatedWallet),
      updateTime: p.updateTime,
    };
    if (version === 3) {
      return { ...common, marginAsset: 'USDT', initialMargin: plain(positionInitialMargin(p)), maintMargin: plain(p.maintMargin), positionInitialMargin: plain(positionInitialMargin(p)), openOrderInitialMargin: '0', adl: 0, bidNotional: '0', askNotional: '0' };
    }
    return { ...common, marginType: p.marginType, isAutoAddMargin: 'false', leverage: String(p.leverage), maxNotionalValue: '1000000' };
  });
}

export function income(i: Income): Record<string, unknown> {
  return { symbol: i.symbol, incomeType: i.incomeType, income: plain(i.income), asset: i.asset, info: i.info, time: i.time, tranId: i.tranId, tradeId: i.tradeId };
}
