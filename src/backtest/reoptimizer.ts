/**
 * Scheduled re-optimization inside the running bot (config/bot.yaml
 * `reoptimize:`). At the job's time (UTC, daily or on Mondays), for each of
 * its symbols:
 *
 *   1. the lookback window ends at today's 00:00 UTC (whole days only: the
 *      candle store holds them complete); its last `outOfSample` is held out;
 *   2. the grid is optimized on the in-sample part (worker threads only: the
 *      bot's event loop keeps trading);
 *   3. the best set and the YAML's current params both run on the held-out
 *      part; the candidate is applied (written into the YAML, which hot
 *      reload picks up) only when its objective beats the current one by
 *      more than minImprovement, and it made trades;
 *   4. every decision, applied or not, is a reoptimize_decisions row with
 *      both scores and the reason.
 *
 * One job at a time; a job still running when its next time comes is not
 * started twice. Jobs are read at start (a changed schedule needs a restart);
 * the current params are read fresh at each run (hot reload may have changed
 * them).
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { BotConfig } from '../settings/bot-config.ts';
import type { LoadSettingsOptions } from '../settings/load-settings.ts';
import type { Settings } from '../settings/settings.ts';
import type { Store } from '../store/store.ts';
import { applyOptimizedParams } from './apply-params.ts';
import { parseGrid } from './grid.ts';
import { OptimizePool } from './optimize-pool.ts';
import { markApplied, optimize, scoreOf } from './optimizer.ts';

export type ReoptimizeJob = BotConfig['reoptimize'][number];

const DAY = 86_400_000;

export interface ReoptimizerDeps {
  /** The settings in force (hot reload replaces them). */
  readonly settings: () => Settings;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The code's commit, stored with each optimization. */
  readonly commit: string;
  /** How worker threads load settings (default: this process's cwd and environment). */
  readonly settingsOptions?: LoadSettingsOptions;
}

export interface ReoptimizeDecision {
  readonly ts: number;
  readonly strategy: string;
  readonly symbol: string;
  readonly optimizeRunId: number | null;
  readonly currentParams: Readonly<Record<string, unknown>>;
  readonly candidateParams: Readonly<Record<string, unknown>> | null;
  readonly currentScore: number | null;
  readonly candidateScore: number | null;
  readonly applied: boolean;
  readonly reason: string;
}

/** Start of a span back from t: "3m" calendar months (UTC), "12w", "90d". */
export function spanBack(t: number, span: string): number {
  const n = Number(span.slice(0, -1));
  const unit = span.slice(-1);
  if (unit === 'd') return t - n * DAY;
  if (unit === 'w') return t - n * 7 * DAY;
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - n, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes());
}

/** The next time the job is due, strictly after `now`: today or tomorrow at HH:MM UTC (weekly: the next Monday). */
export function nextRun(job: Pick<ReoptimizeJob, 'at' | 'every'>, now: number): number {
  const [h, m] = job.at.split(':').map(Number) as [number, number];
  let t = Math.floor(now / DAY) * DAY + h * 3_600_000 + m * 60_000;
  while (t <= now || (job.every === 'week' && new Date(t).getUTCDay() !== 1)) t += DAY;
  return t;
}

export class Reoptimizer {
  private readonly timers = new Map<number, TimerHandle>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly running = new Set<number>();
  private stopped = false;

  constructor(
    private readonly jobs: readonly ReoptimizeJob[],
    private readonly deps: ReoptimizerDeps,
  ) {
    // A grid that does not parse is a config error at start, not a failure at 01:00.
    jobs.forEach((j) => parseGrid(j.grid));
  }

  start(): void {
    this.jobs.forEach((_, i) => this.schedule(i));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }

  /** Resolves when every job started so far has finished (tests, and a clean stop). */
  async idle(): Promise<void> {
    for (;;) {
      const c = this.chain;
      await c;
      if (c === this.chain) return;
    }
  }

  private schedule(i: number): void {
    if (this.stopped) return;
    const job = this.jobs[i]!;
    const now = this.deps.clock.now();
    const due = nextRun(job, now);
    this.timers.set(i, this.deps.clock.after(due - now, () => this.fire(i)));
    this.deps.logger.info({ strategy: job.strategy, due: new Date(due).toISOString() }, `re-optimization of ${job.strategy} scheduled for ${new Date(due).toISOString()}`);
  }

  private fire(i: number): void {
    this.timers.delete(i);
    if (!this.running.has(i)) {
      this.running.add(i);
      this.chain = this.chain.then(() => this.runJob(this.jobs[i]!)).catch((err: unknown) => this.deps.logger.error({ err }, `re-optimization failed: ${(err as Error).message}`)).finally(() => this.running.delete(i));
    }
    this.schedule(i);
  }

  /** Runs one job now (the scheduler's timer, or a test). */
  async runJob(job: ReoptimizeJob): Promise<ReoptimizeDecision[]> {
    const { clock, logger } = this.deps;
    const settings = this.deps.settings();
    const now = clock.now();
    const to = Math.floor(now / DAY) * DAY;
    const from = spanBack(to, job.lookback);
    const oosFrom = spanBack(to, job.outOfSample);
    const symbols = job.symbols ?? settings.strategies.filter((e) => e.strategy === job.strategy && e.config.enabled).map((e) => e.symbol);
    const grid = parseGrid(job.grid);
    const out: ReoptimizeDecision[] = [];
    for (const symbol of symbols) {
      const entry = settings.strategies.find((e) => e.strategy === job.strategy && e.symbol === symbol);
      const current = { ...(entry?.config.params ?? {}) };
      const base = { ts: now, strategy: job.strategy, symbol, currentParams: current };
      let d: ReoptimizeDecision;
      if (!entry) {
        d = { ...base, optimizeRunId: null, candidateParams: null, currentScore: null, candidateScore: null, applied: false, reason: `no strategies/${job.strategy}/${symbol}.yaml to apply params to` };
      } else {
        try {
          d = await this.decide(job, settings, symbol, current, { from, oosFrom, to }, base);
        } catch (err) {
          d = { ...base, optimizeRunId: null, candidateParams: null, currentScore: null, candidateScore: null, applied: false, reason: `failed: ${(err as Error).message}` };
        }
      }
      this.record(d);
      logger[d.applied ? 'warn' : 'info'](
        { strategy: d.strategy, symbol, applied: d.applied, current: d.currentParams, candidate: d.candidateParams, currentScore: d.currentScore, candidateScore: d.candidateScore },
        `re-optimization of ${job.strategy} on ${symbol}: ${d.applied ? 'APPLIED' : 'kept the current params'}: ${d.reason}`,
      );
      out.push(d);
    }
    return out;
  }

  private async decide(
    job: ReoptimizeJob,
    settings: Settings,
    symbol: string,
    current: Record<string, unknown>,
    span: { from: number; oosFrom: number; to: number },
    base: Pick<ReoptimizeDecision, 'ts' | 'strategy' | 'symbol' | 'currentParams'>,
  ): Promise<ReoptimizeDecision> {
    const { store, commit } = this.deps;
    const request = { strategy: job.strategy, symbols: [symbol], market: settings.market, from: span.from, to: span.oosFrom };
    const report = await optimize(
      { request, grid: parseGrid(job.grid), objective: job.objective, workers: job.workers, inThisThread: false, source: 'reoptimize' },
      { settings, store, now: () => this.deps.clock.now(), commit, ...(this.deps.settingsOptions ? { settingsOptions: this.deps.settingsOptions } : {}), logger: this.deps.logger },
    );
    const candidate = { ...current, ...report.bestParams };
    const none = { optimizeRunId: report.id, candidateParams: candidate };
    if (report.bestHasNoTrades) return { ...base, ...none, currentScore: null, candidateScore: null, applied: false, reason: 'no parameter set made a trade in sample' };

    // Both on the held-out days, in a worker (the bot's thread keeps trading).
    const pool = OptimizePool.start({ workers: 1, init: { settings: this.deps.settingsOptions ?? {}, dbFile: settings.paths.dbFile, span: { from: span.oosFrom, to: span.to } } });
    let cur, cand;
    try {
      const oos = { strategy: job.strategy, symbols: [symbol], market: settings.market, from: span.oosFrom, to: span.to };
      [cur, cand] = await Promise.all([pool.run({ ...oos, params: current }), pool.run({ ...oos, params: candidate })]);
    } finally {
      await pool.close();
    }
    if (cand.kind !== 'ok') return { ...base, ...none, currentScore: null, candidateScore: null, applied: false, reason: `the strategy refused the candidate: ${cand.issues.map((i) => i.message).join('; ')}` };
    const candidateScore = scoreOf(job.objective, cand.metrics);
    // Current params the strategy now refuses (its schema changed) score as no trade: any working candidate beats them.
    const currentScore = cur.kind === 'ok' ? scoreOf(job.objective, cur.metrics) : Number.NEGATIVE_INFINITY;
    const scores = { currentScore: finiteOrNull(currentScore), candidateScore: finiteOrNull(candidateScore) };
    const oosText = `${job.objective} out of sample (${new Date(span.oosFrom).toISOString().slice(0, 10)}..${new Date(span.to - 1).toISOString().slice(0, 10)}): candidate ${fmt(candidateScore)} vs current ${fmt(currentScore)}`;
    if (JSON.stringify(sorted(candidate)) === JSON.stringify(sorted(current))) return { ...base, ...none, ...scores, applied: false, reason: `the best in-sample set is the current one; ${oosText}` };
    if (!Number.isFinite(candidateScore)) return { ...base, ...none, ...scores, applied: false, reason: `the candidate made no trade out of sample; ${oosText}` };
    if (!(candidateScore > currentScore + job.minImprovement)) return { ...base, ...none, ...scores, applied: false, reason: `the candidate does not beat the current params by more than ${job.minImprovement}; ${oosText}` };

    const written = applyOptimizedParams(this.deps.settings(), job.strategy, [symbol], candidate);
    if (written.written.length === 0) return { ...base, ...none, ...scores, applied: false, reason: `not written: ${written.refused.map((r) => r.reason).join('; ')}` };
    markApplied(store, report.id);
    return { ...base, ...none, ...scores, applied: true, reason: `${oosText}; written to ${written.written.join(', ')}` };
  }

  private record(d: ReoptimizeDecision): void {
    const { store } = this.deps;
    store.run(
      store.db.insertInto('reoptimize_decisions').values({
        ts: d.ts,
        strategy: d.strategy,
        symbol: d.symbol,
        optimize_run_id: d.optimizeRunId,
        current_params: JSON.stringify(d.currentParams),
        candidate_params: d.candidateParams ? JSON.stringify(d.candidateParams) : null,
        current_score: d.currentScore,
        candidate_score: d.candidateScore,
        applied: d.applied ? 1 : 0,
        reason: d.reason,
      }),
    );
  }
}

function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : 'no trades';
}

function sorted(o: Record<string, unknown>): Array<[string, unknown]> {
  return Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
}
