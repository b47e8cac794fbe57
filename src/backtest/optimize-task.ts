/**
 * One optimizer task: a BacktestRequest in, its metrics out. The same class
 * runs in the optimizer's own thread (workers = 1) and inside each worker
 * thread of the pool (optimize-pool.ts), so a result cannot depend on where
 * it ran: the determinism test compares the two.
 *
 * A worker loads settings, the strategy module and the candles once and
 * then runs many requests: the candles of a (market, symbol) are read from
 * SQLite once per worker (CachedCandleRepository) and every later run,
 * whatever its window, slices them from memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, TraderError, type ConfigIssue } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { Market } from '../model/market.ts';
import { loadSettings, type LoadSettingsOptions } from '../settings/load-settings.ts';
import type { Settings } from '../settings/settings.ts';
import { CandleRepository, type StoredCandle } from '../store/candle-repository.ts';
import { Store } from '../store/store.ts';
import { createIndicatorFactory, type IndicatorFactory } from '../strategy/indicators/index.ts';
import { prepareBacktest, type BacktestRequest } from './job.ts';
import { runBacktest } from './runner.ts';
import type { BacktestMetrics } from './types.ts';

const MINUTE = 60_000;

/**
 * A candle repository that keeps each 1m series it has read in memory.
 * runBacktest reads its series with one range() call per run; the
 * optimizer runs the same series dozens to thousands of times over windows
 * of one known span, so the first read loads the whole span (`preload`) and
 * later reads are two binary searches. The cached candle objects are shared
 * between runs: the runner copies a candle before changing it.
 */
export class CachedCandleRepository extends CandleRepository {
  private readonly cache = new Map<string, { from: number; to: number; rows: StoredCandle[] }>();

  /** preload: [from, to) to read on the first miss of a series (the optimizer's whole range). */
  constructor(
    store: Store,
    private readonly preload?: { readonly from: number; readonly to: number },
  ) {
    super(store);
  }

  override range(market: Market, symbol: string, timeframe: string, from: number, to: number): StoredCandle[] {
    if (timeframe !== '1m' || to < from) return super.range(market, symbol, timeframe, from, to);
    const key = `${market}|${symbol}`;
    let entry = this.cache.get(key);
    if (!entry || from < entry.from || to > entry.to) {
      const lo = Math.min(from, this.preload?.from ?? from);
      const hi = Math.max(to, this.preload ? this.preload.to - MINUTE : to);
      entry = { from: lo, to: hi, rows: super.range(market, symbol, timeframe, lo, hi) };
      this.cache.set(key, entry);
    }
    const rows = entry.rows;
    return rows.slice(lowerBound(rows, from), lowerBound(rows, to + 1));
  }
}

/** First index whose openTime >= t. */
function lowerBound(rows: readonly StoredCandle[], t: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid]!.openTime < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export type TaskOutcome =
  | { readonly kind: 'ok'; readonly metrics: BacktestMetrics; readonly candles: number; readonly elapsedMs: number }
  /** The strategy's schema refused the params: an expected outcome of a grid (oversold >= overbought), not a failure. */
  | { readonly kind: 'refused'; readonly issues: readonly ConfigIssue[] };

/** A ConfigError every issue of which is about the params (field "params" or "params.x"). */
export function paramIssues(err: unknown): readonly ConfigIssue[] | undefined {
  if (!(err instanceof ConfigError) || err.issues.length === 0) return undefined;
  return err.issues.every((i) => i.field === 'params' || i.field.startsWith('params.')) ? err.issues : undefined;
}

export interface TaskRunnerDeps {
  readonly settings: Settings;
  readonly candles: CandleRepository;
  readonly logger: Logger;
  readonly indicators?: () => IndicatorFactory;
}

export class BacktestTaskRunner {
  constructor(private readonly deps: TaskRunnerDeps) {}

  async run(request: BacktestRequest): Promise<TaskOutcome> {
    let prepared;
    try {
      prepared = await prepareBacktest(request, this.deps.settings);
    } catch (err) {
      const issues = paramIssues(err);
      if (issues) return { kind: 'refused', issues };
      throw err;
    }
    const r = await runBacktest(prepared.config, { settings: this.deps.settings, candles: this.deps.candles, logger: this.deps.logger, indicators: this.deps.indicators ?? createIndicatorFactory });
    return { kind: 'ok', metrics: r.metrics, candles: r.candles, elapsedMs: r.elapsedMs };
  }
}

/** What a pool worker starts with (structured-cloneable: it crosses the thread boundary). */
export interface WorkerInit {
  /** How the worker loads settings: the same options the optimizer's caller used, so both see the same files. */
  readonly settings: LoadSettingsOptions;
  /** The database holding the candles; opened read-only by the worker. */
  readonly dbFile: string;
  /** The optimizer's whole range: what the candle cache loads on its first read. */
  readonly span: { readonly from: number; readonly to: number };
}

export interface TaskMessage {
  readonly id: number;
  readonly request: BacktestRequest;
}

/** A failure, rebuilt on the other side with its code (an exit code depends on it). */
export interface TaskError {
  readonly code: string;
  readonly message: string;
  readonly issues?: readonly ConfigIssue[];
}

export type TaskReply = { readonly id: number; readonly outcome: TaskOutcome } | { readonly id: number; readonly error: TaskError };
/** Sent once the worker has loaded everything (or failed to: its tasks then answer with the error). */
export interface ReadyMessage {
  readonly ready: true;
}

export function toTaskError(err: unknown): TaskError {
  if (err instanceof ConfigError) return { code: err.code, message: err.message, issues: err.issues };
  if (err instanceof TraderError) return { code: err.code, message: err.message };
  return { code: 'UNEXPECTED', message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

export function fromTaskError(e: TaskError): Error {
  if (e.issues) return new ConfigError(e.issues);
  if (e.code === 'UNEXPECTED') return new Error(`optimizer worker: ${e.message}`);
  return new TraderError(e.code as TraderError['code'], e.message);
}

/**
 * The worker side (optimize-worker.js calls it): loads settings and opens
 * the database at once, then answers tasks one at a time. A failure to start (bad
 * settings, unreadable database) is the reply to every task, so the
 * optimizer reports it instead of hanging.
 */
export function serveOptimizeWorker(): void {
  const port = parentPort;
  if (!port) throw new Error('serveOptimizeWorker runs on a worker thread');
  const init = workerData as WorkerInit;
  const start = async (): Promise<BacktestTaskRunner> => {
    const settings = loadSettings(init.settings);
    const store = Store.open(init.dbFile, { readonly: true });
    // Quiet: thousands of simulated orders are the result, not log lines; errors still reach stderr.
    const log = createLogger({ level: 'error', format: settings.env.LOG_FORMAT, stdout: { write: (line: string) => void process.stderr.write(line) } });
    return new BacktestTaskRunner({ settings, candles: new CachedCandleRepository(store, init.span), logger: log.logger });
  };
  // Started at once, not on the first task: it overlaps the optimizer's own
  // checks. A failure is kept and becomes the reply to every task.
  const runner = start();
  const ready = (): void => port.postMessage({ ready: true } satisfies ReadyMessage);
  runner.then(ready, ready);
  // One task at a time: tasks are CPU-bound, interleaving them would only add memory.
  let chain = Promise.resolve();
  port.on('message', (m: TaskMessage) => {
    chain = chain.then(async () => {
      let reply: TaskReply;
      try {
        reply = { id: m.id, outcome: await (await runner).run(m.request) };
      } catch (err) {
        reply = { id: m.id, error: toTaskError(err) };
      }
      port.postMessage(reply);
    });
  });
}
