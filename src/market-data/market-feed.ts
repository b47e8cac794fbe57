/**
 * The live market-data feed: Binance combined streams for every traded
 * symbol (kline_1m; markPrice@1s on futures), split across connections
 * within Binance's limits, turned into bus events.
 *
 * Guarantees to the rest of the bot:
 *  - only closed candles are published, exactly once per (symbol, open
 *    time), in time order; duplicates (overlapping connections, replays after
 *    a reconnect) are dropped;
 *  - after a disconnect or stall, and whenever a candle arrives past a hole,
 *    the missing 1m candles are fetched over REST and published first, so
 *    strategies see an unbroken series; minutes the exchange itself never
 *    produced (an outage) are reported as gaps, never invented;
 *  - at start (and for symbols added later), each symbol resumes from the
 *    last candle the store holds: the minutes the bot was down (and the ones
 *    a kill -9 lost from the write queue) are fetched first, at most
 *    `resumeMaxMs` back; entries on the symbol wait until it has caught up;
 *  - a malformed frame is counted, logged at most once a minute per kind,
 *    and dropped.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { Market } from '../model/market.ts';
import { combinedFrame, klineEvent, markPriceEvent, restKlines } from './ws-payloads.ts';
import { StreamConnection, type ConnectionStatus } from './stream-connection.ts';

export interface MarketFeedOptions {
  market: Market;
  symbols: readonly string[];
  /** WebSocket base: wss://stream.binance.com:9443 (spot), wss://fstream.binance.com (futures), or the local exchange's /spot, /futures. */
  wsBase: string;
  /** REST base for backfill: https://api.binance.com or https://fapi.binance.com. */
  restBase: string;
  bus: Bus;
  clock: Clock;
  logger: Logger;
  maxBackoffMs: number;
  baseBackoffMs?: number;
  /** Default: 10 s on futures (markPrice@1s talks every second), two kline intervals on spot. */
  stallMs?: number;
  /** Streams per connection (Binance: 1024 spot, 200 futures). */
  streamsPerConnection?: number;
  maxLifetimeMs?: number;
  /** Injected for tests. */
  fetch?: typeof fetch;
  random?: () => number;
  /** How long before "cannot connect" is said in plain words. */
  cannotConnectAfterMs?: number;
  /** Open time of the last 1m candle the store holds for a symbol: the feed resumes after it. */
  resumeFrom?: (symbol: string) => number | undefined;
  /** How far back a resume reaches (older missing minutes are left to `trader data download`). Default 24 h. */
  resumeMaxMs?: number;
}

interface Candle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  eventTs: number;
}

interface SymbolState {
  lastOpen: number;
  backfilling: boolean;
  /** Live candles held back while a backfill runs, published after it. */
  pending: Candle[];
  conn: StreamConnection;
  lastClosedAt: number;
  /** Resumed from the store and no live candle seen since (see onClosed). */
  resumed?: boolean;
}

export interface ConnectionView {
  id: string;
  status: ConnectionStatus;
  streams: number;
  lastMessageAgeMs: number | null;
  reconnects: number;
  rotations: number;
}

export interface FeedView {
  connections: ConnectionView[];
  symbols: number;
  staleSymbols: string[];
  malformed: Record<string, number>;
  duplicates: number;
  backfilled: number;
  gaps: number;
  lastClosed: Record<string, number>;
}

const MINUTE = 60_000;
/** REST backfills at a time (klines cost 2-10 weight each; see backfillSlot). */
const MAX_BACKFILLS = 4;

export class MarketFeed {
  private readonly connections: StreamConnection[] = [];
  private readonly symbols = new Map<string, SymbolState>();
  private readonly malformed = new Map<string, number>();
  private readonly lastMalformedLog = new Map<string, number>();
  private duplicates = 0;
  private backfilled = 0;
  private gaps = 0;
  private stopped = false;
  private alertTimer: TimerHandle | undefined;
  private readonly fetchFn: typeof fetch;
  /** Backfills in flight, and the ones waiting for a slot: 200 symbols resuming at once stay inside the REST weight budget. */
  private backfillsRunning = 0;
  private readonly backfillQueue: Array<() => void> = [];

  constructor(private readonly o: MarketFeedOptions) {
    this.fetchFn = o.fetch ?? fetch;
  }

  private streamsOf(symbol: string): string[] {
    const l = symbol.toLowerCase();
    return this.o.market === 'futures' ? [`${l}@kline_1m`, `${l}@markPrice@1s`] : [`${l}@kline_1m`];
  }

  /** Symbols one connection carries (each symbol's streams stay on one connection: one state of health). */
  private get symbolsPerConnection(): number {
    const perConn = this.o.streamsPerConnection ?? (this.o.market === 'futures' ? 200 : 1024);
    return Math.max(1, Math.floor(perConn / (this.o.market === 'futures' ? 2 : 1)));
  }

  start(): void {
    const { symbols } = this.o;
    for (let i = 0; i < symbols.length; i += this.symbolsPerConnection) this.connect(symbols.slice(i, i + this.symbolsPerConnection));
    for (const c of this.connections) c.start();
    this.resume(symbols);
    this.armCannotConnectAlert();
  }

  /** Fills, over REST, the minutes between the last stored candle and now (see the header). */
  private resume(symbols: readonly string[]): void {
    if (!this.o.resumeFrom) return;
    const floor = Math.floor((this.o.clock.now() - (this.o.resumeMaxMs ?? 24 * 3_600_000)) / MINUTE) * MINUTE - MINUTE;
    const cut: string[] = [];
    for (const s of symbols) {
      const st = this.symbols.get(s);
      const last = this.o.resumeFrom(s);
      if (!st || last === undefined || st.lastOpen >= 0) continue;
      if (last < floor) {
        // Too long ago to fetch at start: the feed starts at the live edge, the gap stays.
        cut.push(s);
        continue;
      }
      st.lastOpen = last;
      st.resumed = true;
      this.backfill(s, st, undefined);
    }
    if (cut.length > 0) {
      this.o.logger.warn(
        { symbols: cut, since: new Date(floor + MINUTE).toISOString() },
        `${cut.length} symbol${cut.length > 1 ? 's' : ''} (${cut.slice(0, 5).join(', ')}${cut.length > 5 ? ', …' : ''}) were last stored more than ${Math.round((this.o.resumeMaxMs ?? 24 * 3_600_000) / 3_600_000)} h ago: ` +
          'streaming from now on; `trader data download` fills the minutes in between',
      );
    }
  }

  /**
   * Starts streaming symbols added while running (a strategy YAML for a new
   * symbol, by hot reload): SUBSCRIBE on a connection with room, else a new one.
   */
  addSymbols(symbols: readonly string[]): void {
    const fresh = symbols.filter((s) => !this.symbols.has(s));
    if (fresh.length === 0 || this.stopped) return;
    const last = this.connections.at(-1);
    let i = 0;
    if (last) {
      const room = this.symbolsPerConnection - this.groupOf(last).length;
      const take = fresh.slice(0, Math.max(0, room));
      for (const s of take) this.symbols.set(s, { lastOpen: -1, backfilling: false, pending: [], conn: last, lastClosedAt: 0 });
      last.addStreams(take.flatMap((s) => this.streamsOf(s)));
      i = take.length;
    }
    for (; i < fresh.length; i += this.symbolsPerConnection) this.connect(fresh.slice(i, i + this.symbolsPerConnection)).start();
    this.resume(fresh);
    this.o.logger.info({ symbols: fresh }, `streaming ${fresh.length} more symbol${fresh.length > 1 ? 's' : ''}: ${fresh.join(', ')}`);
  }

  private groupOf(conn: StreamConnection): string[] {
    return [...this.symbols].filter(([, st]) => st.conn === conn).map(([s]) => s);
  }

  private connect(group: readonly string[]): StreamConnection {
    const { market } = this.o;
    const streams = group.flatMap((s) => this.streamsOf(s));
    const id = `${market}-${this.connections.length + 1}`;
    const conn = new StreamConnection({
      id,
      url: (list) => this.url(list),
      streams,
      maxMessagesPerSec: market === 'futures' ? 10 : 5,
      clock: this.o.clock,
      logger: this.o.logger,
      backoff: { baseMs: this.o.baseBackoffMs ?? 1000, capMs: this.o.maxBackoffMs, random: this.o.random ?? Math.random },
      stallMs: this.o.stallMs ?? (market === 'futures' ? 10_000 : 2 * MINUTE),
      maxLifetimeMs: this.o.maxLifetimeMs ?? 23.5 * 3_600_000,
      onFrame: (text) => this.onFrame(text),
      onStatus: (status, detail) => this.onStatus(id, this.groupOf(conn), status, detail),
      onReconnected: () => this.onReconnected(this.groupOf(conn)),
    });
    for (const s of group) this.symbols.set(s, { lastOpen: -1, backfilling: false, pending: [], conn, lastClosedAt: 0 });
    this.connections.push(conn);
    return conn;
  }

  private armCannotConnectAlert(): void {
    const after = this.o.cannotConnectAfterMs ?? 15_000;
    this.alertTimer = this.o.clock.after(after, () => {
      const never = this.connections.filter((c) => !c.everLive);
      if (never.length === 0 || this.stopped) return;
      this.o.logger.error(
        { wsBase: this.o.wsBase, error: never[0]!.lastError },
        `cannot reach the ${this.o.market} market-data stream at ${this.o.wsBase} after ${after / 1000} s (${never[0]!.lastError || 'no answer'}). ` +
          'Still retrying. If Binance is unreachable from this machine or country, try the offline demo: ' +
          '`npx trader exchange --replay data/sample --speed 60` and point BINANCE_*_WS_URL / BINANCE_*_REST_URL at the URLs it prints.',
      );
    });
  }

  stop(): void {
    this.stopped = true;
    this.alertTimer?.cancel();
    for (const c of this.connections) c.stop();
  }

  /** Whether new entries on this symbol must wait: its stream is not live, or a backfill is catching up. */
  isStale(symbol: string): boolean {
    const st = this.symbols.get(symbol);
    return !st || st.conn.status !== 'live' || st.backfilling;
  }

  view(): FeedView {
    const now = this.o.clock.now();
    const lastClosed: Record<string, number> = {};
    const stale: string[] = [];
    for (const [s, st] of this.symbols) {
      if (st.lastOpen >= 0) lastClosed[s] = st.lastOpen;
      if (this.isStale(s)) stale.push(s);
    }
    return {
      connections: this.connections.map((c) => ({ id: c.o.id, status: c.status, streams: c.streams.length, lastMessageAgeMs: c.lastMessageAt ? now - c.lastMessageAt : null, reconnects: c.reconnects, rotations: c.rotations })),
      symbols: this.symbols.size,
      staleSymbols: stale,
      malformed: Object.fromEntries(this.malformed),
      duplicates: this.duplicates,
      backfilled: this.backfilled,
      gaps: this.gaps,
      lastClosed,
    };
  }

  // ------------------------------------------------------------ internals

  private url(streams: readonly string[]): string {
    const base = this.o.wsBase.replace(/\/$/, '');
    // USD-M routes market data (klines, mark prices) under /market since 2026; spot has no routes.
    const path = this.o.market === 'futures' ? '/market/stream' : '/stream';
    return `${base}${path}?streams=${streams.join('/')}`;
  }

  private onFrame(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.bad('json', text);
    }
    const frame = combinedFrame.safeParse(msg);
    if (!frame.success) {
      // Replies to SUBSCRIBE and the like carry an id, not a stream.
      if (msg && typeof msg === 'object' && 'id' in msg) return;
      return this.bad('frame', text);
    }
    const { stream, data } = frame.data;
    if (stream.endsWith('@kline_1m')) {
      const k = klineEvent.safeParse(data);
      if (!k.success) return this.bad('kline', text);
      if (!k.data.k.x) return;
      const c = k.data.k;
      this.onClosed(k.data.s, { openTime: c.t, open: Number(c.o), high: Number(c.h), low: Number(c.l), close: Number(c.c), volume: Number(c.v), eventTs: k.data.E });
      return;
    }
    if (stream.includes('@markPrice') || stream.includes('@markprice')) {
      const m = markPriceEvent.safeParse(data);
      if (!m.success) return this.bad('markPrice', text);
      this.o.bus.publish('mark.price', {
        kind: 'mark.price',
        ts: this.o.clock.now(),
        eventTs: m.data.E,
        symbol: m.data.s,
        markPrice: new Dec(m.data.p),
        ...(m.data.r ? { fundingRate: new Dec(m.data.r) } : {}),
        ...(m.data.T ? { nextFundingTime: m.data.T } : {}),
      });
    }
  }

  private bad(kind: string, text: string): void {
    this.malformed.set(kind, (this.malformed.get(kind) ?? 0) + 1);
    const now = this.o.clock.now();
    if (now - (this.lastMalformedLog.get(kind) ?? -Infinity) >= MINUTE) {
      this.lastMalformedLog.set(kind, now);
      this.o.logger.warn({ kind, count: this.malformed.get(kind), sample: text.slice(0, 200) }, `malformed ${kind} frame dropped (${this.malformed.get(kind)} so far; logged at most once a minute)`);
    }
  }

  private onClosed(symbol: string, c: Candle): void {
    const st = this.symbols.get(symbol);
    if (!st) return;
    if (st.backfilling) {
      st.pending.push(c);
      return;
    }
    if (st.resumed && c.openTime < st.lastOpen - MINUTE) {
      // The first live candle after a resume is well behind the store: this exchange is
      // replaying the past (a local demo), not Binance. Follow the exchange.
      this.o.logger.warn({ symbol, stored: new Date(st.lastOpen).toISOString(), live: new Date(c.openTime).toISOString() }, `${symbol}: the exchange streams ${new Date(c.openTime).toISOString()}, behind the last stored candle (${new Date(st.lastOpen).toISOString()}): following the exchange`);
      st.lastOpen = c.openTime - MINUTE;
    }
    st.resumed = false;
    if (c.openTime <= st.lastOpen) {
      this.duplicates++;
      return;
    }
    if (st.lastOpen >= 0 && c.openTime > st.lastOpen + MINUTE) {
      st.pending.push(c);
      this.backfill(symbol, st, c.openTime - MINUTE);
      return;
    }
    this.publish(symbol, st, c);
  }

  private publish(symbol: string, st: SymbolState, c: Candle): void {
    st.lastOpen = c.openTime;
    st.lastClosedAt = this.o.clock.now();
    this.o.bus.publish('candle.closed', {
      kind: 'candle.closed',
      ts: this.o.clock.now(),
      eventTs: c.eventTs,
      market: this.o.market,
      symbol,
      timeframe: '1m',
      openTime: c.openTime,
      open: c.open,
      high: c.high,
      low: c.low,
      close: c.close,
      volume: c.volume,
    });
  }

  private onReconnected(group: readonly string[]): void {
    // Whatever closed while we were away comes over REST now, not at the next live candle.
    for (const s of group) {
      const st = this.symbols.get(s)!;
      if (st.lastOpen >= 0 && !st.backfilling) this.backfill(s, st, undefined);
    }
  }

  /**
   * Fetches 1m candles after the last published one (up to `untilOpen`, or
   * up to now) and publishes them in order, then releases the live candles
   * held back meanwhile. Retries until it succeeds or the feed stops.
   */
  private backfill(symbol: string, st: SymbolState, untilOpen: number | undefined): void {
    st.backfilling = true;
    // New entries on the symbol wait until it has caught up (the host listens for this).
    this.o.bus.publish('feed.status', { kind: 'feed.status', ts: this.o.clock.now(), status: 'stale', connection: st.conn.o.id, detail: `${symbol}: fetching missed candles`, symbols: [symbol] });
    const run = async (): Promise<void> => {
      await this.backfillSlot();
      try {
        await this.fetchWithRetries(symbol, st, untilOpen);
      } finally {
        this.backfillsRunning--;
        this.backfillQueue.shift()?.();
      }
    };
    void run().finally(() => {
      st.backfilling = false;
      const held = st.pending.sort((a, b) => a.openTime - b.openTime);
      st.pending = [];
      for (let i = 0; i < held.length; i++) {
        if (st.backfilling) {
          st.pending.push(...held.slice(i));
          break;
        }
        this.onClosed(symbol, held[i]!);
      }
      if (!st.backfilling && st.conn.status === 'live' && !this.stopped) {
        this.o.bus.publish('feed.status', { kind: 'feed.status', ts: this.o.clock.now(), status: 'live', connection: st.conn.o.id, detail: `${symbol}: caught up`, symbols: [symbol] });
      }
    });
  }

  private backfillSlot(): Promise<void> {
    if (this.backfillsRunning < MAX_BACKFILLS) {
      this.backfillsRunning++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.backfillQueue.push(() => {
        this.backfillsRunning++;
        resolve();
      }),
    );
  }

  private async fetchWithRetries(symbol: string, st: SymbolState, untilOpen: number | undefined): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.fetchRange(symbol, st, untilOpen);
        return;
      } catch (err) {
        const backoff = Math.min(this.o.maxBackoffMs, (this.o.baseBackoffMs ?? 1000) * 2 ** Math.min(attempt, 10));
        const delay = Math.max(backoff, (err as { retryAfterMs?: number }).retryAfterMs ?? 0);
        this.o.logger.warn({ symbol, err: (err as Error).message }, `backfill of ${symbol} failed (${(err as Error).message}); retrying in ${delay} ms`);
        await new Promise<void>((r) => this.o.clock.after(delay, r));
      }
    }
  }

  private async fetchRange(symbol: string, st: SymbolState, untilOpen: number | undefined): Promise<void> {
    const limit = this.o.market === 'futures' ? 1500 : 1000;
    const path = this.o.market === 'futures' ? '/fapi/v1/klines' : '/api/v3/klines';
    const base = this.o.restBase.replace(/\/$/, '');
    for (;;) {
      const from = st.lastOpen + MINUTE;
      const end = untilOpen ?? this.o.clock.now();
      if (from > end) return;
      const url = `${base}${path}?symbol=${symbol}&interval=1m&startTime=${from}&endTime=${end}&limit=${limit}`;
      const res = await this.fetchFn(url);
      if (!res.ok) {
        // 429 / 418: wait what Binance says (calling on while limited is what gets an IP banned).
        const ra = Number(res.headers.get('Retry-After'));
        throw Object.assign(new Error(`GET ${path} answered ${res.status}`), { retryAfterMs: (res.status === 429 || res.status === 418) && Number.isFinite(ra) ? ra * 1000 : 0 });
      }
      const rows = restKlines.safeParse(await res.json());
      if (!rows.success) throw new Error(`GET ${path}: malformed klines`);
      const now = this.o.clock.now();
      let expected = from;
      let published = 0;
      for (const r of rows.data) {
        const [openTime, o, h, l, c, v, closeTime] = r;
        // Only closed candles (the one still forming has its closeTime ahead); never one we already published.
        if (closeTime >= now || openTime <= st.lastOpen) continue;
        if (openTime > expected) this.reportGap(symbol, expected, openTime - MINUTE);
        this.publish(symbol, st, { openTime, open: Number(o), high: Number(h), low: Number(l), close: Number(c), volume: Number(v), eventTs: closeTime });
        this.backfilled++;
        published++;
        expected = openTime + MINUTE;
      }
      if (rows.data.length < limit || published === 0) {
        // The exchange has nothing more up to the target: minutes before it that never came are a gap.
        if (untilOpen !== undefined && expected <= untilOpen) this.reportGap(symbol, expected, untilOpen);
        if (untilOpen !== undefined && st.lastOpen < untilOpen) st.lastOpen = untilOpen;
        return;
      }
    }
  }

  private reportGap(symbol: string, from: number, to: number): void {
    const minutes = Math.round((to - from) / MINUTE) + 1;
    this.gaps += minutes;
    this.o.logger.warn({ symbol, from: new Date(from).toISOString(), to: new Date(to).toISOString(), minutes }, `${symbol}: the exchange has no 1m candles from ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (${minutes} min): reported as a gap, not invented`);
  }

  private onStatus(id: string, group: readonly string[], status: ConnectionStatus, detail: string): void {
    const mapped = status === 'live' ? 'live' : status === 'connecting' ? 'connecting' : status === 'closed' ? 'down' : status;
    // A symbol still catching up stays stale until its backfill ends (which says live for it).
    const symbols = mapped === 'live' ? group.filter((s) => !this.symbols.get(s)?.backfilling) : group;
    this.o.bus.publish('feed.status', { kind: 'feed.status', ts: this.o.clock.now(), status: mapped, connection: id, detail: `${detail} (${group.length} symbols)`, symbols });
  }
}
