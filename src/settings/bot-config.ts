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
/** What the notifiers can send: a signal, an order filled, an order failed, risk halts and resumes, the kill switch, ERROR logs, the 00:00 UTC summary. */
export const NOTIFY_EVENTS = ['signal', 'orderFilled', 'orderFailed', 'risk', 'killSwitch', 'error', 'dailySummary'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

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
        /** Who gets external holdings under `external: adopt` ('manual': only people and the kill switch trade them; a strategy's name hands them to it). */
        adoptOwner: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/).describe('a strategy name or "manual"').default('manual'),
      })
      .prefault({}),
    /**
     * Telegram and Slack messages (credentials come from the environment).
     * Which events are sent, how often a channel may send (bursts queue and
     * merge) and how many times a failed send is retried.
     */
    notifications: z
      .strictObject({
        events: z.array(z.enum(NOTIFY_EVENTS)).default([...NOTIFY_EVENTS]),
        minIntervalMs: z.number().int().min(100).max(60_000).default(1000),
        retries: z.number().int().min(0).max(10).default(3),
        /** Telegram commands (/status, /pause, ...) from the configured chat. */
        commands: z.boolean().default(true),
      })
      .prefault({}),
    /** Circuit breakers around the exchange REST API and each notifier. */
    circuitBreaker: z
      .strictObject({
        failures: positiveInt(1000).default(5),
        openSec: positiveInt(3600).default(30),
      })
      .prefault({}),
    /** MODE=sim: what the simulated account starts with, in the quote asset. */
    sim: z.strictObject({ balance: decimal({ positive: true }).prefault(10_000) }).prefault({}),
    /**
     * Scheduled re-optimization (the running bot): at `at` UTC every day (or
     * week, on Mondays), each job optimizes `grid` over the in-sample part of
     * the last `lookback` and tests the best set against the YAML's current
     * params on the last `outOfSample` of it; the new params are written into
     * the strategy's YAML (hot reload picks them up) only when they beat the
     * current ones out of sample by more than `minImprovement`. Every
     * decision is recorded (reoptimize_decisions).
     */
    reoptimize: z
      .array(
        z.strictObject({
          strategy: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'a strategy folder name such as rsi'),
          /** Default: every symbol the strategy has an enabled YAML for. */
          symbols: z.array(symbolKey).min(1).optional(),
          at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a UTC time such as 01:00').default('01:00'),
          every: z.enum(['day', 'week']).default('day'),
          lookback: z.string().regex(/^[1-9]\d*[dwm]$/, 'a span such as 90d, 12w or 3m').default('3m'),
          outOfSample: z.string().regex(/^[1-9]\d*[dwm]$/, 'a span such as 30d, 4w or 1m').default('1m'),
          grid: z.string().min(3, 'a grid such as period=10..30:2,oversold=20..35:5'),
          objective: z.enum(['sharpe', 'sortino', 'calmar', 'return']).default('sharpe'),
          /** The candidate must beat the current params' out-of-sample objective by more than this. */
          minImprovement: z.number().min(0).default(0),
          /** Worker threads for the grid (default 1: the bot keeps the other cores for trading). */
          workers: positiveInt(64).default(1),
        }),
      )
      .default([]),
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
    const days = (span: string): number => Number(span.slice(0, -1)) * ({ d: 1, w: 7, m: 30 } as const)[span.slice(-1) as 'd' | 'w' | 'm'];
    cfg.reoptimize.forEach((job, i) => {
      if (days(job.outOfSample) >= days(job.lookback)) {
        ctx.addIssue({ code: 'custom', path: ['reoptimize', i, 'outOfSample'], message: `outOfSample ${job.outOfSample} must be shorter than lookback ${job.lookback} (the rest is the in-sample part)` });
      }
    });
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
