/**
 * `trader optimize`: a grid search (optionally walk-forward) over stored
 * candles, on all cores by default, stored in optimize_runs/optimize_results;
 * --apply writes the recommended params into the strategy's YAMLs, which a
 * running bot hot-reloads.
 */
import type { Command } from 'commander';
import { ConfigError, EXIT, exitCodeFor, formatConfigIssue, TraderError } from '../core/errors.ts';
import { formatParams, parseGrid, type Grid } from '../backtest/grid.ts';
import { markApplied, OBJECTIVES, optimize, type Objective, type OptimizeProgress, type OptimizeReport, type SetResult } from '../backtest/optimizer.ts';
import { num, pct, utc } from '../backtest/report-text.ts';
import { gitCommit, jsonNumbers } from '../backtest/run-store.ts';
import { parseWalkForward, type WalkForwardSpec } from '../backtest/walk-forward.ts';
import type { BacktestRequest } from '../backtest/job.ts';
import { loadSettings, type LoadSettingsOptions } from '../settings/load-settings.ts';
import type { Settings } from '../settings/settings.ts';
import { Store } from '../store/store.ts';
import { requestFromOptions, type BacktestRunOptions } from './backtest-command.ts';
import { applyOptimizedParams } from '../backtest/apply-params.ts';

/** The backtest's options (the base request), less its output, plus the search. */
export interface OptimizeCommandOptions extends Omit<BacktestRunOptions, 'output' | 'file'> {
  grid: string[];
  objective?: string;
  walkForward?: string;
  workers?: string;
  apply?: boolean;
  json?: boolean;
}

/** Where the command reads settings and writes text; the defaults are the process's. */
export interface OptimizeCommandContext {
  /** Passed to loadSettings here and in every worker (default: this process's cwd, environment and .env). */
  readonly settingsOptions?: LoadSettingsOptions;
  readonly stdout?: (s: string) => void;
  readonly stderr?: (s: string) => void;
  /** Wall clock for created_at (default Date.now: this is the edge of the program). */
  readonly now?: () => number;
}

class UsageError extends TraderError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

interface Parsed {
  request: BacktestRequest;
  grid: Grid;
  objective: Objective;
  walkForward?: WalkForwardSpec;
  workers?: number;
}

export function parseOptimizeOptions(o: OptimizeCommandOptions): Parsed {
  const request = requestFromOptions({ ...o, output: 'table' });
  if (o.grid.length === 0) throw new UsageError('--grid is required, e.g. --grid period=10..30:2,oversold=20..35:5');
  const grid = parseGrid(o.grid);
  const objective = o.objective ?? 'sharpe';
  if (!(OBJECTIVES as readonly string[]).includes(objective)) throw new UsageError(`--objective must be one of ${OBJECTIVES.join(', ')}, got ${JSON.stringify(objective)}`);
  let workers: number | undefined;
  if (o.workers !== undefined) {
    workers = Number(o.workers);
    if (!/^\d+$/.test(o.workers) || workers < 1 || workers > 256) throw new UsageError(`--workers: expected a whole number from 1 to 256, got ${JSON.stringify(o.workers)}`);
  }
  return {
    request,
    grid,
    objective: objective as Objective,
    ...(o.walkForward !== undefined ? { walkForward: parseWalkForward(o.walkForward) } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
}


export { applyOptimizedParams, type ApplyResult } from '../backtest/apply-params.ts';

const HEAD = ['#', 'Params', 'Objective', 'Return', 'Sharpe', 'Sortino', 'Max DD', 'Trades'];

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

/** An objective's value as its kind reads: a return in %, a ratio as a number. */
function shown(objective: Objective, v: number, digits = 2): string {
  return objective === 'return' ? pct(v, digits) : num(v, digits);
}

function setRow(rank: number, s: SetResult, objective: Objective): string[] {
  const value = s.metrics.trades === 0 ? `${shown(objective, s.objective)} (no trades: ranked last)` : shown(objective, s.objective);
  return [String(rank), formatParams(s.params), value, pct(s.metrics.totalReturn), num(s.metrics.sharpe), num(s.metrics.sortino), pct(s.metrics.maxDrawdown), String(s.metrics.trades)];
}

/** [from, to) as the user wrote it: whole days inclusive (2023-02-01..2023-02-04), else times with an exclusive end. */
function period(from: number, to: number): string {
  const DAY = 86_400_000;
  if (from % DAY === 0 && to % DAY === 0) return `${utc(from).slice(0, 10)}..${utc(to - DAY).slice(0, 10)}`;
  return `${utc(from)}..${utc(to)} (end excluded)`;
}

export function formatOptimizeReport(r: OptimizeReport, top = 10): string {
  const lines: string[] = [];
  lines.push(`optimize ${r.strategy} ${r.symbols.join(',')} ${r.market} ${period(r.from, r.to)}, objective ${r.objective}`);
  lines.push(`${r.sets} set${r.sets === 1 ? '' : 's'}, ${r.refused.count} refused by the strategy, ${r.zeroTradeSets} without trades; ${r.backtests} backtests in ${(r.elapsedMs / 1000).toFixed(1)} s on ${r.workers} worker${r.workers === 1 ? '' : 's'}`);
  for (const x of r.refused.examples.slice(0, 3)) lines.push(`  refused: ${formatParams(x.params)}: ${x.reason}`);
  const last = r.windows.at(-1)!;
  if (r.walkForward) {
    const wf = r.walkForward;
    const unit = r.objective === 'return' ? ' (return per day)' : '';
    lines.push('', `walk-forward ${wf.spec}: ${wf.windows} window${wf.windows === 1 ? '' : 's'}`);
    const rows = [['Window', 'In-sample', 'Out-of-sample', 'Best params', `IS ${r.objective}`, `OOS ${r.objective}`, 'OOS return', 'OOS trades', 'Verdict']];
    for (const w of r.windows) {
      const o = w.outOfSample!;
      rows.push([String(w.window), period(w.from, w.to), period(o.from, o.to), formatParams(w.best.params), shown(r.objective, w.best.objective, 3), shown(r.objective, o.objective, 3), pct(o.metrics.totalReturn), String(o.metrics.trades), w.comparison!.overfit ? 'overfit' : w.comparison!.inSample <= 0 ? 'no edge' : 'ok']);
    }
    lines.push(table(rows));
    lines.push(
      `mean in-sample ${r.objective}${unit} ${shown(r.objective, wf.meanInSample, 4)}, mean out-of-sample ${shown(r.objective, wf.meanOutOfSample, 4)}; compounded out-of-sample return ${pct(wf.compoundedOosReturn)}`,
      `verdict: ${wf.verdict.toUpperCase()} (${wf.rule})`,
      '',
      `top ${Math.min(top, last.ranked.length)} of the last window's in-sample run (${period(last.from, last.to)}):`,
    );
  } else lines.push('');
  lines.push(table([HEAD, ...last.ranked.slice(0, top).map((s, i) => setRow(i + 1, s, r.objective))]));
  lines.push('', `recommended: ${formatParams(r.bestParams)}${r.bestHasNoTrades ? '  (made no trade: nothing to apply)' : ''}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(`stored as optimize run #${r.id}`);
  return lines.join('\n');
}

function progressPrinter(write: (s: string) => void, tty: boolean): ((p: OptimizeProgress) => void) | undefined {
  if (!tty) return undefined;
  let lastAt = 0;
  return (p) => {
    const now = performance.now();
    if (p.done !== p.total && now - lastAt < 250) return;
    lastAt = now;
    const eta = p.etaMs === undefined ? '' : `, about ${Math.ceil(p.etaMs / 1000)} s left`;
    write(`\roptimize: ${p.done}/${p.total} backtests${eta}   ${p.done === p.total ? '\n' : ''}`);
  };
}

export async function optimizeCommand(o: OptimizeCommandOptions, ctx: OptimizeCommandContext = {}): Promise<number> {
  const out = ctx.stdout ?? ((s: string) => void process.stdout.write(s.endsWith('\n') ? s : s + '\n'));
  const err = ctx.stderr ?? ((s: string) => void process.stderr.write(s.endsWith('\n') ? s : s + '\n'));
  let parsed: Parsed;
  try {
    parsed = parseOptimizeOptions(o);
  } catch (e) {
    err(`trader optimize: ${(e as Error).message}`);
    return e instanceof ConfigError ? EXIT.CONFIG : EXIT.USAGE;
  }
  let settings: Settings;
  try {
    settings = loadSettings(ctx.settingsOptions);
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`trader optimize: refusing to start: ${e.message}`);
      return EXIT.CONFIG;
    }
    throw e;
  }
  let store: Store | undefined;
  const progress = ctx.stderr ? undefined : progressPrinter((s) => void process.stderr.write(s), process.stderr.isTTY === true);
  try {
    store = Store.open(settings.paths.dbFile);
    await store.migrate();
    const report = await optimize(
      { request: parsed.request, grid: parsed.grid, objective: parsed.objective, ...(parsed.walkForward ? { walkForward: parsed.walkForward } : {}), ...(parsed.workers !== undefined ? { workers: parsed.workers } : {}), source: 'cli', ...(progress ? { onProgress: progress } : {}) },
      { settings, store, now: ctx.now ?? Date.now, commit: gitCommit(settings.paths.cwd), settingsOptions: ctx.settingsOptions ?? {} },
    );
    out(o.json ? JSON.stringify(report, jsonNumbers, 2) : formatOptimizeReport(report));
    if (!o.apply) return EXIT.OK;

    if (report.bestHasNoTrades) {
      err(`trader optimize: --apply refused: the recommended set made no trade in-sample (run #${report.id}); nothing worth writing`);
      // 1: the generic "did not do what was asked"; the run itself is stored.
      return EXIT.UNHEALTHY;
    }
    if (report.walkForward?.overfit) err(`trader optimize: warning: walk-forward says OVERFIT; applying anyway because --apply was given`);
    const applied = applyOptimizedParams(settings, report.strategy, report.symbols, report.bestParams);
    if (applied.written.length > 0) {
      markApplied(store, report.id);
      err(`applied ${formatParams(report.bestParams)} to ${applied.written.join(', ')} (a running bot reloads them)`);
    }
    for (const r of applied.refused) err(`trader optimize: --apply refused for ${r.symbol}: ${r.reason}`);
    return applied.refused.length > 0 ? EXIT.NO_INPUT : EXIT.OK;
  } catch (e) {
    // End a progress line the failure interrupted.
    if (progress) process.stderr.write('\n');
    if (e instanceof ConfigError) {
      err(`trader optimize: ${e.issues.map(formatConfigIssue).join('\n  ')}`);
      return EXIT.CONFIG;
    }
    err(`trader optimize: ${(e as Error).message}`);
    return exitCodeFor(e);
  } finally {
    store?.close();
  }
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** The `trader optimize` command, for program.ts to add (it replaces the "optimize" entry of PLANNED_GROUPS). */
export function registerOptimize(program: Command): Command {
  return program
    .command('optimize')
    .description('search strategy parameters over stored candles (grid, walk-forward), on all cores; every run is stored')
    .option('--strategy <name>', 'strategy folder, e.g. rsi')
    .option('--symbol <list>', 'symbol(s), comma-separated: BTCUSDT or BTCUSDT,ETHUSDT (one param set for all)')
    .option('--from <date>', 'first candle, UTC: 2024-01-01 or 2024-01-01T12:00')
    .option('--to <date>', 'last day, UTC, inclusive (2024-12-31 = through the end of that day); with a time: exclusive')
    .option('--grid <spec>', 'values to try: period=10..30:2,oversold=20..35:5,allowShort=true|false (ranges inclusive, step required; repeatable)', collect, [])
    .option('--objective <name>', `what to maximize: ${OBJECTIVES.join(', ')} (return = total return)`, 'sharpe')
    .option('--walk-forward <is/oos>', 'rolling in-sample/out-of-sample windows: 6m/1m, 90d/30d, 12w/2w (m = calendar months, UTC)')
    .option('--market <m>', 'spot or futures (default: config/bot.yaml market)')
    .option('--timeframe <tf>', "strategy timeframe; default: the YAML's, else the strategy's")
    .option('--param <key=value...>', 'fix a parameter for every set: allowShort=true (repeat or comma-separate)', collect, [])
    .option('--balance <quote>', 'starting balance (default: config/bot.yaml sim.balance)')
    .option('--fee-bps <n>', 'fee for maker and taker, basis points (default: Binance VIP0)')
    .option('--slippage-bps <n>', 'market-order slippage against you, basis points (default 0)')
    .option('--latency-ms <n>', 'signal to order arrival (default 0: the next open)')
    .option('--funding-rate <r>', 'futures: flat funding rate per 8 h, as a fraction (default 0.0001)')
    .option('--workers <n>', 'backtests at once (default: every core); 1 runs them in this process')
    .option('--apply', "write the recommended params into strategies/<strategy>/<SYMBOL>.yaml (existing files only; comments kept)")
    .option('--json', 'print the report as JSON')
    .action(async (opts: OptimizeCommandOptions) => {
      process.exitCode = await optimizeCommand(opts);
    });
}
