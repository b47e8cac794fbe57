/**
 * The kernel's strategy wiring, in process: candles on the bus reach the
 * host, signals land in the signals table and the journal, a throwing
 * instance is disabled and recorded in risk_events and in the heartbeat.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import { BREAKOUT, moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { REPO_ROOT } from '../support/workspace.ts';

let sd: StrategyDir | undefined;
let kernel: Kernel | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  kernel = undefined;
  sd?.cleanup();
  sd = undefined;
});

describe('kernel + strategies', () => {
  it('signals are recorded; a throwing strategy is disabled, recorded as a risk event and shown in the heartbeat', async () => {
    sd = strategyDir();
    sd.write('strategies/breakout/index.ts', BREAKOUT);
    sd.write('strategies/breakout/BTCUSDT.yaml', 'params:\n  lookback: 2\n');
    sd.write('strategies/bomb/index.ts', moduleSource(`
export default defineStrategy({ name: 'bomb', description: 'throws', params: z.object({}), defaultTimeframe: '1m', warmup: () => 0,
  create() { return { onCandle() { throw new Error('kaboom'); }, reset() {} }; } });`));
    sd.write('strategies/bomb/BTCUSDT.yaml', 'enabled: true\n');
    const settings = loadSettings({ cwd: sd.dir, env: { HEARTBEAT_INTERVAL_MS: '1000', FEED: 'none', CONTROL_PORT: '0' }, envFile: false });
    const { modules } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, sd.dir);
    const { specs, issues } = resolveInstances(settings, settings.strategies, modules);
    expect(issues).toEqual([]);
    const clock = new TestClock(Date.UTC(2024, 0, 1));
    kernel = await Kernel.start({ settings, clock, logger: silentLogger(), version: 't', runId: 'run-1', specs, indicators: createIndicatorFactory });
    const t0 = Date.UTC(2024, 0, 1);
    for (const [i, close] of [100, 100, 100, 105].entries()) {
      clock.advanceTo(t0 + (i + 1) * 60_000);
      kernel.bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market: 'spot', symbol: 'BTCUSDT', timeframe: '1m', openTime: t0 + i * 60_000, open: close, high: close + 0.5, low: close - 0.5, close, volume: 1 });
    }
    // One more second: the candle writer's timer commits the last candle.
    clock.advanceBy(1000);
    const hb = kernel.heartbeat.write();
    expect(hb.instances.map((i) => [i.strategy, i.state, i.detail ?? ''])).toEqual([
      ['bomb', 'disabled', 'threw: kaboom'],
      ['breakout', 'ready', ''],
    ]);
    expect(hb.healthy, 'one broken strategy does not make the bot unhealthy').toBe(true);
    // The journal and signal rows are written in batches (within 5 ms): write what is queued now.
    kernel.journal.flush();
    const db = new Database(settings.paths.dbFile, { readonly: true });
    try {
      expect(db.prepare('SELECT strategy, symbol, action, reason FROM signals').all()).toEqual([{ strategy: 'breakout', symbol: 'BTCUSDT', action: 'enterLong', reason: 'new high' }]);
      expect(db.prepare("SELECT channel FROM journal WHERE channel LIKE 'signal.%'").all()).toEqual([{ channel: 'signal.breakout' }]);
      const risk = db.prepare('SELECT scope, scope_key, kind, reason, source FROM risk_events').all();
      // Closed candles are stored, one transaction a second.
      expect((db.prepare('SELECT count(*) AS n FROM candles').get() as { n: number }).n).toBe(4);
      expect(risk).toEqual([{ scope: 'strategy', scope_key: 'bomb:BTCUSDT', kind: 'STRATEGY_DISABLED', reason: 'kaboom', source: 'strategy-host' }]);
    } finally {
      db.close();
    }
  });
});

describe('shipped strategies are pure', () => {
  it('no wall clock, randomness, I/O or process access in strategies/*/index.ts', () => {
    const dir = join(REPO_ROOT, 'strategies');
    for (const name of readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
      const src = readFileSync(join(dir, name, 'index.ts'), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      // new Date(t) formats a given time; new Date() and Date.now() read the wall clock.
      for (const forbidden of ['Date.now', 'new Date()', 'Math.random', "from 'node:", 'from "node:', 'process.', 'fetch(', 'require(']) {
        expect(src.includes(forbidden), `${name} uses ${forbidden}`).toBe(false);
      }
    }
  });
});
