/**
 * The venue port: what the execution engine, the portfolio, the reconciler
 * and the kill switch need from an exchange. Two implementations: binance/
 * (ccxt REST plus the user-data streams, pointed at Binance, its testnets or
 * the local exchange) and sim/ (the in-process matching engine).
 *
 * A venue never touches the bus or the engines: it answers calls and
 * reports what the exchange pushed through onEvent(). The execution engine
 * turns that into bus events and rows.
 *
 * Errors: every failed call throws a VenueError whose `kind` says what the
 * caller may conclude (see VenueErrorKind), so retry and lookup decisions are
 * made on data, never on message text.
 */
import type { BreakerView } from '../core/circuit-breaker.ts';
import type { Dec } from '../core/decimal.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { OrderSide, OrderStatus, OrderType } from '../model/events.ts';

export interface PlaceOrder {
  readonly symbol: string;
  readonly side: OrderSide;
  /** One order (an OCO list goes through placeOco). */
  readonly type: Exclude<OrderType, 'OCO'>;
  /** Already rounded to the step size by the execution engine. */
  readonly quantity: Dec;
  /** Limit price, rounded to the tick. */
  readonly price?: Dec;
  /** Trigger price for conditional orders. */
  readonly stopPrice?: Dec;
  readonly clientOrderId: string;
  readonly reduceOnly?: boolean;
  readonly timeInForce?: 'GTC' | 'IOC' | 'FOK' | 'GTX';
  /**
   * USD-M: the position side the order acts on. Hedge mode needs LONG or
   * SHORT on every order (BUY LONG opens, SELL LONG closes; SELL SHORT opens,
   * BUY SHORT closes) and refuses reduceOnly (-1106): venues drop reduceOnly
   * when this is LONG or SHORT. One-way mode: BOTH or absent.
   */
  readonly positionSide?: 'BOTH' | 'LONG' | 'SHORT';
  /**
   * TRAILING_STOP_MARKET (USD-M): how far the price must retrace from its best
   * since activation, in percent (1 = 1 %). Binance accepts 0.1 to 5 in steps
   * of 0.1 (checkCallbackRate in venues/binance/trailing.ts).
   */
  readonly callbackRate?: Dec;
  /** TRAILING_STOP_MARKET: trailing starts when the price reaches this; absent, at once from the current price. */
  readonly activationPrice?: Dec;
}

/** An order as the venue knows it. */
export interface VenueOrder {
  readonly symbol: string;
  readonly clientOrderId: string;
  readonly exchangeOrderId: string;
  readonly side: OrderSide;
  readonly type: string;
  readonly status: OrderStatus;
  readonly quantity: Dec;
  readonly filledQuantity: Dec;
  readonly price?: Dec;
  readonly stopPrice?: Dec;
  readonly averagePrice?: Dec;
  readonly reduceOnly: boolean;
  /** Venue time of the last change, ms. */
  readonly updateTime: number;
  /** USD-M: the position side the order acts on (BOTH in one-way mode); absent on spot. */
  readonly positionSide?: 'BOTH' | 'LONG' | 'SHORT';
  /** Spot order lists (OCO): the venue's id of the list this order is a leg of; absent otherwise. */
  readonly orderListId?: string;
  /** The list's client id, when the venue said it (placeOco / cancelOrderList answers; from then on, its events). */
  readonly listClientOrderId?: string;
}

/**
 * A spot OCO ("New Order list - OCO (TRADE)", POST /api/v3/orderList/oco):
 * one quantity, a take-profit and a stop leg; whichever fills or triggers
 * first expires the other. SELL: limit price > last price > stop price;
 * BUY: limit price < last price < stop price.
 */
export interface PlaceOco {
  readonly symbol: string;
  readonly side: OrderSide;
  readonly quantity: Dec;
  readonly listClientOrderId: string;
  /** Take-profit leg (LIMIT_MAKER above for a SELL). */
  readonly limit: { readonly clientOrderId: string; readonly price: Dec };
  /** Stop leg (STOP_LOSS_LIMIT). */
  readonly stop: { readonly clientOrderId: string; readonly stopPrice: Dec; readonly price: Dec };
}

/** One execution. `tradeId` is unique per (market, symbol) on the venue. */
export interface VenueFill {
  readonly symbol: string;
  readonly tradeId: string;
  readonly clientOrderId?: string;
  readonly exchangeOrderId: string;
  readonly side: OrderSide;
  readonly price: Dec;
  readonly quantity: Dec;
  readonly fee: Dec;
  readonly feeAsset: string;
  readonly isMaker: boolean;
  /** Futures: PnL the venue says this fill realized (before fees). */
  readonly realizedPnl?: Dec;
  readonly time: number;
}

export interface VenuePosition {
  readonly symbol: string;
  readonly positionSide: 'BOTH' | 'LONG' | 'SHORT';
  /** Signed: positive long, negative short. Spot: the base asset held (free + locked). */
  readonly quantity: Dec;
  readonly entryPrice?: Dec;
  readonly markPrice?: Dec;
  readonly unrealizedPnl?: Dec;
  readonly liquidationPrice?: Dec;
  readonly leverage?: number;
}

export interface VenueBalance {
  readonly asset: string;
  readonly free: Dec;
  readonly locked: Dec;
}

export interface VenueAccount {
  readonly balances: readonly VenueBalance[];
  /** Futures: wallet balance and available margin in the quote asset. */
  readonly walletBalance?: Dec;
  readonly availableBalance?: Dec;
  /**
   * Why the balance moved (futures ACCOUNT_UPDATE's m). FUNDING_FEE carries
   * balanceChange, the one wallet change no fill explains: the portfolio's
   * cash ledger adds it.
   */
  readonly reason?: 'ORDER' | 'FUNDING_FEE' | 'OTHER';
  readonly balanceChange?: Dec;
}

/** What the venue pushes (user-data stream, or the sim engine). */
export type VenueEvent =
  | { readonly type: 'order'; readonly order: VenueOrder; readonly fill?: VenueFill }
  | { readonly type: 'account'; readonly account: VenueAccount }
  | { readonly type: 'stream'; readonly status: 'connected' | 'disconnected' | 'reconnected'; readonly detail?: string };

export type VenueErrorKind =
  /** The venue refused the request; it had no effect (bad params, filter, insufficient balance). */
  | 'REJECTED'
  /** Cancel or lookup of an order the venue does not know. */
  | 'UNKNOWN_ORDER'
  /** The venue says the client order id is already used: an earlier attempt got there. */
  | 'DUPLICATE'
  /**
   * We do not know whether the request took effect (timeout, 5xx, network
   * reset after sending). The caller must look the order up before retrying.
   */
  | 'AMBIGUOUS'
  /** Failed before it could take effect and worth retrying (connection refused, 503 before processing). */
  | 'RETRYABLE'
  /** 429: back off for retryAfterMs. */
  | 'RATE_LIMITED'
  /** 418: IP banned; no new orders. */
  | 'BANNED'
  /** -1021: our timestamp is outside recvWindow; resync the clock and retry once. */
  | 'CLOCK_SKEW'
  /** Authentication or permission problem: a human must fix the keys. */
  | 'AUTH';

/**
 * details.code of a RATE_LIMITED the venue's own order-count budget raised:
 * the order was refused unsent, and the venue refuses the next ones itself
 * until the window ends (reads are unaffected).
 */
export const ORDER_BUDGET_CODE = 'ORDER_BUDGET';

export class VenueError extends Error {
  constructor(
    readonly kind: VenueErrorKind,
    message: string,
    readonly details: { readonly code?: number | string; readonly retryAfterMs?: number; readonly cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VenueError';
  }
}

/** What the exchange's response headers said about our request budget (latest response). */
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
  /** The venue's own budget per published limit (Binance: exchangeInfo rateLimits), in-flight requests included. */
  readonly budget?: ReadonlyArray<{ readonly rateLimitType: string; readonly interval: string; readonly intervalNum: number; readonly limit: number; readonly used: number; readonly resetsAt: number }>;
}

/** The user-data stream's state, for the heartbeat and /metrics. */
export interface UserStreamStatus {
  readonly enabled: boolean;
  readonly connected: boolean;
  readonly reconnects: number;
  readonly malformedFrames: number;
  /** Our clock at the last frame or ping. */
  readonly lastFrameAt?: number;
  /** Futures: our clock at the last successful listenKey keepalive. */
  readonly lastKeepAliveAt?: number;
  /** Times the stream was connected but silent (acknowledged orders got no event) and was reconnected for it. */
  readonly silences?: number;
}

/**
 * Capabilities only some venues have (Binance has them all, the sim venue
 * none): callers test for the method before calling it.
 */
export interface VenueCapabilities {
  /** A 429 / 418 hold on every call, or an OPEN circuit breaker, while it lasts (Binance): the execution engine denies new orders until it ends. */
  sendingHeld?(): { readonly until: number; readonly kind: 'RATE_LIMITED' | 'BANNED' | 'CIRCUIT_OPEN' } | undefined;
  /** Measures the offset to the exchange's clock again (after a CLOCK_SKEW); resolves with the offset in use, ms. */
  resyncClock?(): Promise<number>;
  /** The exchange's request-weight and order-count headers from the latest responses. */
  usage?(): VenueUsage;
  /** The user-data stream's state. */
  userStreamStatus?(): UserStreamStatus;
  /** The REST circuit breaker's state; undefined without one. */
  breakerView?(): BreakerView | undefined;
}

export interface Venue extends VenueCapabilities {
  /** e.g. "binance", "sim". */
  readonly name: string;
  readonly market: Market;
  /** True when the venue holds conditional (stop / take-profit) orders itself. */
  readonly holdsConditionals: boolean;
  /** Connects (user-data stream, clock sync). Idempotent. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every tradable instrument of this market, with filters. */
  instruments(): Promise<Instrument[]>;
  place(order: PlaceOrder): Promise<VenueOrder>;
  /** Cancels by client id; resolves with the final order (already final: returns it). */
  cancel(symbol: string, clientOrderId: string): Promise<VenueOrder>;
  /** Looks an order up by client id; undefined when the venue has never seen it. */
  fetchOrder(symbol: string, clientOrderId: string): Promise<VenueOrder | undefined>;
  /**
   * Every order of this account on `symbol` placed at or after `since` (venue
   * time, ms), open or final, conditional ones included (Binance: GET
   * /api/v3/allOrders; /fapi/v1/allOrders and /fapi/v1/allAlgoOrders). The
   * start-up recovery reads it: the exchange is the journal of what was sent.
   */
  ordersSince?(symbol: string, since: number): Promise<VenueOrder[]>;
  /** Open orders, for one symbol or (symbol omitted) all of them. */
  openOrders(symbol?: string): Promise<VenueOrder[]>;
  /** Fills of one symbol from `since` (ms, inclusive), oldest first. */
  fills(symbol: string, since?: number): Promise<VenueFill[]>;
  /** Non-zero positions (spot: non-zero base balances of the given symbols). */
  positions(symbols?: readonly string[]): Promise<VenuePosition[]>;
  account(): Promise<VenueAccount>;
  /** Subscribes to pushed events; returns the unsubscribe function. */
  onEvent(fn: (e: VenueEvent) => void): () => void;
  /**
   * Futures: the account's position mode (one-way or hedge), and leverage
   * and margin type per symbol. "No need to change" counts as success. Spot: a no-op.
   */
  configureFutures?(settings: FuturesSetup): Promise<FuturesSetupReport>;
  /** A reference price now (spot: last trade; futures: mark), for one-shot commands that have no feed. */
  price?(symbol: string): Promise<Dec>;
  /**
   * Spot: places an OCO; resolves with both legs, [take-profit leg, stop
   * leg], each carrying orderListId and listClientOrderId. The legs are
   * ordinary orders afterwards: fetchOrder and openOrders find them by their
   * client ids, and their events arrive through onEvent.
   */
  placeOco?(o: PlaceOco): Promise<VenueOrder[]>;
  /**
   * Spot: cancels an OCO by its list client id (both legs; cancelling one leg
   * with cancel() cancels the other too); resolves with the legs as they
   * ended. A list that already ended resolves with its legs as they are.
   */
  cancelOrderList?(symbol: string, listClientOrderId: string): Promise<VenueOrder[]>;
}

export interface FuturesSetup {
  /** ONEWAY: dualSidePosition off (one BOTH position per symbol); HEDGE: on (LONG and SHORT legs). */
  readonly positionMode: 'ONEWAY' | 'HEDGE';
  readonly symbols: ReadonlyArray<{ readonly symbol: string; readonly leverage: number; readonly marginType?: 'isolated' | 'cross' }>;
}

export interface FuturesSetupReport {
  readonly positionMode: 'set' | 'unchanged';
  readonly symbols: ReadonlyArray<{ readonly symbol: string; readonly leverage: number; readonly marginType: string }>;
}
