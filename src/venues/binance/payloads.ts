/**
 * Building blocks shared by Binance's spot and USD-M payload schemas
 * (spot-payloads.ts, usdm-payloads.ts), and the WebSocket API's response
 * envelope. Money fields stay strings that must be decimals: they become
 * exact Decimals in mappers.ts, never floats.
 */
import { z } from 'zod';
import { isDecimalString } from '../../core/decimal.ts';
import type { OrderStatus } from '../../model/events.ts';

export const decimal = z.string().refine(isDecimalString, { message: 'expected a decimal string' });
export const id = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]).transform(String);
export const side = z.enum(['BUY', 'SELL']);
export const positionSide = z.enum(['BOTH', 'LONG', 'SHORT']);
export const ms = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

export const ORDER_STATUS: Readonly<Record<string, OrderStatus>> = {
  NEW: 'NEW',
  PENDING_NEW: 'NEW',
  // Binance: "currently unused"; the order still works until a CANCELED says otherwise.
  PENDING_CANCEL: 'NEW',
  // Futures liquidation orders.
  NEW_INSURANCE: 'NEW',
  NEW_ADL: 'NEW',
  PARTIALLY_FILLED: 'PARTIALLY_FILLED',
  FILLED: 'FILLED',
  CANCELED: 'CANCELED',
  REJECTED: 'REJECTED',
  EXPIRED: 'EXPIRED',
  EXPIRED_IN_MATCH: 'EXPIRED',
};
export const status = z.string().refine((s) => s in ORDER_STATUS, { message: 'unknown order status' }).transform((s) => ORDER_STATUS[s]!);

/** The WebSocket API's answer to a request (spot user data: userDataStream.subscribe.signature). */
export const wsApiResponse = z.object({
  id: z.union([z.string(), z.number()]),
  status: z.number(),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), msg: z.string() }).optional(),
});

export type WsApiResponse = z.infer<typeof wsApiResponse>;
