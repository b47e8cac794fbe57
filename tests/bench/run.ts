/**
 * `npm run bench`: runs every benchmark and prints one JSON document.
 * Figures are medians; where there is a baseline it runs in the same
 * process, interleaved, and the ratio is reported (machines here are shared
 * and noisy, so ratios travel better than absolute numbers).
 * Usage: npm run bench [-- name ...]
 */
import { benchBacktest } from './backtest.bench.ts';
import { benchBus } from './bus.bench.ts';
import { benchCandles } from './candles.bench.ts';
import { benchFeed } from './feed.bench.ts';
import { benchHost } from './host.bench.ts';
import { benchIndicators } from './indicators.bench.ts';
import { benchOrderLatency } from './order-latency.bench.ts';
import { benchReplay } from './replay.bench.ts';

const BENCHES: Record<string, () => Record<string, unknown> | Promise<Record<string, unknown>>> = {
  bus: benchBus,
  replay: benchReplay,
  host: benchHost,
  indicators: benchIndicators,
  feed: benchFeed,
  candles: benchCandles,
  'order-latency': benchOrderLatency,
  backtest: benchBacktest,
};

const wanted = process.argv.slice(2);
const results: Record<string, unknown> = {};
for (const [name, fn] of Object.entries(BENCHES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  results[name] = await fn();
}
process.stdout.write(
  JSON.stringify({ node: process.version, platform: `${process.platform}-${process.arch}`, ts: new Date().toISOString(), results }, null, 2) + '\n',
);
