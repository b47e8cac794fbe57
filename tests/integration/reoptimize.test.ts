/**
 * Scheduled re-optimization: a job from config/bot.yaml fires at its UTC
 * time on the injected clock, optimizes in sample (worker threads, real
 * ALGOUSDT data), tests the best set against the YAML's current params out
 * of sample, applies it only when it wins, and records every decision.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reoptimizer } from '../../src/backtest/reoptimizer.ts';
import { TestClock } from '../../src/core/clock.ts';
import { createLogger } from '../../src/core/logger.ts';
import { importKlineFiles } from '../../src/market-data/import.ts';
import { loadSettings, type LoadSettingsOptions } from '../../src/settings/load-settings.ts';
import type { Settings } from '../../src/settings/settings.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import { strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { REPO_ROOT } from '../support/workspace.ts';

const DATA = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const YAML = `# rsi on ALGOUSDT: tuned by the re-optimizer
timeframe: 1m
params:
  period: 50        # RSI period
  oversold: 5       # hardly ever: the current params barely trade
  overbought: 95
  allowShort: true
sizing:
  type: quote
  amount: 50
`;

let sd: StrategyDir;
let store: Store;
let opts: LoadSettingsOptions;
const log = createLogger({ level: 'silent', format: 'json' });

beforeAll(async () => {
  sd = strategyDir();
  sd.write('strategies/rsi/index.ts', readFileSync(join(REPO_ROOT, 'strategies', 'rsi', 'index.ts'), 'utf8').replace("'../../src/strategy/api.ts'", `'${REPO_ROOT}/src/strategy/api.ts'`));
  sd.write('strategies/rsi/ALGOUSDT.yaml', YAML);
  sd.write(
    'config/bot.yaml',
    'market: futures\nreoptimize:\n  - strategy: rsi\n    at: "01:00"\n    lookback: 6d\n    outOfSample: 2d\n    grid: period=6|14,oversold=25|30\n    objective: return\n',
  );
  opts = { cwd: sd.dir, env: { DB_URL: `sqlite:${join(sd.dir, 'data', 'trader.db')}`, STRATEGIES_DIR: join(sd.dir, 'strategies'), CONFIG_FILE: join(sd.dir, 'config', 'bot.yaml') }, envFile: false };
  const settings = loadSettings(opts);
  store = Store.open(settings.paths.dbFile);
  await store.migrate();
  await importKlineFiles(new CandleRepository(store), [DATA], { market: 'futures' });
}, 60_000);

afterAll(() => {
  store?.close();
  sd?.cleanup();
  log.close();
});

describe('scheduled re-optimization', () => {
  it('fires at 01:00 UTC, applies a candidate that wins out of sample, records the decision; the same day again keeps it', async () => {
    let settings: Settings = loadSettings(opts);
    expect(settings.bot.reoptimize).toEqual([{ strategy: 'rsi', at: '01:00', every: 'day', lookback: '6d', outOfSample: '2d', grid: 'period=6|14,oversold=25|30', objective: 'return', minImprovement: 0, workers: 1 }]);
    const clock = new TestClock(Date.UTC(2023, 1, 9, 0, 59));
    const reopt = new Reoptimizer(settings.bot.reoptimize, { settings: () => settings, store, clock, logger: log.logger, commit: 'test', settingsOptions: opts });
    reopt.start();
    clock.advanceTo(Date.UTC(2023, 1, 9, 0, 59, 59));
    await reopt.idle();
    expect(store.sqlite.prepare('SELECT count(*) AS n FROM reoptimize_decisions').get()).toEqual({ n: 0 });
    clock.advanceTo(Date.UTC(2023, 1, 9, 1, 0));
    await reopt.idle();

    const rows = store.sqlite.prepare('SELECT * FROM reoptimize_decisions ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(1);
    const d = rows[0]!;
    expect(d).toMatchObject({ ts: Date.UTC(2023, 1, 9, 1, 0), strategy: 'rsi', symbol: 'ALGOUSDT', applied: 1 });
    // Applied only because it won out of sample (Feb 7 and 8), and the reason says so with both figures.
    expect(d.candidate_score as number).toBeGreaterThan((d.current_score as number | null) ?? Number.NEGATIVE_INFINITY);
    expect(d.reason).toMatch(/^return out of sample \(2023-02-07\.\.2023-02-08\): candidate -?\d+\.\d{4} vs current (-?\d+\.\d{4}|no trades); written to /);
    const candidate = JSON.parse(d.candidate_params as string) as Record<string, unknown>;
    expect([6, 14]).toContain(candidate.period);
    expect([25, 30]).toContain(candidate.oversold);
    const run = store.sqlite.prepare('SELECT source, applied, from_ts, to_ts FROM optimize_runs WHERE id = ?').get(d.optimize_run_id) as Record<string, unknown>;
    expect(run).toEqual({ source: 'reoptimize', applied: 1, from_ts: Date.UTC(2023, 1, 3), to_ts: Date.UTC(2023, 1, 7) });

    // The YAML: only the tuned params changed; comments and every other key kept; it still validates.
    const yaml = readFileSync(join(sd.dir, 'strategies', 'rsi', 'ALGOUSDT.yaml'), 'utf8');
    expect(yaml).toContain('# rsi on ALGOUSDT: tuned by the re-optimizer');
    expect(yaml).toMatch(new RegExp(`period: ${candidate.period as number}\\s+# RSI period`));
    expect(yaml).toContain('overbought: 95');
    expect(yaml).toContain('amount: 50');
    settings = loadSettings(opts); // what hot reload does
    const modules = await loadStrategyModules(settings.paths.strategiesDir, ['rsi'], settings.paths.cwd);
    expect(resolveInstances(settings, settings.strategies, modules.modules).issues).toEqual([]);
    expect(settings.strategies[0]!.config.params).toMatchObject({ period: candidate.period, oversold: candidate.oversold });

    // Same day, same windows: the optimizer finds the same set, which is now the current one.
    const again = await reopt.runJob(settings.bot.reoptimize[0]!);
    expect(again).toHaveLength(1);
    expect(again[0]!.applied).toBe(false);
    expect(again[0]!.reason).toMatch(/^the best in-sample set is the current one; return out of sample/);
    expect(store.sqlite.prepare('SELECT count(*) AS n, sum(applied) AS applied FROM reoptimize_decisions').get()).toEqual({ n: 2, applied: 1 });
    reopt.stop();
  }, 180_000);

  it('bot.yaml: an out-of-sample span not shorter than the lookback is refused with the field named', () => {
    sd.write('config/bad.yaml', 'reoptimize:\n  - strategy: rsi\n    lookback: 30d\n    outOfSample: 1m\n    grid: period=6|14\n');
    expect(() => loadSettings({ ...opts, env: { ...opts.env, CONFIG_FILE: join(sd.dir, 'config', 'bad.yaml') } })).toThrow(/reoptimize\.0\.outOfSample.*must be shorter than lookback 30d/s);
  });
});
