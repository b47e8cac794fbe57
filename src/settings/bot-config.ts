/**
 * config/bot.yaml: account-level settings. Every key has a default, so the
 * file may be absent; unknown keys are errors so a typo never silently falls
 * back to a default.
 */
import { z } from 'zod';
import { MARKETS, SYMBOL_PATTERN } from '../model/market.ts';
import { percent, positiveInt } from './schema-helpers.ts';

const leverage = z.number().int().min(1).max(125);

export const botConfigSchema = z
  .strictObject({
    /** Which Binance market the bot trades. */
    market: z.enum(MARKETS).default('spot'),
    /** The asset balances, PnL and sizing are measured in. */
    quoteAsset: z.string().regex(/^[A-Z0-9]{2,10}$/).describe('an upper-case asset code such as USDT').default('USDT'),
    /** Account-level risk limits (the risk engine enforces them). */
    risk: z
      .strictObject({
        maxDailyLossPct: percent().default(3),
        maxDrawdownPct: percent().default(20),
        maxOpenPositions: positiveInt(1000).default(5),
        maxLeverage: leverage.default(5),
      })
      .prefault({}),
    /** Per-symbol futures settings, applied at start. */
    symbols: z
      .record(
        z.string().regex(SYMBOL_PATTERN).describe('an upper-case symbol such as BTCUSDT'),
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
