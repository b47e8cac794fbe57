/**
 * The heartbeat file's shape, shared by the writer and by `trader status`
 * (which validates what it reads: the file is an edge too).
 */
import { z } from 'zod';

export const LIFECYCLE_STATES = ['starting', 'running', 'stopping', 'stopped'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export const BLOCK_STATUSES = ['ok', 'starting', 'degraded', 'down', 'n/a'] as const;
export type BlockStatus = (typeof BLOCK_STATUSES)[number];

/** One subsystem's health: a status, a line for people, and any figures. */
export const blockSchema = z
  .object({
    status: z.enum(BLOCK_STATUSES),
    detail: z.string().optional(),
  })
  .catchall(z.unknown());
export type HealthBlock = z.infer<typeof blockSchema>;

export const BLOCK_NAMES = ['feed', 'userStream', 'db', 'reconcile', 'risk', 'protection'] as const;
export type BlockName = (typeof BLOCK_NAMES)[number];

export const heartbeatSchema = z.object({
  ts: z.string(),
  tsMs: z.number(),
  pid: z.number().int(),
  version: z.string(),
  runId: z.string(),
  mode: z.string(),
  market: z.string(),
  startedAt: z.string(),
  uptimeSec: z.number(),
  state: z.enum(LIFECYCLE_STATES),
  /**
   * A line about the state: while starting, the step waited for ("waiting for account (attempt 2)": the
   * second retry); once stopped, why ("received SIGINT", "refusing to start: ...").
   */
  detail: z.string().optional(),
  healthy: z.boolean(),
  /** Why the bot is unhealthy, one line each; empty when healthy. */
  problems: z.array(z.string()),
  tradingState: z.string(),
  /** The writer's interval, so a reader can judge staleness without the config. */
  intervalMs: z.number().int().positive(),
  symbols: z.array(z.string()),
  strategies: z.array(z.string()),
  feed: blockSchema,
  userStream: blockSchema,
  db: blockSchema,
  reconcile: blockSchema,
  risk: blockSchema,
  /**
   * Stops, take-profits and trailing stops per owner (strategy, symbol, side): which legs the
   * exchange holds and which the bot emulates from the mark; `down` while a position with
   * protective levels has no working stop (a rejected or failed leg, being retried).
   */
  protection: blockSchema.default({ status: 'n/a' }),
  eventLoopLagMs: z.object({ p50: z.number(), p99: z.number(), max: z.number() }),
  rssMb: z.number(),
  heapUsedMb: z.number(),
  faults: z.number().int(),
  /** Every strategy instance: warming / ready / disabled. */
  instances: z
    .array(z.object({ strategy: z.string(), symbol: z.string(), timeframe: z.string(), state: z.enum(['warming', 'ready', 'disabled']), warm: z.string(), signals: z.number().int(), detail: z.string().optional() }))
    .default([]),
  /** Configuration errors from the last hot reload (the last good configuration keeps running). */
  configErrors: z.array(z.string()).default([]),
  /** Circuit breakers around outside dependencies (exchange REST, each notifier). */
  breakers: z
    .array(z.object({ name: z.string(), state: z.enum(['CLOSED', 'OPEN', 'HALF_OPEN']), consecutiveFailures: z.number().int(), opened: z.number().int(), retryAt: z.string().optional(), lastError: z.string().optional() }))
    .default([]),
  /** Notification channels (Telegram, Slack) and how their sending goes. */
  notifiers: z.array(z.object({ channel: z.string() }).catchall(z.unknown())).default([]),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;
