/**
 * Market-data figures:
 *  - latency from a kline frame entering the process to candle.closed on the
 *    bus, p50 and p99, with 200 symbols replayed at full speed through the
 *    local exchange and the real ws client;
 *  - RSS with 200 symbols each holding 1,000 candles of history in the
 *    strategy host (target < 250 MB).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus } from '../../src/bus/bus.ts';
import { LiveClock, TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { MarketFeed } from '../../src/market-data/market-feed.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { defineStrategy } from '../../src/strategy/api.ts';
import { StrategyHost } from '../../src/strategy/host.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { strategyConfigSchema } from '../../src/settings/strategy-config.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { z } from 'zod';

const SYMBOLS = 200;
const T0 = Date.UTC(2023, 1, 1);

function instruments(): Instrument[] {
  const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
  return Array.from({ length: SYMBOLS }, (_, i) => ({ ...algo, symbol: `S${String(i).padStart(3, '0')}USDT` }));
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function latency(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'trader-bench-'));
  const minutes = 60;
  const rows = Array.from({ length: minutes }, (_, i) => [T0 + i * 60_000, '0.2500', '0.2510', '0.2490', (0.25 + i * 0.0001).toFixed(4), '100.0', T0 + i * 60_000 + 59_999, '25', 10, '50', '12.5', '0'].join(','));
  const file = join(dir, 'X-1m-2023-02.csv');
  writeFileSync(file, rows.join('\n') + '\n');
  const insts = instruments();
  const ex = await LocalExchange.start({ instruments: insts, replay: { sources: insts.map((i) => ({ market: 'futures' as const, symbol: i.symbol, files: [file] })), speed: 'max', autoStart: false } });
  const clock = new LiveClock();
  const bus = new Bus({ logger: silentLogger(), clock });
  const feed = new MarketFeed({ market: 'futures', symbols: insts.map((i) => i.symbol), wsBase: ex.urls().futuresWs, restBase: ex.url, bus, clock, logger: silentLogger(), maxBackoffMs: 1000 });
  // Time from the frame's arrival in the feed to the publish it causes (synchronous).
  let frameAt = 0n;
  const internal = feed as unknown as { onFrame(text: string): void };
  const original = internal.onFrame.bind(feed);
  internal.onFrame = (text: string) => {
    frameAt = process.hrtime.bigint();
    original(text);
  };
  const samples: number[] = [];
  bus.on('candle.closed', () => samples.push(Number(process.hrtime.bigint() - frameAt) / 1000), 'bench');
  feed.start();
  while (!feed.view().connections.every((c) => c.status === 'live')) await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  ex.replay!.start();
  await ex.replay!.done;
  while (samples.length < SYMBOLS * minutes && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 10));
  const wall = (Date.now() - t0) / 1000;
  feed.stop();
  await ex.close();
  rmSync(dir, { recursive: true, force: true });
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    symbols: SYMBOLS,
    connections: feed.view().connections.length,
    closed_candles: samples.length,
    frames_per_candle: 3,
    wall_seconds: Math.round(wall * 100) / 100,
    frame_to_candle_closed_us_p50: Math.round(pct(sorted, 50) * 10) / 10,
    frame_to_candle_closed_us_p99: Math.round(pct(sorted, 99) * 10) / 10,
    frame_to_candle_closed_us_max: Math.round(sorted.at(-1)! * 10) / 10,
  };
}

function memory(): Record<string, unknown> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss;
  const clock = new TestClock(T0);
  const bus = new Bus({ logger: silentLogger(), clock, freezePayloads: false });
  const host = new StrategyHost({ bus, clock, logger: silentLogger(), indicators: createIndicatorFactory });
  // A strategy that asks for 1,000 candles: the host keeps that much history per instance.
  const keeper = defineStrategy({
    name: 'keeper',
    description: 'holds history',
    params: z.object({}),
    defaultTimeframe: '1m',
    warmup: () => 1000,
    create: (ctx) => {
      const rsi = ctx.indicators.rsi(14);
      return { onCandle: (c) => void rsi.update(c.close), reset: () => rsi.reset() };
    },
  });
  const config = strategyConfigSchema.parse({});
  host.start(instruments().map((i) => ({ strategy: 'keeper', symbol: i.symbol, market: 'futures' as const, timeframe: '1m' as const, params: {}, warmup: 1000, module: keeper, config, file: 'x' })));
  for (let m = 0; m < 1100; m++) {
    clock.advanceTo(T0 + (m + 1) * 60_000);
    for (let i = 0; i < SYMBOLS; i++) {
      bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market: 'futures', symbol: `S${String(i).padStart(3, '0')}USDT`, timeframe: '1m', openTime: T0 + m * 60_000, open: 1, high: 1.1, low: 0.9, close: 1 + (m % 7) * 0.01, volume: 10 });
    }
  }
  (globalThis as { gc?: () => void }).gc?.();
  const after = process.memoryUsage();
  const ready = host.status().filter((s) => s.state === 'ready').length;
  return { symbols: SYMBOLS, history_per_symbol: 1000, instances_ready: ready, rss_mb: Math.round(after.rss / 1048576), heap_used_mb: Math.round(after.heapUsed / 1048576), rss_growth_mb: Math.round((after.rss - before) / 1048576), target_rss_mb: 250 };
}

export async function benchFeed(): Promise<Record<string, unknown>> {
  return { benchmark: 'market data: ws frame to candle.closed with 200 symbols; RSS with 200 symbols x 1000 candles', latency: await latency(), memory: memory() };
}
