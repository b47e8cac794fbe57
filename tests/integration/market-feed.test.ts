/**
 * The live feed against the local exchange, with the real ws client:
 * 200 symbols over several connections; every connection dropped mid-stream
 * must resume with zero missing and zero duplicate closed candles; a stalled
 * connection is detected and reconnected; malformed frames are counted and
 * ignored.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { LiveClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { MarketFeed } from '../../src/market-data/market-feed.ts';
import type { CandleClosed, FeedStatus } from '../../src/model/events.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { waitFor } from '../support/bot-process.ts';

let ex: LocalExchange | undefined;
let feed: MarketFeed | undefined;
let dir: string | undefined;
afterEach(async () => {
  feed?.stop();
  await ex?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  ex = feed = dir = undefined;
});

const T0 = Date.UTC(2023, 1, 1);
const MINUTES = 30;

/** N futures instruments shaped like ALGOUSDT, named S000USDT.. */
function instruments(n: number): Instrument[] {
  const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
  return Array.from({ length: n }, (_, i) => ({ ...algo, symbol: `S${String(i).padStart(3, '0')}USDT`, baseAsset: `S${i}` }));
}

/** A 30-minute kline file every symbol replays. */
function file(): string {
  dir = mkdtempSync(join(tmpdir(), 'trader-feed-'));
  const rows = Array.from({ length: MINUTES }, (_, i) => {
    const o = (0.25 + i * 0.0001).toFixed(4);
    const c = (0.25 + (i + 1) * 0.0001).toFixed(4);
    return [T0 + i * 60_000, o, c, o, c, '100.0', T0 + i * 60_000 + 59_999, '25', 10, '50', '12.5', '0'].join(',');
  });
  const f = join(dir, 'X-1m-2023-02.csv');
  writeFileSync(f, rows.join('\n') + '\n');
  return f;
}

function startFeed(symbols: string[], opts: { stallMs?: number; streamsPerConnection?: number; resumeFrom?: (s: string) => number | undefined; resumeMaxMs?: number; logger?: ReturnType<typeof silentLogger> } = {}) {
  const clock = new LiveClock();
  const bus = new Bus({ logger: silentLogger(), clock });
  const candles: CandleClosed[] = [];
  const statuses: FeedStatus[] = [];
  bus.on('candle.closed', (c) => candles.push(c), 'test');
  bus.on('feed.status', (s) => statuses.push(s), 'test');
  feed = new MarketFeed({
    market: 'futures',
    symbols,
    wsBase: ex!.urls().futuresWs,
    restBase: ex!.url,
    bus,
    clock,
    logger: silentLogger(),
    maxBackoffMs: 200,
    baseBackoffMs: 20,
    stallMs: opts.stallMs ?? 10_000,
    streamsPerConnection: opts.streamsPerConnection ?? 100,
    random: () => 0.5,
    ...(opts.resumeFrom ? { resumeFrom: opts.resumeFrom } : {}),
    ...(opts.resumeMaxMs ? { resumeMaxMs: opts.resumeMaxMs } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  feed.start();
  return { candles, statuses };
}

describe('market feed', () => {
  it('200 symbols over 4 connections: every connection dropped mid-stream, zero missing and zero duplicate closed candles', async () => {
    const insts = instruments(200);
    const f = file();
    ex = await LocalExchange.start({ instruments: insts, replay: { sources: insts.map((i) => ({ market: 'futures' as const, symbol: i.symbol, files: [f] })), speed: 600, autoStart: false } });
    // A mark price per symbol makes the exchange talk (markPrice@1s), as Binance always does.
    const { dec } = await import('../../src/core/decimal.ts');
    for (const i of insts) ex.engine.setMarkPrice(i.symbol, dec('0.25'));
    const { candles } = startFeed(insts.map((i) => i.symbol));
    await waitFor('all connections live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 20_000);
    expect(feed!.view().connections.map((c) => c.streams)).toEqual([100, 100, 100, 100]);
    ex.replay!.start();
    // Drop everything once a third of the month has streamed.
    await waitFor('a third replayed', () => (ex!.replay!.candles >= 200 * 10 ? true : undefined), 20_000);
    ex.hub.dropAll();
    await ex.replay!.done;
    await waitFor('every candle of every symbol', () => (candles.length >= 200 * MINUTES ? true : undefined), 30_000);
    const view = feed!.view();
    expect(view.connections.every((c) => c.reconnects >= 1), 'every connection reconnected').toBe(true);
    expect(view.backfilled, 'some candles came over REST').toBeGreaterThan(0);
    expect(candles.length, 'no duplicates published').toBe(200 * MINUTES);
    const bySymbol = new Map<string, number[]>();
    for (const c of candles) bySymbol.set(c.symbol, [...(bySymbol.get(c.symbol) ?? []), c.openTime]);
    const expected = Array.from({ length: MINUTES }, (_, i) => T0 + i * 60_000);
    for (const i of insts) expect(bySymbol.get(i.symbol), i.symbol).toEqual(expected);
    expect(view.gaps).toBe(0);
  });

  it('a stalled connection is detected within the threshold and reconnected; the others stay live', async () => {
    const insts = instruments(4);
    ex = await LocalExchange.start({ instruments: insts });
    for (const i of insts) ex.setPrice('futures', i.symbol, (await import('../../src/core/decimal.ts')).dec('0.25'));
    const { statuses } = startFeed(insts.map((i) => i.symbol), { stallMs: 1500, streamsPerConnection: 4 });
    await waitFor('live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 10_000);
    // markPrice@1s keeps healthy connections talking every second; stall the first connection's streams.
    for (const s of ['s000usdt', 's001usdt']) for (const k of ['@kline_1m', '@markprice@1s']) ex.faults.stalled.add(s + k);
    const t0 = Date.now();
    const stale = await waitFor('stale reported', () => statuses.find((s) => s.connection === 'futures-1' && s.status === 'stale'), 10_000);
    const detectedMs = Date.now() - t0;
    // The watchdog declares it stale once silent past the threshold (1.5 s), not before; the
    // upper bound is loose because other test files may be saturating both cores.
    const silent = Number(/no message for (\d+) ms/.exec(stale.detail ?? '')?.[1]);
    expect(silent, 'not before the threshold').toBeGreaterThanOrEqual(1500);
    expect(detectedMs, `detected after ${detectedMs} ms`).toBeLessThan(10_000);
    expect(feed!.isStale('S000USDT')).toBe(true);
    expect(feed!.isStale('S002USDT'), 'the other connection is healthy').toBe(false);
    ex.faults.stalled.clear();
    await waitFor('live again', () => (feed!.view().connections[0]!.status === 'live' ? true : undefined), 10_000);
    expect(feed!.view().connections[0]!.reconnects).toBeGreaterThanOrEqual(1);
    expect(statuses.some((s) => s.connection === 'futures-2' && s.status !== 'live'), 'connection 2 never left live').toBe(false);
  });

  it('malformed frames are counted and dropped; good ones still flow', async () => {
    const insts = instruments(1);
    ex = await LocalExchange.start({ instruments: insts });
    ex.engine.setMarkPrice('S000USDT', (await import('../../src/core/decimal.ts')).dec('0.25'));
    const { candles } = startFeed(['S000USDT']);
    await waitFor('live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 10_000);
    const send = (stream: string, text: string) => ex!.hub.sendRaw('futures', stream, text);
    send('s000usdt@kline_1m', 'not json at all');
    send('s000usdt@kline_1m', JSON.stringify({ stream: 's000usdt@kline_1m', data: { e: 'kline', E: 1, s: 'S000USDT', k: { t: 'soon' } } }));
    send('s000usdt@kline_1m', JSON.stringify({ stream: 's000usdt@markPrice@1s', data: { e: 'markPriceUpdate', E: 1, s: 'S000USDT', p: 'NaN' } }));
    send('s000usdt@kline_1m', JSON.stringify([1, 2, 3]));
    const good = { e: 'kline', E: 5, s: 'S000USDT', k: { t: T0, T: T0 + 59_999, s: 'S000USDT', i: '1m', o: '1.0', c: '1.1', h: '1.2', l: '0.9', v: '10', n: 3, x: true, q: '11' } };
    send('s000usdt@kline_1m', JSON.stringify({ stream: 's000usdt@kline_1m', data: good }));
    await waitFor('good candle', () => (candles.length === 1 ? true : undefined), 5000);
    expect(candles[0]).toMatchObject({ symbol: 'S000USDT', openTime: T0, open: 1, high: 1.2, low: 0.9, close: 1.1, volume: 10 });
    expect(feed!.view().malformed).toEqual({ json: 1, kline: 1, markPrice: 1, frame: 1 });
  });

  it('when nothing answers at start, says so in plain words, points to the offline demo, and keeps retrying', async () => {
    const { createLogger } = await import('../../src/core/logger.ts');
    const lines: string[] = [];
    const { logger } = createLogger({ level: 'info', format: 'json', stdout: { write: (l: string) => lines.push(l) } });
    const clock = new LiveClock();
    feed = new MarketFeed({
      market: 'futures',
      symbols: ['BTCUSDT'],
      wsBase: 'ws://127.0.0.1:9',
      restBase: 'http://127.0.0.1:9',
      bus: new Bus({ logger: silentLogger(), clock }),
      clock,
      logger,
      maxBackoffMs: 100,
      baseBackoffMs: 20,
      cannotConnectAfterMs: 300,
      random: () => 1,
    });
    feed.start();
    const msg = await waitFor('plain-words error', () => lines.map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => l.level === 'error'), 5000);
    expect(msg.msg).toMatch(/^cannot reach the futures market-data stream at ws:\/\/127\.0\.0\.1:9 after 0\.3 s \(.*\)\. Still retrying\. .*offline demo: `npx trader exchange --replay data\/sample/);
    await waitFor('retries', () => (feed!.view().connections[0]!.reconnects >= 3 ? true : undefined), 5000);
    expect(feed.view().connections[0]!.status).toMatch(/down|connecting/);
  });

  it('symbols added while running (hot reload) are subscribed, paced, and stream', async () => {
    const insts = instruments(3);
    ex = await LocalExchange.start({ instruments: insts });
    const { dec } = await import('../../src/core/decimal.ts');
    for (const i of insts) ex.setPrice('futures', i.symbol, dec('0.25'));
    const clock = new LiveClock();
    const bus = new Bus({ logger: silentLogger(), clock });
    const marks = new Set<string>();
    bus.on('mark.price', (m) => marks.add(m.symbol), 'test');
    feed = new MarketFeed({ market: 'futures', symbols: ['S000USDT'], wsBase: ex.urls().futuresWs, restBase: ex.url, bus, clock, logger: silentLogger(), maxBackoffMs: 200, baseBackoffMs: 20 });
    feed.start();
    await waitFor('first symbol streams', () => (marks.has('S000USDT') ? true : undefined), 5000);
    feed.addSymbols(['S001USDT', 'S002USDT', 'S000USDT']);
    await waitFor('new symbols stream', () => (marks.has('S001USDT') && marks.has('S002USDT') ? true : undefined), 5000);
    expect(feed.view().connections.map((c) => c.streams)).toEqual([6]);
  });

  it('minutes the exchange never produced are reported as a gap, never invented; the series goes on after them', async () => {
    const insts = instruments(1);
    ex = await LocalExchange.start({ instruments: insts });
    ex.engine.setMarkPrice('S000USDT', (await import('../../src/core/decimal.ts')).dec('0.25'));
    const { candles } = startFeed(['S000USDT']);
    await waitFor('live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 10_000);
    const kline = (t: number) => JSON.stringify({ stream: 's000usdt@kline_1m', data: { e: 'kline', E: t + 60_000, s: 'S000USDT', k: { t, T: t + 59_999, s: 'S000USDT', i: '1m', o: '1', c: '1', h: '1', l: '1', v: '1', n: 1, x: true, q: '1' } } });
    ex.hub.sendRaw('futures', 's000usdt@kline_1m', kline(T0));
    // Three minutes later: the exchange has nothing for the two in between (an outage).
    ex.hub.sendRaw('futures', 's000usdt@kline_1m', kline(T0 + 3 * 60_000));
    await waitFor('the later candle', () => (candles.length === 2 ? true : undefined), 10_000);
    expect(candles.map((c) => c.openTime - T0)).toEqual([0, 180_000]);
    expect(feed!.view().gaps, 'two missing minutes reported').toBe(2);
    expect(feed!.view().backfilled).toBe(0);
  });

  it('connections are renewed before their lifetime ends, overlapping old and new: nothing missed, nothing doubled', async () => {
    const insts = instruments(2);
    const f = file();
    ex = await LocalExchange.start({ instruments: insts, replay: { sources: insts.map((i) => ({ market: 'futures' as const, symbol: i.symbol, files: [f] })), speed: 300, autoStart: false } });
    const { dec } = await import('../../src/core/decimal.ts');
    for (const i of insts) ex.engine.setMarkPrice(i.symbol, dec('0.25'));
    const clock = new LiveClock();
    const bus = new Bus({ logger: silentLogger(), clock });
    const candles: CandleClosed[] = [];
    bus.on('candle.closed', (c) => candles.push(c), 'test');
    // A 1.5 s lifetime stands in for Binance's 24 h, so the 6 s replay sees several rotations.
    feed = new MarketFeed({ market: 'futures', symbols: insts.map((i) => i.symbol), wsBase: ex.urls().futuresWs, restBase: ex.url, bus, clock, logger: silentLogger(), maxBackoffMs: 200, baseBackoffMs: 20, maxLifetimeMs: 1500 });
    feed.start();
    await waitFor('live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 10_000);
    ex.replay!.start();
    await ex.replay!.done;
    await waitFor('all candles', () => (candles.length >= 2 * MINUTES ? true : undefined), 20_000);
    const view = feed.view();
    expect(view.connections[0]!.rotations, 'renewed several times').toBeGreaterThanOrEqual(2);
    expect(view.connections[0]!.reconnects, 'a rotation is not a reconnect').toBe(0);
    expect(candles).toHaveLength(2 * MINUTES);
    for (const i of insts) expect(candles.filter((c) => c.symbol === i.symbol).map((c) => c.openTime)).toEqual(Array.from({ length: MINUTES }, (_, k) => T0 + k * 60_000));
  });

  it('resumes after the last stored candle: the minutes missed while down come over REST first, entries wait until caught up, nothing doubled', async () => {
    const insts = instruments(3);
    const f = file();
    ex = await LocalExchange.start({ instruments: insts, replay: { sources: insts.map((i) => ({ market: 'futures' as const, symbol: i.symbol, files: [f] })), speed: 600, autoStart: false } });
    const { dec } = await import('../../src/core/decimal.ts');
    for (const i of insts) ex.engine.setMarkPrice(i.symbol, dec('0.25'));
    ex.replay!.start();
    // The bot was down while 12 minutes closed; the store ends at minute 3 (S002: nothing stored).
    await waitFor('12 minutes replayed', () => (ex!.replay!.candles >= 3 * 12 ? true : undefined), 20_000);
    const stored: Record<string, number> = { S000USDT: T0 + 3 * 60_000, S001USDT: T0 + 7 * 60_000 };
    const { candles, statuses } = startFeed(insts.map((i) => i.symbol), { resumeFrom: (s) => stored[s], resumeMaxMs: 10 * 365 * 86_400_000 });
    const firstStatus = statuses.find((s) => s.symbols?.includes('S000USDT'));
    expect(firstStatus?.status, 'S000 is stale (catching up) before anything else is said about it').toBe('stale');
    await ex.replay!.done;
    await waitFor('every remaining candle', () => (candles.filter((c) => c.symbol !== 'S002USDT').length >= MINUTES - 4 + MINUTES - 8 ? true : undefined), 20_000);
    const of = (s: string) => candles.filter((c) => c.symbol === s).map((c) => (c.openTime - T0) / 60_000);
    expect(of('S000USDT')).toEqual(Array.from({ length: MINUTES - 4 }, (_, i) => i + 4));
    expect(of('S001USDT')).toEqual(Array.from({ length: MINUTES - 8 }, (_, i) => i + 8));
    // Nothing stored: S002 starts at the live edge (no history to fill), with no duplicates.
    const s2 = of('S002USDT');
    expect(s2.length).toBeGreaterThan(0);
    expect(s2).toEqual(Array.from({ length: s2.length }, (_, i) => s2[0]! + i));
    // At least minutes 4..10 and 8..10 (minute 11 may still be forming: left to the stream).
    expect(feed!.view().backfilled, 'the missed minutes came over REST').toBeGreaterThanOrEqual(7 + 3);
    // Live again once caught up (said by the backfill's end or by the connection going live, whichever is last).
    const staleAt = statuses.indexOf(firstStatus!);
    expect(statuses.findIndex((s, i) => i > staleAt && s.status === 'live' && s.symbols?.includes('S000USDT'))).toBeGreaterThan(staleAt);
    expect(feed!.isStale('S000USDT')).toBe(false);
    // Live candle values match the exchange's (the forming candle was never published as closed).
    const exRows = ex.candles.klines('futures', 'S000USDT', '1m', { startTime: T0, limit: 100 });
    for (const c of candles.filter((k) => k.symbol === 'S000USDT')) {
      const k = exRows.find((r) => r.openTime === c.openTime)!;
      expect([c.open, c.high, c.low, c.close, c.volume], new Date(c.openTime).toISOString()).toEqual([Number(k.open), Number(k.high), Number(k.low), Number(k.close), Number(k.volume)]);
    }
  });

  it('a store older than the resume window is not fetched at start: said in the log, streaming from the live edge', async () => {
    const insts = instruments(1);
    ex = await LocalExchange.start({ instruments: insts });
    ex.engine.setMarkPrice('S000USDT', (await import('../../src/core/decimal.ts')).dec('0.25'));
    const warnings: string[] = [];
    const logger = { ...silentLogger(), warn: (_o: unknown, m?: string) => void warnings.push(String(m)) } as unknown as ReturnType<typeof silentLogger>;
    const { candles } = startFeed(['S000USDT'], { resumeFrom: () => T0, resumeMaxMs: 3_600_000, logger });
    await waitFor('live', () => feed!.view().connections.every((c) => c.status === 'live') || undefined, 10_000);
    expect(warnings.find((w) => w.includes('last stored more than 1 h ago'))).toMatch(/trader data download/);
    const kline = (t: number) => JSON.stringify({ stream: 's000usdt@kline_1m', data: { e: 'kline', E: t + 60_000, s: 'S000USDT', k: { t, T: t + 59_999, s: 'S000USDT', i: '1m', o: '1', c: '1', h: '1', l: '1', v: '1', n: 1, x: true, q: '1' } } });
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    ex.hub.sendRaw('futures', 's000usdt@kline_1m', kline(now - 60_000));
    await waitFor('the live candle', () => (candles.length === 1 ? true : undefined), 10_000);
    expect(feed!.view().backfilled).toBe(0);
  });
});
