/**
 * Tick-to-order latency: from the ws frame of a closing candle entering the
 * process to the order request written to the REST socket, with 200 symbols
 * streaming (issue 18 target: p99 under 2 ms with one signal per minute), and
 * the time until the last of 200 orders is on the wire when every symbol
 * signals in the same minute, against the floor Binance's published order
 * limits allow (target: within 20 % of it; order-floor.ts defines the floor
 * and measures it in the same run).
 *
 * The real kernel runs in this process (MODE=testnet, FEED=live: the ws
 * feed, strategy host, planner, risk engine, execution engine, the SQLite
 * store on disk, the venue createVenue() builds: BinanceVenue over
 * ccxt/undici with its rate budget and circuit breaker, as shipped). The
 * local exchange runs in a child process (this same file,
 * ORDER_LATENCY_EXCHANGE=1) so its own work does not share the bot's event
 * loop. It serves 200 synthetic USD-M instruments (ALGOUSDT's filters under
 * other names) and is driven minute by minute from here: an in-progress
 * kline for every symbol, then the 200 closing klines in one burst, as a
 * combined stream delivers a minute boundary; mark prices come from its own
 * 1 s ticker (200 frames a second). A test strategy on all 200 symbols
 * enters, or exits, on a closed candle the exchange flags (volume 2), so the
 * bench picks how many of the 200 closes carry a signal: one (the headline),
 * ten, or all 200 at once.
 *
 * Each minute is closed-loop: the next is sent only once every order of the
 * current one is written, answered and filled (minutes are 60 s apart live,
 * here a few ms). Because the bench compresses minutes, a step first waits
 * until the venue's own budget (Binance's 300 orders / 10 s, 1,200 / minute)
 * has room for its orders, as 60 s between minutes would give live; the
 * waits are not timed, and the budget's refusals are counted (they must be 0).
 * Configuration as shipped: synchronous=NORMAL (FULL only in Store.durably()),
 * ccxt's own throttle off. what_if_* scenarios are not the shipped
 * configuration: ccxt's throttle on (the default before 2da21c7) and
 * synchronous=FULL on every commit (the default before bccdd9d).
 *
 * Stamps (performance.now(), prototype patches in this file, no src/ change):
 *  - chunk: the socket read that completed the frame ("entered the
 *    process"; frames that arrive in one read share it);
 *  - message: ws's 'message' event for the frame (frames ahead of it in the
 *    same read excluded);
 *  - read done: the end of that socket read (every frame in it handled);
 *  - bus publish calls (candle.closed, signal.*, order.request, order.submit,
 *    order.update PENDING), venue.place, ccxt's fetch, and the net.Socket
 *    write carrying the order body (newClientOrderId=...).
 * Also timed: every bus handler by component, every Store write and read;
 * counted: the rate budget's answers to order placements (RateBudget.admit).
 * Baselines, same run: bare frame -> candle.closed (the feed's part), a raw
 * SQLite commit in the same folder (NORMAL and FULL), and the bare-client
 * floor for the 200-order burst.
 *
 * ORDER_LATENCY_QUICK=1 runs a tenth of the minutes and two bursts instead
 * of five; ORDER_LATENCY_DEBUG=1 logs each minute to stderr.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { Bus } from '../../src/bus/bus.ts';
import { LiveClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { createVenue } from '../../src/kernel/trading-core.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { RawKline } from '../../src/market-data/kline-files.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { CandleWriter } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { RateBudget, type Admission, type Cost } from '../../src/venues/binance/rate-budget.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';
import { FLOOR_ACCOUNT, FLOOR_DEFINITION, FloorClient, type FloorRun } from './order-floor.ts';

const SYMBOLS = 200;
const MINUTE = 60_000;
const SETTLE_MS = 15;

function symbolAt(i: number): string {
  return `S${String(i).padStart(3, '0')}USDT`;
}

function instruments(): Instrument[] {
  const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
  // Distinct base assets: ccxt keys markets by BASE/QUOTE:SETTLE, so clones of one base would collide.
  return Array.from({ length: SYMBOLS }, (_, i) => ({ ...algo, symbol: symbolAt(i), baseAsset: `S${String(i).padStart(3, '0')}` }));
}

// ====================================================== exchange (child process)

type ToChild = { type: 'step'; minute: number; signal: number[] } | { type: 'close' };
type FromChild = { type: 'ready'; url: string; futuresWs: string } | { type: 'emitted'; minute: number };

async function exchangeChild(): Promise<void> {
  const ex = await LocalExchange.start({ instruments: instruments(), funding: false, accounts: [DEFAULT_ACCOUNT, FLOOR_ACCOUNT] });
  const onKline = (ex as unknown as { onKline(m: 'futures', s: string, k: RawKline, closed: boolean, step: { open: Dec; high: Dec; low: Dec; last: Dec; volume?: Dec }): void }).onKline.bind(ex);
  const T0 = Math.floor(Date.now() / MINUTE) * MINUTE - 5000 * MINUTE;
  const px = { o: new Dec('0.2500'), h: new Dec('0.2510'), l: new Dec('0.2490') };
  const kline = (minute: number, closed: boolean, volume: string): RawKline => ({
    openTime: T0 + minute * MINUTE,
    closeTime: T0 + minute * MINUTE + MINUTE - 1,
    open: '0.2500',
    high: '0.2510',
    low: '0.2490',
    close: closed ? '0.2500' : '0.2505',
    volume,
    quoteVolume: '0',
    trades: 10,
    takerBuyVolume: '0',
    takerBuyQuoteVolume: '0',
  });
  // Minute 0 goes through the matching engine (sets every price; nobody listens yet). Later minutes
  // keep that price, so they go straight to the stream hub: the exchange stays cheap and its own work
  // does not pace the bench.
  for (let i = 0; i < SYMBOLS; i++) onKline('futures', symbolAt(i), kline(0, true, '1'), true, { open: px.o, high: px.h, low: px.l, last: px.o });
  const step = (minute: number, signal: ReadonlySet<number>, done: () => void): void => {
    // An in-progress update for every symbol, then the minute boundary: the 200 closing klines in one
    // burst, as a combined stream delivers them. Mark prices keep coming from the exchange's own 1 s
    // ticker (200 frames a second, as markPrice@1s), which the closes sometimes run into, as live.
    ex.hub.batch(() => {
      for (let i = 0; i < SYMBOLS; i++) ex.hub.kline('futures', kline(minute, false, '1'), symbolAt(i), false);
    });
    setTimeout(() => {
      ex.hub.batch(() => {
        for (let i = 0; i < SYMBOLS; i++) ex.hub.kline('futures', kline(minute, true, signal.has(i) ? '2' : '1'), symbolAt(i), true);
      });
      done();
    }, 3);
  };
  const send = (m: FromChild): void => void process.send!(m);
  process.on('message', (m: ToChild) => {
    if (m.type === 'step') step(m.minute, new Set(m.signal), () => send({ type: 'emitted', minute: m.minute }));
    else void ex.close().finally(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', url: ex.url, futuresWs: ex.urls().futuresWs });
}

if (process.env.ORDER_LATENCY_EXCHANGE === '1' && process.send) await exchangeChild();

// ============================================================ bot (this process)

interface Trace {
  symbol: string;
  chunkAt: number;
  msgAt: number;
  closedAt: number;
  /** The end of the socket read that carried the frame (every frame in it processed; async work may start). */
  readDoneAt?: number;
  signalAt?: number;
  requestAt?: number;
  submitAt?: number;
  pendingAt?: number;
  placeAt?: number;
  fetchAt?: number;
  writeAt?: number;
  cid?: string;
  denied?: string;
  /** The reason of an order.update REJECTED (a refusal of the rate budget is one). */
  rejected?: string;
  final?: string;
  filled?: boolean;
  /** Store writes, market frames and candle-writer flushes counted at stamps, to tell what ran in between. */
  writesAtClose?: number;
  writesAtWrite?: number;
  framesAtFetch?: number;
  framesAtWrite?: number;
  flushesAtFetch?: number;
  flushesAtWrite?: number;
}

interface Acc {
  n: number;
  ms: number;
}

/** Everything the hooks record; reset per scenario. */
class Recorder {
  bySymbol = new Map<string, Trace>();
  byCid = new Map<string, Trace>();
  /** Bare ws 'message' -> candle.closed publish, every closing frame (the baseline). */
  frameToClosed: number[] = [];
  handlers = new Map<string, Acc>();
  writes: number[] = [];
  reads: Acc = { n: 0, ms: 0 };
  writeCount = 0;
  frameCount = 0;
  flushCount = 0;
  flushes: Array<{ ms: number; rows: number }> = [];
  cur = { chunkAt: 0, msgAt: 0, inMessage: false, socket: undefined as object | undefined };
  /** Traces whose frame's socket read is still being processed, by socket. */
  inRead = new Map<object, Trace[]>();
  /** First write to the exchange of every client order id (the bot's and the floor client's). */
  wire = new Map<string, number>();
  /** Sockets to the exchange that have carried an order, and how many were new in the current scenario. */
  orderSockets = new WeakSet<object>();
  newSockets = 0;
  /** The rate budget's answers to order placements (cost.orders > 0) since reset. */
  admits = { go: 0, wait: 0, refuse: 0 };

  reset(): void {
    this.frameToClosed = [];
    this.handlers = new Map();
    this.writes = [];
    this.reads = { n: 0, ms: 0 };
    this.flushes = [];
    this.newSockets = 0;
    this.admits = { go: 0, wait: 0, refuse: 0 };
  }
}

type Unhook = () => void;

/** Installs the measurement hooks (prototype patches, undone by the returned function). */
function installHooks(rec: Recorder, exchangePort: () => number): Unhook {
  const undo: Unhook[] = [];
  const now = (): number => performance.now();

  // ws: when the bytes completing a frame were read, and when its 'message' fires.
  const wsProto = WebSocket.prototype as unknown as { setSocket(socket: net.Socket, head: Buffer, opts: unknown): void; emit(ev: string | symbol, ...a: unknown[]): boolean };
  const setSocket = wsProto.setSocket;
  wsProto.setSocket = function (this: { url: string; __chunkAt?: number }, socket, head, opts) {
    setSocket.call(this, socket, head, opts);
    if (this.url.includes('/market/stream')) {
      this.__chunkAt = 0;
      socket.prependListener('data', () => (this.__chunkAt = now()));
      // Runs after ws has parsed (and the bot handled) every frame of this read.
      socket.on('data', () => {
        const list = rec.inRead.get(this);
        if (!list || list.length === 0) return;
        const t = now();
        for (const tr of list) tr.readDoneAt = t;
        list.length = 0;
      });
    }
  };
  wsProto.emit = function (this: { __chunkAt?: number }, ev: string | symbol, ...a: unknown[]) {
    if (ev !== 'message' || this.__chunkAt === undefined) return Object.getPrototypeOf(WebSocket.prototype).emit.call(this, ev, ...a);
    rec.frameCount++;
    rec.cur.chunkAt = this.__chunkAt;
    rec.cur.socket = this;
    rec.cur.msgAt = now();
    rec.cur.inMessage = true;
    try {
      return Object.getPrototypeOf(WebSocket.prototype).emit.call(this, ev, ...a);
    } finally {
      rec.cur.inMessage = false;
    }
  };
  undo.push(() => {
    wsProto.setSocket = setSocket;
    delete (wsProto as { emit?: unknown }).emit;
  });

  // Bus: the moment each stage hands over (its publish call).
  const busProto = Bus.prototype as unknown as { publish(ch: string, p: unknown): void; subscribe(ch: string, h: (p: unknown) => void, c: string): () => void };
  const publish = busProto.publish;
  busProto.publish = function (this: Bus, ch: string, p: unknown) {
    const t = now();
    const x = p as { symbol?: string; intent?: { symbol: string; source: string }; status?: string; clientOrderId?: string; reason?: string; timeframe?: string };
    if (ch === 'candle.closed') {
      if (rec.cur.inMessage && x.timeframe === '1m' && x.symbol) {
        rec.frameToClosed.push(t - rec.cur.msgAt);
        const tr: Trace = { symbol: x.symbol, chunkAt: rec.cur.chunkAt, msgAt: rec.cur.msgAt, closedAt: t, writesAtClose: rec.writeCount };
        rec.bySymbol.set(x.symbol, tr);
        const list = rec.inRead.get(rec.cur.socket!) ?? [];
        list.push(tr);
        rec.inRead.set(rec.cur.socket!, list);
      }
    } else if (ch.startsWith('signal.')) {
      const tr = rec.bySymbol.get(x.symbol!);
      if (tr && tr.signalAt === undefined) tr.signalAt = t;
    } else if (ch === 'order.request' || ch === 'order.submit' || ch === 'order.denied') {
      const tr = x.intent?.source === 'strategy' ? rec.bySymbol.get(x.intent.symbol) : undefined;
      if (tr && tr.signalAt !== undefined) {
        if (ch === 'order.request') tr.requestAt ??= t;
        else if (ch === 'order.submit') tr.submitAt ??= t;
        else tr.denied ??= x.reason;
      }
    } else if (ch === 'order.update') {
      if (x.status === 'PENDING') {
        const tr = rec.bySymbol.get(x.symbol!);
        if (tr && tr.signalAt !== undefined && tr.pendingAt === undefined) {
          tr.pendingAt = t;
          tr.cid = x.clientOrderId;
          rec.byCid.set(x.clientOrderId!, tr);
        }
      } else if (x.status === 'FILLED' || x.status === 'REJECTED' || x.status === 'CANCELED' || x.status === 'EXPIRED') {
        const tr = rec.byCid.get(x.clientOrderId!);
        if (tr) {
          tr.final = x.status;
          if (x.status === 'REJECTED') tr.rejected ??= x.reason ?? 'REJECTED';
        }
      }
    } else if (ch === 'fill') {
      const tr = rec.byCid.get(x.clientOrderId!);
      if (tr) tr.filled = true;
    }
    return publish.call(this, ch, p);
  };
  // Bus: time spent in each component's handlers (nested publishes are queued, so times do not overlap).
  const subscribe = busProto.subscribe;
  busProto.subscribe = function (this: Bus, ch: string, h: (p: unknown) => void, component: string) {
    const key = `${component} <- ${ch}`;
    const timed = (p: unknown): void => {
      const t = now();
      try {
        h(p);
      } finally {
        const a = rec.handlers.get(key) ?? { n: 0, ms: 0 };
        a.n++;
        a.ms += now() - t;
        rec.handlers.set(key, a);
      }
    };
    return subscribe.call(this, ch, component.startsWith('bench') ? h : timed, component);
  };
  undo.push(() => {
    busProto.publish = publish;
    busProto.subscribe = subscribe;
  });

  // SQLite: every synchronous write and read the bot makes through its Store.
  const storeProto = Store.prototype as unknown as { run(q: unknown): unknown; all(q: unknown): unknown };
  const run = storeProto.run;
  const all = storeProto.all;
  storeProto.run = function (this: Store, q: unknown) {
    const t = now();
    try {
      return run.call(this, q);
    } finally {
      rec.writes.push(now() - t);
      rec.writeCount++;
    }
  };
  storeProto.all = function (this: Store, q: unknown) {
    const t = now();
    try {
      return all.call(this, q);
    } finally {
      rec.reads.n++;
      rec.reads.ms += now() - t;
    }
  };
  // The candle writer's once-a-second transaction (a timer: it runs between socket reads).
  const writerProto = CandleWriter.prototype as unknown as { flush(): number };
  const flush = writerProto.flush;
  writerProto.flush = function (this: CandleWriter) {
    const t = now();
    const rows = flush.call(this);
    if (rows > 0) {
      rec.flushCount++;
      rec.flushes.push({ ms: now() - t, rows });
    }
    return rows;
  };
  undo.push(() => {
    writerProto.flush = flush;
    storeProto.run = run;
    storeProto.all = all;
  });

  // The rate budget's verdict on each order placement (a refusal is never sent, then or later).
  const budgetProto = RateBudget.prototype as unknown as { admit(cost: Cost): Admission };
  const admit = budgetProto.admit;
  budgetProto.admit = function (this: RateBudget, cost: Cost) {
    const a = admit.call(this, cost);
    if (cost.orders > 0) rec.admits[a.kind]++;
    return a;
  };
  undo.push(() => {
    budgetProto.admit = admit;
  });

  // The order request on the wire: undici writes the body (carrying newClientOrderId) right before uncork.
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
    const t = now();
    if ((typeof chunk === 'string' || Buffer.isBuffer(chunk)) && chunk.length < 8192 && this.remotePort === exchangePort()) {
      const cid = clientIdIn(typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
      if (cid !== undefined && !rec.wire.has(cid)) {
        rec.wire.set(cid, t);
        if (!rec.orderSockets.has(this)) {
          rec.orderSockets.add(this);
          rec.newSockets++;
        }
      }
      const tr = cid ? rec.byCid.get(cid) : undefined;
      if (tr && tr.writeAt === undefined) {
        tr.writeAt = t;
        tr.writesAtWrite = rec.writeCount;
        tr.framesAtWrite = rec.frameCount;
        tr.flushesAtWrite = rec.flushCount;
      }
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof net.Socket.prototype.write;
  undo.push(() => {
    net.Socket.prototype.write = write;
  });

  return () => undo.reverse().forEach((u) => u());
}

function clientIdIn(text: string): string | undefined {
  const i = text.indexOf('newClientOrderId=');
  if (i < 0) return undefined;
  const end = text.indexOf('&', i);
  return decodeURIComponent(text.slice(i + 17, end < 0 ? undefined : end));
}

/** venue.place and ccxt's fetch: where the execution engine hands over, and where ccxt hands to undici. */
function hookVenue(venue: BinanceVenue, rec: Recorder): void {
  const place = venue.place.bind(venue);
  venue.place = (o) => {
    const tr = rec.byCid.get(o.clientOrderId);
    if (tr && tr.placeAt === undefined) tr.placeAt = performance.now();
    return place(o);
  };
  const ex = (venue as unknown as { ex: { fetch(url: string, method?: string, headers?: unknown, body?: unknown): Promise<unknown> } }).ex;
  const fetch = ex.fetch;
  ex.fetch = (url, method, headers, body) => {
    if (method === 'POST' && typeof body === 'string') {
      const cid = clientIdIn(body);
      const tr = cid ? rec.byCid.get(cid) : undefined;
      if (tr && tr.fetchAt === undefined) {
        tr.fetchAt = performance.now();
        tr.framesAtFetch = rec.frameCount;
        tr.flushesAtFetch = rec.flushCount;
      }
    }
    return fetch(url, method, headers, body);
  };
}

// ------------------------------------------------------------------ workspace

const STRATEGY = (repo: string): string => `import { z } from '${repo}/node_modules/zod/index.js';
import { defineStrategy } from '${repo}/src/strategy/api.ts';
// Bench fixture: on a closed candle the exchange flagged (volume 2), enter when flat, exit when long.
export default defineStrategy({
  name: 'ticktock',
  description: 'order-latency bench: toggles a position on flagged candles',
  params: z.object({}),
  defaultTimeframe: '1m',
  warmup: () => 1,
  create(ctx) {
    return {
      onCandle(c) {
        if (c.volume !== 2) return;
        if (ctx.position().side === 'flat') ctx.enterLong({ reason: 'flagged' });
        else ctx.exitLong({ reason: 'flagged' });
      },
      reset() {},
    };
  },
});
`;

// Limits raised only where the bench itself would trip them (hundreds of round trips a minute,
// all at a small loss to fees); every guard still runs. fundingWindowMinutes 0: the run must not
// depend on the time of day (the guard still runs, it just never denies).
const BOT_YAML = `market: futures
risk:
  maxOpenPositions: 1000
  maxOrdersPerSymbolPerMinute: 10000
  maxOrdersPerSecond: 10000
  maxConsecutiveLosses: 1000
  maxDailyLossPct: 50
  fundingWindowMinutes: 0
`;

function workspace(url: string, futuresWs: string): Workspace {
  const ws = makeWorkspace({
    MODE: 'testnet',
    BINANCE_API_KEY: DEFAULT_ACCOUNT.apiKey,
    BINANCE_API_SECRET: DEFAULT_ACCOUNT.secret,
    BINANCE_SPOT_REST_URL: url,
    BINANCE_FUTURES_REST_URL: url,
    BINANCE_FUTURES_WS_URL: futuresWs,
    BINANCE_SPOT_WS_URL: futuresWs.replace(/\/futures$/, '/spot'),
    BINANCE_SPOT_WS_API_URL: futuresWs.replace(/\/futures$/, '/ws-api/v3'),
    FEED: 'live',
  });
  // Production heartbeat cadence (the test workspace default is 200 ms).
  delete ws.env.HEARTBEAT_INTERVAL_MS;
  ws.write('config/bot.yaml', BOT_YAML);
  ws.write('strategies/ticktock/index.ts', STRATEGY(REPO_ROOT));
  for (let i = 0; i < SYMBOLS; i++) ws.write(`strategies/ticktock/${symbolAt(i)}.yaml`, 'sizing:\n  type: quote\n  amount: "20"\n');
  return ws;
}

// ------------------------------------------------------------------ figures

/** Counts reasons by their code (the text before the first ':'). */
function countBy(reasons: ReadonlyArray<string | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of reasons) if (r) out[r.split(':')[0]!] = (out[r.split(':')[0]!] ?? 0) + 1;
  return out;
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function pct(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const us = (ms: number): number => Math.round(ms * 10_000) / 10;

/** ms to three decimals (microsecond resolution). */
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

function dist(ms: readonly number[]): { p50: number; p99: number; max: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: us(pct(s, 50)), p99: us(pct(s, 99)), max: us(s.at(-1) ?? NaN), mean: us(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)) };
}

const SEGMENTS = [
  ['feed: frame parse + candle.closed publish', 'msgAt', 'closedAt'],
  ['candle.closed handlers up to the strategy signal', 'closedAt', 'signalAt'],
  ['signal handlers (journal, recorder) + planner', 'signalAt', 'requestAt'],
  ['order.request handlers (journal) + risk engine', 'requestAt', 'submitAt'],
  ['order.submit handlers (journal) + execution: filters, order row', 'submitAt', 'pendingAt'],
  ['rest of the socket read: later frames handled before any async step', 'pendingAt', 'readDoneAt'],
  ['order.update handlers, microtasks, execution queue to venue.place', 'readDoneAt', 'placeAt'],
  ['venue + ccxt createOrder (build, sign) to fetch', 'placeAt', 'fetchAt'],
  ['ccxt fetch + undici to socket write', 'fetchAt', 'writeAt'],
] as const;

function summarize(traces: readonly Trace[], rec: Recorder, meta: Record<string, unknown>): Record<string, unknown> {
  const done = traces.filter((t) => t.writeAt !== undefined && t.signalAt !== undefined);
  const denied = countBy(traces.map((t) => t.denied));
  const rejected = countBy(traces.filter((t) => t.writeAt === undefined).map((t) => t.rejected));
  const fromChunk = done.map((t) => t.writeAt! - t.chunkAt);
  const fromMsg = done.map((t) => t.writeAt! - t.msgAt);
  const full = done.filter((t) => SEGMENTS.every(([, a, b]) => t[a] !== undefined && t[b] !== undefined));
  const totalMean = full.reduce((s, t) => s + (t.writeAt! - t.msgAt), 0) / Math.max(1, full.length);
  const split: Record<string, { p50_us: number; mean_us: number; share_of_mean: number }> = {};
  for (const [name, a, b] of SEGMENTS) {
    const xs = full.map((t) => t[b]! - t[a]!);
    const mean = xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    split[name] = { p50_us: dist(xs).p50, mean_us: us(mean), share_of_mean: Math.round((mean / totalMean) * 1000) / 1000 };
  }
  const orders = Math.max(1, done.length);
  const minutes = Number(meta.minutes) || 1;
  const handlers = [...rec.handlers.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 12)
    .map(([k, a]) => ({ handler: k, calls: a.n, us_per_call: us(a.ms / a.n), ms_per_minute: Math.round((a.ms / minutes) * 10) / 10 }));
  const writes = [...rec.writes].sort((a, b) => a - b);
  const beforeSend = done.map((t) => t.writesAtWrite! - t.writesAtClose!).sort((a, b) => a - b);
  // undici writes a reused keep-alive socket only after a setImmediate (idle-socket validation), so
  // due timers and pending reads run first. Split fetch -> write by what ran in between.
  const sent = full.map((t) => ({ ms: t.writeAt! - t.fetchAt!, frames: t.framesAtWrite! - t.framesAtFetch!, flushes: t.flushesAtWrite! - t.flushesAtFetch! }));
  const part = (xs: number[]): Record<string, number> => ({ orders: xs.length, ...(xs.length ? dist(xs) : {}) });
  const flushes = rec.flushes.map((f) => f.ms);
  const closed = dist(rec.frameToClosed);
  const fromMsgD = dist(fromMsg);
  return {
    ...meta,
    orders: done.length,
    denied,
    rejected_unsent: rejected,
    unresolved: traces.length - done.length - sum(denied) - sum(rejected),
    rate_budget_order_admissions: { ...rec.admits },
    order_sockets_opened: rec.newSockets,
    tick_to_order_us: { from_chunk: dist(fromChunk), from_message: fromMsgD },
    baseline_frame_to_candle_closed_us: { closing_frames: rec.frameToClosed.length, p50: closed.p50, p99: closed.p99 },
    ratio_p50_order_vs_candle_closed: Math.round((fromMsgD.p50 / closed.p50) * 10) / 10,
    split_from_message: split,
    fetch_to_socket_write_us: {
      candle_writer_flush_in_between: part(sent.filter((x) => x.flushes > 0).map((x) => x.ms)),
      market_frames_in_between: part(sent.filter((x) => x.flushes === 0 && x.frames > 0).map((x) => x.ms)),
      neither: part(sent.filter((x) => x.flushes === 0 && x.frames === 0).map((x) => x.ms)),
    },
    candle_writer: { flushes: flushes.length, rows_per_flush_mean: Math.round(rec.flushes.reduce((a, f) => a + f.rows, 0) / Math.max(1, flushes.length)), ...(flushes.length ? { flush_us: dist(flushes) } : {}) },
    top_handlers: handlers,
    sqlite: {
      writes: writes.length,
      writes_per_order: Math.round((writes.length / orders) * 10) / 10,
      writes_before_send_p50: pct(beforeSend, 50),
      write_us_p50: us(pct(writes, 50)),
      write_us_p99: us(pct(writes, 99)),
      write_ms_total: Math.round(writes.reduce((a, b) => a + b, 0)),
      reads: rec.reads.n,
      read_ms_total: Math.round(rec.reads.ms),
    },
  };
}

/** A raw better-sqlite3 insert in the same folder, WAL + synchronous=FULL vs NORMAL (shipped): what one commit costs here, without the bot. */
function commitCost(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const sync of ['FULL', 'NORMAL']) {
    const db = new Database(join(dir, `commit-${sync}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const st = db.prepare('INSERT INTO t (v) VALUES (?)');
    const xs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      st.run('x'.repeat(300));
      xs.push(performance.now() - t);
    }
    db.close();
    xs.sort((a, b) => a - b);
    out[`insert_${sync.toLowerCase()}_us_p50`] = us(pct(xs, 50));
    out[`insert_${sync.toLowerCase()}_us_p99`] = us(pct(xs, 99));
  }
  return out;
}

// ------------------------------------------------------------------ driver

export async function benchOrderLatency(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ORDER_LATENCY_EXCHANGE: '1' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const waiters = new Set<(m: FromChild) => void>();
  child.on('message', (m: FromChild) => waiters.forEach((w) => w(m)));
  const next = <T extends FromChild['type']>(type: T, timeoutMs = 30_000): Promise<Extract<FromChild, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`exchange child: no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (m: FromChild): void => {
        if (m.type !== type) return;
        clearTimeout(timer);
        waiters.delete(w);
        resolve(m as Extract<FromChild, { type: T }>);
      };
      waiters.add(w);
    });

  const rec = new Recorder();
  let kernel: Kernel | undefined;
  let ws: Workspace | undefined;
  let unhook: Unhook | undefined;
  let floorClient: FloorClient | undefined;
  try {
    const ready = await next('ready');
    debug('exchange ready', ready);
    const port = Number(new URL(ready.url).port);
    ws = workspace(ready.url, ready.futuresWs);
    mkdirSync(join(ws.dir, 'scratch'), { recursive: true });
    const commit = commitCost(join(ws.dir, 'scratch'));

    unhook = installHooks(rec, () => port);
    const settings = loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
    const { modules, issues: loadIssues } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, settings.paths.cwd);
    const { specs, issues } = resolveInstances(settings, settings.strategies, modules);
    if (loadIssues.length + issues.length > 0) throw new Error(`strategy fixture: ${JSON.stringify([...loadIssues, ...issues]).slice(0, 500)}`);
    const clock = new LiveClock();
    // The venue as shipped: what the kernel builds for MODE=testnet (rate budget, circuit breaker,
    // ccxt's throttle off); built here only so the bench can stamp venue.place and ccxt's fetch.
    const venue = createVenue(settings, clock, silentLogger()) as BinanceVenue;
    hookVenue(venue, rec);
    const floor = new FloorClient(ready.url);
    floorClient = floor;
    kernel = await Kernel.start({ settings, clock, logger: silentLogger(), version: 'bench', runId: 'bench-order-latency', specs, indicators: createIndicatorFactory, venue });
    const k = kernel;
    debug('kernel started');
    const ccxtClient = (venue as unknown as { ex: { enableRateLimit: boolean; rateLimit: number } }).ex;
    const store = k.store as unknown as { sqlite: Database.Database; durably?: <T>(fn: () => T) => T };
    const configuration = {
      sqlite_synchronous: ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(store.sqlite.pragma('synchronous', { simple: true }))],
      ccxt_enable_rate_limit: ccxtClient.enableRateLimit,
      order_limits: (venue.usage().budget ?? []).filter((v) => v.rateLimitType === 'ORDERS').map((v) => `${v.limit} / ${v.intervalNum} ${v.interval}`),
      venue: 'createVenue() as MODE=testnet builds it (BinanceVenue, rate budget, circuit breaker)',
    };

    // Live: both connections have talked (mark prices flow every second).
    const live = new Set<string>();
    const offStatus = k.bus.on('feed.status', (f) => void (f.status === 'live' ? live.add(f.connection ?? '') : live.delete(f.connection ?? '')), 'bench');
    for (const t0 = Date.now(); live.size < Math.ceil(SYMBOLS / 100) && Date.now() - t0 < 15_000; ) await sleep(10);
    offStatus();
    if (live.size < Math.ceil(SYMBOLS / 100)) throw new Error(`feed not live: ${live.size} connections`);

    /**
     * Waits until the venue's order budget has room for n more orders: live, minutes are 60 s apart,
     * here a few ms, so without this the bench would run into Binance's 300 / 10 s by itself. Untimed.
     */
    const roomFor = async (n: number): Promise<number> => {
      let waited = 0;
      for (;;) {
        const now = Date.now() + (venue.clockOffsetMs ?? 0);
        const full = (venue.usage().budget ?? []).filter((v) => v.rateLimitType === 'ORDERS' && v.used + n > v.limit);
        if (full.length === 0) return waited;
        const ms = Math.max(1, ...full.map((v) => v.resetsAt - now)) + 5;
        waited += ms;
        await sleep(ms);
      }
    };
    const ordersUsed = (): string[] => (venue.usage().budget ?? []).filter((v) => v.rateLimitType === 'ORDERS').map((v) => `${v.used} of ${v.limit} / ${v.intervalNum} ${v.interval}`);

    let minute = 1;
    /** One minute boundary with `signal` flagged; resolves when every resulting order is filled (or denied). */
    const runStep = async (signal: number[], extraMs = 0): Promise<Trace[]> => {
      const m = minute++;
      const emitted = next('emitted');
      child.send({ type: 'step', minute: m, signal } satisfies ToChild);
      await emitted;
      const syms = signal.map(symbolAt);
      const deadline = Date.now() + 3000 + 100 * signal.length + extraMs;
      const traces = (): Array<Trace | undefined> => syms.map((s) => rec.bySymbol.get(s));
      const settled = (t: Trace | undefined): boolean => t !== undefined && (t.denied !== undefined || t.rejected !== undefined || (t.writeAt !== undefined && t.filled === true && t.final !== undefined));
      while (Date.now() < deadline && !traces().every(settled)) await sleep(2);
      await sleep(SETTLE_MS);
      if (process.env.ORDER_LATENCY_DEBUG) debug('step', m, 'signals', signal.length, 'traces', traces().map((t) => (t ? `${t.signalAt ? 's' : '-'}${t.requestAt ? 'r' : '-'}${t.submitAt ? 'u' : '-'}${t.pendingAt ? 'p' : '-'}${t.placeAt ? 'v' : '-'}${t.fetchAt ? 'f' : '-'}${t.writeAt ? 'w' : '-'}${t.filled ? 'F' : '-'}${t.final ?? ''}${t.denied ?? ''}${t.rejected ?? ''}` : 'none')).slice(0, 5));
      return traces().filter((t): t is Trace => t !== undefined && t.signalAt !== undefined);
    };
    const scenario = async (name: string, steps: number, perStep: number, meta: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
      rec.reset();
      const traces: Trace[] = [];
      const t0 = Date.now();
      let waited = 0;
      for (let s = 0; s < steps; s++) {
        // A different, spread-out subset each minute (every symbol's position in the burst gets sampled).
        const offset = (s * 37) % SYMBOLS;
        const signal = Array.from({ length: perStep }, (_, j) => (offset + Math.floor((j * SYMBOLS) / perStep)) % SYMBOLS);
        waited += await roomFor(perStep);
        traces.push(...(await runStep(signal)));
      }
      const open = k.trading!.portfolio.positions().length;
      return summarize(traces, rec, { scenario: name, minutes: steps, signals_per_minute: perStep, closing_frames_per_minute: SYMBOLS, open_positions_at_end: open, wall_seconds: Math.round((Date.now() - t0) / 100) / 10, untimed_wait_for_order_budget_ms: Math.round(waited), ...meta });
    };

    /**
     * Every symbol signals at the same minute: from the socket read carrying the first of the 200
     * closing frames to the last order request on the wire. Traces are kept for the per-order figures.
     */
    const all = Array.from({ length: SYMBOLS }, (_, i) => i);
    const burstTraces: Trace[] = [];
    const botBurst = async (extraMs = 0): Promise<Record<string, unknown> & { ms: number }> => {
      await roomFor(SYMBOLS);
      const budgetBefore = ordersUsed();
      const admits0 = { ...rec.admits };
      const sockets0 = rec.newSockets;
      const traces = await runStep(all, extraMs);
      burstTraces.push(...traces);
      const frames = all.map((i) => rec.bySymbol.get(symbolAt(i))?.chunkAt).filter((t): t is number => t !== undefined);
      const wire = traces.flatMap((t) => (t.writeAt !== undefined ? [t.writeAt] : []));
      const t0 = Math.min(...frames);
      const ms = wire.length ? Math.max(...wire) - t0 : NaN;
      return {
        ms: r3(ms),
        first_order_on_wire_ms: r3(Math.min(...wire) - t0),
        closing_frames: frames.length,
        signals: traces.length,
        orders_on_wire: wire.length,
        denied: countBy(traces.map((t) => t.denied)),
        rejected_unsent: countBy(traces.filter((t) => t.writeAt === undefined).map((t) => t.rejected)),
        filled: traces.filter((t) => t.filled).length,
        rate_budget_order_admissions: { go: rec.admits.go - admits0.go, wait: rec.admits.wait - admits0.wait, refuse: rec.admits.refuse - admits0.refuse },
        order_budget_before: budgetBefore,
        order_budget_after: ordersUsed(),
        order_sockets_opened: rec.newSockets - sockets0,
      };
    };
    const floorSymbols = all.map((i) => `S${String(i).padStart(3, '0')}/USDT:USDT`);
    const floorBurst = async (): Promise<FloorRun & { sockets_opened: number }> => {
      await floor.roomFor(SYMBOLS, sleep);
      const sockets0 = rec.newSockets;
      // 80 x 0.25 USDT = the bot's 20 USDT order.
      const r = await floor.burst(floorSymbols, 80, rec.wire);
      return { ...r, ms: r3(r.ms), sockets_opened: rec.newSockets - sockets0 };
    };

    // Warm-up: instances ready, JIT, the HTTP keep-alive pool open (not reported).
    for (let i = 0; i < 2; i++) await runStep([]);
    for (let i = 0; i < 4; i++) {
      await roomFor(20);
      await runStep(Array.from({ length: 20 }, (_, j) => (i * 7 + j * 10) % SYMBOLS));
    }
    await floor.load();
    const floorWarm = await floorBurst();
    debug('floor warm-up', floorWarm);

    const results: Record<string, unknown> = {};
    const quick = Boolean(process.env.ORDER_LATENCY_QUICK);
    const n = (x: number): number => (quick ? Math.max(1, Math.round(x / 10)) : x);
    results.single = await scenario('one signal per minute', n(200), 1);
    results.ten = await scenario('ten signals per minute', n(60), 10);

    // The 200-order burst, interleaved with the bare-client floor (same run, same exchange).
    rec.reset();
    const bursts: Array<{ bot: Record<string, unknown> & { ms: number }; floor: FloorRun & { sockets_opened: number } }> = [];
    const runs = quick ? 2 : 5;
    for (let r = 0; r < runs; r++) {
      const f = await floorBurst();
      const b = await botBurst();
      bursts.push({ bot: b, floor: f });
      debug('burst', r, { bot_ms: b.ms, floor_ms: f.ms, wire: b.orders_on_wire, refused: b.rate_budget_order_admissions });
    }
    results.all = summarize(burstTraces, rec, { scenario: 'every symbol signals at the same minute (the burst runs, all orders)', minutes: runs, signals_per_minute: SYMBOLS, closing_frames_per_minute: SYMBOLS });
    const botMs = bursts.map((x) => x.bot.ms);
    const floorMs = bursts.map((x) => x.floor.ms);
    const refused = bursts.reduce((a, x) => a + (x.bot.rate_budget_order_admissions as { refuse: number }).refuse, 0);
    const burstHeadline = {
      floor_definition: FLOOR_DEFINITION,
      runs,
      last_order_on_wire_ms: r3(median(botMs)),
      floor_ms: r3(median(floorMs)),
      ratio_bot_to_floor: r3(median(botMs) / median(floorMs)),
      ratio_per_run: bursts.map((x) => r3(x.bot.ms / x.floor.ms)),
      target_ratio: 1.2,
      within_target: median(botMs) / median(floorMs) <= 1.2,
      orders_on_wire_per_run: bursts.map((x) => x.bot.orders_on_wire),
      refused_by_rate_budget: refused,
      bot_runs: bursts.map((x) => x.bot),
      floor_runs: bursts.map((x) => x.floor),
    };

    // What-if (the default before 2da21c7): ccxt's own throttle on. USD-M POST /fapi/v1/order costs
    // 4 units of its 25 ms rateLimit, so it spaces orders 100 ms apart across all symbols.
    ccxtClient.enableRateLimit = true;
    const limiter = await botBurst(200 * SYMBOLS);
    ccxtClient.enableRateLimit = false;
    const limiterOut = { ccxt_rate_limit_ms: ccxtClient.rateLimit, last_order_on_wire_ms: limiter.ms, ratio_to_floor: r3(limiter.ms / median(floorMs)), run: limiter };

    // What-if (the default before bccdd9d): synchronous=FULL on every commit, an fsync per order row.
    store.sqlite.pragma('synchronous = FULL');
    // Store.durably() sets NORMAL back after its write: keep FULL for the whole what-if.
    store.durably = <T>(fn: () => T): T => fn();
    const fullSingle = await scenario('one signal per minute, synchronous=FULL', n(60), 1);
    const fullBurst = await botBurst();
    delete store.durably;
    store.sqlite.pragma('synchronous = NORMAL');
    const single = results.single as { tick_to_order_us: { from_chunk: { p50: number; p99: number; max: number; mean: number } } };
    const fullFromChunk = (fullSingle as typeof single).tick_to_order_us.from_chunk;

    const ordersIn = (r: Record<string, unknown>): number => (r as { orders?: number }).orders ?? 0;
    return {
      benchmark: 'tick-to-order: ws frame of a closing candle entering the process -> order request written to the REST socket, 200 symbols streaming, real kernel in process, local exchange in a child process',
      note:
        'Shipped configuration in headline_* and scenarios: synchronous=NORMAL (FULL only in Store.durably()), ccxt throttle off, the venue budgets orders by Binance\'s published limits. ' +
        'from_chunk: t0 = the socket read that completed the frame (headline); from_message: t0 = the ws message event (frames ahead in the same read excluded). ' +
        'split_from_message: stage-to-stage times (publish calls), share_of_mean adds up to 1. ' +
        'Each minute is closed-loop (next minute only after every order filled), and waits, untimed, until the order budget has room (minutes run far faster than live). Risk limits raised only so the bench cannot trip them; all guards run. ' +
        'Logger silent (no info logs on this path). Database in a temp folder on local disk. ' +
        'Minutes run many to a real second, so timers (candle writer, heartbeat, mark ticker) fire less often per minute than live, and each candle-writer flush carries several minutes of rows. ' +
        'what_if_* are not the shipped configuration.',
      symbols: SYMBOLS,
      configuration,
      orders_total: ordersIn(results.single as Record<string, unknown>) + ordersIn(results.ten as Record<string, unknown>) + burstTraces.length + ordersIn(fullSingle),
      headline_single_signal_us: { ...single.tick_to_order_us.from_chunk, target_p99_us: 2000, within_target: single.tick_to_order_us.from_chunk.p99 < 2000 },
      headline_burst_200: burstHeadline,
      sqlite_commit_cost_here: commit,
      scenarios: results,
      what_if_ccxt_rate_limiter_on: limiterOut,
      what_if_synchronous_full: {
        single_from_chunk_us: fullFromChunk,
        ratio_p99_full_to_shipped: r3(fullFromChunk.p99 / single.tick_to_order_us.from_chunk.p99),
        burst_last_order_on_wire_ms: fullBurst.ms,
        burst_ratio_to_floor: r3(fullBurst.ms / median(floorMs)),
        single: fullSingle,
        burst: fullBurst,
      },
      wall_seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await kernel?.stop('bench done').catch(() => undefined);
    await floorClient?.close();
    unhook?.();
    if (child.connected) child.send({ type: 'close' } satisfies ToChild);
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
    ws?.cleanup();
  }
}

const debug = (...a: unknown[]): void => void (process.env.ORDER_LATENCY_DEBUG && process.stderr.write(`[order-latency ${new Date().toISOString().slice(11, 23)}] ${a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ')}\n`));

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
