/**
 * The simulated exchange's vocabulary. It mirrors Binance's order model so
 * the local exchange server can serialize it 1:1, and the in-process sim
 * venue and the backtester can consume the same events.
 */
import type { Dec } from '../../core/decimal.ts';
import type { FilterFailure } from '../../model/filters.ts';
import type { Market } from '../../model/market.ts';

export type Side = 'BUY' | 'SELL';
export type SimOrderType = 'MARKET' | 'LIMIT' | 'LIMIT_MAKER' | 'STOP_MARKET' | 'TAKE_PROFIT_MARKET' | 'TRAILING_STOP_MARKET' | 'STOP_LOSS_LIMIT' | 'LIQUIDATION';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'GTX';
export type SimOrderStatus = 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'EXPIRED' | 'REJECTED';
export type PositionSide = 'BOTH' | 'LONG' | 'SHORT';
export type WorkingType = 'CONTRACT_PRICE' | 'MARK_PRICE';
export type MarginType = 'isolated' | 'cross';

export interface PlaceOrderRequest {
  readonly market: Market;
  readonly symbol: string;
  readonly side: Side;
  readonly type: SimOrderType;
  readonly quantity?: Dec;
  /** Spot MARKET orders may give the quote amount instead of the quantity. */
  readonly quoteOrderQty?: Dec;
  readonly price?: Dec;
  readonly stopPrice?: Dec;
  readonly timeInForce?: TimeInForce;
  readonly clientOrderId?: string;
  readonly reduceOnly?: boolean;
  readonly closePosition?: boolean;
  readonly positionSide?: PositionSide;
  readonly workingType?: WorkingType;
  /** TRAILING_STOP_MARKET (USD-M): percent the price must retrace from its best since placement (1 = 1 %). */
  readonly callbackRate?: Dec;
  /** TRAILING_STOP_MARKET: trailing starts once the price reaches this (default: the price at placement). */
  readonly activationPrice?: Dec;
}

export interface SimOrder {
  readonly account: string;
  readonly market: Market;
  readonly symbol: string;
  readonly orderId: number;
  readonly clientOrderId: string;
  readonly side: Side;
  readonly type: SimOrderType;
  readonly timeInForce: TimeInForce;
  readonly positionSide: PositionSide;
  readonly workingType: WorkingType;
  readonly reduceOnly: boolean;
  readonly closePosition: boolean;
  /** Limit price (0 for market orders, as Binance reports it). */
  readonly price: Dec;
  readonly stopPrice: Dec;
  readonly origQty: Dec;
  readonly executedQty: Dec;
  readonly cumQuote: Dec;
  readonly avgPrice: Dec;
  readonly status: SimOrderStatus;
  /** For conditional orders: true once the trigger fired. */
  readonly triggered: boolean;
  readonly time: number;
  readonly updateTime: number;
  /** TRAILING_STOP_MARKET: callback rate in percent (Binance's priceRate / callbackRate) and the activation price in use. */
  readonly priceRate?: Dec;
  readonly activatePrice?: Dec;
  /** TRAILING_STOP_MARKET: the best price (per workingType) since placement, and whether it reached activatePrice. */
  readonly trailExtreme?: Dec;
  readonly trailActivated?: boolean;
  /** Spot order lists (OCO): the list the order belongs to (Binance's orderListId; -1 on the wire when none). */
  readonly orderListId?: number;
}

export interface SimTrade {
  readonly account: string;
  readonly market: Market;
  readonly symbol: string;
  readonly tradeId: number;
  readonly orderId: number;
  readonly clientOrderId: string;
  readonly side: Side;
  readonly positionSide: PositionSide;
  readonly price: Dec;
  readonly qty: Dec;
  readonly quoteQty: Dec;
  readonly commission: Dec;
  readonly commissionAsset: string;
  /** Futures: PnL realized by this fill, before fees. Spot: 0. */
  readonly realizedPnl: Dec;
  readonly isMaker: boolean;
  readonly time: number;
}

export interface SpotBalance {
  readonly asset: string;
  readonly free: Dec;
  readonly locked: Dec;
}

export interface FuturesPosition {
  readonly symbol: string;
  readonly positionSide: PositionSide;
  /** Signed in one-way mode (BOTH); in hedge mode LONG is >= 0 and SHORT <= 0. */
  readonly positionAmt: Dec;
  readonly entryPrice: Dec;
  readonly markPrice: Dec;
  readonly unrealizedPnl: Dec;
  readonly leverage: number;
  readonly marginType: MarginType;
  /** Isolated positions: the margin allocated to them (their isolated wallet). */
  readonly isolatedWallet: Dec;
  readonly maintMargin: Dec;
  readonly liquidationPrice: Dec;
  readonly notional: Dec;
  readonly updateTime: number;
}

export interface FuturesAccountView {
  readonly asset: string;
  readonly walletBalance: Dec;
  readonly crossWalletBalance: Dec;
  readonly unrealizedPnl: Dec;
  readonly marginBalance: Dec;
  readonly availableBalance: Dec;
  readonly totalInitialMargin: Dec;
  readonly totalMaintMargin: Dec;
  readonly positionInitialMargin: Dec;
  readonly openOrderInitialMargin: Dec;
  readonly dualSidePosition: boolean;
  readonly positions: readonly FuturesPosition[];
}

export type ExecType = 'NEW' | 'TRADE' | 'CANCELED' | 'EXPIRED' | 'CALCULATED';

/** Every state change, in the order it happened. */
export type EngineEvent =
  | { readonly type: 'order'; readonly account: string; readonly time: number; readonly execType: ExecType; readonly order: SimOrder; readonly trade?: SimTrade }
  | { readonly type: 'spotBalances'; readonly account: string; readonly time: number; readonly balances: readonly SpotBalance[] }
  | {
      readonly type: 'futuresAccount';
      readonly account: string;
      readonly time: number;
      readonly reason: 'ORDER' | 'FUNDING_FEE' | 'MARGIN_TYPE_CHANGE' | 'LIQUIDATION' | 'DEPOSIT';
      readonly walletBalance: Dec;
      readonly crossWalletBalance: Dec;
      readonly balanceChange: Dec;
      readonly positions: readonly FuturesPosition[];
    }
  | { readonly type: 'funding'; readonly account: string; readonly time: number; readonly symbol: string; readonly rate: Dec; readonly amount: Dec }
  /** An order list (spot OCO) was placed or finished: Binance's listStatus. */
  | { readonly type: 'orderList'; readonly account: string; readonly time: number; readonly list: SimOrderList };

/**
 * One leg of a spot OCO ("New Order list - OCO (TRADE)"). The engine trades
 * LIMIT_MAKER (the take-profit leg) and STOP_LOSS_LIMIT (the stop leg); the
 * other documented leg types are not enabled on its symbols.
 */
export interface OrderListLeg {
  readonly type: 'LIMIT_MAKER' | 'STOP_LOSS_LIMIT';
  readonly price?: Dec;
  readonly stopPrice?: Dec;
  readonly timeInForce?: TimeInForce;
  readonly clientOrderId?: string;
}

/** A spot OCO: one quantity, an above and a below leg (POST /api/v3/orderList/oco). */
export interface PlaceOrderListRequest {
  readonly symbol: string;
  readonly side: Side;
  readonly quantity: Dec;
  readonly listClientOrderId?: string;
  readonly above: OrderListLeg;
  readonly below: OrderListLeg;
}

export interface SimOrderList {
  readonly account: string;
  readonly symbol: string;
  readonly orderListId: number;
  readonly listClientOrderId: string;
  readonly contingencyType: 'OCO';
  /** EXEC_STARTED while the pair works; ALL_DONE once one leg filled or triggered (the other expired) or the list was cancelled. */
  readonly listStatusType: 'EXEC_STARTED' | 'ALL_DONE';
  readonly listOrderStatus: 'EXECUTING' | 'ALL_DONE';
  /** The legs in the order they were placed (the stop leg first, as Binance numbers them). */
  readonly orders: ReadonlyArray<{ readonly orderId: number; readonly clientOrderId: string }>;
  readonly transactionTime: number;
}

/** Why the engine refused something. The server turns these into Binance's codes. */
export type RejectKind =
  | 'UNKNOWN_SYMBOL'
  | 'INVALID_PARAMETER'
  | 'FILTER'
  | 'INSUFFICIENT_BALANCE'
  | 'MARGIN_INSUFFICIENT'
  | 'REDUCE_ONLY_REJECTED'
  | 'POST_ONLY_WOULD_TAKE'
  /** USD-M only: a FOK limit that cannot fill in full at once is refused, not expired. */
  | 'FOK_WOULD_NOT_FILL'
  | 'WOULD_TRIGGER_IMMEDIATELY'
  | 'DUPLICATE_CLIENT_ORDER_ID'
  | 'UNKNOWN_ORDER'
  | 'POSITION_SIDE_MISMATCH'
  | 'NO_NEED_TO_CHANGE_MARGIN_TYPE'
  | 'NO_NEED_TO_CHANGE_POSITION_SIDE'
  | 'POSITION_EXISTS'
  | 'OPEN_ORDERS_EXIST'
  | 'INVALID_LEVERAGE'
  /** TRAILING_STOP_MARKET callbackRate outside Binance's range or step. */
  | 'INVALID_CALLBACK_RATE'
  /** An OCO whose prices break Binance's rule (SELL: limit > last > stop; BUY: limit < last < stop). */
  | 'ORDER_LIST_PRICES'
  /** An OCO whose legs are not one limit and one stop on the right sides (see EngineReject.listRule). */
  | 'ORDER_LIST_INVALID'
  | 'NO_PRICE';

export interface EngineReject {
  readonly ok: false;
  readonly kind: RejectKind;
  readonly message: string;
  readonly filter?: FilterFailure;
  /** ORDER_LIST_INVALID: which OCO rule the legs break. */
  readonly listRule?: 'BOTH_LIMIT' | 'SELL_LIMIT_MUST_BE_ABOVE' | 'SELL_STOP_MUST_BE_BELOW' | 'BUY_LIMIT_MUST_BE_BELOW' | 'BUY_STOP_MUST_BE_ABOVE';
}

export type EngineResult<T> = { readonly ok: true; readonly value: T } | EngineReject;

/** One step of price movement on a symbol: the range traded since the last step. */
export interface PriceStep {
  /** Price at the start of the step (the previous last price, or the candle open). */
  readonly open: Dec;
  readonly high: Dec;
  readonly low: Dec;
  /** Last traded price at the end of the step. */
  readonly last: Dec;
  /** Base volume traded in the step (undefined: unlimited liquidity). */
  readonly volume?: Dec;
  /** When the step starts (ms) and how long it lasts: MARKET orders in next-step mode (see EngineOptions). */
  readonly time?: number;
  readonly durationMs?: number;
}

/**
 * What a restart must keep of a paper account besides its orders and trades
 * (MODE=sim stores it; see account-store.ts). Prices are not part of it: the
 * market is the feed's, and the first candle after a restart sets them.
 */
export interface SimAccountState {
  readonly spot: readonly SpotBalance[];
  /** USD-M wallet (USDT). */
  readonly wallet: Dec;
  readonly dualSidePosition: boolean;
  readonly positions: ReadonlyArray<{ readonly symbol: string; readonly positionSide: PositionSide; readonly amt: Dec; readonly entry: Dec; readonly isolatedWallet: Dec; readonly updateTime: number }>;
  readonly settings: ReadonlyArray<{ readonly symbol: string; readonly leverage: number; readonly marginType: MarginType }>;
}

/** The next order and trade id the engine hands out on one (market, symbol). */
export interface SimIdCounter {
  readonly market: Market;
  readonly symbol: string;
  readonly nextOrderId: number;
  readonly nextTradeId: number;
}

/** An order with what a restart needs beyond its public view: spot funds still locked for it, and whether it rests on the book. */
export interface SimOrderRecord extends SimOrder {
  readonly locked: Dec;
  readonly working: boolean;
}
