/**
 * The Binance venue: the Venue port over ccxt (REST) and `ws` (user data),
 * for spot or USD-M futures, against Binance, its testnets or the local
 * exchange (only the base URLs differ).
 *
 * What it does beyond passing calls through:
 *  - money comes from Binance's raw strings (`order.info`, `trade.info`,
 *    validated with zod) as exact Decimals; ccxt's parsed floats are never
 *    read;
 *  - every failure becomes a VenueError whose kind is decided on Binance's
 *    error code and the HTTP status (captured per response, so concurrent
 *    calls cannot mix them up), falling back to ccxt's error classes;
 *  - requests are signed with our clock corrected by the measured offset to
 *    the server (start(), every 10 minutes, and resyncClock() on demand);
 *  - futures conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET) live on
 *    Binance's algo-order service: place / cancel / fetchOrder / openOrders
 *    look there too, so callers see one kind of order;
 *  - the user-data stream (futures: listenKey stream with keepalive and
 *    re-creation on expiry; spot: WebSocket API subscription) reconnects with
 *    backoff and reports connected / disconnected / reconnected, so the
 *    caller knows when to reconcile what it may have missed.
 *
 * Options (BinanceVenueOptions):
 *   market        'spot' | 'futures'
 *   spotBase, futuresBase   REST bases (https://api.binance.com,
 *                 https://fapi.binance.com, or http://127.0.0.1:PORT); both,
 *                 because ccxt's clients carry URLs for both APIs.
 *   wsBase        user-data WebSocket. Futures: the stream base
 *                 (wss://fstream.binance.com; local ws://127.0.0.1:PORT/futures),
 *                 connected as `${wsBase}/ws/<listenKey>`. Spot: the WebSocket
 *                 API URL (wss://ws-api.binance.com:443/ws-api/v3; local
 *                 ws://127.0.0.1:PORT/ws-api/v3).
 *   apiKey, secret  strings or Secret.
 *   clock, logger   injected; logger defaults to silent.
 *   recvWindowMs (5000), timeoutMs (10000), enableRateLimit (true: ccxt's
 *                 own throttle).
 *   userStream    open the user-data stream at start() (default true; one-shot
 *                 commands that only call REST turn it off).
 *   timers        clockSyncMs (600000), listenKeyKeepAliveMs (1800000),
 *                 streamStaleMs (600000: no frame and no ping for this long
 *                 forces a reconnect; 0 disables).
 *   reconnect     backoff { baseMs (500), capMs (30000), random }.
 *
 * Extra public API: clockOffsetMs, resyncClock(), usage() (Binance's
 * weight and order-count headers), userStreamStatus().
 */
import { createHmac } from 'node:crypto';
import ccxt from 'ccxt';
import WebSocket from 'ws';
import { z } from 'zod';
import { CircuitOpenError, type BreakerView, type CircuitBreaker } from '../../core/circuit-breaker.ts';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import { dec, isDecimalString, ZERO, type Dec } from '../../core/decimal.ts';
import { TraderError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import { Secret } from '../../core/secret.ts';
import { backoffDelay } from '../../market-data/backoff.ts';
import type { OrderSide, OrderStatus } from '../../model/events.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';
import { VenueError, type FuturesSetup, type FuturesSetupReport, type PlaceOco, type PlaceOrder, type Venue, type VenueAccount, type VenueBalance, type VenueErrorKind, type VenueEvent, type VenueFill, type VenueOrder, type VenuePosition } from '../venue.ts';
import { createFuturesClient, createSpotClient } from './ccxt-clients.ts';
import { instrumentFromBinance } from './exchange-info.ts';

// ------------------------------------------------------------------ options

export interface BinanceVenueOptions {
  readonly market: Market;
  readonly spotBase: string;
  readonly futuresBase: string;
  /** Futures: user-data stream base; spot: WebSocket API URL (see the file comment). */
  readonly wsBase: string;
  readonly apiKey: string | Secret;
  readonly secret: string | Secret;
  readonly clock: Clock;
  readonly logger?: Logger;
  readonly recvWindowMs?: number;
  readonly timeoutMs?: number;
  readonly enableRateLimit?: boolean;
  readonly userStream?: boolean;
  readonly timers?: { readonly clockSyncMs?: number; readonly listenKeyKeepAliveMs?: number; readonly streamStaleMs?: number };
  /**
   * The circuit breaker around REST calls: timeouts, 5xx and network
   * failures in a row open it, and calls then fail at once, unsent. Answers
   * (a rejection, an unknown order, a 429) are not outages and do not count.
   */
  readonly breaker?: CircuitBreaker;
  readonly reconnect?: { readonly baseMs?: number; readonly capMs?: number; readonly random?: () => number };
}

/** What Binance's response headers said about our request budget (latest response). */
export interface VenueUsage {
  /** X-MBX-USED-WEIGHT-1M. */
  readonly usedWeight1m?: number;
  /** X-MBX-ORDER-COUNT-10S (order placements only). */
  readonly orderCount10s?: number;
  /** X-MBX-ORDER-COUNT-1D (spot). */
  readonly orderCount1d?: number;
  /** X-MBX-ORDER-COUNT-1M (futures). */
  readonly orderCount1m?: number;
  /** Our clock when these were last updated. */
  readonly updatedAt?: number;
}

export interface UserStreamStatus {
  readonly enabled: boolean;
  readonly connected: boolean;
  readonly reconnects: number;
  readonly malformedFrames: number;
  /** Our clock at the last frame or ping. */
  readonly lastFrameAt?: number;
  /** Futures: our clock at the last successful listenKey keepalive. */
  readonly lastKeepAliveAt?: number;
}

const DEFAULTS = {
  recvWindowMs: 5000,
  timeoutMs: 10_000,
  clockSyncMs: 10 * 60_000,
  listenKeyKeepAliveMs: 30 * 60_000,
  streamStaleMs: 10 * 60_000,
  reconnectBaseMs: 500,
  reconnectCapMs: 30_000,
  /** 429 without a Retry-After header: wait out the weight window. */
  rateLimitedMs: 60_000,
} as const;

/** A clock sample whose round trip took longer than this is not trusted over the previous one. */
const MAX_SYNC_RTT_MS = 3000;

const reveal = (s: string | Secret): string => (typeof s === 'string' ? s : s.reveal());

type Client = InstanceType<typeof ccxt.binance>;
type Op = 'place' | 'cancel' | 'read';

// ---------------------------------------------------------- raw payloads

const decimal = z.string().refine(isDecimalString, { message: 'expected a decimal string' });
const id = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]).transform(String);
const side = z.enum(['BUY', 'SELL']);
const positionSide = z.enum(['BOTH', 'LONG', 'SHORT']);
const ms = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

const ORDER_STATUS: Readonly<Record<string, OrderStatus>> = {
  NEW: 'NEW',
  PENDING_NEW: 'NEW',
  // Binance: "currently unused"; the order still works until a CANCELED says otherwise.
  PENDING_CANCEL: 'NEW',
  // Futures liquidation orders.
  NEW_INSURANCE: 'NEW',
  NEW_ADL: 'NEW',
  PARTIALLY_FILLED: 'PARTIALLY_FILLED',
  FILLED: 'FILLED',
  CANCELED: 'CANCELED',
  REJECTED: 'REJECTED',
  EXPIRED: 'EXPIRED',
  EXPIRED_IN_MATCH: 'EXPIRED',
};
const status = z.string().refine((s) => s in ORDER_STATUS, { message: 'unknown order status' }).transform((s) => ORDER_STATUS[s]!);

/** Spot order: GET/DELETE /api/v3/order, POST with RESULT/FULL, openOrders. */
const spotOrderRaw = z.object({
  symbol: z.string(),
  orderId: id,
  clientOrderId: z.string(),
  // On a cancel, Binance puts the cancel request's own id in clientOrderId and ours here.
  origClientOrderId: z.string().optional(),
  price: decimal,
  origQty: decimal,
  executedQty: decimal,
  cummulativeQuoteQty: decimal,
  status,
  type: z.string(),
  side,
  stopPrice: decimal.optional(),
  time: ms.optional(),
  updateTime: ms.optional(),
  transactTime: ms.optional(),
  // -1 unless the order is a leg of an order list (OCO).
  orderListId: id.optional(),
});

/** Spot order list: POST /api/v3/orderList/oco and DELETE /api/v3/orderList answers. */
const orderListRaw = z.object({
  orderListId: id,
  listClientOrderId: z.string(),
  orderReports: z.array(spotOrderRaw),
});
/** GET /api/v3/orderList ("Query Order list"): the legs by id only. */
const orderListViewRaw = z.object({
  orderListId: id,
  listClientOrderId: z.string(),
  listStatusType: z.string(),
  orders: z.array(z.object({ orderId: id, clientOrderId: z.string() })),
});

/** USD-M regular order: GET/POST/DELETE /fapi/v1/order, openOrders. */
const futuresOrderRaw = z.object({
  symbol: z.string(),
  orderId: id,
  clientOrderId: z.string(),
  price: decimal,
  avgPrice: decimal,
  origQty: decimal,
  executedQty: decimal,
  status,
  type: z.string(),
  origType: z.string().optional(),
  side,
  stopPrice: decimal.optional(),
  reduceOnly: z.boolean(),
  positionSide: positionSide.optional(),
  updateTime: ms,
});

const ALGO_STATUSES = ['NEW', 'CANCELED', 'TRIGGERING', 'TRIGGERED', 'FINISHED', 'REJECTED', 'EXPIRED'] as const;

/** USD-M conditional order on the algo service: /fapi/v1/algoOrder, openAlgoOrders. */
const algoOrderRaw = z.object({
  algoId: id,
  clientAlgoId: z.string(),
  orderType: z.string(),
  symbol: z.string(),
  side,
  quantity: decimal,
  algoStatus: z.enum(ALGO_STATUSES),
  // A trailing stop has no fixed trigger: Binance may send null.
  triggerPrice: decimal.nullish(),
  reduceOnly: z.boolean(),
  positionSide: positionSide.optional(),
  updateTime: ms,
  actualOrderId: z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v))),
  actualPrice: decimal.nullish(),
});

const spotTradeRaw = z.object({
  symbol: z.string(),
  id,
  orderId: id,
  price: decimal,
  qty: decimal,
  commission: decimal,
  commissionAsset: z.string(),
  time: ms,
  isBuyer: z.boolean(),
  isMaker: z.boolean(),
});

const futuresTradeRaw = z.object({
  symbol: z.string(),
  id,
  orderId: id,
  side,
  price: decimal,
  qty: decimal,
  commission: decimal,
  commissionAsset: z.string(),
  realizedPnl: decimal,
  maker: z.boolean(),
  time: ms,
});

const spotAccountRaw = z.object({ balances: z.array(z.object({ asset: z.string(), free: decimal, locked: decimal })) });
const futuresAccountRaw = z.object({
  totalWalletBalance: decimal,
  availableBalance: decimal,
  assets: z.array(z.object({ asset: z.string(), walletBalance: decimal, availableBalance: decimal })),
});
const positionRaw = z.object({
  symbol: z.string(),
  positionSide: z.enum(['BOTH', 'LONG', 'SHORT']),
  positionAmt: decimal,
  entryPrice: decimal.optional(),
  markPrice: decimal.optional(),
  unRealizedProfit: decimal.optional(),
  liquidationPrice: decimal.optional(),
  leverage: z.union([z.string(), z.number()]).optional(),
});
const bracketsRaw = z.array(
  z.object({
    symbol: z.string(),
    brackets: z.array(z.object({ bracket: z.number(), notionalFloor: z.number().optional(), maintMarginRatio: z.union([z.number(), z.string()]) })).min(1),
  }),
);
const listenKeyRaw = z.object({ listenKey: z.string().min(1) });

// Stream events. Unknown event types are ignored; a known type that does not match is malformed.

const futuresOrderUpdate = z.object({
  e: z.literal('ORDER_TRADE_UPDATE'),
  E: ms,
  T: ms.optional(),
  o: z.object({
    s: z.string(),
    c: z.string(),
    S: side,
    o: z.string(),
    ot: z.string().optional(),
    q: decimal,
    p: decimal,
    ap: decimal,
    sp: decimal.optional(),
    x: z.string(),
    X: status,
    i: id,
    l: decimal,
    z: decimal,
    L: decimal,
    n: decimal.optional(),
    N: z.string().nullish(),
    T: ms,
    t: id,
    m: z.boolean(),
    R: z.boolean(),
    ps: positionSide.optional(),
    rp: decimal.optional(),
  }),
});

const futuresAccountUpdate = z.object({
  e: z.literal('ACCOUNT_UPDATE'),
  E: ms,
  T: ms.optional(),
  a: z.object({ m: z.string().optional(), B: z.array(z.object({ a: z.string(), wb: decimal, cw: decimal.optional(), bc: decimal.optional() })) }),
});

const algoUpdate = z.object({
  e: z.literal('ALGO_UPDATE'),
  E: ms,
  T: ms.optional(),
  o: z.object({ caid: z.string(), aid: id, o: z.string(), s: z.string(), S: side, ps: positionSide.optional(), q: decimal, X: z.enum(ALGO_STATUSES), tp: decimal.nullish(), R: z.boolean() }),
});

const executionReport = z.object({
  e: z.literal('executionReport'),
  E: ms,
  s: z.string(),
  c: z.string(),
  C: z.string().nullish(),
  S: side,
  o: z.string(),
  q: decimal,
  p: decimal,
  P: decimal.optional(),
  // OrderListId: -1 unless the order is a leg of an order list.
  g: id.optional(),
  x: z.string(),
  X: status,
  i: id,
  l: decimal,
  z: decimal,
  L: decimal,
  n: decimal.nullish(),
  N: z.string().nullish(),
  T: ms,
  t: id,
  m: z.boolean(),
  Z: decimal,
});

/** "ListStatus" (spot user data): sent with the executionReports of order list legs. */
const listStatus = z.object({
  e: z.literal('listStatus'),
  E: ms,
  s: z.string(),
  g: id,
  c: z.string(),
  l: z.string(),
  L: z.string(),
  C: z.string(),
  T: ms,
  O: z.array(z.object({ s: z.string(), i: id, c: z.string() })),
});

const outboundAccountPosition = z.object({
  e: z.literal('outboundAccountPosition'),
  E: ms,
  B: z.array(z.object({ a: z.string(), f: decimal, l: decimal })),
});

const wsApiResponse = z.object({
  id: z.union([z.string(), z.number()]),
  status: z.number(),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), msg: z.string() }).optional(),
});

// ------------------------------------------------------------ conversions

/** A price or trigger Binance reports as 0 when it does not apply. */
function nonZero(s: string | undefined | null): Dec | undefined {
  if (s === undefined || s === null) return undefined;
  const d = dec(s);
  return d.isZero() ? undefined : d;
}

function spotOrder(raw: z.infer<typeof spotOrderRaw>): VenueOrder {
  const filled = dec(raw.executedQty);
  const quote = dec(raw.cummulativeQuoteQty);
  return {
    symbol: raw.symbol,
    clientOrderId: raw.origClientOrderId ?? raw.clientOrderId,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    type: raw.type,
    status: raw.status,
    quantity: dec(raw.origQty),
    filledQuantity: filled,
    price: nonZero(raw.price),
    stopPrice: nonZero(raw.stopPrice),
    // Spot reports no average price: cumulative quote / executed quantity.
    averagePrice: filled.isZero() ? undefined : quote.div(filled),
    reduceOnly: false,
    updateTime: raw.updateTime ?? raw.transactTime ?? raw.time ?? 0,
    ...(raw.orderListId !== undefined && raw.orderListId !== '-1' ? { orderListId: raw.orderListId } : {}),
  };
}

function futuresOrder(raw: z.infer<typeof futuresOrderRaw>): VenueOrder {
  return {
    symbol: raw.symbol,
    clientOrderId: raw.clientOrderId,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    // A triggered stop shows type MARKET; origType keeps what was placed.
    type: raw.origType ?? raw.type,
    status: raw.status,
    quantity: dec(raw.origQty),
    filledQuantity: dec(raw.executedQty),
    price: nonZero(raw.price),
    stopPrice: nonZero(raw.stopPrice),
    averagePrice: nonZero(raw.avgPrice),
    reduceOnly: raw.reduceOnly,
    updateTime: raw.updateTime,
    ...(raw.positionSide !== undefined ? { positionSide: raw.positionSide } : {}),
  };
}

/**
 * The algo service's view of a conditional order. Triggered ones are
 * normally resolved to the regular order they became (see fetchOrder);
 * this mapping is what remains when that order cannot be found.
 */
function algoOrder(raw: z.infer<typeof algoOrderRaw>): VenueOrder {
  const quantity = dec(raw.quantity);
  const finished = raw.algoStatus === 'FINISHED';
  const st: OrderStatus = raw.algoStatus === 'CANCELED' ? 'CANCELED' : raw.algoStatus === 'EXPIRED' ? 'EXPIRED' : raw.algoStatus === 'REJECTED' ? 'REJECTED' : finished ? 'FILLED' : 'NEW';
  return {
    symbol: raw.symbol,
    clientOrderId: raw.clientAlgoId,
    exchangeOrderId: raw.algoId,
    side: raw.side,
    type: raw.orderType,
    status: st,
    quantity,
    filledQuantity: finished ? quantity : ZERO,
    stopPrice: nonZero(raw.triggerPrice),
    averagePrice: finished ? nonZero(raw.actualPrice) : undefined,
    reduceOnly: raw.reduceOnly,
    updateTime: raw.updateTime,
    ...(raw.positionSide !== undefined ? { positionSide: raw.positionSide } : {}),
  };
}

function spotFill(raw: z.infer<typeof spotTradeRaw>): VenueFill {
  return {
    symbol: raw.symbol,
    tradeId: raw.id,
    exchangeOrderId: raw.orderId,
    side: raw.isBuyer ? 'BUY' : 'SELL',
    price: dec(raw.price),
    quantity: dec(raw.qty),
    fee: dec(raw.commission),
    feeAsset: raw.commissionAsset,
    isMaker: raw.isMaker,
    time: raw.time,
  };
}

function futuresFill(raw: z.infer<typeof futuresTradeRaw>): VenueFill {
  return {
    symbol: raw.symbol,
    tradeId: raw.id,
    exchangeOrderId: raw.orderId,
    side: raw.side,
    price: dec(raw.price),
    quantity: dec(raw.qty),
    fee: dec(raw.commission),
    feeAsset: raw.commissionAsset,
    isMaker: raw.maker,
    realizedPnl: dec(raw.realizedPnl),
    time: raw.time,
  };
}

const FINAL: ReadonlySet<OrderStatus> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);

// ---------------------------------------------------- error classification

interface ResponseTag {
  readonly status: number;
  readonly headers?: Record<string, unknown>;
  readonly code?: number;
  readonly msg?: string;
}

function header(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : headers[key];
  return v === undefined || v === null ? undefined : String(v);
}

function binanceBody(body: unknown): { code?: number; msg?: string } {
  if (typeof body !== 'string' || body === '') return {};
  try {
    const j = JSON.parse(body) as { code?: unknown; msg?: unknown };
    return { ...(typeof j.code === 'number' ? { code: j.code } : {}), ...(typeof j.msg === 'string' ? { msg: j.msg } : {}) };
  } catch {
    return {};
  }
}

/** Codes after which Binance says the execution status is unknown (or it failed internally). */
const UNKNOWN_OUTCOME_CODES = new Set([-1000, -1001, -1006, -1007]);
const AUTH_CODES = new Set([-1002, -1022, -2014, -2015]);
const UNKNOWN_ORDER_CODES = new Set([-2011, -2013]);
/** A refusal to connect or resolve: the request never left. */
const NOT_SENT = /ECONNREFUSED|ConnectionRefused|ENOTFOUND|EAI_AGAIN|DNSError|FailedToOpenSocket/;

// ------------------------------------------------------------- the venue

export class BinanceVenue implements Venue {
  readonly name = 'binance';
  readonly market: Market;
  /** Futures: STOP_MARKET / TAKE_PROFIT_MARKET wait on Binance's algo service. Spot (local exchange) has no stop-market. */
  readonly holdsConditionals: boolean;

  private readonly o: BinanceVenueOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private ex!: Client;
  private readonly tags = new WeakMap<object, ResponseTag>();
  /** After a 429 or 418, nothing is sent until Retry-After (or the ban's end) passes: see call(). */
  private hold: { until: number; kind: 'RATE_LIMITED' | 'BANNED'; code?: number | string; reason: string } | undefined;
  private offsetMs = 0;
  private offsetMeasured = false;
  private resyncing: Promise<number> | undefined;
  /** When the latest /time request actually went out (see hook()). */
  private timeSentAt: number | undefined;
  private usageView: VenueUsage = {};
  /** Binance id (BTCUSDT) -> ccxt symbol (BTC/USDT, BTC/USDT:USDT). */
  private toCcxt = new Map<string, string>();
  /** Binance id -> base asset (spot positions). */
  private baseOf = new Map<string, string>();
  /** Client ids we placed as conditional (futures): look them up on the algo service first. */
  private readonly conditionalIds = new Set<string>();
  /** Spot order lists: orderListId -> listClientOrderId, learned from answers and listStatus events (executionReports carry only the id). */
  private readonly listClientIds = new Map<string, string>();
  private readonly listeners = new Set<(e: VenueEvent) => void>();
  private starting: Promise<void> | undefined;
  private syncTimer: TimerHandle | undefined;
  private stream: UserStream | undefined;
  private clientDisposed = false;
  /** Bumped by stop(): tells a start() in progress that it was cancelled. */
  private run = 0;

  constructor(opts: BinanceVenueOptions) {
    this.o = opts;
    this.market = opts.market;
    this.clock = opts.clock;
    this.holdsConditionals = opts.market === 'futures';
    this.log = (opts.logger ?? silentLogger()).child({ component: 'binance-venue', market: opts.market });
    this.ex = this.buildClient();
  }

  // ------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    this.starting ??= this.doStart().catch(async (e: unknown) => {
      // A failed start leaves nothing running, and a later start() tries again.
      await this.stop();
      throw e;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const run = this.run;
    // stop() while starting: whatever this start would set up next must not outlive it.
    const alive = (): void => {
      if (run !== this.run) throw new VenueError('RETRYABLE', 'binance venue stopped while starting');
    };
    if (this.clientDisposed) {
      this.ex = this.buildClient();
      this.clientDisposed = false;
    }
    await this.call('read', 'loadMarkets', () => this.ex.loadMarkets());
    alive();
    this.indexMarkets();
    await this.resyncClock();
    alive();
    this.syncTimer = this.clock.every(this.o.timers?.clockSyncMs ?? DEFAULTS.clockSyncMs, () => {
      this.resyncClock().catch((e: unknown) => this.log.warn({ err: e }, 'clock sync failed; keeping the previous offset'));
    });
    if (this.o.userStream ?? true) {
      const stream = new UserStream(this.streamDeps());
      this.stream = stream;
      await stream.start();
      alive();
    }
    this.log.info({ clockOffsetMs: this.offsetMs, symbols: this.toCcxt.size }, 'binance venue started');
  }

  async stop(): Promise<void> {
    this.run++;
    this.starting = undefined;
    this.syncTimer?.cancel();
    this.syncTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    await stream?.stop();
    // ccxt keeps an undici keep-alive pool; closing it leaves no open handle behind.
    const dispatcher = (this.ex as unknown as { fetchDispatcher?: { destroy?: () => Promise<void> } }).fetchDispatcher;
    if (dispatcher?.destroy) await dispatcher.destroy().catch(() => undefined);
    this.clientDisposed = true;
  }

  onEvent(fn: (e: VenueEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ----------------------------------------------------------------- clock

  /** Server time minus our clock, ms (positive: the server runs ahead). */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  /**
   * Measures the offset to the server clock again (call it after a CLOCK_SKEW
   * error); resolves with the offset in use afterwards. Calls that overlap
   * share one measurement.
   */
  resyncClock(): Promise<number> {
    this.resyncing ??= this.measureOffset().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async measureOffset(): Promise<number> {
    this.timeSentAt = undefined;
    const called = this.clock.now();
    const server = await this.call('read', 'fetchTime', () => this.ex.fetchTime());
    const after = this.clock.now();
    // ccxt's throttle may hold the call before sending: count from when it left.
    const before = this.timeSentAt ?? called;
    if (typeof server !== 'number' || !Number.isFinite(server)) throw new VenueError('RETRYABLE', `fetchTime returned no server time (${String(server)})`);
    const rtt = after - before;
    // The estimate is off by up to half the round trip: a slow sample would make it worse
    // than the offset we have (the first sample is always taken).
    if (this.offsetMeasured && rtt > MAX_SYNC_RTT_MS) {
      this.log.warn({ rttMs: rtt, keptOffsetMs: this.offsetMs }, 'clock sync round trip too slow; keeping the previous offset');
      return this.offsetMs;
    }
    // The server read its clock about halfway through the round trip.
    // (+ 0 turns Math.round's -0 into 0.)
    this.offsetMs = Math.round(server - (before + after) / 2) + 0;
    this.offsetMeasured = true;
    return this.offsetMs;
  }

  private serverNow(): number {
    return Math.round(this.clock.now() + this.offsetMs);
  }

  /**
   * The hold a 429 or 418 put on every call (see call()), while it runs: whoever's call
   * drew it (a reconcile read, a poll, a lookup), the execution engine denies new orders
   * until it ends rather than writing rows that could only wait behind it.
   */
  sendingHeld(): { until: number; kind: 'RATE_LIMITED' | 'BANNED' | 'CIRCUIT_OPEN' } | undefined {
    const h = this.hold;
    if (h && h.until > this.clock.now()) return { until: h.until, kind: h.kind };
    const b = this.o.breaker?.view();
    return b?.state === 'OPEN' && b.retryAt ? { until: Date.parse(b.retryAt), kind: 'CIRCUIT_OPEN' } : undefined;
  }

  /** The REST circuit breaker's state (for /health and the heartbeat); undefined without one. */
  breakerView(): BreakerView | undefined {
    return this.o.breaker?.view();
  }

  /** Binance's request-weight and order-count headers from the latest response. */
  usage(): VenueUsage {
    return this.usageView;
  }

  userStreamStatus(): UserStreamStatus {
    const s = this.stream;
    if (!s) return { enabled: false, connected: false, reconnects: 0, malformedFrames: 0 };
    return {
      enabled: true,
      connected: s.connected,
      reconnects: s.reconnects,
      malformedFrames: s.malformed,
      ...(s.lastFrameAt !== undefined ? { lastFrameAt: s.lastFrameAt } : {}),
      ...(s.lastKeepAliveAt !== undefined ? { lastKeepAliveAt: s.lastKeepAliveAt } : {}),
    };
  }

  // --------------------------------------------------------- account setup

  /**
   * The position mode (POST /fapi/v1/positionSide/dual: dualSidePosition
   * true for HEDGE, false for ONEWAY), then leverage and margin type per
   * symbol. Binance answers "no need to change" (-4059 position side, -4046
   * margin type) when the setting is already right: success, not an error.
   * The calls are idempotent, so they are classified (and retried) like reads.
   */
  async configureFutures(setup: FuturesSetup): Promise<FuturesSetupReport> {
    if (this.market !== 'futures') return { positionMode: 'unchanged', symbols: [] };
    const unchanged = (e: unknown, code: number): boolean => e instanceof VenueError && e.details.code === code;
    let positionMode: 'set' | 'unchanged' = 'set';
    try {
      await this.call('read', 'positionSide/dual', () => this.ex.setPositionMode(setup.positionMode === 'HEDGE'));
    } catch (e) {
      if (!unchanged(e, -4059)) throw e;
      positionMode = 'unchanged';
    }
    const out: Array<{ symbol: string; leverage: number; marginType: string }> = [];
    for (const s of setup.symbols) {
      const sym = this.unified(s.symbol);
      if (s.marginType) {
        try {
          await this.call('read', 'marginType', () => this.ex.setMarginMode(s.marginType!, sym));
        } catch (e) {
          if (!unchanged(e, -4046)) throw e;
        }
      }
      await this.call('read', 'leverage', () => this.ex.setLeverage(s.leverage, sym));
      out.push({ symbol: s.symbol, leverage: s.leverage, marginType: s.marginType ?? 'unchanged' });
    }
    return { positionMode, symbols: out };
  }

  /** Spot: the last trade price (/api/v3/ticker/price); futures: the mark price (/fapi/v1/premiumIndex). */
  async price(symbol: string): Promise<Dec> {
    const ex = this.ex as unknown as { publicGetTickerPrice(p: object): Promise<unknown>; fapiPublicGetPremiumIndex(p: object): Promise<unknown> };
    if (this.market === 'spot') {
      const raw = await this.call('read', 'ticker/price', () => ex.publicGetTickerPrice({ symbol }));
      return dec(z.object({ price: z.string() }).parse(raw).price);
    }
    const raw = await this.call('read', 'premiumIndex', () => ex.fapiPublicGetPremiumIndex({ symbol }));
    return dec(z.object({ markPrice: z.string() }).parse(raw).markPrice);
  }

  // ------------------------------------------------------------ reference

  async instruments(): Promise<Instrument[]> {
    // Reload: a status change (TRADING -> BREAK) or a new listing must show.
    await this.call('read', 'loadMarkets', () => this.ex.loadMarkets(true));
    this.indexMarkets();
    const maint = new Map<string, Dec>();
    if (this.market === 'futures') {
      const raw = await this.call('read', 'leverageBracket', () => (this.ex as unknown as { fapiPrivateGetLeverageBracket(): Promise<unknown> }).fapiPrivateGetLeverageBracket());
      for (const b of this.parse(bracketsRaw, raw, 'leverageBracket')) {
        const first = [...b.brackets].sort((x, y) => (x.notionalFloor ?? x.bracket) - (y.notionalFloor ?? y.bracket))[0]!;
        maint.set(b.symbol, dec(String(first.maintMarginRatio)));
      }
    }
    const out: Instrument[] = [];
    for (const m of this.ccxtMarkets()) {
      try {
        const rate = maint.get(m.id);
        out.push(instrumentFromBinance(m.info, this.market, rate !== undefined ? { maintMarginRate: rate } : {}));
      } catch (e) {
        // One broken listing (often a delisted symbol) must not hide all the others.
        this.log.warn({ err: e, symbol: m.id }, 'skipping a symbol whose exchangeInfo does not parse');
      }
    }
    return out.sort((a, b) => a.symbol.localeCompare(b.symbol));
  }

  // ---------------------------------------------------------------- orders

  async place(order: PlaceOrder): Promise<VenueOrder> {
    const symbol = this.unified(order.symbol);
    if (!order.quantity.gt(0)) throw new VenueError('REJECTED', `quantity must be positive, got ${order.quantity.toFixed()}`);
    const amount = Number(order.quantity.toFixed());
    const price = order.price !== undefined ? Number(order.price.toFixed()) : undefined;
    const base: Record<string, unknown> = { clientOrderId: order.clientOrderId };
    let type: string;
    let withPrice = false;
    let conditional = false;

    if (this.market === 'spot') {
      switch (order.type) {
        case 'MARKET':
          type = 'market';
          break;
        case 'LIMIT':
          type = 'limit';
          withPrice = true;
          // Spot has no GTX; post-only is the LIMIT_MAKER type.
          if (order.timeInForce === 'GTX') base.postOnly = true;
          else base.timeInForce = order.timeInForce ?? 'GTC';
          break;
        case 'STOP_LOSS_LIMIT':
          type = 'STOP_LOSS_LIMIT';
          withPrice = true;
          base.timeInForce = order.timeInForce ?? 'GTC';
          base.triggerPrice = this.need(order.stopPrice, 'stopPrice', order).toFixed();
          break;
        case 'TRAILING_STOP_MARKET':
          throw new VenueError('REJECTED', `TRAILING_STOP_MARKET is a USD-M order type; spot trails with trailingDelta on STOP_LOSS orders (order ${order.clientOrderId})`);
        case 'STOP_MARKET':
        case 'TAKE_PROFIT_MARKET':
          // Binance spot calls these STOP_LOSS / TAKE_PROFIT (the local exchange refuses both).
          type = order.type === 'STOP_MARKET' ? 'STOP_LOSS' : 'TAKE_PROFIT';
          base.triggerPrice = this.need(order.stopPrice, 'stopPrice', order).toFixed();
          break;
      }
    } else {
      const hedged = order.positionSide === 'LONG' || order.positionSide === 'SHORT';
      if (order.positionSide !== undefined) base.positionSide = order.positionSide;
      // Hedge mode: the position side says open or close, and Binance refuses reduceOnly there
      // ("Parameter 'reduceonly' sent when not required.", -1106), so it is not sent.
      if (order.reduceOnly && !hedged) base.reduceOnly = true;
      switch (order.type) {
        case 'MARKET':
          type = 'market';
          break;
        case 'LIMIT':
          type = 'limit';
          withPrice = true;
          base.timeInForce = order.timeInForce ?? 'GTC';
          break;
        case 'STOP_MARKET':
        case 'TAKE_PROFIT_MARKET':
          // ccxt sends these to POST /fapi/v1/algoOrder because a triggerPrice is given.
          type = order.type;
          conditional = true;
          base.triggerPrice = this.need(order.stopPrice, 'stopPrice', order).toFixed();
          break;
        case 'TRAILING_STOP_MARKET':
          // "New Algo Order (TRADE)": callbackRate (percent) and activatePrice. ccxt turns a
          // callbackRate param into type TRAILING_STOP_MARKET on POST /fapi/v1/algoOrder; its own
          // activation param is /fapi/v1/order's old name (activationPrice), which the algo service
          // does not read, so activatePrice goes out as a raw parameter.
          type = 'TRAILING_STOP_MARKET';
          conditional = true;
          base.callbackRate = this.need(order.callbackRate, 'callbackRate', order).toFixed();
          if (order.activationPrice !== undefined) base.activatePrice = order.activationPrice.toFixed();
          break;
        case 'STOP_LOSS_LIMIT':
          throw new VenueError('REJECTED', `STOP_LOSS_LIMIT is a spot order type; USD-M futures use STOP_MARKET (order ${order.clientOrderId})`);
      }
    }
    if (withPrice && price === undefined) throw new VenueError('REJECTED', `${order.type} needs a price (order ${order.clientOrderId})`);
    if (conditional) this.conditionalIds.add(order.clientOrderId);

    const res = await this.call('place', `place ${order.type} ${order.symbol} ${order.clientOrderId}`, () => this.ex.createOrder(symbol, type, order.side === 'BUY' ? 'buy' : 'sell', amount, withPrice ? price : undefined, base));
    return this.afterWrite(() => this.orderFrom(res.info, conditional ? 'algo' : 'regular', 'createOrder'));
  }

  async cancel(symbol: string, clientOrderId: string): Promise<VenueOrder> {
    const sym = this.unified(symbol);
    for (const kind of this.lookupOrder(clientOrderId)) {
      try {
        if (kind === 'algo') {
          await this.call('cancel', `cancel ${symbol} ${clientOrderId}`, () => this.ex.cancelOrder('', sym, { clientOrderId, trigger: true }));
          // The algo cancel answers only {algoId, code, msg}; the order itself comes from a lookup.
          const after = await this.fetchKind('algo', sym, clientOrderId);
          if (after) return after;
          throw new VenueError('UNKNOWN_ORDER', `order ${clientOrderId} vanished after its cancel`);
        }
        const res = await this.call('cancel', `cancel ${symbol} ${clientOrderId}`, () => this.ex.cancelOrder('', sym, { clientOrderId }));
        return this.afterWrite(() => this.orderFrom(res.info, 'regular', 'cancelOrder'));
      } catch (e) {
        if (!(e instanceof VenueError) || e.kind !== 'UNKNOWN_ORDER') throw e;
      }
    }
    // Binance answers "unknown order" for one that is already final, too: the contract returns it.
    const found = await this.fetchOrder(symbol, clientOrderId);
    if (found && FINAL.has(found.status)) return found;
    throw new VenueError('UNKNOWN_ORDER', found ? `cancel of ${clientOrderId} was refused though the order is ${found.status}` : `unknown order ${clientOrderId} on ${symbol}`, { code: -2011 });
  }

  /**
   * Spot OCO through POST /api/v3/orderList/oco ("New Order list - OCO
   * (TRADE)"; not the deprecated /api/v3/order/oco): for a SELL the take-
   * profit is the above leg (LIMIT_MAKER at abovePrice) and the stop the
   * below leg (STOP_LOSS_LIMIT at belowStopPrice / belowPrice, GTC); a BUY
   * swaps them. Resolves with [take-profit leg, stop leg].
   */
  async placeOco(o: PlaceOco): Promise<VenueOrder[]> {
    if (this.market !== 'spot') throw new VenueError('REJECTED', `OCO order lists are a spot feature (list ${o.listClientOrderId})`);
    this.unified(o.symbol);
    if (!o.quantity.gt(0)) throw new VenueError('REJECTED', `quantity must be positive, got ${o.quantity.toFixed()}`);
    const limitAt = o.side === 'SELL' ? 'above' : 'below';
    const stopAt = o.side === 'SELL' ? 'below' : 'above';
    const params: Record<string, string> = {
      symbol: o.symbol,
      side: o.side,
      quantity: o.quantity.toFixed(),
      listClientOrderId: o.listClientOrderId,
      [`${limitAt}Type`]: 'LIMIT_MAKER',
      [`${limitAt}ClientOrderId`]: o.limit.clientOrderId,
      [`${limitAt}Price`]: o.limit.price.toFixed(),
      [`${stopAt}Type`]: 'STOP_LOSS_LIMIT',
      [`${stopAt}ClientOrderId`]: o.stop.clientOrderId,
      [`${stopAt}StopPrice`]: o.stop.stopPrice.toFixed(),
      [`${stopAt}Price`]: o.stop.price.toFixed(),
      [`${stopAt}TimeInForce`]: 'GTC',
      newOrderRespType: 'RESULT',
    };
    const ex = this.ex as unknown as { privatePostOrderListOco(p: object): Promise<unknown> };
    const res = await this.call('place', `place OCO ${o.symbol} ${o.listClientOrderId}`, () => ex.privatePostOrderListOco(params));
    return this.afterWrite(() => this.legsOf(this.parse(orderListRaw, res, 'orderList/oco'), o.limit.clientOrderId));
  }

  /**
   * Spot: DELETE /api/v3/orderList ("Cancel Order list (TRADE)") by list
   * client id. Binance answers "unknown" for a list that already ended: then
   * its legs are looked up (GET /api/v3/orderList, then each leg) and
   * returned as they ended.
   */
  async cancelOrderList(symbol: string, listClientOrderId: string): Promise<VenueOrder[]> {
    if (this.market !== 'spot') throw new VenueError('REJECTED', `OCO order lists are a spot feature (list ${listClientOrderId})`);
    this.unified(symbol);
    const ex = this.ex as unknown as { privateDeleteOrderList(p: object): Promise<unknown>; privateGetOrderList(p: object): Promise<unknown> };
    try {
      const res = await this.call('cancel', `cancel OCO ${symbol} ${listClientOrderId}`, () => ex.privateDeleteOrderList({ symbol, listClientOrderId }));
      return this.afterWrite(() => this.legsOf(this.parse(orderListRaw, res, 'orderList cancel')));
    } catch (e) {
      if (!(e instanceof VenueError) || e.kind !== 'UNKNOWN_ORDER') throw e;
      let view: z.infer<typeof orderListViewRaw>;
      try {
        view = this.parse(orderListViewRaw, await this.call('read', `orderList ${listClientOrderId}`, () => ex.privateGetOrderList({ origClientOrderId: listClientOrderId })), 'orderList');
      } catch (lookup) {
        if (lookup instanceof VenueError && lookup.kind === 'UNKNOWN_ORDER') throw e;
        throw lookup;
      }
      this.listClientIds.set(view.orderListId, view.listClientOrderId);
      const legs: VenueOrder[] = [];
      for (const leg of view.orders) {
        const found = await this.fetchOrder(symbol, leg.clientOrderId);
        if (found) legs.push(found);
      }
      return legs;
    }
  }

  /** The legs of an order list answer, each with the list's ids; the leg `firstClientOrderId` (the take-profit) first. */
  private legsOf(raw: z.infer<typeof orderListRaw>, firstClientOrderId?: string): VenueOrder[] {
    this.listClientIds.set(raw.orderListId, raw.listClientOrderId);
    const legs = raw.orderReports.map((r) => ({ ...spotOrder(r), orderListId: raw.orderListId, listClientOrderId: raw.listClientOrderId }));
    return firstClientOrderId === undefined ? legs : [...legs.filter((l) => l.clientOrderId === firstClientOrderId), ...legs.filter((l) => l.clientOrderId !== firstClientOrderId)];
  }

  /** Adds the list's client id to a leg that names only its orderListId, when it is known. */
  private withListClientId(o: VenueOrder): VenueOrder {
    const cid = o.orderListId === undefined || o.listClientOrderId !== undefined ? undefined : this.listClientIds.get(o.orderListId);
    return cid === undefined ? o : { ...o, listClientOrderId: cid };
  }

  async fetchOrder(symbol: string, clientOrderId: string): Promise<VenueOrder | undefined> {
    const sym = this.unified(symbol);
    for (const kind of this.lookupOrder(clientOrderId)) {
      const o = await this.fetchKind(kind, sym, clientOrderId);
      if (o) return o;
    }
    return undefined;
  }

  async openOrders(symbol?: string): Promise<VenueOrder[]> {
    const sym = symbol === undefined ? undefined : this.unified(symbol);
    const regular = this.call('read', 'openOrders', () => this.ex.fetchOpenOrders(sym));
    const algo = this.market === 'futures' ? this.call('read', 'openAlgoOrders', () => this.ex.fetchOpenOrders(sym, undefined, undefined, { trigger: true })) : Promise.resolve([]);
    const [r, a] = await Promise.all([regular, algo]);
    return [...r.map((x) => this.orderFrom(x.info, 'regular', 'openOrders')), ...a.map((x) => this.orderFrom(x.info, 'algo', 'openAlgoOrders'))];
  }

  async fills(symbol: string, since?: number): Promise<VenueFill[]> {
    const sym = this.unified(symbol);
    const byId = new Map<string, VenueFill>();
    const take = (rows: Array<{ info: unknown }>): VenueFill[] => {
      const parsed = rows.map((t) => this.fillFrom(t.info));
      for (const f of parsed) byId.set(f.tradeId, f);
      return parsed;
    };
    const PAGE = 1000;
    if (since === undefined) {
      take(await this.call('read', 'myTrades', () => this.ex.fetchMyTrades(sym, undefined, PAGE)));
    } else {
      // Binance caps a trade query's time range (spot 24 h, futures 7 days), so walk
      // the range in windows; within a window, a full page continues from its last time.
      const span = this.market === 'spot' ? 24 * 3_600_000 - 1 : 7 * 86_400_000 - 1;
      // A minute of slack past the server's now: a fill stamped this instant must not be cut off.
      const end = this.serverNow() + 60_000;
      let start = since;
      while (start <= end) {
        const windowEnd = Math.min(start + span, end);
        const page = take(await this.call('read', 'myTrades', () => this.ex.fetchMyTrades(sym, start, PAGE, { endTime: windowEnd })));
        if (page.length >= PAGE) {
          const last = Math.max(...page.map((f) => f.time));
          // Same-millisecond trades are deduplicated by id; always move forward.
          start = last > start ? last : start + 1;
        } else {
          start = windowEnd + 1;
        }
      }
    }
    return [...byId.values()].filter((f) => since === undefined || f.time >= since).sort((a, b) => a.time - b.time || compareIds(a.tradeId, b.tradeId));
  }

  async positions(symbols?: readonly string[]): Promise<VenuePosition[]> {
    if (this.market === 'spot') {
      const bal = await this.call('read', 'account', () => this.ex.fetchBalance());
      const raw = this.parse(spotAccountRaw, bal.info, 'account');
      const held = new Map(raw.balances.map((b) => [b.asset, dec(b.free).plus(b.locked)]));
      const ids = symbols ?? [...this.baseOf.keys()];
      const out: VenuePosition[] = [];
      for (const s of ids) {
        const baseAsset = this.baseOf.get(s);
        if (baseAsset === undefined) throw new VenueError('REJECTED', `unknown symbol ${s} on binance spot`);
        const qty = held.get(baseAsset) ?? ZERO;
        if (!qty.isZero()) out.push({ symbol: s, positionSide: 'BOTH', quantity: qty });
      }
      return out;
    }
    const unified = symbols?.map((s) => this.unified(s));
    const rows = await this.call('read', 'positions', () => this.ex.fetchPositions(unified));
    const out: VenuePosition[] = [];
    for (const r of rows) {
      const p = this.parse(positionRaw, r.info, 'positionRisk');
      const qty = dec(p.positionAmt);
      if (qty.isZero() || (symbols && !symbols.includes(p.symbol))) continue;
      const lev = p.leverage === undefined ? undefined : Number(p.leverage);
      out.push({
        symbol: p.symbol,
        positionSide: p.positionSide,
        quantity: qty,
        entryPrice: nonZero(p.entryPrice),
        markPrice: nonZero(p.markPrice),
        unrealizedPnl: p.unRealizedProfit === undefined ? undefined : dec(p.unRealizedProfit),
        liquidationPrice: nonZero(p.liquidationPrice),
        leverage: lev !== undefined && Number.isFinite(lev) ? lev : undefined,
      });
    }
    return out;
  }

  async account(): Promise<VenueAccount> {
    const bal = await this.call('read', 'account', () => this.ex.fetchBalance());
    if (this.market === 'spot') {
      const raw = this.parse(spotAccountRaw, bal.info, 'account');
      return { balances: raw.balances.map((b) => ({ asset: b.asset, free: dec(b.free), locked: dec(b.locked) })).filter((b) => !b.free.isZero() || !b.locked.isZero()) };
    }
    const raw = this.parse(futuresAccountRaw, bal.info, 'account');
    // USD-M has no free/locked split: balances are wallet balances per margin asset;
    // walletBalance / availableBalance say how much margin there is.
    const balances: VenueBalance[] = raw.assets.map((a) => ({ asset: a.asset, free: dec(a.walletBalance), locked: ZERO })).filter((b) => !b.free.isZero());
    return { balances, walletBalance: dec(raw.totalWalletBalance), availableBalance: dec(raw.availableBalance) };
  }

  // ------------------------------------------------------------- internals

  private buildClient(): Client {
    const o = this.o;
    const common = {
      spotBase: o.spotBase,
      futuresBase: o.futuresBase,
      apiKey: reveal(o.apiKey),
      secret: reveal(o.secret),
      enableRateLimit: o.enableRateLimit ?? true,
      timeoutMs: o.timeoutMs ?? DEFAULTS.timeoutMs,
      recvWindowMs: o.recvWindowMs ?? DEFAULTS.recvWindowMs,
    };
    const ex = (o.market === 'spot' ? createSpotClient(common) : createFuturesClient(common)) as unknown as Client;
    // openOrders() without a symbol is a deliberate, rare call (reconciliation).
    (ex.options as Record<string, unknown>).warnOnFetchOpenOrdersWithoutSymbol = false;
    this.hook(ex);
    return ex;
  }

  /**
   * Three hooks into ccxt's request path:
   *  - nonce(): the timestamp ccxt signs with (binance.js: milliseconds() -
   *    options.timeDifference) becomes our clock plus the measured offset, so
   *    the injected clock and the offset are the only sources of time;
   *  - handleErrors(): runs for every response with its status and headers:
   *    the usage headers are recorded, and an error it raises is tagged with
   *    the status, Retry-After and Binance's code, read from this very
   *    response (last_response_headers is shared by concurrent calls);
   *  - handleHttpStatusCode(): the same tag for errors raised on the status alone;
   *  - fetch(): notes when a /time request leaves (after ccxt's throttle), so
   *    the clock offset is measured over the network round trip only.
   */
  private hook(ex: Client): void {
    const raw = ex as unknown as {
      nonce: () => number;
      handleErrors: (code: number, reason: string, url: string, method: string, headers: Record<string, unknown>, body: string, response: unknown, rh: unknown, rb: unknown) => unknown;
      handleHttpStatusCode: (code: number, reason: string, url: string, method: string, body: string) => unknown;
      fetch: (url: string, method?: string, headers?: unknown, body?: unknown) => Promise<unknown>;
    };
    raw.nonce = () => this.serverNow();
    const fetch = raw.fetch.bind(ex);
    raw.fetch = (url, method, headers, body) => {
      if (/\/time$/.test(url.split('?')[0]!)) this.timeSentAt = this.clock.now();
      return fetch(url, method, headers, body);
    };
    const handleErrors = raw.handleErrors.bind(ex);
    raw.handleErrors = (code, reason, url, method, headers, body, response, rh, rb) => {
      this.recordUsage(headers);
      try {
        return handleErrors(code, reason, url, method, headers, body, response, rh, rb);
      } catch (e) {
        if (typeof e === 'object' && e !== null) this.tags.set(e, { status: code, headers, ...binanceBody(body) });
        throw e;
      }
    };
    const handleStatus = raw.handleHttpStatusCode.bind(ex);
    raw.handleHttpStatusCode = (code, reason, url, method, body) => {
      try {
        return handleStatus(code, reason, url, method, body);
      } catch (e) {
        if (typeof e === 'object' && e !== null && !this.tags.has(e)) this.tags.set(e, { status: code, ...binanceBody(body) });
        throw e;
      }
    };
  }

  private recordUsage(headers: Record<string, unknown>): void {
    const num = (name: string): number | undefined => {
      const v = header(headers, name);
      const n = v === undefined ? NaN : Number(v);
      return Number.isFinite(n) ? n : undefined;
    };
    const weight = num('X-MBX-USED-WEIGHT-1M');
    const c10s = num('X-MBX-ORDER-COUNT-10S');
    const c1d = num('X-MBX-ORDER-COUNT-1D');
    const c1m = num('X-MBX-ORDER-COUNT-1M');
    if (weight === undefined && c10s === undefined && c1d === undefined && c1m === undefined) return;
    // Order counts come only on placements: keep the last known ones across other calls.
    this.usageView = {
      ...this.usageView,
      ...(weight !== undefined ? { usedWeight1m: weight } : {}),
      ...(c10s !== undefined ? { orderCount10s: c10s } : {}),
      ...(c1d !== undefined ? { orderCount1d: c1d } : {}),
      ...(c1m !== undefined ? { orderCount1m: c1m } : {}),
      updatedAt: this.clock.now(),
    };
  }

  /**
   * Runs one ccxt call; any failure comes out as a VenueError.
   *
   * After a 429 or a 418 every call (reads and cancels too, whoever makes
   * them: reconcile passes, lookups, a kill switch) fails here without being
   * sent until Retry-After, or the ban's stated end, has passed. Binance bans
   * an IP that keeps calling while limited, and a ban (minutes to days) is
   * far worse than the wait; the error says when sending resumes.
   */
  private async call<T>(op: Op, what: string, fn: () => Promise<T>): Promise<T> {
    const h = this.hold;
    if (h) {
      const left = h.until - this.clock.now();
      if (left > 0) {
        throw new VenueError(h.kind, `${what}: not sent: ${h.kind === 'BANNED' ? 'the IP is banned' : 'rate limited'} until ${new Date(h.until).toISOString()} (${h.reason})`, { ...(h.code !== undefined ? { code: h.code } : {}), retryAfterMs: left });
      }
      this.hold = undefined;
    }
    const breaker = this.o.breaker;
    if (breaker) {
      try {
        breaker.acquire();
      } catch (e) {
        if (!(e instanceof CircuitOpenError)) throw e;
        // Not sent, so a write needs no lookup: RETRYABLE says exactly that.
        throw new VenueError('RETRYABLE', `${what}: not sent: ${e.message}`, { retryAfterMs: Math.max(0, e.retryAt - this.clock.now()) });
      }
    }
    try {
      const out = await fn();
      breaker?.success();
      return out;
    } catch (e) {
      const ve = this.classify(e, op, what);
      if (breaker) {
        if (ve.kind === 'RETRYABLE' || ve.kind === 'AMBIGUOUS') breaker.failure(ve);
        else breaker.success();
      }
      this.log.debug({ kind: ve.kind, code: ve.details.code, what }, ve.message);
      if ((ve.kind === 'RATE_LIMITED' || ve.kind === 'BANNED') && ve.details.retryAfterMs !== undefined) {
        const until = this.clock.now() + ve.details.retryAfterMs;
        if (!this.hold || until > this.hold.until) {
          this.hold = { until, kind: ve.kind, ...(ve.details.code !== undefined ? { code: ve.details.code } : {}), reason: `${what} answered ${ve.kind === 'BANNED' ? '418' : '429'}` };
          this.log.warn({ until: new Date(until).toISOString(), kind: ve.kind, what }, `${ve.kind === 'BANNED' ? 'IP banned' : 'rate limited'} by binance: nothing is sent until ${new Date(until).toISOString()}`);
        }
      }
      throw ve;
    }
  }

  private classify(e: unknown, op: Op, what: string): VenueError {
    if (e instanceof VenueError) return e;
    const tag = typeof e === 'object' && e !== null ? this.tags.get(e) : undefined;
    const text = e instanceof Error ? e.message : String(e);
    const code = tag?.code ?? codeFromText(text);
    const status = tag?.status;
    const write = op !== 'read';
    const make = (kind: VenueErrorKind, extra: { retryAfterMs?: number } = {}): VenueError =>
      new VenueError(kind, `${what}: ${kind}${status !== undefined ? ` (HTTP ${status})` : ''}: ${tag?.msg ?? text}`, { ...(code !== undefined ? { code } : {}), ...extra, cause: e });
    const retryAfter = (): number | undefined => {
      const h = header(tag?.headers, 'Retry-After');
      const s = h === undefined ? NaN : Number(h);
      return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined;
    };

    if (status === 418 || /IP banned until/i.test(text)) {
      const until = /banned until (\d+)/i.exec(tag?.msg ?? text);
      const fromMsg = until ? Math.max(0, Number(until[1]) - this.serverNow()) : undefined;
      return make('BANNED', { retryAfterMs: retryAfter() ?? fromMsg ?? DEFAULTS.rateLimitedMs });
    }
    if (status === 429 || code === -1003 || e instanceof ccxt.RateLimitExceeded) return make('RATE_LIMITED', { retryAfterMs: retryAfter() ?? DEFAULTS.rateLimitedMs });
    if (code === -1021 || e instanceof ccxt.InvalidNonce) return make('CLOCK_SKEW');
    if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || e instanceof ccxt.AuthenticationError) return make('AUTH');
    if (code === -4116 || (code === -2010 && /duplicate/i.test(tag?.msg ?? text)) || e instanceof ccxt.DuplicateOrderId) return make('DUPLICATE');
    if ((code !== undefined && UNKNOWN_ORDER_CODES.has(code)) || e instanceof ccxt.OrderNotFound) return make('UNKNOWN_ORDER');
    // -1008: the server shed the request before processing it.
    if (code === -1008) return make('RETRYABLE');
    // Binance: a 5xx or one of these codes means the outcome is unknown; it may have executed.
    if ((status !== undefined && status >= 500) || (code !== undefined && UNKNOWN_OUTCOME_CODES.has(code)) || e instanceof ccxt.RequestTimeout || e instanceof ccxt.ExchangeNotAvailable) {
      return make(write ? 'AMBIGUOUS' : 'RETRYABLE');
    }
    if (e instanceof ccxt.NetworkError) return make(write && !NOT_SENT.test(text) ? 'AMBIGUOUS' : 'RETRYABLE');
    // 403: a WAF limit, not a verdict on the request.
    if (status === 403) return make('RATE_LIMITED', { retryAfterMs: retryAfter() ?? DEFAULTS.rateLimitedMs });
    if ((status !== undefined && status >= 400) || e instanceof ccxt.InvalidOrder || e instanceof ccxt.InsufficientFunds || e instanceof ccxt.BadRequest || e instanceof ccxt.ArgumentsRequired || e instanceof ccxt.NotSupported || e instanceof ccxt.OperationRejected) {
      return make('REJECTED');
    }
    // Anything else (an unparseable answer, a bug): for a write we cannot know what happened.
    return make(write ? 'AMBIGUOUS' : 'RETRYABLE');
  }

  private parse<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
    const r = schema.safeParse(raw);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    throw new VenueError('RETRYABLE', `malformed ${what} from binance: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`, { cause: r.error });
  }

  /** Reads the answer to a write that succeeded: if it cannot be read, the write still happened. */
  private afterWrite<T>(read: () => T): T {
    try {
      return read();
    } catch (e) {
      throw new VenueError('AMBIGUOUS', `the request went through but its answer is unreadable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  private orderFrom(raw: unknown, kind: 'regular' | 'algo', what: string): VenueOrder {
    if (kind === 'algo') return algoOrder(this.parse(algoOrderRaw, raw, what));
    return this.market === 'spot' ? this.withListClientId(spotOrder(this.parse(spotOrderRaw, raw, what))) : futuresOrder(this.parse(futuresOrderRaw, raw, what));
  }

  private fillFrom(raw: unknown): VenueFill {
    return this.market === 'spot' ? spotFill(this.parse(spotTradeRaw, raw, 'myTrades')) : futuresFill(this.parse(futuresTradeRaw, raw, 'userTrades'));
  }

  /** Where to look for an order: futures conditional orders live on the algo service. */
  private lookupOrder(clientOrderId: string): Array<'regular' | 'algo'> {
    if (this.market === 'spot') return ['regular'];
    return this.conditionalIds.has(clientOrderId) ? ['algo', 'regular'] : ['regular', 'algo'];
  }

  private async fetchKind(kind: 'regular' | 'algo', sym: string, clientOrderId: string): Promise<VenueOrder | undefined> {
    try {
      if (kind === 'regular') {
        const r = await this.call('read', `fetchOrder ${clientOrderId}`, () => this.ex.fetchOrder('', sym, { clientOrderId }));
        return this.orderFrom(r.info, 'regular', 'fetchOrder');
      }
      const r = await this.call('read', `fetchAlgoOrder ${clientOrderId}`, () => this.ex.fetchOrder('', sym, { clientOrderId, trigger: true }));
      const algo = this.parse(algoOrderRaw, r.info, 'algoOrder');
      if (algo.actualOrderId !== undefined && (algo.algoStatus === 'TRIGGERED' || algo.algoStatus === 'FINISHED')) {
        // Triggered: the regular order it became has the real status, fills and price.
        const actualId = algo.actualOrderId;
        try {
          const actual = await this.call('read', `fetchOrder #${actualId}`, () => this.ex.fetchOrder(actualId, sym));
          return { ...this.orderFrom(actual.info, 'regular', 'fetchOrder'), clientOrderId: algo.clientAlgoId, type: algo.orderType };
        } catch (e) {
          if (!(e instanceof VenueError) || e.kind !== 'UNKNOWN_ORDER') throw e;
        }
      }
      return algoOrder(algo);
    } catch (e) {
      if (e instanceof VenueError && e.kind === 'UNKNOWN_ORDER') return undefined;
      throw e;
    }
  }

  private need(v: Dec | undefined, field: string, order: PlaceOrder): Dec {
    if (v === undefined) throw new VenueError('REJECTED', `${order.type} needs ${field} (order ${order.clientOrderId})`);
    return v;
  }

  private ccxtMarkets(): Array<{ id: string; symbol: string; base: string; info: unknown; baseId?: string }> {
    const all = Object.values(this.ex.markets ?? {}) as Array<{ id: string; symbol: string; base: string; baseId?: string; spot?: boolean; swap?: boolean; linear?: boolean; info: { contractType?: string; baseAsset?: string } }>;
    // Futures: USD-M perpetuals only (quarterlies are not traded by this bot).
    return all.filter((m) => (this.market === 'spot' ? m.spot === true : m.swap === true && m.linear === true && (m.info.contractType ?? 'PERPETUAL') === 'PERPETUAL'));
  }

  private indexMarkets(): void {
    const toCcxt = new Map<string, string>();
    const baseOf = new Map<string, string>();
    for (const m of this.ccxtMarkets()) {
      toCcxt.set(m.id, m.symbol);
      baseOf.set(m.id, (m.info as { baseAsset?: string }).baseAsset ?? m.baseId ?? m.base);
    }
    this.toCcxt = toCcxt;
    this.baseOf = baseOf;
  }

  private unified(symbol: string): string {
    // Calling before start() is a bug in the caller, not a venue failure.
    if (this.toCcxt.size === 0) throw new TraderError('INVARIANT_BROKEN', 'binance venue not started: call start() first');
    const s = this.toCcxt.get(symbol);
    if (s === undefined) throw new VenueError('REJECTED', `unknown symbol ${symbol} on binance ${this.market}`);
    return s;
  }

  private emit(e: VenueEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        // A listener's bug must not break the stream or the other listeners.
        this.log.error({ err }, 'venue event listener threw');
      }
    }
  }

  // ------------------------------------------------------------ user data

  private streamDeps(): UserStreamDeps {
    const futures = this.market === 'futures';
    const self = this;
    let stream: UserStream | undefined;
    let keepAlive: TimerHandle | undefined;
    const pending = new Map<string, { resolve: (r: z.infer<typeof wsApiResponse>) => void; reject: (e: Error) => void }>();
    let nextId = 1;

    const spotSubscribe = async (ws: WebSocket): Promise<void> => {
      const request = (): Promise<z.infer<typeof wsApiResponse>> => {
        const params: Record<string, string | number> = { apiKey: reveal(this.o.apiKey), recvWindow: this.o.recvWindowMs ?? DEFAULTS.recvWindowMs, timestamp: this.serverNow() };
        // The WebSocket API signs the parameters sorted by name, as key=value joined by &.
        const payload = Object.keys(params)
          .sort()
          .map((k) => `${k}=${params[k]}`)
          .join('&');
        const signature = createHmac('sha256', reveal(this.o.secret)).update(payload).digest('hex');
        const reqId = `sub-${nextId++}`;
        return new Promise((resolve, reject) => {
          const timer = this.clock.after(this.o.timeoutMs ?? DEFAULTS.timeoutMs, () => {
            pending.delete(reqId);
            reject(new VenueError('RETRYABLE', 'userDataStream.subscribe.signature: no answer'));
          });
          pending.set(reqId, {
            resolve: (r) => (timer.cancel(), resolve(r)),
            reject: (e) => (timer.cancel(), reject(e)),
          });
          ws.send(JSON.stringify({ id: reqId, method: 'userDataStream.subscribe.signature', params: { ...params, signature } }));
        });
      };
      let res = await request();
      if (res.error?.code === -1021) {
        // Our clock drifted while the stream was down: measure again, then retry once.
        await this.resyncClock();
        res = await request();
      }
      if (res.error) {
        const kind: VenueErrorKind = AUTH_CODES.has(res.error.code) ? 'AUTH' : res.error.code === -1021 ? 'CLOCK_SKEW' : 'RETRYABLE';
        throw new VenueError(kind, `userDataStream.subscribe.signature: ${res.error.msg}`, { code: res.error.code });
      }
    };

    const onSpotFrame = (msg: Record<string, unknown>, text: string): void => {
      if (msg.id !== undefined && msg.id !== null && 'status' in msg) {
        const r = wsApiResponse.safeParse(msg);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        const p = pending.get(String(r.data.id));
        if (p) {
          pending.delete(String(r.data.id));
          p.resolve(r.data);
        }
        return;
      }
      const event = msg.event as { e?: unknown } | undefined;
      if (!event || typeof event !== 'object') return stream!.malformedFrame(text, 'neither a response nor an event');
      switch (event.e) {
        case 'executionReport': {
          const r = executionReport.safeParse(event);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          const ev = fromExecutionReport(r.data);
          return this.emit(ev.type === 'order' ? { ...ev, order: this.withListClientId(ev.order) } : ev);
        }
        case 'listStatus': {
          const r = listStatus.safeParse(event);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          // Not an event of the port: it names the list, which later executionReports of its legs do not.
          this.listClientIds.set(r.data.g, r.data.C);
          return;
        }
        case 'outboundAccountPosition': {
          const r = outboundAccountPosition.safeParse(event);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          return this.emit({ type: 'account', account: { balances: r.data.B.map((b) => ({ asset: b.a, free: dec(b.f), locked: dec(b.l) })) } });
        }
        case 'eventStreamTerminated':
          // The subscription ended (session logged out): connect and subscribe again.
          return stream!.restart('eventStreamTerminated');
        default:
          // balanceUpdate, externalLockUpdate: nothing the venue port carries.
          return;
      }
    };

    const onFuturesFrame = (msg: Record<string, unknown>, text: string): void => {
      switch (msg.e) {
        case 'ORDER_TRADE_UPDATE': {
          const r = futuresOrderUpdate.safeParse(msg);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          return this.emit(fromOrderTradeUpdate(r.data));
        }
        case 'ACCOUNT_UPDATE': {
          const r = futuresAccountUpdate.safeParse(msg);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          if (r.data.a.B.length === 0) return;
          const balances = r.data.a.B.map((b) => ({ asset: b.a, free: dec(b.wb), locked: ZERO }));
          const usdt = r.data.a.B.find((b) => b.a === 'USDT') ?? r.data.a.B[0]!;
          // Funding moves the wallet with no fill: its balance change (bc) is what the cash ledger adds.
          const funding = r.data.a.m === 'FUNDING_FEE' && usdt.bc !== undefined;
          return this.emit({ type: 'account', account: { balances, walletBalance: dec(usdt.wb), ...(funding ? { reason: 'FUNDING_FEE' as const, balanceChange: dec(usdt.bc!) } : {}) } });
        }
        case 'ALGO_UPDATE': {
          const r = algoUpdate.safeParse(msg);
          if (!r.success) return stream!.malformedFrame(text, r.error);
          const ev = fromAlgoUpdate(r.data);
          // Triggered / finished: the ORDER_TRADE_UPDATE of the order it became tells the rest.
          if (ev) this.emit(ev);
          return;
        }
        case 'listenKeyExpired':
          return stream!.restart('listenKey expired');
        default:
          // MARGIN_CALL, ACCOUNT_CONFIG_UPDATE, TRADE_LITE, ...: not part of the port.
          return;
      }
    };

    return {
      clock: this.clock,
      log: this.log,
      staleMs: this.o.timers?.streamStaleMs ?? DEFAULTS.streamStaleMs,
      backoff: { baseMs: this.o.reconnect?.baseMs ?? DEFAULTS.reconnectBaseMs, capMs: this.o.reconnect?.capMs ?? DEFAULTS.reconnectCapMs, random: this.o.reconnect?.random ?? Math.random },
      timeoutMs: this.o.timeoutMs ?? DEFAULTS.timeoutMs,
      bind(s) {
        stream = s;
      },
      async url() {
        if (!futures) return self.o.wsBase;
        const res = await self.call('read', 'listenKey', () => (self.ex as unknown as { fapiPrivatePostListenKey(): Promise<unknown> }).fapiPrivatePostListenKey());
        const key = self.parse(listenKeyRaw, res, 'listenKey').listenKey;
        return `${self.o.wsBase.replace(/\/$/, '')}/ws/${key}`;
      },
      async opened(ws) {
        if (!futures) await spotSubscribe(ws);
      },
      frame(msg, text) {
        if (futures) onFuturesFrame(msg, text);
        else onSpotFrame(msg, text);
      },
      closed() {
        for (const p of pending.values()) p.reject(new VenueError('RETRYABLE', 'user-data connection closed'));
        pending.clear();
      },
      status(s, detail) {
        self.emit({ type: 'stream', status: s, ...(detail !== undefined ? { detail } : {}) });
      },
      started() {
        if (!futures) return;
        keepAlive = self.clock.every(self.o.timers?.listenKeyKeepAliveMs ?? DEFAULTS.listenKeyKeepAliveMs, () => {
          self
            .call('read', 'listenKey keepalive', () => (self.ex as unknown as { fapiPrivatePutListenKey(): Promise<unknown> }).fapiPrivatePutListenKey())
            .then(() => stream?.keptAlive())
            .catch((e: unknown) => {
              self.log.warn({ err: e }, 'listenKey keepalive failed');
              // -1125: the key is gone; a new one (and a new connection) is the only way back.
              if (e instanceof VenueError && e.details.code === -1125) stream?.restart('listenKey no longer exists');
            });
        });
      },
      stopped() {
        keepAlive?.cancel();
        keepAlive = undefined;
      },
    };
  }
}

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function codeFromText(text: string): number | undefined {
  const m = /"code"\s*:\s*(-?\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function fromOrderTradeUpdate(ev: z.infer<typeof futuresOrderUpdate>): VenueEvent {
  const o = ev.o;
  const order: VenueOrder = {
    symbol: o.s,
    clientOrderId: o.c,
    exchangeOrderId: o.i,
    side: o.S,
    type: o.ot ?? o.o,
    status: o.X,
    quantity: dec(o.q),
    filledQuantity: dec(o.z),
    price: nonZero(o.p),
    stopPrice: nonZero(o.sp),
    averagePrice: nonZero(o.ap),
    reduceOnly: o.R,
    updateTime: o.T,
    ...(o.ps !== undefined ? { positionSide: o.ps } : {}),
  };
  if (o.x !== 'TRADE') return { type: 'order', order };
  const fill: VenueFill = {
    symbol: o.s,
    tradeId: o.t,
    clientOrderId: o.c,
    exchangeOrderId: o.i,
    side: o.S,
    price: dec(o.L),
    quantity: dec(o.l),
    fee: o.n === undefined ? ZERO : dec(o.n),
    feeAsset: o.N ?? 'USDT',
    isMaker: o.m,
    realizedPnl: o.rp === undefined ? undefined : dec(o.rp),
    time: o.T,
  };
  return { type: 'order', order, fill };
}

function fromAlgoUpdate(ev: z.infer<typeof algoUpdate>): VenueEvent | undefined {
  const o = ev.o;
  const map: Partial<Record<(typeof ALGO_STATUSES)[number], OrderStatus>> = { NEW: 'NEW', CANCELED: 'CANCELED', EXPIRED: 'EXPIRED', REJECTED: 'REJECTED' };
  const st = map[o.X];
  if (st === undefined) return undefined;
  return {
    type: 'order',
    order: { symbol: o.s, clientOrderId: o.caid, exchangeOrderId: o.aid, side: o.S, type: o.o, status: st, quantity: dec(o.q), filledQuantity: ZERO, stopPrice: nonZero(o.tp), reduceOnly: o.R, updateTime: ev.T ?? ev.E, ...(o.ps !== undefined ? { positionSide: o.ps } : {}) },
  };
}

function fromExecutionReport(ev: z.infer<typeof executionReport>): VenueEvent {
  const filled = dec(ev.z);
  const order: VenueOrder = {
    symbol: ev.s,
    // On a cancel, c is the cancel request's id and C the order's own.
    clientOrderId: ev.x === 'CANCELED' && ev.C ? ev.C : ev.c,
    exchangeOrderId: ev.i,
    side: ev.S,
    type: ev.o,
    status: ev.X,
    quantity: dec(ev.q),
    filledQuantity: filled,
    price: nonZero(ev.p),
    stopPrice: nonZero(ev.P),
    averagePrice: filled.isZero() ? undefined : dec(ev.Z).div(filled),
    reduceOnly: false,
    updateTime: ev.T,
    ...(ev.g !== undefined && ev.g !== '-1' ? { orderListId: ev.g } : {}),
  };
  if (ev.x !== 'TRADE') return { type: 'order', order };
  const fill: VenueFill = {
    symbol: ev.s,
    tradeId: ev.t,
    clientOrderId: order.clientOrderId,
    exchangeOrderId: ev.i,
    side: ev.S as OrderSide,
    price: dec(ev.L),
    quantity: dec(ev.l),
    fee: ev.n ? dec(ev.n) : ZERO,
    feeAsset: ev.N ?? '',
    isMaker: ev.m,
    time: ev.T,
  };
  return { type: 'order', order, fill };
}

// ----------------------------------------------------- the user-data socket

interface UserStreamDeps {
  clock: Clock;
  log: Logger;
  staleMs: number;
  backoff: { baseMs: number; capMs: number; random: () => number };
  timeoutMs: number;
  bind(stream: UserStream): void;
  /** The URL to connect to (futures: creates or extends the listenKey first). */
  url(): Promise<string>;
  /** After the socket opened (spot: subscribe and await the answer). */
  opened(ws: WebSocket): Promise<void>;
  frame(msg: Record<string, unknown>, text: string): void;
  /** The socket closed: fail whatever waited on it. */
  closed(): void;
  status(s: 'connected' | 'disconnected' | 'reconnected', detail?: string): void;
  started(): void;
  stopped(): void;
}

/**
 * One user-data WebSocket that stays up: reconnects with backoff (full
 * jitter), reports disconnected once per outage and reconnected when back,
 * forces a reconnect when nothing (not even a ping) arrived for staleMs,
 * and can be restarted at once (listenKey expired).
 */
class UserStream {
  connected = false;
  reconnects = 0;
  malformed = 0;
  lastFrameAt: number | undefined;
  lastKeepAliveAt: number | undefined;
  private ws: WebSocket | undefined;
  private stopped = true;
  private everConnected = false;
  private down = false;
  private attempt = 0;
  /** Bumped by stop() and restart(): a connect that started before is abandoned. */
  private generation = 0;
  private retry: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;

  constructor(private readonly d: UserStreamDeps) {
    d.bind(this);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect(this.generation);
    // stop() during the first connect: set nothing up.
    if (this.stopped) return;
    this.d.started();
    if (this.d.staleMs > 0) {
      this.watchdog = this.d.clock.every(Math.max(1000, Math.min(60_000, Math.floor(this.d.staleMs / 4))), () => {
        const last = this.lastFrameAt;
        if (this.connected && last !== undefined && this.d.clock.now() - last > this.d.staleMs) this.restart(`no frame or ping for ${this.d.staleMs} ms`);
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.retry?.cancel();
    this.retry = undefined;
    this.watchdog?.cancel();
    this.watchdog = undefined;
    this.d.stopped();
    const ws = this.ws;
    this.ws = undefined;
    this.connected = false;
    if (ws) await terminate(ws);
    this.d.closed();
  }

  /** Drops the connection and connects anew without waiting (a planned replacement). */
  restart(reason: string): void {
    if (this.stopped) return;
    this.generation++;
    this.retry?.cancel();
    this.retry = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws) void terminate(ws);
    this.d.closed();
    this.lost(reason, 0);
  }

  keptAlive(): void {
    this.lastKeepAliveAt = this.d.clock.now();
  }

  malformedFrame(text: string, problem: unknown): void {
    this.malformed++;
    const detail = problem instanceof z.ZodError ? problem.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) : String(problem);
    this.d.log.warn({ frame: text.slice(0, 300), problem: detail, malformed: this.malformed }, 'dropping a malformed user-data frame');
  }

  private lost(reason: string, delayMs?: number): void {
    this.connected = false;
    if (this.stopped) return;
    if (!this.down) {
      this.down = true;
      this.d.log.warn({ reason }, 'user-data stream disconnected');
      this.d.status('disconnected', reason);
    }
    if (this.retry) return;
    const delay = delayMs ?? backoffDelay(this.attempt++, this.d.backoff);
    const attempt = (): void => {
      this.retry = undefined;
      const gen = this.generation;
      this.connect(gen).catch((e: unknown) => {
        if (gen !== this.generation || this.stopped) return;
        this.d.log.warn({ err: e, attempt: this.attempt }, 'user-data reconnect failed');
        this.lost(e instanceof Error ? e.message : String(e));
      });
    };
    // A planned replacement goes at once (no timer, so it does not wait on a test clock either).
    if (delay <= 0) attempt();
    else this.retry = this.d.clock.after(delay, attempt);
  }

  /** One connection attempt; returns quietly when stop() or restart() made it obsolete. */
  private async connect(gen: number): Promise<void> {
    const url = await this.d.url();
    if (gen !== this.generation) return;
    const ws = await open(url, this.d.clock, this.d.timeoutMs);
    if (gen !== this.generation) {
      void terminate(ws);
      return;
    }
    this.ws = ws;
    let live = false;
    ws.on('message', (data) => {
      if (this.ws === ws) this.onMessage(data.toString());
    });
    ws.on('ping', () => {
      if (this.ws === ws) this.lastFrameAt = this.d.clock.now();
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.connected = false;
      this.d.closed();
      // A socket that closes while still subscribing fails its connect(), which reports it.
      if (live) this.lost(`closed by the server (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`);
    });
    try {
      await this.d.opened(ws);
    } catch (e) {
      if (this.ws === ws) this.ws = undefined;
      void terminate(ws);
      throw e;
    }
    if (gen !== this.generation || this.ws !== ws) {
      if (this.ws === ws) this.ws = undefined;
      void terminate(ws);
      return;
    }
    live = true;
    this.connected = true;
    this.attempt = 0;
    this.lastFrameAt = this.d.clock.now();
    if (!this.everConnected) {
      this.everConnected = true;
      this.d.status('connected');
    } else if (this.down) {
      this.down = false;
      this.reconnects++;
      this.d.log.info({ reconnects: this.reconnects }, 'user-data stream reconnected');
      this.d.status('reconnected', 'events may have been missed while down: reconcile');
    }
  }

  private onMessage(text: string): void {
    this.lastFrameAt = this.d.clock.now();
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.malformedFrame(text, 'not JSON');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.malformedFrame(text, 'not a JSON object');
    try {
      this.d.frame(msg as Record<string, unknown>, text);
    } catch (e) {
      // A parse that passed zod but still broke (e.g. an odd decimal) is dropped like any bad frame.
      this.malformedFrame(text, e instanceof Error ? e.message : String(e));
    }
  }
}

function open(url: string, clock: Clock, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    // Always listen for errors: an unhandled 'error' event would crash the process.
    ws.on('error', (e) => {
      if (ws.readyState !== WebSocket.OPEN) done(e);
    });
    const timer = clock.after(timeoutMs, () => done(new Error(`user-data connect timed out after ${timeoutMs} ms`)));
    let settled = false;
    function done(e?: Error): void {
      if (settled) return;
      settled = true;
      timer.cancel();
      if (e) {
        void terminate(ws);
        reject(new VenueError('RETRYABLE', `user-data connect to ${url.replace(/\/ws\/[^/?]+$/, '/ws/<listenKey>')} failed: ${e.message}`, { cause: e }));
      } else resolve(ws);
    }
    ws.once('open', () => done());
    ws.once('close', (code) => done(new Error(`closed before open (code ${code})`)));
  });
}

/** Closes a socket at once and resolves when it is gone. */
function terminate(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}
