/**
 * Bus payloads. Every payload is a frozen object with a `kind` (equal to its
 * channel, or "signal" for signal.<strategy>), `ts` (our clock, ms) and,
 * where the venue stamped it, `eventTs` (the venue's time, ms).
 *
 * Money fields are Dec. Later issues extend these shapes; the channel names
 * are fixed by DESIGN.md.
 */
import type { Dec } from '../core/decimal.ts';
import type { Market, Timeframe, TradingState } from './market.ts';

interface Base<K extends string> {
  readonly kind: K;
  /** Our clock when the event was created. */
  readonly ts: number;
  /** The venue's event time, when it gave one. */
  readonly eventTs?: number;
}

export interface CandleClosed extends Base<'candle.closed'> {
  readonly market: Market;
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly openTime: number;
  // Candle prices are market data for indicators: plain numbers (DESIGN.md).
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

export interface MarkPrice extends Base<'mark.price'> {
  readonly symbol: string;
  readonly markPrice: Dec;
  readonly fundingRate?: Dec;
  readonly nextFundingTime?: number;
}

export interface FeedStatus extends Base<'feed.status'> {
  readonly status: 'connecting' | 'live' | 'stale' | 'down';
  readonly connection?: string;
  readonly detail?: string;
  /** The symbols this status is about (new entries on them wait while not live). */
  readonly symbols?: readonly string[];
}

export type SignalAction = 'enterLong' | 'exitLong' | 'enterShort' | 'exitShort';

export interface Signal extends Base<'signal'> {
  readonly strategy: string;
  readonly symbol: string;
  readonly action: SignalAction;
  readonly reason: string;
  readonly strength?: number;
  readonly stopLoss?: Dec;
  readonly takeProfit?: Dec;
  /** Trailing stop distance in percent of price (overrides the YAML's risk.trailingPct). */
  readonly trailing?: Dec;
  /** One sizing unit (grid level): entries add a unit, exits close one (see SignalOptions.unit). */
  readonly unit?: boolean;
  /** The candle whose close produced the signal (its open time, in the strategy's timeframe): which data decided, for audits and parity checks. */
  readonly candleTime?: number;
  readonly timeframe?: string;
}

export type OrderSide = 'BUY' | 'SELL';
/** OCO: a spot order list of a LIMIT_MAKER take-profit (price) and a STOP_LOSS_LIMIT stop (stopPrice, stopLimitPrice); one fills, the other expires. */
export type OrderType = 'MARKET' | 'LIMIT' | 'STOP_MARKET' | 'TAKE_PROFIT_MARKET' | 'STOP_LOSS_LIMIT' | 'TRAILING_STOP_MARKET' | 'OCO';

/** Who asked for an order: a strategy's signal, a person, the kill switch, or a protective exit. */
export type OrderSource = 'strategy' | 'manual' | 'kill-switch' | 'protective';

/** USD-M hedge mode holds a LONG and a SHORT leg per symbol; one-way mode (and spot) one BOTH position. */
export type PositionSide = 'BOTH' | 'LONG' | 'SHORT';

export interface OrderIntent {
  /** `<strategy>/<symbol>/<seq>`: unique, and the order row's key (one order per intent, ever). */
  readonly intentId: string;
  /** Account-wide intent sequence, persisted before the intent is published; the client order id derives from it. */
  readonly seq: number;
  readonly source: OrderSource;
  /** The owner: the strategy whose position this order opens or reduces (protective and kill-switch orders carry the owner they act for). */
  readonly strategy: string;
  readonly market: Market;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly type: OrderType;
  readonly quantity: Dec;
  readonly price?: Dec;
  readonly stopPrice?: Dec;
  /** The owner's intent: reduces its own position only. Whether the venue gets reduceOnly is the execution engine's call (one-way netting). */
  readonly reduceOnly?: boolean;
  /** Hedge mode: the leg this order acts on (absent: BOTH). */
  readonly positionSide?: PositionSide;
  /** OCO: the stop leg's limit price (its trigger is stopPrice; the take-profit leg's price is price). */
  readonly stopLimitPrice?: Dec;
  /** Trailing stop: callback rate in percent (USD-M TRAILING_STOP_MARKET), or the trail a spot stop follows from the mark. */
  readonly callbackRate?: Dec;
  /** Spot exits: protective orders of the owner that lock the coins, cancelled (and settled) before this order is sent. */
  readonly releaseFirst?: readonly string[];
  /** Why (the signal's reason, or the operator's words). */
  readonly reason?: string;
  /** Protective exits the execution engine keeps on the venue for the resulting position. */
  readonly stopLoss?: Dec;
  readonly takeProfit?: Dec;
  /** Limit orders: cancel after this long, then follow onExpiry. */
  readonly ttlMs?: number;
  readonly onExpiry?: 'cancel' | 'reprice' | 'market';
}

export interface OrderRequest extends Base<'order.request'> {
  readonly intent: OrderIntent;
}

export interface OrderSubmit extends Base<'order.submit'> {
  readonly intent: OrderIntent;
}

export interface OrderCancel extends Base<'order.cancel'> {
  readonly symbol: string;
  readonly clientOrderId: string;
  readonly reason: string;
}

export interface OrderDenied extends Base<'order.denied'> {
  readonly intent: OrderIntent;
  /** Stable reason code plus the figures, e.g. "NOTIONAL_BELOW_MIN: notional=4.1 min=5". */
  readonly reason: string;
  readonly source: string;
}

/**
 * PENDING: the row is written and its placement request is out (or about to be), no answer yet.
 * UNKNOWN: the request was answered with a timeout, a 5xx or an "execution status unknown" code:
 * it may still execute until its recvWindow has run out (orders.sent_at), so it is looked up, never
 * sent again, until then. The rest are Binance's own statuses.
 */
export type OrderStatus = 'PENDING' | 'UNKNOWN' | 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'REJECTED' | 'EXPIRED';

/** The statuses of an order that may still fill: every reader of "working orders" uses this list. */
export const OPEN_ORDER_STATUSES: readonly OrderStatus[] = ['PENDING', 'UNKNOWN', 'NEW', 'PARTIALLY_FILLED'];

export interface OrderUpdate extends Base<'order.update'> {
  readonly clientOrderId: string;
  readonly intentId?: string;
  readonly strategy?: string;
  readonly market?: Market;
  readonly side?: OrderSide;
  readonly reduceOnly?: boolean;
  readonly source?: OrderSource;
  readonly positionSide?: PositionSide;
  /** The order's quantity (as rounded and sent). */
  readonly quantity?: Dec;
  /** Venue or local reason for REJECTED / EXPIRED. */
  readonly reason?: string;
  readonly exchangeOrderId?: string;
  readonly symbol: string;
  readonly status: OrderStatus;
  readonly filledQuantity: Dec;
  readonly averagePrice?: Dec;
}

export interface Fill extends Base<'fill'> {
  readonly tradeId: string;
  readonly clientOrderId?: string;
  /** The owner of the order that filled ('external' when we did not place it). */
  readonly strategy: string;
  /** Hedge mode leg (absent: BOTH). */
  readonly positionSide?: PositionSide;
  readonly market: Market;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly price: Dec;
  readonly quantity: Dec;
  readonly fee: Dec;
  readonly feeAsset: string;
  readonly isMaker: boolean;
  readonly realizedPnl?: Dec;
}

/** One owner's line changed (the ledger's view after a fill). */
export interface PositionChanged extends Base<'position.changed'> {
  readonly market: Market;
  readonly symbol: string;
  /** The owner: a strategy, 'manual', or 'external'. */
  readonly strategy: string;
  readonly positionSide: PositionSide;
  /** The owner's quantity, signed: positive long, negative short (dust included). */
  readonly quantity: Dec;
  /** True when the owner holds nothing tradable (nothing, or dust below the filters). */
  readonly flat: boolean;
  readonly entryPrice: Dec;
  /** The owner's realized PnL on the symbol so far, fees included. */
  readonly realizedPnl: Dec;
  /** The bot's net position on the symbol after the change (every owner but external). */
  readonly netQuantity: Dec;
  /** Set when this change closed a round trip: its PnL (fees included), for the loss streak guard. */
  readonly closedTrade?: { readonly strategy: string; readonly pnl: Dec; readonly openedAt: number };
}

export interface AccountUpdated extends Base<'account.updated'> {
  readonly balances: ReadonlyArray<{ readonly asset: string; readonly free: Dec; readonly locked: Dec }>;
  /** Futures: the wallet balance in the quote asset. */
  readonly walletBalance?: Dec;
  /**
   * SNAPSHOT: the venue's full account, the truth the portfolio's cash ledger
   * is reset to (at start, after reconciliation). FUNDING_FEE: a wallet change
   * with no fill (balanceChange). ORDER: the venue's view after a fill, which
   * the ledger already counted from the fill itself.
   */
  readonly reason?: 'SNAPSHOT' | 'ORDER' | 'FUNDING_FEE' | 'OTHER';
  readonly balanceChange?: Dec;
}

export type RiskScope = 'account' | 'symbol' | 'strategy';

export interface RiskHalt extends Base<'risk.halt'> {
  readonly scope: RiskScope;
  readonly key: string;
  readonly reason: string;
}

export interface RiskStateChanged extends Base<'risk.state'> {
  readonly scope: RiskScope;
  readonly key: string;
  readonly from: TradingState;
  readonly to: TradingState;
  readonly reason: string;
  readonly source: string;
}

export interface ReconcileDone extends Base<'reconcile.done'> {
  readonly ok: boolean;
  readonly discrepancies: number;
  readonly detail?: string;
}

export interface HeartbeatEvent extends Base<'heartbeat'> {
  readonly state: string;
  readonly healthy: boolean;
}

export interface ComponentFault extends Base<'component.fault'> {
  /** The component whose handler threw. */
  readonly component: string;
  /** The channel it was handling. */
  readonly channel: string;
  readonly error: { readonly code: string; readonly message: string; readonly stack?: string };
}

export interface SystemShutdown extends Base<'system.shutdown'> {
  readonly reason: string;
}

/** The typed channel map: channel name -> payload. */
export interface Channels {
  'candle.closed': CandleClosed;
  'mark.price': MarkPrice;
  'feed.status': FeedStatus;
  'order.request': OrderRequest;
  'order.submit': OrderSubmit;
  'order.cancel': OrderCancel;
  'order.denied': OrderDenied;
  'order.update': OrderUpdate;
  fill: Fill;
  'position.changed': PositionChanged;
  'account.updated': AccountUpdated;
  'risk.halt': RiskHalt;
  'risk.state': RiskStateChanged;
  'reconcile.done': ReconcileDone;
  heartbeat: HeartbeatEvent;
  'component.fault': ComponentFault;
  'system.shutdown': SystemShutdown;
  /** One channel per strategy; subscribe to "signal.*" for all of them. */
  [strategy: `signal.${string}`]: Signal;
}

export type Channel = keyof Channels & string;

/**
 * Commands have exactly one handler (the component that owns the action);
 * everything else is an event with any number of subscribers.
 */
export const COMMAND_CHANNELS = ['order.request', 'order.submit', 'order.cancel'] as const;
export type CommandChannel = (typeof COMMAND_CHANNELS)[number];
