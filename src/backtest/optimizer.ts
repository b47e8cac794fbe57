/**
 * The parameter optimizer: a grid search, optionally walk-forward, over the
 * same backtester `trader backtest run` uses.
 *
 * Plain grid: every parameter set runs over [from, to) and is ranked by the
 * objective. Walk-forward: per window, the grid runs in-sample, the winner
 * runs out-of-sample, and the report compares the two (below).
 *
 * Ranking. The score is the objective's metric (sharpe, sortino, calmar, or
 * totalReturn for "return"), except that a set that made no trade scores
 * -Infinity: its sharpe of 0 would otherwise beat every losing set, and "do
 * nothing" is not a parameter set anyone means to trade. NaN counts as
 * -Infinity too. Ties go to the first set in grid order (cartesian() in
 * grid.ts), so a run ranks the same way every time, on any worker count.
 *
 * Refused sets. A set the strategy's schema refuses (a refine such as
 * oversold < overbought) is skipped and counted, with the reason; it is not
 * stored as a result row. Every set refused is a configuration error.
 *
 * Overfitting (walk-forward). Per window, IS = the winner's in-sample
 * objective and OOS = the same set's out-of-sample objective, in comparable
 * units: sharpe, sortino and calmar are already annualized; "return" is
 * compared per day (totalReturn / days of the window), since a 4-day
 * in-sample return is not comparable with a 1-day out-of-sample one. Over
 * the run, meanIS and meanOOS are the means over windows.
 *   overfit  <=>  meanIS > 0  and  meanOOS < 0.5 * meanIS
 * i.e. out-of-sample keeps less than half of the in-sample edge (a negative
 * out-of-sample figure after a positive in-sample one is included). With
 * meanIS <= 0 the verdict is "no-edge": nothing profitable was found to
 * overfit. The same rule flags each window. The compounded out-of-sample
 * return, prod(1 + r_oos) - 1, is what trading the walk-forward would have
 * made.
 *
 * Recommended params. Plain grid: the best set. Walk-forward: the winner of
 * the LAST window's in-sample run (the most recent data, which is what a
 * re-optimization would pick today); each window's winner is stored too.
 * Recommended params include the fixed --param values, since the ranking was
 * made with them.
 */
import { availableParallelism } from 'node:os';
import { ConfigError, TraderError, type ConfigIssue } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { LoadSettingsOptions } from '../settings/load-settings.ts';
import type { Settings } from '../settings/settings.ts';
import { CandleRepository } from '../store/candle-repository.ts';
import type { Store } from '../store/store.ts';
import { cartesian, formatParams, GridError, type Grid, type ParamSet } from './grid.ts';
import { checkRequest, prepareBacktest, type BacktestRequest } from './job.ts';
import { InProcessExecutor, OptimizePool, type BacktestExecutor } from './optimize-pool.ts';
import { CachedCandleRepository, paramIssues, type TaskRunnerDeps } from './optimize-task.ts';
import { jsonNumbers } from './run-store.ts';
import { MissingDataError } from './runner.ts';
import type { BacktestMetrics } from './types.ts';
import { splitWalkForward, type WalkForwardSpec } from './walk-forward.ts';

export const OBJECTIVES = ['sharpe', 'sortino', 'calmar', 'return'] as const;
export type Objective = (typeof OBJECTIVES)[number];

/** Out-of-sample must keep at least this share of the in-sample objective (see the header). */
export const OVERFIT_KEEP = 0.5;
export const OVERFIT_RULE = `overfit when mean in-sample objective > 0 and mean out-of-sample objective < ${OVERFIT_KEEP * 100} % of it (return compared per day)`;

const DAY = 86_400_000;

export interface OptimizeOptions {
  /** The base request: strategy, symbols, market, timeframe, [from, to), fixed params, costs. */
  readonly request: BacktestRequest;
  readonly grid: Grid;
  readonly objective: Objective;
  readonly walkForward?: WalkForwardSpec;
  /** Backtests at once (default: os.availableParallelism()), this thread's included; 1 runs them all in this thread. */
  readonly workers?: number;
  /**
   * Run backtests in the calling thread too (default true: the CLI's thread
   * only waits otherwise). A caller whose event loop must stay responsive
   * (the running bot's re-optimizer) sets false: every backtest then runs
   * in a worker thread, workers = 1 included.
   */
  readonly inThisThread?: boolean;
  /** What started it (optimize_runs.source): cli, reoptimize... Default "cli". */
  readonly source?: string;
  readonly onProgress?: (p: OptimizeProgress) => void;
}

export interface OptimizeDeps {
  readonly settings: Settings;
  /** Where candles are read (in this thread) and the run is stored. */
  readonly store: Store;
  /** Wall clock for the stored created_at. */
  readonly now: () => number;
  /** The code's commit (run-store gitCommit). */
  readonly commit: string;
  /** How a worker loads its own settings: the options `settings` were loaded with (default: this process's cwd and environment). */
  readonly settingsOptions?: LoadSettingsOptions;
  /** For runs in this thread; default: errors only, to stderr. */
  readonly logger?: Logger;
  /** Replaces the built-in executor (in-process or pool); closed when the optimization ends. */
  readonly executor?: BacktestExecutor;
}

export interface OptimizeProgress {
  readonly done: number;
  readonly total: number;
  readonly elapsedMs: number;
  /** Remaining time at the pace so far; undefined before the first backtest finishes. */
  readonly etaMs: number | undefined;
}

/** The figures kept per run (the full metrics, less the monthly table). */
export type KeyMetrics = Pick<BacktestMetrics, 'totalReturn' | 'annualizedReturn' | 'sharpe' | 'sortino' | 'calmar' | 'maxDrawdown' | 'trades' | 'winRate' | 'profitFactor' | 'feesPaid'>;

export interface SetResult {
  /** Position in grid order (ties go to the lower). */
  readonly index: number;
  /** The grid's values for this set. */
  readonly params: ParamSet;
  /** The objective's metric as computed. */
  readonly objective: number;
  /** What ranks: the objective, or -Infinity when the set made no trade (or the metric is NaN). */
  readonly score: number;
  readonly metrics: KeyMetrics;
}

export interface OutOfSample {
  readonly from: number;
  readonly to: number;
  readonly objective: number;
  readonly metrics: KeyMetrics;
}

export interface WindowResult {
  /** 0: a plain grid; 1..: walk-forward windows. */
  readonly window: number;
  /** The in-sample (or only) range. */
  readonly from: number;
  readonly to: number;
  /** In-sample results, best first. */
  readonly ranked: readonly SetResult[];
  readonly best: SetResult;
  readonly outOfSample?: OutOfSample;
  /** Walk-forward: IS and OOS in comparable units (return per day for "return") and the window's verdict. */
  readonly comparison?: { readonly inSample: number; readonly outOfSample: number; readonly overfit: boolean };
}

export interface WalkForwardSummary {
  readonly spec: string;
  readonly windows: number;
  readonly meanInSample: number;
  readonly meanOutOfSample: number;
  /** prod(1 + OOS totalReturn) - 1. */
  readonly compoundedOosReturn: number;
  readonly overfit: boolean;
  readonly verdict: 'ok' | 'overfit' | 'no-edge';
  readonly rule: string;
}

export interface OptimizeReport {
  readonly id: number;
  readonly createdAt: number;
  readonly gitCommit: string;
  readonly source: string;
  readonly strategy: string;
  readonly symbols: readonly string[];
  readonly market: string;
  readonly from: number;
  readonly to: number;
  readonly objective: Objective;
  readonly grid: Grid;
  readonly fixedParams: Readonly<Record<string, unknown>>;
  /** Sets in the grid, sets run, refused (skipped) and sets that made no trade (in any window). */
  readonly sets: number;
  readonly refused: { readonly count: number; readonly examples: ReadonlyArray<{ readonly params: ParamSet; readonly reason: string }> };
  readonly zeroTradeSets: number;
  readonly backtests: number;
  readonly workers: number;
  readonly elapsedMs: number;
  readonly windows: readonly WindowResult[];
  /** What --apply writes: fixed params and the recommended grid values. */
  readonly bestParams: Readonly<Record<string, unknown>>;
  /** The recommended set made no trade (its score is -Infinity): nothing worth applying. */
  readonly bestHasNoTrades: boolean;
  readonly walkForward?: WalkForwardSummary;
  /** What the reader must know to read the figures. */
  readonly notes: readonly string[];
}

/** A usage problem in the optimizer's own options (the CLI exits 64). */
class OptimizeUsageError extends TraderError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

function keyMetrics(m: BacktestMetrics): KeyMetrics {
  return { totalReturn: m.totalReturn, annualizedReturn: m.annualizedReturn, sharpe: m.sharpe, sortino: m.sortino, calmar: m.calmar, maxDrawdown: m.maxDrawdown, trades: m.trades, winRate: m.winRate, profitFactor: m.profitFactor, feesPaid: m.feesPaid };
}

export function objectiveOf(objective: Objective, m: Pick<BacktestMetrics, 'sharpe' | 'sortino' | 'calmar' | 'totalReturn'>): number {
  return objective === 'return' ? m.totalReturn : m[objective];
}

/** The ranking score: the objective, -Infinity for a set without trades or with a NaN metric. */
export function scoreOf(objective: Objective, m: Pick<BacktestMetrics, 'sharpe' | 'sortino' | 'calmar' | 'totalReturn' | 'trades'>): number {
  const v = objectiveOf(objective, m);
  return m.trades === 0 || Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v;
}

/** IS and OOS on one scale: ratios are annualized already; a return becomes a return per day. */
export function comparable(objective: Objective, value: number, spanMs: number): number {
  return objective === 'return' ? value / (spanMs / DAY) : value;
}

export function isOverfit(inSample: number, outOfSample: number): boolean {
  return inSample > 0 && outOfSample < OVERFIT_KEEP * inSample;
}

/** Best first; equal scores keep grid order. */
export function rank(results: readonly SetResult[]): SetResult[] {
  return [...results].sort((a, b) => (b.score === a.score ? a.index - b.index : b.score > a.score ? 1 : -1));
}

export async function optimize(opts: OptimizeOptions, deps: OptimizeDeps): Promise<OptimizeReport> {
  const started = performance.now();
  if (!(OBJECTIVES as readonly string[]).includes(opts.objective)) throw new OptimizeUsageError(`--objective must be one of ${OBJECTIVES.join(', ')}, got ${JSON.stringify(opts.objective)}`);
  const base = checkRequest(opts.request, 'optimize');
  const fixed = base.params;
  const clash = Object.keys(opts.grid).filter((k) => Object.hasOwn(fixed, k));
  if (clash.length > 0) throw new OptimizeUsageError(`${clash.join(', ')} ${clash.length === 1 ? 'is' : 'are'} both in --grid and --param; keep one`);
  const workers = opts.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new OptimizeUsageError(`--workers must be a whole number >= 1, got ${workers}`);
  const windows = opts.walkForward ? splitWalkForward(opts.walkForward, base.from, base.to) : undefined;
  const all = cartesian(opts.grid);
  if (all.length === 0) throw new GridError('--grid has no parameter sets');
  const market = base.market ?? deps.settings.market;

  const ranges = windows ? windows.map((w) => ({ window: w.index, from: w.isFrom, to: w.isTo, oos: { from: w.oosFrom, to: w.oosTo } })) : [{ window: 0, from: base.from, to: base.to, oos: undefined }];
  const most = ranges.length * all.length + (windows ? windows.length : 0);

  // The likeliest mistake, said before any worker spends seconds starting:
  // no candles at all in the range (holes inside it are the runner's to report).
  const candles = new CandleRepository(deps.store);
  for (const symbol of base.symbols) {
    const first = candles.firstOpenTime(market, symbol, '1m');
    const last = candles.lastOpenTime(market, symbol, '1m');
    if (first === undefined || last === undefined || last < base.from || first >= base.to) throw new MissingDataError(market, symbol, base.from, base.to);
  }

  // Workers start first: each loads its own copy of the modules (seconds),
  // which overlaps the schema checks below.
  let ownLog: ReturnType<typeof createLogger> | undefined;
  const here = (): TaskRunnerDeps => ({
    settings: deps.settings,
    candles: new CachedCandleRepository(deps.store, { from: base.from, to: base.to }),
    logger: deps.logger ?? (ownLog = createLogger({ level: 'error', format: deps.settings.env.LOG_FORMAT, stdout: { write: (line: string) => void process.stderr.write(line) } })).logger,
  });
  const inThisThread = opts.inThisThread ?? true;
  const n = Math.min(workers, most);
  const executor =
    deps.executor ??
    (n === 1 && inThisThread
      ? new InProcessExecutor(here())
      : OptimizePool.start({ workers: n, init: { settings: deps.settingsOptions ?? {}, dbFile: deps.settings.paths.dbFile, span: { from: base.from, to: base.to } }, ...(inThisThread ? { inThisThread: here() } : {}) }));

  let results: WindowResult[];
  let done = 0;
  const refused: Array<{ params: ParamSet; issues: readonly ConfigIssue[] }> = [];
  try {
    // Every set is checked against the strategy's schema here: a refused set
    // is counted, anything else (an unknown strategy, a market the strategy
    // does not trade) stops the run before any backtest.
    const ok: Array<{ index: number; params: ParamSet }> = [];
    for (let i = 0; i < all.length; i++) {
      try {
        await prepareBacktest({ ...base, params: { ...fixed, ...all[i] } }, deps.settings);
        ok.push({ index: i, params: all[i]! });
      } catch (err) {
        const issues = paramIssues(err);
        if (!issues) throw err;
        refused.push({ params: all[i]!, issues });
      }
    }
    if (ok.length === 0) {
      throw new ConfigError([
        { source: 'optimize', field: '--grid', message: `the strategy refused every one of the ${all.length} parameter set${all.length === 1 ? '' : 's'}; the first (${formatParams(refused[0]!.params)}):` },
        ...refused[0]!.issues,
      ]);
    }

    const total = ranges.length * ok.length + (windows ? windows.length : 0);
    opts.onProgress?.({ done: 0, total, elapsedMs: performance.now() - started, etaMs: undefined });
    const runOne = async (params: ParamSet, from: number, to: number): Promise<BacktestMetrics> => {
      const outcome = await executor.run({ ...base, from, to, params: { ...fixed, ...params } });
      // Checked above; a refusal here means the strategy's files changed under the run.
      if (outcome.kind === 'refused') throw new ConfigError(outcome.issues);
      done++;
      const elapsedMs = performance.now() - started;
      opts.onProgress?.({ done, total, elapsedMs, etaMs: (elapsedMs / done) * (total - done) });
      return outcome.metrics;
    };

    // Every window at once: the pool's queue then holds all in-sample runs in
    // order, and a window's out-of-sample run joins it as soon as the window is ranked.
    results = await Promise.all(
      ranges.map(async (r): Promise<WindowResult> => {
        const inSample = await Promise.all(
          ok.map(async (s): Promise<SetResult> => {
            const m = await runOne(s.params, r.from, r.to);
            return { index: s.index, params: s.params, objective: objectiveOf(opts.objective, m), score: scoreOf(opts.objective, m), metrics: keyMetrics(m) };
          }),
        );
        const ranked = rank(inSample);
        const best = ranked[0]!;
        if (!r.oos) return { window: r.window, from: r.from, to: r.to, ranked, best };
        const m = await runOne(best.params, r.oos.from, r.oos.to);
        const outOfSample: OutOfSample = { from: r.oos.from, to: r.oos.to, objective: objectiveOf(opts.objective, m), metrics: keyMetrics(m) };
        const cis = comparable(opts.objective, best.objective, r.to - r.from);
        const coos = comparable(opts.objective, outOfSample.objective, r.oos.to - r.oos.from);
        return { window: r.window, from: r.from, to: r.to, ranked, best, outOfSample, comparison: { inSample: cis, outOfSample: coos, overfit: isOverfit(cis, coos) } };
      }),
    );
  } finally {
    await executor.close().catch(() => undefined);
    ownLog?.close();
  }

  let walkForward: WalkForwardSummary | undefined;
  if (opts.walkForward) {
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const meanInSample = mean(results.map((w) => w.comparison!.inSample));
    const meanOutOfSample = mean(results.map((w) => w.comparison!.outOfSample));
    const overfit = isOverfit(meanInSample, meanOutOfSample);
    walkForward = {
      spec: opts.walkForward.text,
      windows: results.length,
      meanInSample,
      meanOutOfSample,
      compoundedOosReturn: results.reduce((acc, w) => acc * (1 + w.outOfSample!.metrics.totalReturn), 1) - 1,
      overfit,
      verdict: meanInSample <= 0 ? 'no-edge' : overfit ? 'overfit' : 'ok',
      rule: OVERFIT_RULE,
    };
  }

  const recommended = results.at(-1)!.best;
  const notes: string[] = [];
  if (results.some((w) => w.ranked.some((s) => s.metrics.trades === 0))) notes.push('A set that made no trade is ranked last (score -Infinity), whatever its objective.');
  const shortest = windows ? Math.min(...windows.map((w) => w.oosTo - w.oosFrom)) : base.to - base.from;
  // The ratios are over daily returns: sharpe needs 2 days to be anything but 0, and a few days are noise.
  if (opts.objective !== 'return' && shortest < 7 * DAY) notes.push(`The ${opts.objective} ratio is computed from daily returns: over ${+(shortest / DAY).toFixed(2)} day${shortest === DAY ? '' : 's'} it rests on very few of them (sharpe is 0 under 2 days); --objective return or longer windows read better.`);
  if (refused.length > 0) notes.push(`${refused.length} set${refused.length === 1 ? ' was' : 's were'} refused by the strategy's parameter rules and skipped.`);
  const zeroTrade = new Set<number>();
  for (const w of results) for (const s of w.ranked) if (s.metrics.trades === 0) zeroTrade.add(s.index);
  const now = deps.now();
  const report: Omit<OptimizeReport, 'id'> = {
    createdAt: now,
    gitCommit: deps.commit,
    source: opts.source ?? 'cli',
    strategy: base.strategy,
    symbols: base.symbols,
    market,
    from: base.from,
    to: base.to,
    objective: opts.objective,
    grid: opts.grid,
    fixedParams: fixed,
    sets: all.length,
    refused: { count: refused.length, examples: refused.slice(0, 10).map((r) => ({ params: r.params, reason: r.issues.map((i) => `${i.field}: ${i.message}`).join('; ') })) },
    zeroTradeSets: zeroTrade.size,
    backtests: done,
    workers: executor.workers,
    elapsedMs: performance.now() - started,
    windows: results,
    bestParams: { ...fixed, ...recommended.params },
    bestHasNoTrades: recommended.score === Number.NEGATIVE_INFINITY,
    ...(walkForward ? { walkForward } : {}),
    notes,
  };
  return { ...report, id: saveOptimizeRun(deps.store, report, opts.walkForward) };
}

function rowJson(s: { objective: number; score?: number; metrics: KeyMetrics }, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ objective: s.objective, ...(s.score !== undefined ? { score: s.score } : {}), ...s.metrics, ...extra }, jsonNumbers);
}

/** One optimize_runs row and one optimize_results row per (window, set run), in one transaction. */
function saveOptimizeRun(store: Store, r: Omit<OptimizeReport, 'id'>, wf: WalkForwardSpec | undefined): number {
  const summary = {
    sets: r.sets,
    refused: r.refused,
    zeroTradeSets: r.zeroTradeSets,
    backtests: r.backtests,
    workers: r.workers,
    elapsedMs: Math.round(r.elapsedMs),
    fixedParams: r.fixedParams,
    bestHasNoTrades: r.bestHasNoTrades,
    notes: r.notes,
    windows: r.windows.map((w) => ({
      window: w.window,
      from: w.from,
      to: w.to,
      params: w.best.params,
      inSample: { objective: w.best.objective, score: w.best.score, ...w.best.metrics },
      ...(w.outOfSample ? { outOfSample: { from: w.outOfSample.from, to: w.outOfSample.to, objective: w.outOfSample.objective, ...w.outOfSample.metrics } } : {}),
      ...(w.comparison ? { comparison: w.comparison } : {}),
    })),
    ...(r.walkForward ? { walkForward: r.walkForward } : {}),
  };
  return store.transaction(() => {
    const run = store.run(
      store.db.insertInto('optimize_runs').values({
        created_at: r.createdAt,
        source: r.source,
        strategy: r.strategy,
        symbols: r.symbols.join(','),
        market: r.market,
        from_ts: r.from,
        to_ts: r.to,
        objective: r.objective,
        grid: JSON.stringify(r.grid),
        walk_forward: wf ? JSON.stringify({ inSample: `${wf.inSample.count}${wf.inSample.unit}`, outOfSample: `${wf.outOfSample.count}${wf.outOfSample.unit}` }) : null,
        git_commit: r.gitCommit,
        best_params: JSON.stringify(r.bestParams),
        summary: JSON.stringify(summary, jsonNumbers),
        applied: 0,
      }),
    );
    const id = Number(run.lastInsertRowid);
    for (const w of r.windows) {
      for (const s of w.ranked) {
        const isBest = s === w.best;
        store.run(
          store.db.insertInto('optimize_results').values({
            run_id: id,
            window: w.window,
            params: JSON.stringify(s.params),
            in_sample: rowJson(s, { from: w.from, to: w.to }),
            out_of_sample: isBest && w.outOfSample ? rowJson(w.outOfSample, { from: w.outOfSample.from, to: w.outOfSample.to }) : null,
            is_best: isBest ? 1 : 0,
          }),
        );
      }
    }
    return id;
  });
}

/** Marks a stored run as applied (its best params were written into the strategy YAMLs). */
export function markApplied(store: Store, runId: number): void {
  store.run(store.db.updateTable('optimize_runs').set({ applied: 1 }).where('id', '=', runId));
}
