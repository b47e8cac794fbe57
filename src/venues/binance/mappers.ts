/**
 * Pure conversions from Binance's raw payloads (validated by the schemas in
 * spot-payloads.ts / usdm-payloads.ts) to the Venue port's types. Money is
 * read from Binance's own strings as exact Decimals.
 */
import { dec, ZERO, type Dec } from '../../core/decimal.ts';
import type { OrderSide, OrderStatus } from '../../model/events.ts';
import type { VenueAccount, VenueBalance, VenueEvent, VenueFill, VenueOrder, VenuePosition } from '../venue.ts';
import type { ExecutionReport, OutboundAccountPosition, SpotAccountRaw, SpotOrderRaw, SpotTradeRaw } from './spot-payloads.ts';
import type { AlgoOrderRaw, AlgoStatus, AlgoUpdate, FuturesAccountRaw, FuturesAccountUpdate, FuturesOrderRaw, FuturesOrderUpdate, FuturesTradeRaw, PositionRaw } from './usdm-payloads.ts';

/** A price or trigger Binance reports as 0 when it does not apply. */
export function nonZero(s: string | undefined | null): Dec | undefined {
  if (s === undefined || s === null) return undefined;
  const d = dec(s);
  return d.isZero() ? undefined : d;
}

export function spotOrder(raw: SpotOrderRaw): VenueOrder {
  const filled = dec(raw.executedQty);
  const quote = dec(raw.cummulativeQuoteQty);
  return {
    symbol: raw.symbol,
    clientOrderId: raw.origClientOrderId ?? raw.clientOrderId,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    type: raw.type,
    status: raw.status,
    quantity: dec(raw.origQty),
    filledQuantity: filled,
    price: nonZero(raw.price),
    stopPrice: nonZero(raw.stopPrice),
    // Spot reports no average price: cumulative quote / executed quantity.
    averagePrice: filled.isZero() ? undefined : quote.div(filled),
    reduceOnly: false,
    updateTime: raw.updateTime ?? raw.transactTime ?? raw.time ?? 0,
    ...(raw.orderListId !== undefined && raw.orderListId !== '-1' ? { orderListId: raw.orderListId } : {}),
  };
}

export function futuresOrder(raw: FuturesOrderRaw): VenueOrder {
  return {
    symbol: raw.symbol,
    clientOrderId: raw.clientOrderId,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    // A triggered stop shows type MARKET; origType keeps what was placed.
    type: raw.origType ?? raw.type,
    status: raw.status,
    quantity: dec(raw.origQty),
    filledQuantity: dec(raw.executedQty),
    price: nonZero(raw.price),
    stopPrice: nonZero(raw.stopPrice),
    averagePrice: nonZero(raw.avgPrice),
    reduceOnly: raw.reduceOnly,
    updateTime: raw.updateTime,
    ...(raw.positionSide !== undefined ? { positionSide: raw.positionSide } : {}),
  };
}

/**
 * The algo service's view of a conditional order. Triggered ones are
 * normally resolved to the regular order they became (see fetchOrder);
 * this mapping is what remains when that order cannot be found.
 */
export function algoOrder(raw: AlgoOrderRaw): VenueOrder {
  const quantity = dec(raw.quantity);
  const finished = raw.algoStatus === 'FINISHED';
  const st: OrderStatus = raw.algoStatus === 'CANCELED' ? 'CANCELED' : raw.algoStatus === 'EXPIRED' ? 'EXPIRED' : raw.algoStatus === 'REJECTED' ? 'REJECTED' : finished ? 'FILLED' : 'NEW';
  return {
    symbol: raw.symbol,
    clientOrderId: raw.clientAlgoId,
    exchangeOrderId: raw.algoId,
    side: raw.side,
    type: raw.orderType,
    status: st,
    quantity,
    filledQuantity: finished ? quantity : ZERO,
    stopPrice: nonZero(raw.triggerPrice),
    averagePrice: finished ? nonZero(raw.actualPrice) : undefined,
    reduceOnly: raw.reduceOnly,
    updateTime: raw.updateTime,
    ...(raw.positionSide !== undefined ? { positionSide: raw.positionSide } : {}),
  };
}

export function spotFill(raw: SpotTradeRaw): VenueFill {
  return {
    symbol: raw.symbol,
    tradeId: raw.id,
    exchangeOrderId: raw.orderId,
    side: raw.isBuyer ? 'BUY' : 'SELL',
    price: dec(raw.price),
    quantity: dec(raw.qty),
    fee: dec(raw.commission),
    feeAsset: raw.commissionAsset,
    isMaker: raw.isMaker,
    time: raw.time,
  };
}

export function futuresFill(raw: FuturesTradeRaw): VenueFill {
  return {
    symbol: raw.symbol,
    tradeId: raw.id,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    price: dec(raw.price),
    quantity: dec(raw.qty),
    fee: dec(raw.commission),
    feeAsset: raw.commissionAsset,
    isMaker: raw.maker,
    realizedPnl: dec(raw.realizedPnl),
    time: raw.time,
  };
}

/** Statuses after which an order can no longer change. */
export const FINAL: ReadonlySet<OrderStatus> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);

/** Orders Binance's numeric ids (decimal strings of any length) as numbers. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}


export function fromOrderTradeUpdate(ev: FuturesOrderUpdate): VenueEvent {
  const o = ev.o;
  const order: VenueOrder = {
    symbol: o.s,
    clientOrderId: o.c,
    exchangeOrderId: o.i,
    side: o.S,
    type: o.ot ?? o.o,
    status: o.X,
    quantity: dec(o.q),
    filledQuantity: dec(o.z),
    price: nonZero(o.p),
    stopPrice: nonZero(o.sp),
    averagePrice: nonZero(o.ap),
    reduceOnly: o.R,
    updateTime: o.T,
    ...(o.ps !== undefined ? { positionSide: o.ps } : {}),
  };
  if (o.x !== 'TRADE') return { type: 'order', order };
  const fill: VenueFill = {
    symbol: o.s,
    tradeId: o.t,
    clientOrderId: o.c,
    exchangeOrderId: o.i,
    side: o.S,
    price: dec(o.L),
    quantity: dec(o.l),
    fee: o.n === undefined ? ZERO : dec(o.n),
    feeAsset: o.N ?? 'USDT',
    isMaker: o.m,
    realizedPnl: o.rp === undefined ? undefined : dec(o.rp),
    time: o.T,
  };
  return { type: 'order', order, fill };
}

export function fromAlgoUpdate(ev: AlgoUpdate): VenueEvent | undefined {
  const o = ev.o;
  const map: Partial<Record<AlgoStatus, OrderStatus>> = { NEW: 'NEW', CANCELED: 'CANCELED', EXPIRED: 'EXPIRED', REJECTED: 'REJECTED' };
  const st = map[o.X];
  if (st === undefined) return undefined;
  return {
    type: 'order',
    order: { symbol: o.s, clientOrderId: o.caid, exchangeOrderId: o.aid, side: o.S, type: o.o, status: st, quantity: dec(o.q), filledQuantity: ZERO, stopPrice: nonZero(o.tp), reduceOnly: o.R, updateTime: ev.T ?? ev.E, ...(o.ps !== undefined ? { positionSide: o.ps } : {}) },
  };
}

export function fromExecutionReport(ev: ExecutionReport): VenueEvent {
  const filled = dec(ev.z);
  const order: VenueOrder = {
    symbol: ev.s,
    // On a cancel, c is the cancel request's id and C the order's own.
    clientOrderId: ev.x === 'CANCELED' && ev.C ? ev.C : ev.c,
    exchangeOrderId: ev.i,
    side: ev.S,
    type: ev.o,
    status: ev.X,
    quantity: dec(ev.q),
    filledQuantity: filled,
    price: nonZero(ev.p),
    stopPrice: nonZero(ev.P),
    averagePrice: filled.isZero() ? undefined : dec(ev.Z).div(filled),
    reduceOnly: false,
    updateTime: ev.T,
    ...(ev.g !== undefined && ev.g !== '-1' ? { orderListId: ev.g } : {}),
  };
  if (ev.x !== 'TRADE') return { type: 'order', order };
  const fill: VenueFill = {
    symbol: ev.s,
    tradeId: ev.t,
    clientOrderId: order.clientOrderId,
    exchangeOrderId: ev.i,
    side: ev.S as OrderSide,
    price: dec(ev.L),
    quantity: dec(ev.l),
    fee: ev.n ? dec(ev.n) : ZERO,
    feeAsset: ev.N ?? '',
    isMaker: ev.m,
    time: ev.T,
  };
  return { type: 'order', order, fill };
}

/** Spot GET /api/v3/account: the assets with a non-zero free or locked balance. */
export function spotAccount(raw: SpotAccountRaw): VenueAccount {
  return { balances: raw.balances.map((b) => ({ asset: b.asset, free: dec(b.free), locked: dec(b.locked) })).filter((b) => !b.free.isZero() || !b.locked.isZero()) };
}

/**
 * USD-M GET /fapi/v2/account. USD-M has no free/locked split: balances are
 * wallet balances per margin asset; walletBalance / availableBalance say how
 * much margin there is.
 */
export function futuresAccount(raw: FuturesAccountRaw): VenueAccount {
  const balances: VenueBalance[] = raw.assets.map((a) => ({ asset: a.asset, free: dec(a.walletBalance), locked: ZERO })).filter((b) => !b.free.isZero());
  return { balances, walletBalance: dec(raw.totalWalletBalance), availableBalance: dec(raw.availableBalance) };
}

/** USD-M positionRisk row (the quantity is signed: negative is short). */
export function futuresPosition(p: PositionRaw): VenuePosition {
  const lev = p.leverage === undefined ? undefined : Number(p.leverage);
  return {
    symbol: p.symbol,
    positionSide: p.positionSide,
    quantity: dec(p.positionAmt),
    entryPrice: nonZero(p.entryPrice),
    markPrice: nonZero(p.markPrice),
    unrealizedPnl: p.unRealizedProfit === undefined ? undefined : dec(p.unRealizedProfit),
    liquidationPrice: nonZero(p.liquidationPrice),
    leverage: lev !== undefined && Number.isFinite(lev) ? lev : undefined,
  };
}

/** USD-M ACCOUNT_UPDATE; undefined when it carries no balance. */
export function fromAccountUpdate(ev: FuturesAccountUpdate): VenueEvent | undefined {
  if (ev.a.B.length === 0) return undefined;
  const balances = ev.a.B.map((b) => ({ asset: b.a, free: dec(b.wb), locked: ZERO }));
  const usdt = ev.a.B.find((b) => b.a === 'USDT') ?? ev.a.B[0]!;
  // Funding moves the wallet with no fill: its balance change (bc) is what the cash ledger adds.
  const funding = ev.a.m === 'FUNDING_FEE' && usdt.bc !== undefined;
  return { type: 'account', account: { balances, walletBalance: dec(usdt.wb), ...(funding ? { reason: 'FUNDING_FEE' as const, balanceChange: dec(usdt.bc!) } : {}) } };
}

/** Spot outboundAccountPosition: the balances that changed. */
export function fromOutboundAccountPosition(ev: OutboundAccountPosition): VenueEvent {
  return { type: 'account', account: { balances: ev.B.map((b) => ({ asset: b.a, free: dec(b.f), locked: dec(b.l) })) } };
}
