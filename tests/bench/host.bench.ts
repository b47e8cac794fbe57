/**
 * Host cost per 1m candle with every built-in strategy running on one
 * symbol, aggregation included (target: under 5 µs). Real data: ALGOUSDT
 * February 2023, 40,320 candles. Baseline in the same run: the bare bus
 * publish of the same candles with no strategy attached.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { CandleClosed } from '../../src/model/events.ts';
import { loadKlineFile } from '../../src/market-data/kline-files.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { StrategyHost } from '../../src/strategy/host.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FILE = join(REPO, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');

export async function benchHost(): Promise<Record<string, unknown>> {
  if (!existsSync(FILE)) return { benchmark: 'host', skipped: `missing ${FILE}` };
  const settings = loadSettings({ cwd: REPO, env: { MODE: 'sim' }, envFile: false });
  const { modules, issues } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, REPO);
  if (issues.length) return { benchmark: 'host', error: issues };
  // Every shipped example, enabled, on one symbol (funding-carry only where the market allows it).
  const seen = new Set<string>();
  const entries = settings.strategies
    .filter((e) => !seen.has(e.strategy) && seen.add(e.strategy))
    .map((e) => ({ ...e, symbol: 'ALGOUSDT', config: { ...e.config, enabled: true } }));
  const futures = resolveInstances({ ...settings, market: 'futures' }, entries, modules);
  const specs = futures.specs;
  const rows = loadKlineFile(FILE).klines;
  const candles: CandleClosed[] = rows.map((k) => ({ kind: 'candle.closed', ts: k.closeTime + 1, market: 'futures', symbol: 'ALGOUSDT', timeframe: '1m', openTime: k.openTime, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close), volume: Number(k.volume) }));

  const run = (withHost: boolean): number => {
    const clock = new TestClock(candles[0]!.openTime);
    // Throughput run: payload freezing off, as a backtest would run (see Bus).
    const bus = new Bus({ logger: silentLogger(), clock, freezePayloads: false });
    let signals = 0;
    bus.on('signal.*', () => signals++, 'count');
    if (withHost) new StrategyHost({ bus, clock, logger: silentLogger(), indicators: createIndicatorFactory }).start(specs);
    const t0 = process.hrtime.bigint();
    for (const c of candles) bus.publish('candle.closed', { ...c });
    const ns = Number(process.hrtime.bigint() - t0);
    return ns / candles.length + signals * 0;
  };
  run(true);
  run(false);
  const withHost: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < 5; r++) {
    withHost.push(run(true));
    bare.push(run(false));
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const host = med(withHost);
  const base = med(bare);
  return {
    benchmark: 'strategy host cost per 1m candle, every built-in strategy on one symbol',
    strategies: specs.map((s) => `${s.strategy} ${s.timeframe}`),
    candles: candles.length,
    host_us_per_candle_median: Math.round((host / 1000) * 1000) / 1000,
    bare_bus_us_per_candle_median: Math.round((base / 1000) * 1000) / 1000,
    host_only_us_per_candle: Math.round(((host - base) / 1000) * 1000) / 1000,
    target_us: 5,
    rounds_us: withHost.map((x) => Math.round(x) / 1000),
  };
}
