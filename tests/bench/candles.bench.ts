/**
 * Candle storage, measured on real data: every file of
 * ../shared/data/binance-um-1m (44 months of 1m futures klines, ~1.9M rows).
 *
 * 1. Schema. The same rows written to two layouts, in the same run,
 *    interleaved (A B A B, best of each), one transaction per file as the
 *    importer does, with the store's pragmas (WAL, synchronous=FULL):
 *      composite: WITHOUT ROWID table, PRIMARY KEY (series_id, open_time)
 *      intkey:    rowid table, INTEGER PRIMARY KEY = series_id * 2^32 + open_time / 60000
 *    then range reads on each: random one-day windows, and whole series.
 *    SQL built with kysely, compiled once, run by better-sqlite3.
 * 2. Import. `importKlineFiles` end to end (gunzip, parse, checks, write)
 *    into a fresh store (best of 2), the same files again (nothing
 *    changes), and single-threaded (no parse worker) as the baseline,
 *    interleaved with the worker runs.
 *
 * Rows are parsed into memory before part 1, so it times SQLite alone.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, sql, SqliteDialect, type CreateTableBuilder } from 'kysely';
import { importKlineFiles, nameParts } from '../../src/market-data/import.ts';
import { readKlineFile } from '../../src/market-data/kline-files.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';

const DIR = join(fileURLToPath(new URL('../../..', import.meta.url)), 'shared', 'data', 'binance-um-1m');
const SPAN = 4_294_967_296;
const MINUTE = 60_000;
const IMPORT_TARGET_ROWS_PER_SEC = 200_000;

interface FileRows {
  series: number;
  n: number;
  t: Float64Array;
  /** open, high, low, close, volume, quote_volume, trades, taker_buy_volume */
  v: Float64Array[];
}

interface Values {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  quote_volume: number;
  trades: number;
  taker_buy_volume: number;
}
interface BenchDB {
  composite: Values & { series_id: number; open_time: number };
  intkey: Values & { key: number };
}
type Variant = keyof BenchDB;
const VALUE_COLUMNS = ['open', 'high', 'low', 'close', 'volume', 'quote_volume', 'trades', 'taker_buy_volume'] as const;

export async function benchCandles(): Promise<Record<string, unknown>> {
  if (!existsSync(DIR)) return { benchmark: 'candles', skipped: `missing ${DIR}` };
  const files = readdirSync(DIR).filter((f) => f.endsWith('.csv.gz')).sort().map((f) => join(DIR, f));
  let data: FileRows[] | undefined = loadAll(files);
  const rows = data.reduce((a, f) => a + f.n, 0);
  const work = mkdtempSync(join(tmpdir(), 'trader-bench-candles-'));
  try {
    // --- 1. schema
    const insert: Record<Variant, number[]> = { composite: [], intkey: [] };
    const bytes: Record<Variant, number> = { composite: 0, intkey: 0 };
    const scans: Record<Variant, { day_windows_per_sec: number; day_window_rows_per_sec: number; full_scan_rows_per_sec: number }[]> = { composite: [], intkey: [] };
    for (let round = 0; round < 2; round++) {
      for (const variant of ['composite', 'intkey'] as const) {
        const file = join(work, `${variant}-${round}.db`);
        const store = Store.open(file);
        const db = new Kysely<BenchDB>({ dialect: new SqliteDialect({ database: store.sqlite }) });
        await createTable(db, variant);
        insert[variant].push(timeInsert(store, db, variant, data));
        scans[variant].push(timeScans(store, db, variant, data));
        await db.destroy();
        store.close();
        bytes[variant] = statSync(file).size;
        rmSync(file, { force: true });
      }
    }
    const best = (xs: number[]): number => Math.max(...xs);
    const ins = { composite: best(insert.composite), intkey: best(insert.intkey) };
    const scan = (v: Variant) => ({
      day_windows_per_sec: best(scans[v].map((s) => s.day_windows_per_sec)),
      day_window_rows_per_sec: best(scans[v].map((s) => s.day_window_rows_per_sec)),
      full_scan_rows_per_sec: best(scans[v].map((s) => s.full_scan_rows_per_sec)),
    });
    const scanA = scan('composite');
    const scanB = scan('intkey');

    // The in-memory rows (~135 MB) would only slow the import runs' GC.
    data = undefined;

    // --- 2. import, end to end (worker and single-thread interleaved, best of 2)
    const importRun = async (worker: boolean, again: boolean): Promise<{ rowsPerSec: number; inserted: number; badRows: number; gaps: number }> => {
      const file = join(work, `import-${worker}.db`);
      if (!again) rmSync(file, { force: true });
      const store = Store.open(file);
      await store.migrate();
      try {
        const t0 = performance.now();
        const r = await importKlineFiles(new CandleRepository(store), files, { worker });
        const sec = (performance.now() - t0) / 1000;
        return { rowsPerSec: Math.round(r.totals.rowsRead / sec), inserted: r.totals.inserted, badRows: r.totals.badRows, gaps: r.totals.gaps };
      } finally {
        store.close();
      }
    };
    const runs = { worker: [] as number[], single: [] as number[] };
    let fresh = await importRun(true, false);
    runs.worker.push(fresh.rowsPerSec);
    const reimport = await importRun(true, true);
    runs.single.push((await importRun(false, false)).rowsPerSec);
    const second = await importRun(true, false);
    runs.worker.push(second.rowsPerSec);
    if (second.rowsPerSec > fresh.rowsPerSec) fresh = second;
    runs.single.push((await importRun(false, false)).rowsPerSec);
    const single = { rowsPerSec: Math.max(...runs.single) };

    return {
      benchmark: 'candle storage and import on all of binance-um-1m',
      files: files.length,
      rows: rows,
      schema: {
        note: 'rows/s, best of 2 interleaved rounds; one transaction per file; WAL + synchronous=FULL',
        insert_rows_per_sec: { composite_without_rowid: ins.composite, integer_key: ins.intkey },
        insert_ratio_intkey_to_composite: round3(ins.intkey / ins.composite),
        insert_rounds: insert,
        range_read: { composite_without_rowid: scanA, integer_key: scanB },
        day_window_ratio_intkey_to_composite: round3(scanB.day_windows_per_sec / scanA.day_windows_per_sec),
        full_scan_ratio_intkey_to_composite: round3(scanB.full_scan_rows_per_sec / scanA.full_scan_rows_per_sec),
        db_bytes: { composite_without_rowid: bytes.composite, integer_key: bytes.intkey },
      },
      import: {
        note: 'importKlineFiles: gunzip + parse + checks + write, one transaction per file; parse of the next file on a worker thread',
        rows_per_sec: fresh.rowsPerSec,
        target_rows_per_sec: IMPORT_TARGET_ROWS_PER_SEC,
        meets_target: fresh.rowsPerSec >= IMPORT_TARGET_ROWS_PER_SEC,
        inserted: fresh.inserted,
        bad_rows: fresh.badRows,
        gaps: fresh.gaps,
        rounds_rows_per_sec: runs,
        reimport_rows_per_sec: reimport.rowsPerSec,
        reimport_inserted: reimport.inserted,
        single_thread_rows_per_sec: single.rowsPerSec,
        ratio_worker_to_single_thread: round3(fresh.rowsPerSec / single.rowsPerSec),
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function loadAll(files: readonly string[]): FileRows[] {
  const ids = new Map<string, number>();
  return files.map((f) => {
    const symbol = nameParts(f).symbol!;
    if (!ids.has(symbol)) ids.set(symbol, ids.size + 1);
    const ks = [...readKlineFile(f)];
    const n = ks.length;
    const t = new Float64Array(n);
    const v = VALUE_COLUMNS.map(() => new Float64Array(n));
    ks.forEach((k, i) => {
      t[i] = k.openTime;
      v[0]![i] = Number(k.open);
      v[1]![i] = Number(k.high);
      v[2]![i] = Number(k.low);
      v[3]![i] = Number(k.close);
      v[4]![i] = Number(k.volume);
      v[5]![i] = Number(k.quoteVolume);
      v[6]![i] = k.trades;
      v[7]![i] = Number(k.takerBuyVolume);
    });
    return { series: ids.get(symbol)!, n, t, v };
  });
}

async function createTable(db: Kysely<BenchDB>, variant: Variant): Promise<void> {
  let t = db.schema.createTable(variant) as CreateTableBuilder<string, string>;
  if (variant === 'composite') t = t.addColumn('series_id', 'integer', (c) => c.notNull()).addColumn('open_time', 'integer', (c) => c.notNull());
  else t = t.addColumn('key', 'integer', (c) => c.primaryKey());
  for (const c of VALUE_COLUMNS) t = t.addColumn(c, c === 'trades' ? 'integer' : 'real', (col) => (c === 'taker_buy_volume' ? col : col.notNull()));
  if (variant === 'composite') t = t.addPrimaryKeyConstraint(`${variant}_pk`, ['series_id', 'open_time']).modifyEnd(sql`without rowid`);
  await t.execute();
}

function timeInsert(store: Store, db: Kysely<BenchDB>, variant: Variant, data: readonly FileRows[]): number {
  const zero = { open: 0, high: 0, low: 0, close: 0, volume: 0, quote_volume: 0, trades: 0, taker_buy_volume: 0 };
  const q = variant === 'composite' ? db.insertInto('composite').values({ series_id: 0, open_time: 0, ...zero }).compile() : db.insertInto('intkey').values({ key: 0, ...zero }).compile();
  const st = store.sqlite.prepare(q.sql);
  let rows = 0;
  const t0 = performance.now();
  for (const f of data) {
    const { t, v, series } = f;
    const [o, h, l, c, vol, qv, tr, tbv] = v as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
    store.transaction(() => {
      if (variant === 'composite') for (let i = 0; i < f.n; i++) st.run(series, t[i], o[i], h[i], l[i], c[i], vol[i], qv[i], tr[i], tbv[i]);
      else for (let i = 0; i < f.n; i++) st.run(series * SPAN + t[i]! / MINUTE, o[i], h[i], l[i], c[i], vol[i], qv[i], tr[i], tbv[i]);
    });
    rows += f.n;
  }
  return Math.round(rows / ((performance.now() - t0) / 1000));
}

/** Random one-day windows (1440 rows) in stored months, then every series read whole. */
function timeScans(store: Store, db: Kysely<BenchDB>, variant: Variant, data: readonly FileRows[]): { day_windows_per_sec: number; day_window_rows_per_sec: number; full_scan_rows_per_sec: number } {
  const window =
    variant === 'composite'
      ? store.sqlite.prepare(db.selectFrom('composite').select(['open_time', 'open', 'high', 'low', 'close', 'volume']).where('series_id', '=', 0).where('open_time', '>=', 0).where('open_time', '<=', 0).orderBy('open_time').compile().sql).raw(true)
      : store.sqlite.prepare(db.selectFrom('intkey').select(['key', 'open', 'high', 'low', 'close', 'volume']).where('key', '>=', 0).where('key', '<=', 0).orderBy('key').compile().sql).raw(true);
  const full =
    variant === 'composite'
      ? store.sqlite.prepare(db.selectFrom('composite').select(['open_time', 'close']).where('series_id', '=', 0).orderBy('open_time').compile().sql).raw(true)
      : store.sqlite.prepare(db.selectFrom('intkey').select(['key', 'close']).where('key', '>=', 0).where('key', '<', 0).orderBy('key').compile().sql).raw(true);
  // Deterministic pseudo-random windows so both layouts read the same ones.
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const QUERIES = 1000;
  let got = 0;
  const t0 = performance.now();
  for (let q = 0; q < QUERIES; q++) {
    const f = data[rand(data.length)]!;
    const from = f.t[rand(f.n - 1440)]!;
    const to = from + 1439 * MINUTE;
    const r = variant === 'composite' ? window.all(f.series, from, to) : window.all(f.series * SPAN + from / MINUTE, f.series * SPAN + to / MINUTE);
    got += r.length;
  }
  const winSec = (performance.now() - t0) / 1000;
  const series = [...new Set(data.map((f) => f.series))];
  let scanned = 0;
  const t1 = performance.now();
  for (const s of series) scanned += (variant === 'composite' ? full.all(s) : full.all(s * SPAN, (s + 1) * SPAN)).length;
  const fullSec = (performance.now() - t1) / 1000;
  return { day_windows_per_sec: Math.round(QUERIES / winSec), day_window_rows_per_sec: Math.round(got / winSec), full_scan_rows_per_sec: Math.round(scanned / fullSec) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
