/**
 * Stored backtests: every run is kept with its request, resolved config, the
 * git commit it ran on, its metrics, trades and equity curve, so a report can
 * be shown again, compared, or traced back to the code that produced it.
 */
import { execFileSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { TraderError } from '../core/errors.ts';
import type { Store } from '../store/store.ts';
import type { BacktestRequest } from './job.ts';
import type { BacktestResult } from './runner.ts';
import type { BacktestMetrics, BacktestReport, BacktestRunConfig } from './types.ts';

export interface RunSummary {
  readonly id: number;
  readonly createdAt: number;
  readonly source: string;
  readonly strategy: string;
  readonly symbols: string;
  readonly market: string;
  readonly from: number;
  readonly to: number;
  readonly gitCommit: string;
  readonly metrics: BacktestMetrics;
}

/**
 * The commit the code runs from: GIT_COMMIT when set (a Docker image has no
 * .git), else `git rev-parse HEAD`, with "-dirty" when the tree has
 * uncommitted changes (the run is then not exactly reproducible from the
 * commit, and the report should say so). "unknown" outside a checkout.
 */
export function gitCommit(cwd: string): string {
  if (process.env.GIT_COMMIT) return process.env.GIT_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

export class RunNotFoundError extends TraderError {
  constructor(what: string) {
    super('RUN_NOT_FOUND', `no stored backtest ${what} (see \`trader backtest list\`)`);
  }
}

export class BacktestRunStore {
  constructor(private readonly store: Store) {}

  save(source: string, request: BacktestRequest, result: BacktestResult, commit: string, now: number): BacktestReport {
    const c = result.config;
    const { store } = this;
    const r = store.run(
      store.db.insertInto('backtest_runs').values({
        created_at: now,
        source,
        strategy: [...new Set(c.strategies.map((s) => s.strategy))].join(','),
        symbols: [...new Set(c.strategies.map((s) => s.symbol))].join(','),
        market: c.market,
        from_ts: c.from,
        to_ts: c.to,
        git_commit: commit,
        request: JSON.stringify(request),
        config: JSON.stringify({ config: c, candles: result.candles, orders: result.orders, closedAtEnd: result.closedAtEnd, notes: result.notes }),
        metrics: JSON.stringify(result.metrics, jsonNumbers),
        trades: gzipSync(JSON.stringify(result.trades)),
        equity: gzipSync(JSON.stringify(result.equity)),
        elapsed_ms: Math.round(result.elapsedMs),
      }),
    );
    return { id: Number(r.lastInsertRowid), createdAt: now, gitCommit: commit, ...result };
  }

  /** Newest first. */
  list(limit = 50): RunSummary[] {
    const { store } = this;
    const rows = store.all(
      store.db
        .selectFrom('backtest_runs')
        .select(['id', 'created_at', 'source', 'strategy', 'symbols', 'market', 'from_ts', 'to_ts', 'git_commit', 'metrics'])
        .orderBy('id', 'desc')
        .limit(limit),
    );
    return rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      source: r.source,
      strategy: r.strategy,
      symbols: r.symbols,
      market: r.market,
      from: r.from_ts,
      to: r.to_ts,
      gitCommit: r.git_commit,
      metrics: JSON.parse(r.metrics, numbersBack) as BacktestMetrics,
    }));
  }

  /** A run by id, or "latest". */
  get(which: string | number): BacktestReport {
    const { store } = this;
    let q = store.db.selectFrom('backtest_runs').selectAll();
    if (which === 'latest') q = q.orderBy('id', 'desc').limit(1);
    else {
      const id = typeof which === 'number' ? which : /^\d+$/.test(which) ? Number(which) : NaN;
      if (!Number.isSafeInteger(id)) throw new TraderError('USAGE', `a run id is a number or "latest", got ${JSON.stringify(which)}`);
      q = q.where('id', '=', id);
    }
    const row = store.all(q)[0];
    if (!row) throw new RunNotFoundError(which === 'latest' ? '(none stored yet)' : `with id ${which}`);
    const extra = JSON.parse(row.config) as { config: BacktestRunConfig; candles: number; orders: BacktestReport['orders']; closedAtEnd: string[]; notes: string[] };
    return {
      id: row.id,
      createdAt: row.created_at,
      gitCommit: row.git_commit,
      config: extra.config,
      metrics: JSON.parse(row.metrics, numbersBack) as BacktestMetrics,
      trades: JSON.parse(gunzipSync(row.trades).toString()) as BacktestReport['trades'],
      equity: JSON.parse(gunzipSync(row.equity).toString()) as BacktestReport['equity'],
      candles: extra.candles,
      orders: extra.orders,
      closedAtEnd: extra.closedAtEnd,
      notes: extra.notes,
      elapsedMs: row.elapsed_ms,
    };
  }
}

/** JSON has no Infinity or NaN (a profit factor with no loser is Infinity): stored as strings and read back. */
export function jsonNumbers(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

export function numbersBack(_key: string, v: unknown): unknown {
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (v === 'NaN') return Number.NaN;
  return v;
}
