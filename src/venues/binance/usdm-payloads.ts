/**
 * Binance USD-M futures payloads as zod schemas: REST answers
 * (/fapi/v1/order, the algo-order service, userTrades, account,
 * positionRisk, leverageBracket, listenKey) and user-data events
 * (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE). Unknown event types are
 * ignored by the stream; a known type that does not match is malformed.
 */
import { z } from 'zod';
import { decimal, id, ms, positionSide, side, status } from './payloads.ts';

/** USD-M regular order: GET/POST/DELETE /fapi/v1/order, openOrders. */
export const futuresOrderRaw = z.object({
  symbol: z.string(),
  orderId: id,
  clientOrderId: z.string(),
  price: decimal,
  // "Cancel Order (TRADE)" documents its answer without avgPrice (tests/fixtures/binance/usdm/order-cancel.json).
  avgPrice: decimal.optional(),
  origQty: decimal,
  executedQty: decimal,
  status,
  type: z.string(),
  origType: z.string().optional(),
  side,
  stopPrice: decimal.optional(),
  reduceOnly: z.boolean(),
  positionSide: positionSide.optional(),
  updateTime: ms,
});

export const ALGO_STATUSES = ['NEW', 'CANCELED', 'TRIGGERING', 'TRIGGERED', 'FINISHED', 'REJECTED', 'EXPIRED'] as const;

/** USD-M conditional order on the algo service: /fapi/v1/algoOrder, openAlgoOrders. */
export const algoOrderRaw = z.object({
  algoId: id,
  clientAlgoId: z.string(),
  orderType: z.string(),
  symbol: z.string(),
  side,
  quantity: decimal,
  algoStatus: z.enum(ALGO_STATUSES),
  // A trailing stop has no fixed trigger: Binance may send null.
  triggerPrice: decimal.nullish(),
  reduceOnly: z.boolean(),
  positionSide: positionSide.optional(),
  updateTime: ms,
  actualOrderId: z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v))),
  actualPrice: decimal.nullish(),
});

export const futuresTradeRaw = z.object({
  symbol: z.string(),
  id,
  orderId: id,
  side,
  price: decimal,
  qty: decimal,
  commission: decimal,
  commissionAsset: z.string(),
  realizedPnl: decimal,
  maker: z.boolean(),
  time: ms,
});

export const futuresAccountRaw = z.object({
  totalWalletBalance: decimal,
  availableBalance: decimal,
  assets: z.array(z.object({ asset: z.string(), walletBalance: decimal, availableBalance: decimal })),
});
export const positionRaw = z.object({
  symbol: z.string(),
  positionSide: z.enum(['BOTH', 'LONG', 'SHORT']),
  positionAmt: decimal,
  entryPrice: decimal.optional(),
  markPrice: decimal.optional(),
  unRealizedProfit: decimal.optional(),
  liquidationPrice: decimal.optional(),
  leverage: z.union([z.string(), z.number()]).optional(),
});
export const bracketsRaw = z.array(
  z.object({
    symbol: z.string(),
    brackets: z.array(z.object({ bracket: z.number(), notionalFloor: z.number().optional(), maintMarginRatio: z.union([z.number(), z.string()]) })).min(1),
  }),
);
export const listenKeyRaw = z.object({ listenKey: z.string().min(1) });

export const futuresOrderUpdate = z.object({
  e: z.literal('ORDER_TRADE_UPDATE'),
  E: ms,
  T: ms.optional(),
  o: z.object({
    s: z.string(),
    c: z.string(),
    S: side,
    o: z.string(),
    ot: z.string().optional(),
    q: decimal,
    p: decimal,
    ap: decimal,
    sp: decimal.optional(),
    x: z.string(),
    X: status,
    i: id,
    l: decimal,
    z: decimal,
    L: decimal,
    n: decimal.optional(),
    N: z.string().nullish(),
    T: ms,
    t: id,
    m: z.boolean(),
    R: z.boolean(),
    ps: positionSide.optional(),
    rp: decimal.optional(),
  }),
});

export const futuresAccountUpdate = z.object({
  e: z.literal('ACCOUNT_UPDATE'),
  E: ms,
  T: ms.optional(),
  a: z.object({ m: z.string().optional(), B: z.array(z.object({ a: z.string(), wb: decimal, cw: decimal.optional(), bc: decimal.optional() })) }),
});

export const algoUpdate = z.object({
  e: z.literal('ALGO_UPDATE'),
  E: ms,
  T: ms.optional(),
  o: z.object({ caid: z.string(), aid: id, o: z.string(), s: z.string(), S: side, ps: positionSide.optional(), q: decimal, X: z.enum(ALGO_STATUSES), tp: decimal.nullish(), R: z.boolean() }),
});

export type FuturesOrderRaw = z.infer<typeof futuresOrderRaw>;
export type AlgoOrderRaw = z.infer<typeof algoOrderRaw>;
export type AlgoStatus = (typeof ALGO_STATUSES)[number];
export type FuturesTradeRaw = z.infer<typeof futuresTradeRaw>;
export type FuturesAccountRaw = z.infer<typeof futuresAccountRaw>;
export type PositionRaw = z.infer<typeof positionRaw>;
export type FuturesOrderUpdate = z.infer<typeof futuresOrderUpdate>;
export type FuturesAccountUpdate = z.infer<typeof futuresAccountUpdate>;
export type AlgoUpdate = z.infer<typeof algoUpdate>;
