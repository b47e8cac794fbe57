/**
 * Candles in SQLite.
 *
 * Layout (migration 0002): `candle_series` names each (market, symbol,
 * timeframe) with a small integer id, and `candles` is a rowid table whose
 * INTEGER PRIMARY KEY is `series_id * 2^32 + open_time / 60000`. A series is
 * then one contiguous key range, so a range read, the last candle of a
 * series or its row count is a walk of the table's own b-tree, with no
 * second index to maintain on insert.
 *
 * Writes are idempotent: a candle already stored with the same values is
 * left alone (re-importing a file changes nothing and says so), one with
 * other values is updated. Bulk writes run in one transaction through
 * statements compiled from kysely once per repository and executed
 * synchronously by better-sqlite3: no promise and no SQL compile per row.
 */
import type Database from 'better-sqlite3';
import { sql, type Selectable } from 'kysely';
import type { CandlesTable } from './schema.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { InvariantError } from '../core/errors.ts';
import { candlesBetween, isInterval, type Interval } from '../market-data/intervals.ts';
import type { Market } from '../model/market.ts';
import type { Bar } from '../strategy/indicators/types.ts';
import type { CandleHistory } from '../strategy/host.ts';
import type { Store } from './store.ts';

export interface StoredCandle extends Bar {
  readonly quoteVolume?: number;
  readonly trades?: number;
  readonly takerBuyVolume?: number | null;
}

/**
 * Candles of one series as columns: what bulk writers fill (no object per
 * row) and what a worker thread can hand over without copying (the arrays'
 * buffers are transferable). takerBuyVolume NaN means unknown (NULL).
 */
export class CandleColumns {
  length = 0;
  openTime: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  quoteVolume: Float64Array;
  trades: Float64Array;
  takerBuyVolume: Float64Array;

  constructor(capacity = 1024) {
    const cap = Math.max(1, capacity);
    this.openTime = new Float64Array(cap);
    this.open = new Float64Array(cap);
    this.high = new Float64Array(cap);
    this.low = new Float64Array(cap);
    this.close = new Float64Array(cap);
    this.volume = new Float64Array(cap);
    this.quoteVolume = new Float64Array(cap);
    this.trades = new Float64Array(cap);
    this.takerBuyVolume = new Float64Array(cap);
  }

  static from(candles: readonly StoredCandle[]): CandleColumns {
    const c = new CandleColumns(candles.length);
    for (const k of candles) c.push(k.openTime, k.open, k.high, k.low, k.close, k.volume, k.quoteVolume ?? 0, k.trades ?? 0, k.takerBuyVolume ?? NaN);
    return c;
  }

  /** Rebuilds columns from arrays received from another thread. */
  static of(parts: Pick<CandleColumns, 'length' | 'openTime' | 'open' | 'high' | 'low' | 'close' | 'volume' | 'quoteVolume' | 'trades' | 'takerBuyVolume'>): CandleColumns {
    const c = new CandleColumns(1);
    Object.assign(c, parts);
    return c;
  }

  push(openTime: number, open: number, high: number, low: number, close: number, volume: number, quoteVolume: number, trades: number, takerBuyVolume: number): void {
    if (this.length === this.openTime.length) this.grow();
    const i = this.length++;
    this.openTime[i] = openTime;
    this.open[i] = open;
    this.high[i] = high;
    this.low[i] = low;
    this.close[i] = close;
    this.volume[i] = volume;
    this.quoteVolume[i] = quoteVolume;
    this.trades[i] = trades;
    this.takerBuyVolume[i] = takerBuyVolume;
  }

  get(i: number): StoredCandle {
    const tbv = this.takerBuyVolume[i]!;
    return { openTime: this.openTime[i]!, open: this.open[i]!, high: this.high[i]!, low: this.low[i]!, close: this.close[i]!, volume: this.volume[i]!, quoteVolume: this.quoteVolume[i]!, trades: this.trades[i]!, takerBuyVolume: Number.isNaN(tbv) ? null : tbv };
  }

  /** The underlying buffers, for postMessage's transfer list. */
  buffers(): ArrayBuffer[] {
    return [this.openTime, this.open, this.high, this.low, this.close, this.volume, this.quoteVolume, this.trades, this.takerBuyVolume].map((a) => a.buffer as ArrayBuffer);
  }

  private grow(): void {
    const cap = this.openTime.length * 2;
    const g = (a: Float64Array): Float64Array => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.openTime = g(this.openTime);
    this.open = g(this.open);
    this.high = g(this.high);
    this.low = g(this.low);
    this.close = g(this.close);
    this.volume = g(this.volume);
    this.quoteVolume = g(this.quoteVolume);
    this.trades = g(this.trades);
    this.takerBuyVolume = g(this.takerBuyVolume);
  }
}

/** What a write did, row by row. */
export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface SeriesSummary {
  readonly market: Market;
  readonly symbol: string;
  readonly timeframe: string;
  /** Open time of the first and last stored candle (ms, UTC). */
  readonly first: number;
  readonly last: number;
  readonly rows: number;
  /** Candles missing between first and last: intervals on the grid with no row. */
  readonly gaps: number;
}

/** 2^32: the factor between a series id and the minutes part of a key. */
const SERIES_SPAN = 4_294_967_296;
const MINUTE = 60_000;

/** The candles key of (series, open time); open time must be a whole minute. */
export function candleKey(seriesId: number, openTime: number): number {
  return seriesId * SERIES_SPAN + openTime / MINUTE;
}

/** Open time (ms) of a candles key. */
export function openTimeOfKey(key: number): number {
  return (key % SERIES_SPAN) * MINUTE;
}

/** First key of a series, and the first key past it. */
function seriesRange(seriesId: number): [lo: number, end: number] {
  return [seriesId * SERIES_SPAN, (seriesId + 1) * SERIES_SPAN];
}

/** A stored candle row, as the schema declares it. */
type CandleRow = Selectable<CandlesTable>;

/** Column order of the compiled write statements (checked against kysely's output once). */
const VALUE_COLUMNS = ['open', 'high', 'low', 'close', 'volume', 'quote_volume', 'trades', 'taker_buy_volume'] as const;

interface WriteStatements {
  /** INSERT OR IGNORE: 1 change when the row is new. Args: key, then VALUE_COLUMNS. */
  insert: Database.Statement;
  /** UPDATE only when some value differs: 1 change when it did. Args: VALUE_COLUMNS, key, VALUE_COLUMNS. */
  update: Database.Statement;
  /** Stored rows with keys in [lo, hi], ascending, as arrays: key, then VALUE_COLUMNS. */
  existing: Database.Statement;
}

export class CandleRepository implements CandleHistory {
  private readonly seriesIds = new Map<string, number>();
  private statements: WriteStatements | undefined;

  constructor(private readonly store: Store) {}

  /** The id of a series, created when missing (unless create is false). */
  seriesId(market: Market, symbol: string, timeframe: string, create: false): number | undefined;
  seriesId(market: Market, symbol: string, timeframe: string, create?: true): number;
  seriesId(market: Market, symbol: string, timeframe: string, create = true): number | undefined {
    const k = `${market}|${symbol}|${timeframe}`;
    const cached = this.seriesIds.get(k);
    if (cached !== undefined) return cached;
    const { db } = this.store;
    const find = (): number | undefined =>
      this.store.all<{ id: number }>(db.selectFrom('candle_series').select('id').where('market', '=', market).where('symbol', '=', symbol).where('timeframe', '=', timeframe))[0]?.id;
    let id = find();
    if (id === undefined) {
      if (!create) return undefined;
      this.store.run(db.insertInto('candle_series').values({ market, symbol, timeframe }).onConflict((oc) => oc.doNothing()));
      id = find();
      if (id === undefined) throw new InvariantError(`candle series ${k} was not created`);
    }
    if (id >= 2 ** 21) throw new InvariantError(`candle series id ${id} is past 2^21: keys would lose precision`);
    this.seriesIds.set(k, id);
    return id;
  }

  /**
   * Writes candles of one series in one transaction. Open times must be
   * whole minutes (every Binance interval of 1m or more is).
   */
  upsert(market: Market, symbol: string, timeframe: string, candles: readonly StoredCandle[]): UpsertCounts {
    const id = this.seriesId(market, symbol, timeframe);
    return this.store.transaction(() => this.writeSeries(id, candles));
  }

  /** Writes candles of several series in one transaction (in arrival order within each series). */
  upsertMany(entries: ReadonlyArray<{ readonly market: Market; readonly symbol: string; readonly timeframe: string; readonly candle: StoredCandle }>): UpsertCounts {
    const total: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };
    this.store.transaction(() => {
      const bySeries = new Map<number, StoredCandle[]>();
      for (const e of entries) {
        const id = this.seriesId(e.market, e.symbol, e.timeframe);
        const list = bySeries.get(id);
        if (list) list.push(e.candle);
        else bySeries.set(id, [e.candle]);
      }
      for (const [id, candles] of bySeries) {
        const c = this.writeSeries(id, candles);
        total.inserted += c.inserted;
        total.updated += c.updated;
        total.unchanged += c.unchanged;
      }
    });
    return total;
  }

  /** Runs fn in one write transaction (e.g. several writeSeries calls). */
  transaction<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  /** Writes candles of a known series id; the caller owns the transaction (or gets none). */
  writeSeries(seriesId: number, candles: readonly StoredCandle[] | CandleColumns): UpsertCounts {
    const cols = candles instanceof CandleColumns ? candles : CandleColumns.from(candles);
    const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };
    const n = cols.length;
    if (n === 0) return counts;
    const st = this.writeStatements();
    const t = cols.openTime;
    let ascending = true;
    for (let i = 0; i < n; i++) {
      if (t[i]! % MINUTE !== 0) throw new InvariantError(`candle open time ${t[i]} is not a whole minute`);
      if (i > 0 && t[i]! <= t[i - 1]!) ascending = false;
    }
    if (!ascending || n < 8) {
      // Few or unordered rows (the live writer): row by row.
      for (let i = 0; i < n; i++) this.writeRow(st, seriesId * SERIES_SPAN + t[i]! / MINUTE, cols, i, undefined, counts);
      return counts;
    }
    // Bulk, in key order: read what is stored in the span once and merge, so
    // a new row is one INSERT and a re-imported row costs no write at all.
    const lo = seriesId * SERIES_SPAN;
    const stored = st.existing.all(lo + t[0]! / MINUTE, lo + t[n - 1]! / MINUTE) as number[][];
    let j = 0;
    for (let i = 0; i < n; i++) {
      const key = lo + t[i]! / MINUTE;
      while (j < stored.length && stored[j]![0]! < key) j++;
      this.writeRow(st, key, cols, i, j < stored.length && stored[j]![0] === key ? stored[j] : null, counts);
    }
    return counts;
  }

  /**
   * One row. `stored`: the row already there (key, then VALUE_COLUMNS), null
   * when known absent, undefined when unknown (then the database decides).
   */
  private writeRow(st: WriteStatements, key: number, c: CandleColumns, i: number, stored: number[] | null | undefined, counts: UpsertCounts): void {
    const o = c.open[i]!;
    const h = c.high[i]!;
    const l = c.low[i]!;
    const cl = c.close[i]!;
    const v = c.volume[i]!;
    const qv = c.quoteVolume[i]!;
    const tr = c.trades[i]!;
    const tbvRaw = c.takerBuyVolume[i]!;
    const tbv = Number.isNaN(tbvRaw) ? null : tbvRaw;
    if (stored === undefined) {
      if (st.insert.run(key, o, h, l, cl, v, qv, tr, tbv).changes === 1) {
        counts.inserted++;
        return;
      }
    } else if (stored === null) {
      st.insert.run(key, o, h, l, cl, v, qv, tr, tbv);
      counts.inserted++;
      return;
    } else if (stored[1] === o && stored[2] === h && stored[3] === l && stored[4] === cl && stored[5] === v && stored[6] === qv && stored[7] === tr && stored[8] === tbv) {
      counts.unchanged++;
      return;
    }
    if (st.update.run(o, h, l, cl, v, qv, tr, tbv, key, o, h, l, cl, v, qv, tr, tbv).changes === 1) counts.updated++;
    else counts.unchanged++;
  }

  /** The last `count` 1m candles opening at or before `beforeOrAt`, oldest first. */
  recent1m(market: Market, symbol: string, beforeOrAt: number, count: number): Bar[] {
    const id = this.seriesId(market, symbol, '1m', false);
    if (id === undefined || count <= 0) return [];
    const [lo] = seriesRange(id);
    const rows = this.store.all<Pick<CandleRow, 'key' | 'open' | 'high' | 'low' | 'close' | 'volume'>>(
      this.store.db
        .selectFrom('candles')
        .select(['key', 'open', 'high', 'low', 'close', 'volume'])
        .where('key', '>=', lo)
        .where('key', '<=', lo + Math.min(SERIES_SPAN - 1, Math.floor(beforeOrAt / MINUTE)))
        .orderBy('key', 'desc')
        .limit(count),
    );
    return rows.reverse().map((r) => ({ openTime: openTimeOfKey(r.key), open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume }));
  }

  /** Candles of a series opening in [from, to] (ms, inclusive), oldest first. */
  range(market: Market, symbol: string, timeframe: string, from: number, to: number): StoredCandle[] {
    const id = this.seriesId(market, symbol, timeframe, false);
    if (id === undefined || to < from) return [];
    const [lo, end] = seriesRange(id);
    // Bounds clamped to the series' own key span, whatever from and to are.
    const minute = (x: number): number => Math.min(SERIES_SPAN - 1, Math.max(0, x));
    const rows = this.store.all<CandleRow>(
      this.store.db
        .selectFrom('candles')
        .selectAll()
        .where('key', '>=', lo + minute(Math.ceil(from / MINUTE)))
        .where('key', '<=', Math.min(end - 1, lo + minute(Math.floor(to / MINUTE))))
        .orderBy('key'),
    );
    return rows.map(toCandle);
  }

  /** Open time of the newest stored candle of a series (where a download resumes), or undefined. */
  lastOpenTime(market: Market, symbol: string, timeframe: string): number | undefined {
    return this.edge(market, symbol, timeframe, 'max');
  }

  /** Open time of the oldest stored candle of a series, or undefined. */
  firstOpenTime(market: Market, symbol: string, timeframe: string): number | undefined {
    return this.edge(market, symbol, timeframe, 'min');
  }

  /** Every series with candles: first, last, rows and missing candles, ordered by market, symbol, timeframe. */
  summary(): SeriesSummary[] {
    const { db } = this.store;
    const series = this.store.all<{ id: number; market: string; symbol: string; timeframe: string }>(
      db.selectFrom('candle_series').select(['id', 'market', 'symbol', 'timeframe']).orderBy('market').orderBy('symbol').orderBy('timeframe'),
    );
    const out: SeriesSummary[] = [];
    for (const s of series) {
      const [lo, end] = seriesRange(s.id);
      const r = this.store.all<{ first: number | null; last: number | null; rows: number }>(
        db
          .selectFrom('candles')
          .select((eb) => [eb.fn.min('key').as('first'), eb.fn.max('key').as('last'), eb.fn.countAll<number>().as('rows')])
          .where('key', '>=', lo)
          .where('key', '<', end),
      )[0];
      if (!r || r.rows === 0 || r.first === null || r.last === null) continue;
      const first = openTimeOfKey(r.first);
      const last = openTimeOfKey(r.last);
      const expected = isInterval(s.timeframe) ? candlesBetween(s.timeframe, first, last) + 1 : r.rows;
      out.push({ market: s.market as Market, symbol: s.symbol, timeframe: s.timeframe, first, last, rows: r.rows, gaps: Math.max(0, expected - r.rows) });
    }
    return out;
  }

  private edge(market: Market, symbol: string, timeframe: string, which: 'min' | 'max'): number | undefined {
    const id = this.seriesId(market, symbol, timeframe, false);
    if (id === undefined) return undefined;
    const [lo, end] = seriesRange(id);
    // A bare min()/max() over the rowid range is answered from the b-tree edge, not a scan.
    const r = this.store.all<{ k: number | null }>(
      this.store.db
        .selectFrom('candles')
        .select((eb) => (which === 'max' ? eb.fn.max('key') : eb.fn.min('key')).as('k'))
        .where('key', '>=', lo)
        .where('key', '<', end),
    )[0];
    return r?.k == null ? undefined : openTimeOfKey(r.k);
  }

  private writeStatements(): WriteStatements {
    if (this.statements) return this.statements;
    const { db } = this.store;
    // Built with kysely once, from sentinel values whose order in the compiled
    // parameters proves the positional order the loop above passes.
    const v = (i: number): number => 1_000_001 + i;
    const values = Object.fromEntries(VALUE_COLUMNS.map((c, i) => [c, v(i)])) as Omit<CandleRow, 'key'>;
    const insert = db.insertInto('candles').values({ key: v(-1), ...values }).orIgnore().compile();
    expectParams(insert.parameters, [v(-1), ...VALUE_COLUMNS.map((_, i) => v(i))], 'candles insert');
    const update = db
      .updateTable('candles')
      .set(values)
      .where('key', '=', v(-1))
      // IS NOT: null-safe, so a null taker volume compares equal to null.
      .where((eb) => eb.or(VALUE_COLUMNS.map((c, i) => eb(c, 'is not', sql<number>`${v(i)}`))))
      .compile();
    expectParams(update.parameters, [...VALUE_COLUMNS.map((_, i) => v(i)), v(-1), ...VALUE_COLUMNS.map((_, i) => v(i))], 'candles update');
    const existing = db
      .selectFrom('candles')
      .select(['key', ...VALUE_COLUMNS])
      .where('key', '>=', v(-1))
      .where('key', '<=', v(-2))
      .orderBy('key')
      .compile();
    expectParams(existing.parameters, [v(-1), v(-2)], 'candles span read');
    this.statements = {
      insert: this.store.sqlite.prepare(insert.sql),
      update: this.store.sqlite.prepare(update.sql),
      existing: this.store.sqlite.prepare(existing.sql).raw(true),
    };
    return this.statements;
  }
}

function expectParams(actual: readonly unknown[], expected: readonly number[], what: string): void {
  if (actual.length !== expected.length || actual.some((p, i) => p !== expected[i])) {
    throw new InvariantError(`${what}: kysely compiled parameters in an unexpected order (${actual.join(',')})`);
  }
}

function toCandle(r: CandleRow): StoredCandle {
  return { openTime: openTimeOfKey(r.key), open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume, quoteVolume: r.quote_volume, trades: r.trades, takerBuyVolume: r.taker_buy_volume };
}

export interface CandleWriterOptions {
  repository: CandleRepository;
  clock: Clock;
  /** How often queued candles are written (default 1000 ms). */
  intervalMs?: number;
  /**
   * A write failed (disk full, database locked past the busy timeout): the
   * candles stay queued and the next tick tries again. Required: the timer
   * runs outside any caller, so a throw there would have nowhere to go.
   */
  onError: (err: unknown, queued: number) => void;
}

interface Queued {
  market: Market;
  symbol: string;
  timeframe: string;
  candle: StoredCandle;
}

/**
 * Live candles to SQLite off the hot path: `enqueue` only appends to an
 * array; a clock timer writes everything queued in ONE transaction per
 * interval (one fsync per second instead of one per candle, whatever the
 * number of symbols). `close()` writes what is left.
 */
export class CandleWriter {
  private queue: Queued[] = [];
  private readonly timer: TimerHandle;
  private closed = false;
  /** Candles written and transactions committed so far. */
  readonly stats = { candles: 0, transactions: 0 };

  constructor(private readonly opts: CandleWriterOptions) {
    this.timer = opts.clock.every(opts.intervalMs ?? 1000, () => this.flush());
  }

  enqueue(market: Market, symbol: string, timeframe: Interval | string, candle: StoredCandle): void {
    if (this.closed) throw new InvariantError(`CandleWriter is closed: ${market} ${symbol} ${timeframe} candle at ${candle.openTime} not written`);
    this.queue.push({ market, symbol, timeframe, candle });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Writes everything queued now, in one transaction; returns how many candles. */
  flush(): number {
    if (this.queue.length === 0) return 0;
    const batch = this.queue;
    this.queue = [];
    try {
      this.opts.repository.upsertMany(batch);
    } catch (err) {
      // Nothing of the batch landed (one transaction): keep it, oldest first.
      this.queue = batch.concat(this.queue);
      this.opts.onError(err, this.queue.length);
      return 0;
    }
    this.stats.candles += batch.length;
    this.stats.transactions++;
    return batch.length;
  }

  /** Stops the timer and writes what is queued. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer.cancel();
    this.flush();
  }
}
