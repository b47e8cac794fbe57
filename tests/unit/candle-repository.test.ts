import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { MIGRATIONS } from '../../src/store/migrations.ts';
import { CandleColumns, CandleRepository, CandleWriter, candleKey, openTimeOfKey, type StoredCandle } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { repoFixture } from '../support/candle-repo.ts';

const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;
const HOUR = 3_600_000;

const repos = repoFixture();
afterEach(() => repos.cleanup());

/** n candles of `step` from `from`, close = 100 + i. */
function series(from: number, n: number, step = MIN, skip: ReadonlySet<number> = new Set()): StoredCandle[] {
  const out: StoredCandle[] = [];
  for (let i = 0; i < n; i++) {
    if (skip.has(i)) continue;
    const c = 100 + i;
    out.push({ openTime: from + i * step, open: c - 0.5, high: c + 1, low: c - 1, close: c, volume: 10 + i, quoteVolume: 1000 + i, trades: i, takerBuyVolume: 5 });
  }
  return out;
}

function count(store: Store): number {
  return store.all<{ n: number }>(store.db.selectFrom('candles').select((eb) => eb.fn.countAll<number>().as('n')))[0]!.n;
}

describe('candle keys', () => {
  it('encode (series, open time in minutes) in one exact integer and decode back', () => {
    const t = Date.UTC(2026, 3, 30, 23, 59);
    const k = candleKey(2 ** 21 - 1, t);
    expect(Number.isSafeInteger(k), 'the largest series id still gives an exact integer').toBe(true);
    expect(openTimeOfKey(k)).toBe(t);
    expect(candleKey(2, T0) - candleKey(1, T0), 'series are 2^32 minutes apart').toBe(2 ** 32);
  });
});

describe('CandleRepository', () => {
  it('upserts idempotently: the same rows again change nothing; a changed row is updated', async () => {
    const { store, repo, ws } = await repos.open();
    const rows = series(T0, 500);
    expect(repo.upsert('futures', 'BTCUSDT', '1m', rows)).toEqual({ inserted: 500, updated: 0, unchanged: 0 });
    const before = new Database(ws.dbFile, { readonly: true });
    const snapshot = before.prepare('SELECT * FROM candles ORDER BY key').all();
    before.close();

    expect(repo.upsert('futures', 'BTCUSDT', '1m', rows), 'same key, same row: nothing changes').toEqual({ inserted: 0, updated: 0, unchanged: 500 });
    expect(repo.upsert('futures', 'BTCUSDT', '1m', rows.slice(10, 13)), 'the row-by-row path agrees').toEqual({ inserted: 0, updated: 0, unchanged: 3 });
    const after = new Database(ws.dbFile, { readonly: true });
    expect(after.prepare('SELECT * FROM candles ORDER BY key').all(), 'rows are byte-for-byte the same').toEqual(snapshot);
    after.close();

    const changed = rows.slice(0, 20).map((c, i) => (i === 7 ? { ...c, close: c.close + 0.25, high: c.high + 1 } : c));
    expect(repo.upsert('futures', 'BTCUSDT', '1m', changed)).toEqual({ inserted: 0, updated: 1, unchanged: 19 });
    expect(repo.range('futures', 'BTCUSDT', '1m', T0 + 7 * MIN, T0 + 7 * MIN)[0]!.close).toBe(107.25);
    expect(repo.upsert('futures', 'BTCUSDT', '1m', series(T0 + 500 * MIN, 5)), 'new rows after the stored ones').toEqual({ inserted: 5, updated: 0, unchanged: 0 });
    expect(count(store)).toBe(505);
  });

  it('keeps series apart: same symbol on another market or timeframe is another series', async () => {
    const { repo } = await repos.open();
    repo.upsert('futures', 'BTCUSDT', '1m', series(T0, 10));
    repo.upsert('spot', 'BTCUSDT', '1m', series(T0, 3));
    repo.upsert('spot', 'BTCUSDT', '1h', series(T0, 2, HOUR));
    expect(repo.range('futures', 'BTCUSDT', '1m', 0, 1e13)).toHaveLength(10);
    expect(repo.range('spot', 'BTCUSDT', '1m', 0, 1e13)).toHaveLength(3);
    expect(repo.range('spot', 'BTCUSDT', '1h', 0, 1e13)).toHaveLength(2);
    expect(repo.range('spot', 'ETHUSDT', '1m', 0, 1e13), 'unknown series: nothing').toEqual([]);
    expect(repo.range('futures', 'BTCUSDT', '1m', -Infinity, Infinity), 'open bounds stay inside the series').toHaveLength(10);
  });

  it('range returns candles opening in [from, to], oldest first, with every stored field', async () => {
    const { repo } = await repos.open();
    repo.upsert('spot', 'BTCUSDT', '1m', series(T0, 100));
    const r = repo.range('spot', 'BTCUSDT', '1m', T0 + 10 * MIN, T0 + 14 * MIN);
    expect(r.map((c) => c.openTime)).toEqual([10, 11, 12, 13, 14].map((i) => T0 + i * MIN));
    expect(r[0]).toEqual({ openTime: T0 + 10 * MIN, open: 109.5, high: 111, low: 109, close: 110, volume: 20, quoteVolume: 1010, trades: 10, takerBuyVolume: 5 });
    expect(repo.range('spot', 'BTCUSDT', '1m', T0 + 10 * MIN + 1, T0 + 12 * MIN - 1).map((c) => c.openTime), 'bounds between minutes').toEqual([T0 + 11 * MIN]);
    expect(repo.range('spot', 'BTCUSDT', '1m', T0 + 20 * MIN, T0 + 10 * MIN)).toEqual([]);
  });

  it('recent1m: the last n 1m candles at or before a time, oldest first (the strategy host warm-up)', async () => {
    const { repo } = await repos.open();
    repo.upsert('spot', 'BTCUSDT', '1m', series(T0, 100));
    repo.upsert('spot', 'BTCUSDT', '1h', series(T0, 100, HOUR));
    const bars = repo.recent1m('spot', 'BTCUSDT', T0 + 50 * MIN + 30_000, 3);
    expect(bars.map((b) => b.openTime)).toEqual([48, 49, 50].map((i) => T0 + i * MIN));
    expect(bars[2]).toEqual({ openTime: T0 + 50 * MIN, open: 149.5, high: 151, low: 149, close: 150, volume: 60 });
    expect(repo.recent1m('spot', 'BTCUSDT', T0 - 1, 5), 'nothing before the first').toEqual([]);
    expect(repo.recent1m('spot', 'ETHUSDT', T0 + HOUR, 5)).toEqual([]);
  });

  it('summary: first, last, rows and missing candles per series; lastOpenTime for resuming', async () => {
    const { repo } = await repos.open();
    // 1m: 100 minutes with 3 missing in two runs (minutes 10, 11 and 50).
    repo.upsert('futures', 'ETHUSDT', '1m', series(T0, 100, MIN, new Set([10, 11, 50])));
    // 1h: complete.
    repo.upsert('spot', 'BTCUSDT', '1h', series(T0, 48, HOUR));
    // 1M: Jan, Feb, Apr 2024 (March missing).
    repo.upsert('spot', 'BTCUSDT', '1M', [Date.UTC(2024, 0, 1), Date.UTC(2024, 1, 1), Date.UTC(2024, 3, 1)].map((t) => ({ openTime: t, open: 1, high: 1, low: 1, close: 1, volume: 1 })));
    expect(repo.summary()).toEqual([
      { market: 'futures', symbol: 'ETHUSDT', timeframe: '1m', first: T0, last: T0 + 99 * MIN, rows: 97, gaps: 3 },
      { market: 'spot', symbol: 'BTCUSDT', timeframe: '1M', first: Date.UTC(2024, 0, 1), last: Date.UTC(2024, 3, 1), rows: 3, gaps: 1 },
      { market: 'spot', symbol: 'BTCUSDT', timeframe: '1h', first: T0, last: T0 + 47 * HOUR, rows: 48, gaps: 0 },
    ]);
    expect(repo.lastOpenTime('futures', 'ETHUSDT', '1m')).toBe(T0 + 99 * MIN);
    expect(repo.firstOpenTime('futures', 'ETHUSDT', '1m')).toBe(T0);
    expect(repo.lastOpenTime('futures', 'ETHUSDT', '5m'), 'no such series').toBeUndefined();
  });

  it('writes columns and object arrays alike, in one transaction per call', async () => {
    const { store, repo } = await repos.open();
    const spy = vi.spyOn(store, 'transaction');
    const cols = CandleColumns.from(series(T0, 2000));
    expect(cols.length).toBe(2000);
    expect(repo.upsert('spot', 'BTCUSDT', '1m', series(T0, 2000))).toEqual({ inserted: 2000, updated: 0, unchanged: 0 });
    expect(spy, 'one transaction for 2000 rows').toHaveBeenCalledTimes(1);
    const id = repo.seriesId('spot', 'BTCUSDT', '1m');
    expect(repo.transaction(() => repo.writeSeries(id, cols))).toEqual({ inserted: 0, updated: 0, unchanged: 2000 });
  });

  it('migration 0002 carries candles stored under 0001 over to the new layout', async () => {
    const ws = repos.workspace();
    mkdirSync(dirname(ws.dbFile), { recursive: true });
    const sqlite = new Database(ws.dbFile);
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) });
    const only0001 = new Migrator({ db, provider: { getMigrations: async () => ({ '0001_initial': MIGRATIONS['0001_initial']! }) } });
    expect((await only0001.migrateToLatest()).error).toBeUndefined();
    const ins = sqlite.prepare('INSERT INTO candles (market, symbol, timeframe, open_time, open, high, low, close, volume, quote_volume, trades) VALUES (?, ?, ?, ?, 1, 2, 0.5, 1.5, 10, 15, 3)');
    ins.run('spot', 'BTCUSDT', '1m', T0);
    ins.run('spot', 'BTCUSDT', '1m', T0 + MIN);
    ins.run('futures', 'ETHUSDT', '1h', T0);
    await db.destroy();

    const store = Store.open(ws.dbFile);
    repos.track(store);
    expect((await store.migrate()).applied).toEqual(['0002_candle_series', '0003_backtests', '0004_ledger', '0005_sim_account', '0006_order_namespace']);
    const repo = new CandleRepository(store);
    expect(repo.range('spot', 'BTCUSDT', '1m', 0, 1e13)).toEqual([
      { openTime: T0, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10, quoteVolume: 15, trades: 3, takerBuyVolume: null },
      { openTime: T0 + MIN, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10, quoteVolume: 15, trades: 3, takerBuyVolume: null },
    ]);
    expect(repo.summary().map((s) => `${s.market} ${s.symbol} ${s.timeframe} ${s.rows}`)).toEqual(['futures ETHUSDT 1h 1', 'spot BTCUSDT 1m 2']);
  });
});

describe('CandleWriter', () => {
  it('queues live candles and writes them in ONE transaction per second; close() flushes the rest', async () => {
    const { store, repo } = await repos.open();
    const clock = new TestClock(T0);
    const errors: unknown[] = [];
    const writer = new CandleWriter({ repository: repo, clock, onError: (e) => errors.push(e) });
    const spy = vi.spyOn(store, 'transaction');

    // 3 symbols x 2 minutes, as a live feed would deliver them.
    for (const [i, c] of series(T0, 2).entries()) {
      for (const s of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']) writer.enqueue('futures', s, '1m', { ...c, close: c.close + i });
    }
    expect(writer.pending).toBe(6);
    clock.advanceBy(999);
    expect(count(store), 'nothing written before the timer fires').toBe(0);
    expect(spy).not.toHaveBeenCalled();

    clock.advanceBy(1);
    expect(count(store), 'all six on the tick').toBe(6);
    expect(spy, 'in one transaction').toHaveBeenCalledTimes(1);
    expect(writer.stats).toEqual({ candles: 6, transactions: 1 });

    clock.advanceBy(5000);
    expect(spy, 'an empty queue opens no transaction').toHaveBeenCalledTimes(1);

    writer.enqueue('futures', 'BTCUSDT', '1m', series(T0 + 2 * MIN, 1)[0]!);
    writer.close();
    expect(count(store), 'close() wrote the last one without waiting for the timer').toBe(7);
    expect(clock.pendingTimers(), 'timer cancelled').toBe(0);
    expect(() => writer.enqueue('futures', 'BTCUSDT', '1m', series(T0, 1)[0]!)).toThrow(/closed/);
    writer.close();
    expect(errors).toEqual([]);
  });

  it('keeps the batch when a write fails and retries it on the next tick', async () => {
    const { store, repo } = await repos.open();
    const clock = new TestClock(T0);
    const errors: string[] = [];
    const writer = new CandleWriter({ repository: repo, clock, onError: (e, queued) => errors.push(`${(e as Error).message} (${queued} queued)`) });
    const real = repo.upsertMany.bind(repo);
    const spy = vi.spyOn(repo, 'upsertMany').mockImplementationOnce(() => {
      throw new Error('disk I/O error');
    });
    for (const c of series(T0, 3)) writer.enqueue('spot', 'BTCUSDT', '1m', c);
    clock.advanceBy(1000);
    expect(errors).toEqual(['disk I/O error (3 queued)']);
    expect(count(store)).toBe(0);
    spy.mockImplementation(real);
    clock.advanceBy(1000);
    expect(count(store), 'nothing lost').toBe(3);
    writer.close();
  });
});
