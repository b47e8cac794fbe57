/**
 * config/bot.yaml: account-level settings. Every key has a default, so the
 * file may be absent; unknown keys are errors so a typo never silently falls
 * back to a default.
 */
import { z } from 'zod';
import { MARKETS, SYMBOL_PATTERN } from '../model/market.ts';
import { decimal, percent, positiveInt } from './schema-helpers.ts';

const leverage = z.number().int().min(1).max(125);
const symbolKey = z.string().regex(SYMBOL_PATTERN).describe('an upper-case symbol such as BTCUSDT');

/** The risk guards by name, in the order they run by default (cheap and decisive first). */
export const GUARD_NAMES = [
  'stale-data',
  'order-throttle',
  'price-protection',
  'daily-loss',
  'drawdown',
  'strategy-daily-loss',
  'consecutive-losses',
  'duplicate-order',
  'max-open-positions',
  'max-position-size',
  'symbol-exposure',
  'daily-traded-quantity',
  'funding-window',
  'liquidation-distance',
  'balance',
  'portfolio-var',
] as const;
export type GuardName = (typeof GUARD_NAMES)[number];

const riskSchema = z
  .strictObject({
    /** Which guards run, in this order. Leave out a guard to switch it off. */
    guards: z
      .array(z.enum(GUARD_NAMES))
      .refine((g) => new Set(g).size === g.length, { message: 'a guard is listed twice' })
      .default([...GUARD_NAMES]),
    /** Guard 2: HALTED until 00:00 UTC once the day's loss (realized + unrealized) reaches either limit. */
    maxDailyLossPct: percent().default(3),
    maxDailyLoss: decimal({ positive: true }).optional(),
    /** Guard 9: REDUCING at reduceDrawdownPct below peak equity, HALTED at maxDrawdownPct. */
    maxDrawdownPct: percent().default(20),
    reduceDrawdownPct: percent().optional(),
    maxOpenPositions: positiveInt(1000).default(5),
    maxLeverage: leverage.default(5),
    /** Guard 1: the largest position per symbol, as a percent of equity and/or a quantity per symbol. */
    maxPositionPct: percent().default(25),
    maxPositionQty: z.record(symbolKey, decimal({ positive: true })).default({}),
    /** Guard 7: the largest notional per symbol, in the quote asset (default for all, then per symbol). */
    maxExposure: decimal({ positive: true }).optional(),
    maxExposureBySymbol: z.record(symbolKey, decimal({ positive: true })).default({}),
    /** Guard 8: the most base quantity traded per symbol per UTC day. */
    maxDailyQty: z.record(symbolKey, decimal({ positive: true })).default({}),
    /** Guard 5: limit or last price vs mark, and the largest one-candle range for entries. */
    maxPriceDeviationBps: z.number().gt(0).max(10_000).default(100),
    maxCandleRangePct: z.number().gt(0).max(1000).default(10),
    /** Guard 10: this many losing trades in a row pause the strategy on that symbol for the cooldown. */
    maxConsecutiveLosses: positiveInt(1000).default(3),
    lossCooldownMinutes: z.number().min(0).max(100_000).default(60),
    /** Guard 11 (futures): no new entries this many minutes before a funding time. */
    fundingWindowMinutes: z.number().min(0).max(480).default(2),
    /** Guard 12: orders per symbol per minute, and account-wide per second. */
    maxOrdersPerSymbolPerMinute: positiveInt(10_000).default(20),
    maxOrdersPerSecond: positiveInt(10_000).default(10),
    /** Guard 13: no new entries when the symbol's market data is older than this. */
    staleDataSec: positiveInt(86_400).default(180),
    /** Guard 14 (futures): projected liquidation within these % of the mark. */
    liquidationDenyPct: percent().default(10),
    liquidationReducePct: percent().default(5),
    /** Guard 15: historical VaR of gross exposure, as a percent of equity, from daily returns. */
    var95Pct: percent().default(5),
    var99Pct: percent().default(10),
    varMinSamples: positiveInt(10_000).default(30),
  })
  .superRefine((r, ctx) => {
    if (r.reduceDrawdownPct !== undefined && r.reduceDrawdownPct > r.maxDrawdownPct) {
      ctx.addIssue({ code: 'custom', path: ['reduceDrawdownPct'], message: `reduceDrawdownPct ${r.reduceDrawdownPct} is above maxDrawdownPct ${r.maxDrawdownPct}` });
    }
    if (r.liquidationReducePct > r.liquidationDenyPct) {
      ctx.addIssue({ code: 'custom', path: ['liquidationReducePct'], message: `liquidationReducePct ${r.liquidationReducePct} is above liquidationDenyPct ${r.liquidationDenyPct}` });
    }
  });

export type RiskConfig = z.infer<typeof riskSchema>;

export const botConfigSchema = z
  .strictObject({
    /** Which Binance market the bot trades. */
    market: z.enum(MARKETS).default('spot'),
    /** The asset balances, PnL and sizing are measured in. */
    quoteAsset: z.string().regex(/^[A-Z0-9]{2,10}$/).describe('an upper-case asset code such as USDT').default('USDT'),
    /** Account-level risk limits (the risk engine enforces them). */
    risk: riskSchema.prefault({}),
    /** Reconciliation with the exchange: how often while running, and what to do with what we did not place. */
    reconcile: z
      .strictObject({
        intervalSec: positiveInt(86_400).default(60),
        /** Open orders and positions the bot did not create: adopt them, leave them alone, or halt the symbol. Never cancelled. */
        external: z.enum(['adopt', 'ignore', 'halt']).default('ignore'),
      })
      .prefault({}),
    /** MODE=sim: what the simulated account starts with, in the quote asset. */
    sim: z.strictObject({ balance: decimal({ positive: true }).prefault(10_000) }).prefault({}),
    /** Per-symbol futures settings, applied at start. */
    symbols: z
      .record(
        symbolKey,
        z.strictObject({
          leverage: leverage.optional(),
          marginType: z.enum(['isolated', 'cross']).optional(),
        }),
      )
      .default({}),
  })
  .superRefine((cfg, ctx) => {
    for (const [symbol, s] of Object.entries(cfg.symbols)) {
      if (s.leverage !== undefined && s.leverage > cfg.risk.maxLeverage) {
        ctx.addIssue({
          code: 'custom',
          path: ['symbols', symbol, 'leverage'],
          message: `leverage ${s.leverage} is above risk.maxLeverage ${cfg.risk.maxLeverage}`,
        });
      }
    }
  });

export type BotConfig = z.infer<typeof botConfigSchema>;
