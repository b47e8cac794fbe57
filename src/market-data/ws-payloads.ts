/**
 * Binance WebSocket market payloads, validated at the edge. Anything that
 * does not match is a malformed frame: counted and dropped by the feed.
 */
import { z } from 'zod';

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/);
const int = z.number().int().nonnegative();

export const klineEvent = z.object({
  e: z.literal('kline'),
  E: int,
  s: z.string().min(1),
  k: z.object({
    t: int,
    T: int,
    s: z.string().min(1),
    i: z.string(),
    o: decimal,
    c: decimal,
    h: decimal,
    l: decimal,
    v: decimal,
    n: int.optional(),
    x: z.boolean(),
    q: decimal.optional(),
  }),
});
export type KlineEvent = z.infer<typeof klineEvent>;

export const markPriceEvent = z.object({
  e: z.literal('markPriceUpdate'),
  E: int,
  s: z.string().min(1),
  p: decimal,
  r: z.union([decimal, z.literal('')]).optional(),
  T: int.optional(),
});
export type MarkPriceEvent = z.infer<typeof markPriceEvent>;

/** Combined-stream wrapper: {"stream": "...", "data": {...}}. */
export const combinedFrame = z.object({ stream: z.string(), data: z.unknown() });

/** REST kline row: [openTime, "o", "h", "l", "c", "v", closeTime, "q", trades, ...]. */
export const restKline = z.tuple([int, decimal, decimal, decimal, decimal, decimal, int]).rest(z.unknown());
export const restKlines = z.array(restKline);
