/**
 * Binance spot payloads as zod schemas: REST answers (/api/v3/order,
 * orderList, myTrades, account) and user-data events (executionReport,
 * listStatus, outboundAccountPosition). Unknown event types are ignored by
 * the stream; a known type that does not match is malformed.
 */
import { z } from 'zod';
import { decimal, id, ms, side, status } from './payloads.ts';

/** Spot order: GET/DELETE /api/v3/order, POST with RESULT/FULL, openOrders. */
export const spotOrderRaw = z.object({
  symbol: z.string(),
  orderId: id,
  clientOrderId: z.string(),
  // On a cancel, Binance puts the cancel request's own id in clientOrderId and ours here.
  origClientOrderId: z.string().optional(),
  price: decimal,
  origQty: decimal,
  executedQty: decimal,
  cummulativeQuoteQty: decimal,
  status,
  type: z.string(),
  side,
  stopPrice: decimal.optional(),
  time: ms.optional(),
  updateTime: ms.optional(),
  transactTime: ms.optional(),
  // -1 unless the order is a leg of an order list (OCO).
  orderListId: id.optional(),
});

/** Spot order list: POST /api/v3/orderList/oco and DELETE /api/v3/orderList answers. */
export const orderListRaw = z.object({
  orderListId: id,
  listClientOrderId: z.string(),
  orderReports: z.array(spotOrderRaw),
});
/** GET /api/v3/orderList ("Query Order list"): the legs by id only. */
export const orderListViewRaw = z.object({
  orderListId: id,
  listClientOrderId: z.string(),
  listStatusType: z.string(),
  orders: z.array(z.object({ orderId: id, clientOrderId: z.string() })),
});

export const spotTradeRaw = z.object({
  symbol: z.string(),
  id,
  orderId: id,
  price: decimal,
  qty: decimal,
  commission: decimal,
  commissionAsset: z.string(),
  time: ms,
  isBuyer: z.boolean(),
  isMaker: z.boolean(),
});

export const spotAccountRaw = z.object({ balances: z.array(z.object({ asset: z.string(), free: decimal, locked: decimal })) });

export const executionReport = z.object({
  e: z.literal('executionReport'),
  E: ms,
  s: z.string(),
  c: z.string(),
  C: z.string().nullish(),
  S: side,
  o: z.string(),
  q: decimal,
  p: decimal,
  P: decimal.optional(),
  // OrderListId: -1 unless the order is a leg of an order list.
  g: id.optional(),
  x: z.string(),
  X: status,
  i: id,
  l: decimal,
  z: decimal,
  L: decimal,
  n: decimal.nullish(),
  N: z.string().nullish(),
  T: ms,
  t: id,
  m: z.boolean(),
  Z: decimal,
});

/** "ListStatus" (spot user data): sent with the executionReports of order list legs. */
export const listStatus = z.object({
  e: z.literal('listStatus'),
  E: ms,
  s: z.string(),
  g: id,
  c: z.string(),
  l: z.string(),
  L: z.string(),
  C: z.string(),
  T: ms,
  O: z.array(z.object({ s: z.string(), i: id, c: z.string() })),
});

export const outboundAccountPosition = z.object({
  e: z.literal('outboundAccountPosition'),
  E: ms,
  B: z.array(z.object({ a: z.string(), f: decimal, l: decimal })),
});

export type SpotOrderRaw = z.infer<typeof spotOrderRaw>;
export type OrderListRaw = z.infer<typeof orderListRaw>;
export type OrderListViewRaw = z.infer<typeof orderListViewRaw>;
export type SpotTradeRaw = z.infer<typeof spotTradeRaw>;
export type SpotAccountRaw = z.infer<typeof spotAccountRaw>;
export type ExecutionReport = z.infer<typeof executionReport>;
export type OutboundAccountPosition = z.infer<typeof outboundAccountPosition>;
