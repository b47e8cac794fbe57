/**
 * strategies/<strategy>/<SYMBOL>.yaml: what one strategy does on one symbol.
 * `params` is checked against the strategy's own schema by the strategy host;
 * everything else is checked here.
 */
import { z } from 'zod';
import { TIMEFRAMES } from '../model/market.ts';
import { decimal, percent, positiveInt } from './schema-helpers.ts';

const sizing = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('fixed'), quantity: decimal({ positive: true }) }),
  z.strictObject({ type: z.literal('quote'), amount: decimal({ positive: true }) }),
  z.strictObject({ type: z.literal('percent-equity'), percent: percent() }),
  z.strictObject({ type: z.literal('risk'), percent: percent() }),
  z.strictObject({
    type: z.literal('kelly'),
    fraction: z.number().gt(0).max(1),
    maxPercent: percent().default(10),
    /** Until the strategy has this many closed trades on the symbol, size at fallbackPercent of equity. */
    minTrades: positiveInt(10_000).default(20),
    fallbackPercent: percent().default(1),
  }),
  z.strictObject({ type: z.literal('volatility'), targetPercent: percent(), atrPeriod: positiveInt(500).default(14) }),
]);

const orderStyle = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('market') }),
  z.strictObject({
    type: z.literal('limit'),
    offsetBps: z.number().min(0).max(10_000).default(0),
    ttlSec: positiveInt(86_400).default(60),
    onExpiry: z.enum(['cancel', 'reprice', 'market']).default('cancel'),
  }),
]);

export const strategyConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Candle timeframe the instance consumes; the strategy's default when absent. */
  timeframe: z.enum(TIMEFRAMES).optional(),
  params: z.record(z.string(), z.unknown()).default({}),
  sizing: sizing.optional(),
  risk: z
    .strictObject({
      /** Guard 6: this strategy's realized loss today (all its symbols) that stops its entries. */
      maxDailyLossPct: percent().optional(),
      maxDailyLoss: decimal({ positive: true }).optional(),
      stopLossPct: percent().optional(),
      takeProfitPct: z.number().gt(0).max(10_000).optional(),
      trailingPct: percent().optional(),
      maxOpenPositions: positiveInt(1000).optional(),
      /** Pause after the loss streak, minutes; absent: the bot's risk.lossCooldownMinutes; 0: no pause. */
      cooldownMinutes: z.number().min(0).max(100_000).optional(),
    })
    .prefault({}),
  order: orderStyle.prefault({ type: 'market' }),
  /** Opt-in regime filter: entries only in the listed regimes (exits always pass). */
  regime: z
    .strictObject({
      allow: z.array(z.enum(['trending', 'ranging', 'volatile'])).min(1),
      adxPeriod: positiveInt(200).default(14),
      adxTrend: z.number().min(0).max(100).default(25),
      atrPeriod: positiveInt(200).default(14),
      atrLookback: positiveInt(5000).default(100),
      volatilePercentile: z.number().min(0).max(100).default(80),
    })
    .optional(),
  /** What happens to an open position when this instance is disabled or removed. */
  onDisable: z.enum(['keep', 'close']).default('keep'),
});

export type StrategyConfig = z.infer<typeof strategyConfigSchema>;
