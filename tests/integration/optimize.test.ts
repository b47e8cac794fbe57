/**
 * The optimizer end to end on real ALGOUSDT futures 1m data (February 2023):
 * a grid stored and ranked, the same answer on 1 and 2 workers, refused sets
 * skipped, walk-forward windows with the stated overfit rule, and --apply
 * editing only the params of an existing YAML.
 *
 * Kept small for a busy 2-core box: rsi on 1m candles, 1 to 6 days, grids
 * of 4 to 9 sets (each backtest of a few days takes about a second).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGrid } from '../../src/backtest/grid.ts';
import { optimize, OVERFIT_KEEP, type OptimizeDeps, type OptimizeReport } from '../../src/backtest/optimizer.ts';
import { parseWalkForward } from '../../src/backtest/walk-forward.ts';
import { EXIT } from '../../src/core/errors.ts';
import { applyOptimizedParams, optimizeCommand, type OptimizeCommandOptions } from '../../src/cli/optimize-command.ts';
import { importKlineFiles } from '../../src/market-data/import.ts';
import { loadSettings, type LoadSettingsOptions } from '../../src/settings/load-settings.ts';
import type { Settings } from '../../src/settings/settings.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import { strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';

const DATA = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const DAY = 86_400_000;
const FEB1 = Date.UTC(2023, 1, 1);

const YAML = `# rsi on ALGOUSDT: the optimizer test's file
enabled: false
timeframe: 1m
params:
  period: 14           # RSI period (Wilder smoothing), candles
  oversold: 30         # RSI below this: enter long
  overbought: 70       # RSI above this: exit long (enter a short)
  allowShort: true     # futures only
sizing:
  type: quote
  amount: 50           # USDT per entry
risk:
  stopLossPct: 2
`;

let ws: Workspace;
let strat: StrategyDir;
let store: Store;
let settings: Settings;
let settingsOptions: LoadSettingsOptions;
let yamlFile: string;

function deps(): OptimizeDeps {
  return { settings, store, now: () => 1_700_000_000_000, commit: 'test', settingsOptions };
}

interface ResultRow {
  window: number;
  params: string;
  in_sample: string;
  out_of_sample: string | null;
  is_best: number;
}

function rowsOf(runId: number): ResultRow[] {
  return store.all<ResultRow>(store.db.selectFrom('optimize_results').select(['window', 'params', 'in_sample', 'out_of_sample', 'is_best']).where('run_id', '=', runId).orderBy('window').orderBy('params'));
}

const score = (row: ResultRow): number => {
  const s = (JSON.parse(row.in_sample) as { score: number | string }).score;
  return s === '-Infinity' ? Number.NEGATIVE_INFINITY : Number(s);
};

beforeAll(async () => {
  strat = strategyDir();
  // The shipped rsi (its import rewritten to the absolute path: the copy lives in tests/.tmp).
  strat.write('strategies/rsi/index.ts', readFileSync(join(REPO_ROOT, 'strategies', 'rsi', 'index.ts'), 'utf8').replace("'../../src/strategy/api.ts'", `'${REPO_ROOT}/src/strategy/api.ts'`));
  yamlFile = strat.write('strategies/rsi/ALGOUSDT.yaml', YAML);
  strat.write('package.json', '{"type":"module"}');
  ws = makeWorkspace({ STRATEGIES_DIR: strat.strategiesDir });
  ws.write('config/bot.yaml', 'market: futures\n');
  settingsOptions = { cwd: ws.dir, env: ws.env, envFile: false };
  settings = loadSettings(settingsOptions);
  store = Store.open(ws.dbFile);
  await store.migrate();
  await importKlineFiles(new CandleRepository(store), [DATA], { market: 'futures' });
}, 60_000);

afterAll(() => {
  store?.close();
  ws?.cleanup();
  strat?.cleanup();
});

describe('optimize: grid', () => {
  // period x oversold: 9 sets; oversold=75 is not below overbought=70, so the schema refuses 3.
  const grid = parseGrid('period=8|10|14,oversold=25|30|75');
  const request = { strategy: 'rsi', symbols: ['ALGOUSDT'], from: FEB1, to: FEB1 + 2 * DAY, params: {} };
  let one: OptimizeReport;
  let two: OptimizeReport;

  beforeAll(async () => {
    one = await optimize({ request, grid, objective: 'sharpe', workers: 1 }, deps());
    // inThisThread false: every backtest on a worker thread (how a running bot would call it), compared with all in this thread.
    two = await optimize({ request, grid, objective: 'sharpe', workers: 2, inThisThread: false }, deps());
  }, 120_000);

  it('stores one row per set run, the best marked, and it has the top score', () => {
    expect(one.sets).toBe(9);
    expect(one.refused.count, 'oversold=75 >= overbought=70 for each of the 3 periods').toBe(3);
    expect(one.refused.examples[0]!.reason).toMatch(/oversold must be below overbought/);
    const rows = rowsOf(one.id);
    expect(rows.length, 'refused sets are counted, not stored').toBe(6);
    expect(rows.every((r) => r.window === 0 && r.out_of_sample === null)).toBe(true);
    const best = rows.filter((r) => r.is_best === 1);
    expect(best.length).toBe(1);
    const top = Math.max(...rows.map(score));
    expect(score(best[0]!), 'the marked row has the highest stored score').toBe(top);
    expect(rows.filter((r) => score(r) === top)[0], 'ties go to the first in grid order').toBeDefined();
    expect(JSON.parse(best[0]!.params)).toEqual(one.windows[0]!.best.params);

    const run = store.all(store.db.selectFrom('optimize_runs').selectAll().where('id', '=', one.id))[0]!;
    expect(run.objective).toBe('sharpe');
    expect(run.walk_forward).toBeNull();
    expect(JSON.parse(run.grid)).toEqual(grid);
    expect(JSON.parse(run.best_params!)).toEqual(one.bestParams);
    expect(run.applied).toBe(0);
    expect(JSON.parse(run.summary)).toMatchObject({ sets: 9, refused: { count: 3 }, backtests: 6, workers: 1 });
  });

  it('gives exactly the same result on 2 workers as on 1', () => {
    expect(two.workers).toBe(2);
    expect(two.windows, 'every set: same metrics, same ranking').toEqual(one.windows);
    expect(two.bestParams).toEqual(one.bestParams);
    const strip = (rows: ResultRow[]) => rows.map((r) => ({ ...r }));
    expect(strip(rowsOf(two.id)), 'stored rows identical').toEqual(strip(rowsOf(one.id)));
  });

  it('ranks a set without trades last and says so', () => {
    for (const s of one.windows[0]!.ranked) if (s.metrics.trades === 0) expect(s.score).toBe(Number.NEGATIVE_INFINITY);
    const scores = one.windows[0]!.ranked.map((s) => s.score);
    expect(scores, 'best first').toEqual([...scores].sort((a, b) => b - a));
  });
});

describe('optimize: walk-forward', () => {
  let r: OptimizeReport;

  // workers 2, by default this thread and one worker thread.
  beforeAll(async () => {
    r = await optimize(
      { request: { strategy: 'rsi', symbols: ['ALGOUSDT'], from: FEB1, to: FEB1 + 6 * DAY, params: {} }, grid: parseGrid('period=10|14,oversold=25|30'), objective: 'return', walkForward: parseWalkForward('4d/1d'), workers: 2 },
      deps(),
    );
  }, 120_000);

  it('runs 2 windows of 4 days in-sample and 1 day out-of-sample', () => {
    expect(r.windows.map((w) => [w.window, (w.from - FEB1) / DAY, (w.to - FEB1) / DAY, (w.outOfSample!.from - FEB1) / DAY, (w.outOfSample!.to - FEB1) / DAY])).toEqual([
      [1, 0, 4, 4, 5],
      [2, 1, 5, 5, 6],
    ]);
    expect(r.backtests, '2 windows x 4 sets in-sample + 2 out-of-sample').toBe(10);
    for (const w of r.windows) {
      expect(w.outOfSample!.objective, 'return objective = total return').toBe(w.outOfSample!.metrics.totalReturn);
      expect(w.ranked[0]).toBe(w.best);
    }
  });

  it('computes IS vs OOS per day and flags overfit by the stated rule', () => {
    for (const w of r.windows) {
      const is = w.best.objective / 4;
      const oos = w.outOfSample!.objective / 1;
      expect(w.comparison!.inSample).toBeCloseTo(is, 12);
      expect(w.comparison!.outOfSample).toBeCloseTo(oos, 12);
      expect(w.comparison!.overfit, `window ${w.window}: IS/day ${is}, OOS/day ${oos}`).toBe(is > 0 && oos < OVERFIT_KEEP * is);
    }
    const wf = r.walkForward!;
    const meanIs = (r.windows[0]!.comparison!.inSample + r.windows[1]!.comparison!.inSample) / 2;
    const meanOos = (r.windows[0]!.comparison!.outOfSample + r.windows[1]!.comparison!.outOfSample) / 2;
    expect(wf.meanInSample).toBeCloseTo(meanIs, 12);
    expect(wf.meanOutOfSample).toBeCloseTo(meanOos, 12);
    expect(wf.overfit).toBe(meanIs > 0 && meanOos < 0.5 * meanIs);
    expect(wf.verdict).toBe(meanIs <= 0 ? 'no-edge' : wf.overfit ? 'overfit' : 'ok');
    expect(wf.compoundedOosReturn).toBeCloseTo((1 + r.windows[0]!.outOfSample!.metrics.totalReturn) * (1 + r.windows[1]!.outOfSample!.metrics.totalReturn) - 1, 12);
  });

  it('stores every (window, set) with the window winners marked and their out-of-sample figures', () => {
    const rows = rowsOf(r.id);
    expect(rows.length).toBe(8);
    const best = rows.filter((x) => x.is_best === 1);
    expect(best.map((x) => x.window)).toEqual([1, 2]);
    expect(best.every((x) => x.out_of_sample !== null), 'winners carry their out-of-sample run').toBe(true);
    expect(rows.filter((x) => x.is_best === 0).every((x) => x.out_of_sample === null)).toBe(true);
    expect(r.bestParams, 'recommended = the last window in-sample winner').toEqual(r.windows[1]!.best.params);
    const run = store.all(store.db.selectFrom('optimize_runs').selectAll().where('id', '=', r.id))[0]!;
    expect(JSON.parse(run.walk_forward!)).toEqual({ inSample: '4d', outOfSample: '1d' });
    expect(JSON.parse(run.summary).walkForward).toMatchObject({ spec: '4d/1d', windows: 2, verdict: r.walkForward!.verdict });
  });
});

describe('optimize: the command', () => {
  const base: OptimizeCommandOptions = { strategy: 'rsi', symbol: 'ALGOUSDT', from: '2023-02-01', to: '2023-02-01', grid: ['period=10|12'], param: [], objective: 'return', workers: '1' };
  const capture = () => {
    const o = { out: '', err: '' };
    return { o, ctx: { settingsOptions, stdout: (s: string) => void (o.out += s + '\n'), stderr: (s: string) => void (o.err += s + '\n') } };
  };

  it('--apply rewrites only the params, keeps the comments, and the file still validates', async () => {
    const { o, ctx } = capture();
    const code = await optimizeCommand({ ...base, apply: true }, ctx);
    expect(code, o.err).toBe(EXIT.OK);
    expect(o.out).toMatch(/stored as optimize run #(\d+)/);
    const id = Number(/#(\d+)/.exec(o.out)![1]);
    const run = store.all(store.db.selectFrom('optimize_runs').selectAll().where('id', '=', id))[0]!;
    expect(run.applied).toBe(1);
    const period = (JSON.parse(run.best_params!) as { period: number }).period;

    const text = readFileSync(yamlFile, 'utf8');
    expect(text, 'only the period line changed, its comment kept').toBe(YAML.replace('period: 14           #', `period: ${period}           #`));
    const s = loadSettings(settingsOptions);
    const loaded = await loadStrategyModules(s.paths.strategiesDir, ['rsi'], s.paths.cwd);
    const resolved = resolveInstances(s, s.strategies, loaded.modules);
    expect(resolved.issues).toEqual([]);
    expect(s.strategies.find((e) => e.symbol === 'ALGOUSDT')!.config.params).toMatchObject({ period, oversold: 30, overbought: 70, allowShort: true });
  }, 60_000);

  it('refuses --apply for a symbol without its own YAML (no file invented)', () => {
    const r = applyOptimizedParams(settings, 'rsi', ['DOGEUSDT'], { period: 9 });
    expect(r.written).toEqual([]);
    expect(r.refused[0]!.reason).toMatch(/strategies\/rsi\/DOGEUSDT\.yaml does not exist/);
  });

  it('adds a param the YAML does not list yet, keeping its comments and other keys', () => {
    const file = strat.write('strategies/rsi/BTCUSDT.yaml', '# btc\nenabled: false # off\nparams:\n  period: 14 # rsi period\nsizing:\n  type: quote\n  amount: 50\n');
    const s = loadSettings(settingsOptions);
    const r = applyOptimizedParams(s, 'rsi', ['BTCUSDT'], { period: 9, overbought: 65.5 });
    expect(r.written).toEqual([s.strategies.find((e) => e.symbol === 'BTCUSDT')!.file]);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# btc\n');
    expect(text).toContain('enabled: false # off\n');
    expect(text).toContain('period: 9 # rsi period\n');
    expect(loadSettings(settingsOptions).strategies.find((e) => e.symbol === 'BTCUSDT')!.config).toMatchObject({ params: { period: 9, overbought: 65.5 }, sizing: { type: 'quote' } });
  });

  it('exits 64 on a bad grid, 78 on an unknown strategy, 66 without data', async () => {
    let c = capture();
    expect(await optimizeCommand({ ...base, grid: ['period=10..20'] }, c.ctx)).toBe(EXIT.USAGE);
    expect(c.o.err).toMatch(/needs a step/);
    c = capture();
    expect(await optimizeCommand({ ...base, walkForward: '90d/30d' }, c.ctx), 'one day fits no walk-forward window').toBe(EXIT.USAGE);
    c = capture();
    expect(await optimizeCommand({ ...base, strategy: 'nope' }, c.ctx)).toBe(EXIT.CONFIG);
    c = capture();
    expect(await optimizeCommand({ ...base, grid: ['nosuch=1|2'] }, c.ctx), 'every set refused: a config error, not an empty result').toBe(EXIT.CONFIG);
    expect(c.o.err).toMatch(/refused every one of the 2 parameter sets/);
    c = capture();
    expect(await optimizeCommand({ ...base, from: '2022-01-01', to: '2022-01-01' }, c.ctx)).toBe(EXIT.NO_INPUT);
    expect(c.o.err).toMatch(/no stored futures 1m candles for ALGOUSDT/);
  }, 60_000);
});
