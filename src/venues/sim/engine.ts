/**
 * The simulated exchange: a deterministic, all-Decimal matching engine with
 * Binance's order model, spot balances and a USD-M futures wallet.
 *
 * One engine serves three users: the local Binance-compatible server (tests,
 * the offline demo), the in-process sim venue (MODE=sim) and the backtester,
 * so there is one model of how orders fill.
 *
 * It holds no timers and reads time only from the injected clock: prices
 * arrive through `step` / `setMarkPrice`, funding through `applyFunding`.
 * Every state change is published as an EngineEvent, synchronously and in
 * order, which is what the user-data streams serialize.
 *
 * There is no order book: the market is the replayed price path. A resting
 * limit fills (as maker, at its price) when the path trades through it; a
 * market order fills (as taker) at the last price plus slippage. Within one
 * price step, stops are processed before take-profits and limits: when a
 * step could have hit both, the adverse outcome is assumed.
 */
import type { Clock } from '../../core/clock.ts';
import { Dec } from '../../core/decimal.ts';
import { checkCallbackRate, checkOrder } from '../../model/filters.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';
import { commission, defaultFillModel, fillableQty, marketFillPrice, type FillModelConfig } from './fill-model.ts';
import type {
  EngineEvent,
  EngineReject,
  EngineResult,
  ExecType,
  FuturesAccountView,
  FuturesPosition,
  MarginType,
  PlaceOrderListRequest,
  PlaceOrderRequest,
  PositionSide,
  PriceStep,
  RejectKind,
  Side,
  SimAccountState,
  SimIdCounter,
  SimOrder,
  SimOrderList,
  SimOrderRecord,
  SimOrderStatus,
  SimOrderType,
  SimTrade,
  SpotBalance,
  TimeInForce,
  WorkingType,
} from './types.ts';

const ZERO = new Dec(0);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutOrder = Mutable<SimOrder> & {
  /** Spot: funds locked for this order (quote for buys, base for sells). */
  locked: Dec;
};

interface PriceState {
  last?: Dec;
  mark?: Dec;
  /** True once a mark price was set explicitly; until then futures mark follows last. */
  markExplicit: boolean;
  fundingRate: Dec;
}

interface Balance {
  free: Dec;
  locked: Dec;
}

interface FuturesPos {
  positionSide: PositionSide;
  amt: Dec;
  entry: Dec;
  isolatedWallet: Dec;
  updateTime: number;
}

interface SymbolSettings {
  leverage: number;
  marginType: MarginType;
}

interface Account {
  id: string;
  spot: Map<string, Balance>;
  wallet: Dec;
  dual: boolean;
  positions: Map<string, FuturesPos>;
  settings: Map<string, SymbolSettings>;
  incomes: Income[];
}

export interface Income {
  readonly symbol: string;
  readonly incomeType: 'REALIZED_PNL' | 'COMMISSION' | 'FUNDING_FEE' | 'INSURANCE_CLEAR' | 'TRANSFER';
  readonly income: Dec;
  readonly asset: string;
  readonly time: number;
  readonly tranId: number;
  readonly tradeId: string;
  readonly info: string;
}

export interface EngineOptions {
  clock: Clock;
  instruments: readonly Instrument[];
  fillModel?: FillModelConfig;
  /** Leverage a futures symbol starts with (Binance's default is 20). */
  defaultLeverage?: number;
  /** Funding rate assumed until one is set (0.01% per 8 h, Binance's baseline). */
  defaultFundingRate?: Dec;
  /**
   * When MARKET orders execute:
   *  - immediate (default; the local exchange, MODE=sim): at the last price when placed;
   *  - next-step (the backtester): at the next price event after the order
   *    arrives (placed + `latencyMs`): the open of the next step when it
   *    arrives by the step's start, else the step's last price when it
   *    arrives within the step. A signal computed on a close never fills at
   *    that close: no look-ahead.
   */
  marketOrders?: 'immediate' | 'next-step';
  latencyMs?: number;
}

export interface InitialBalances {
  spot?: Record<string, string>;
  /** USDT in the futures wallet. */
  futures?: string;
}

const key = (market: Market, symbol: string): string => `${market}:${symbol}`;
const posKey = (symbol: string, side: PositionSide): string => `${symbol}:${side}`;

function getOrCreate<K, V>(map: Map<K, V>, k: K, make: () => V): V {
  let v = map.get(k);
  if (v === undefined) {
    v = make();
    map.set(k, v);
  }
  return v;
}

/**
 * Pays `cost` from a spot balance for a fill of order o. A resting order had
 * funds locked: the part locked for this fill (`reserved`, never more than
 * is still locked) is released and the actual cost charged, so any surplus
 * (a buy filling below its limit) returns to free. A market order pays from
 * free.
 */
function payFrom(b: Balance, o: MutOrder, reserved: Dec, cost: Dec): void {
  if (o.locked.gt(0)) {
    const release = Dec.min(o.locked, reserved);
    o.locked = o.locked.minus(release);
    b.locked = b.locked.minus(release);
    b.free = b.free.plus(release).minus(cost);
  } else {
    b.free = b.free.minus(cost);
  }
}

function reject(kind: RejectKind, message: string, extra: Partial<EngineReject> = {}): EngineReject {
  return { ok: false, kind, message, ...extra };
}

export class MatchingEngine {
  private readonly clock: Clock;
  private readonly fill: FillModelConfig;
  private readonly defaultLeverage: number;
  private readonly defaultFundingRate: Dec;
  private readonly instrumentsByKey = new Map<string, Instrument>();
  private readonly prices = new Map<string, PriceState>();
  private readonly accounts = new Map<string, Account>();
  /** Working orders (resting or waiting for a trigger) per market:symbol, in time priority. */
  private readonly working = new Map<string, MutOrder[]>();
  /** Every order per market:symbol by id. */
  private readonly orders = new Map<string, Map<number, MutOrder>>();
  private readonly tradesByKey = new Map<string, SimTrade[]>();
  private readonly nextOrderId = new Map<string, number>();
  private readonly nextTradeId = new Map<string, number>();
  private nextTranId = 1;
  private readonly listeners: Array<(e: EngineEvent) => void> = [];
  private readonly deferMarkets: boolean;
  private readonly latencyMs: number;
  /** next-step mode: MARKET orders waiting for their price event, per market:symbol, in arrival order. */
  private readonly pendingMarkets = new Map<string, Array<{ order: MutOrder; arriveAt: number }>>();
  /** Spot order lists (OCO) by orderListId (one sequence for the engine, as GET /api/v3/orderList takes no symbol). */
  private readonly orderLists = new Map<number, Mutable<SimOrderList>>();
  private nextOrderListId = 1;

  constructor(opts: EngineOptions) {
    this.clock = opts.clock;
    this.deferMarkets = opts.marketOrders === 'next-step';
    this.latencyMs = opts.latencyMs ?? 0;
    this.fill = opts.fillModel ?? defaultFillModel();
    this.defaultLeverage = opts.defaultLeverage ?? 20;
    this.defaultFundingRate = opts.defaultFundingRate ?? new Dec('0.0001');
    for (const inst of opts.instruments) this.instrumentsByKey.set(key(inst.market, inst.symbol), inst);
  }

  // ---------------------------------------------------------------- setup

  onEvent(fn: (e: EngineEvent) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  createAccount(id: string, initial: InitialBalances = {}): void {
    if (this.accounts.has(id)) throw new Error(`account ${id} already exists`);
    const spot = new Map<string, Balance>();
    for (const [asset, amount] of Object.entries(initial.spot ?? {})) spot.set(asset, { free: new Dec(amount), locked: ZERO });
    this.accounts.set(id, { id, spot, wallet: new Dec(initial.futures ?? '0'), dual: false, positions: new Map(), settings: new Map(), incomes: [] });
  }

  hasAccount(id: string): boolean {
    return this.accounts.has(id);
  }

  instrument(market: Market, symbol: string): Instrument | undefined {
    return this.instrumentsByKey.get(key(market, symbol));
  }

  instruments(market: Market): Instrument[] {
    return [...this.instrumentsByKey.values()].filter((i) => i.market === market);
  }

  price(market: Market, symbol: string): { last?: Dec; mark?: Dec; fundingRate: Dec } {
    const s = this.prices.get(key(market, symbol));
    return { ...(s?.last ? { last: s.last } : {}), ...(s?.mark ? { mark: s.mark } : {}), fundingRate: s?.fundingRate ?? this.defaultFundingRate };
  }

  // ----------------------------------------------------------- market data

  /** One step of the price path: processes triggers and resting orders, then (futures) marks and liquidations. */
  step(market: Market, symbol: string, step: PriceStep): void {
    const inst = this.instrument(market, symbol);
    if (!inst) return;
    const st = this.priceState(market, symbol);
    const pending = this.deferMarkets ? this.pendingMarkets.get(key(market, symbol)) : undefined;
    if (pending && pending.length > 0) this.fillPendingMarkets(inst, pending, step, 'open');
    st.last = step.last;
    const list = this.working.get(key(market, symbol));
    if (list && list.length > 0) this.processStep(inst, list, step);
    if (pending && pending.length > 0) this.fillPendingMarkets(inst, pending, step, 'last');
    if (market === 'futures' && !st.markExplicit) this.onMark(inst, step.last);
  }

  /** Sets the last price as if one trade printed there. */
  setLastPrice(market: Market, symbol: string, price: Dec, volume?: Dec): void {
    const prev = this.priceState(market, symbol).last ?? price;
    this.step(market, symbol, { open: prev, high: Dec.max(prev, price), low: Dec.min(prev, price), last: price, ...(volume ? { volume } : {}) });
  }

  /** Futures mark price: triggers MARK_PRICE conditionals, revalues positions, liquidates. */
  setMarkPrice(symbol: string, mark: Dec): void {
    const inst = this.instrument('futures', symbol);
    if (!inst) return;
    this.priceState('futures', symbol).markExplicit = true;
    this.onMark(inst, mark);
  }

  setFundingRate(symbol: string, rate: Dec): void {
    this.priceState('futures', symbol).fundingRate = rate;
  }

  /**
   * Settles funding on every position in symbol at the current mark price:
   * payment = -positionAmt * mark * rate (a positive rate: longs pay shorts).
   */
  applyFunding(symbol: string, rate?: Dec): void {
    const inst = this.instrument('futures', symbol);
    if (!inst) return;
    const st = this.priceState('futures', symbol);
    const r = rate ?? st.fundingRate;
    const mark = st.mark ?? st.last;
    if (!mark) return;
    const now = this.clock.now();
    for (const acct of this.accounts.values()) {
      let total = ZERO;
      for (const pos of acct.positions.values()) {
        if (!pos.amt.isZero() && acct.positions.get(posKey(symbol, pos.positionSide)) === pos) {
          const amount = pos.amt.neg().times(mark).times(r).toDecimalPlaces(8, Dec.ROUND_HALF_UP);
          if (amount.isZero()) continue;
          total = total.plus(amount);
          if (this.settingsFor(acct, symbol).marginType === 'isolated') pos.isolatedWallet = pos.isolatedWallet.plus(amount);
        }
      }
      if (total.isZero()) continue;
      acct.wallet = acct.wallet.plus(total);
      this.income(acct, symbol, 'FUNDING_FEE', total, now, '', 'FUNDING_FEE');
      this.emit({ type: 'funding', account: acct.id, time: now, symbol, rate: r, amount: total });
      this.emitFuturesAccount(acct, 'FUNDING_FEE', total, [symbol]);
    }
  }

  // ---------------------------------------------------------------- orders

  /**
   * `leg` is for placeOrderList only: the order joins an order list, its
   * funds are the list's (checked there, `locked` for this leg), and a dry
   * run checks it without placing it.
   */
  placeOrder(accountId: string, req: PlaceOrderRequest, leg?: { readonly orderListId: number; readonly locked: Dec; readonly dryRun?: boolean }): EngineResult<SimOrder> {
    const acct = this.accounts.get(accountId);
    if (!acct) return reject('INVALID_PARAMETER', `unknown account ${accountId}`);
    const inst = this.instrument(req.market, req.symbol);
    if (!inst || inst.status !== 'TRADING') return reject('UNKNOWN_SYMBOL', `Invalid symbol ${req.symbol}`);
    const market = req.market;
    const st = this.priceState(market, req.symbol);
    const isConditional = req.type === 'STOP_MARKET' || req.type === 'TAKE_PROFIT_MARKET' || req.type === 'STOP_LOSS_LIMIT';
    const isMarketExec = req.type === 'MARKET' || req.type === 'STOP_MARKET' || req.type === 'TAKE_PROFIT_MARKET' || req.type === 'TRAILING_STOP_MARKET';

    // -- shape of the request, per market
    const bad = this.validateShape(req);
    if (bad) return bad;
    const tif: TimeInForce = req.type === 'LIMIT' || req.type === 'STOP_LOSS_LIMIT' ? (req.timeInForce ?? 'GTC') : 'GTC';
    const workingType: WorkingType = req.workingType ?? 'CONTRACT_PRICE';

    // -- futures position side and reduce-only rules
    let positionSide: PositionSide = 'BOTH';
    let reduceOnly = req.reduceOnly ?? false;
    if (market === 'futures') {
      const requested = req.positionSide ?? 'BOTH';
      if (acct.dual ? requested === 'BOTH' : requested !== 'BOTH') {
        return reject('POSITION_SIDE_MISMATCH', "Order's position side does not match user's setting.");
      }
      // "reduceOnly: Cannot be sent in Hedge Mode" (New Order (TRADE)); Binance answers -1106 with this
      // exact text even for reduceOnly=false.
      if (acct.dual && req.reduceOnly !== undefined) return reject('INVALID_PARAMETER', "Parameter 'reduceonly' sent when not required.");
      positionSide = requested;
      // In hedge mode, selling LONG or buying SHORT is a close.
      if (acct.dual) reduceOnly = (positionSide === 'LONG' && req.side === 'SELL') || (positionSide === 'SHORT' && req.side === 'BUY');
      if (req.closePosition) reduceOnly = true;
    }

    // -- quantity (quoteOrderQty for spot market orders is converted at the current price)
    let quantity = req.quantity ?? ZERO;
    if (req.type === 'MARKET' && req.quoteOrderQty && market === 'spot') {
      if (!st.last) return reject('NO_PRICE', `no price yet for ${req.symbol}`);
      const px = marketFillPrice(this.fill, req.side, st.last, ZERO, undefined, inst.filters.price.tickSize);
      const step = inst.filters.lot.stepSize;
      quantity = req.quoteOrderQty.div(px);
      if (!step.isZero()) quantity = quantity.div(step).floor().times(step);
    }

    // -- one open order per clientOrderId (Binance's rule)
    const clientOrderId = req.clientOrderId ?? this.generateClientOrderId(market, req.symbol);
    if (this.workingList(market, req.symbol).some((o) => o.account === accountId && o.clientOrderId === clientOrderId)) {
      return reject('DUPLICATE_CLIENT_ORDER_ID', market === 'spot' ? 'Duplicate order sent.' : 'ClientOrderId is duplicated.');
    }

    // -- exchange filters
    const refPrice = market === 'futures' ? (st.mark ?? st.last) : st.last;
    const openCount = this.workingList(market, req.symbol).filter((o) => o.account === accountId).length;
    if (!req.closePosition) {
      const failure = checkOrder(
        inst,
        {
          side: req.side,
          isMarket: isMarketExec,
          quantity,
          ...(req.price !== undefined && !isMarketExec ? { price: req.price } : {}),
          ...(req.stopPrice !== undefined ? { stopPrice: req.stopPrice } : {}),
          // A trailing stop's activation price is a price like a trigger: tick and price range apply.
          ...(req.activationPrice !== undefined ? { stopPrice: req.activationPrice } : {}),
          reduceOnly,
        },
        { ...(refPrice ? { referencePrice: refPrice } : {}), openOrders: openCount },
      );
      if (failure) return reject('FILTER', failure.reason, { filter: failure });
    } else if (req.stopPrice !== undefined) {
      const failure = checkOrder(inst, { side: req.side, isMarket: true, quantity: inst.filters.lot.minQty, stopPrice: req.stopPrice, reduceOnly: true }, { openOrders: openCount });
      if (failure) return reject('FILTER', failure.reason, { filter: failure });
    }

    if (req.type === 'MARKET' && !st.last) return reject('NO_PRICE', `no price yet for ${req.symbol}`);

    // -- conditionals must not trigger at once
    if (isConditional) {
      const trig = workingType === 'MARK_PRICE' ? (st.mark ?? st.last) : st.last;
      if (trig && this.isTriggered(req.type, req.side, req.stopPrice!, trig, trig)) {
        return reject('WOULD_TRIGGER_IMMEDIATELY', market === 'spot' ? 'Stop price would trigger immediately.' : 'Order would immediately trigger.');
      }
    }

    // -- trailing stops ("New Algo Order (TRADE)"): callbackRate within Binance's range, and an activation
    //    price on the far side of the current price (SELL above, BUY below), else -2021. Without one,
    //    trailing starts at once from the current price (per workingType).
    let trail: Pick<MutOrder, 'priceRate' | 'activatePrice' | 'trailExtreme' | 'trailActivated'> | undefined;
    if (req.type === 'TRAILING_STOP_MARKET') {
      if (checkCallbackRate(req.callbackRate!)) return reject('INVALID_CALLBACK_RATE', 'Invalid callBack rate.');
      const now = workingType === 'MARK_PRICE' ? (st.mark ?? st.last) : st.last;
      if (!now) return reject('NO_PRICE', `no price yet for ${req.symbol}`);
      const activate = req.activationPrice ?? now;
      if (req.activationPrice !== undefined && (req.side === 'SELL' ? activate.lte(now) : activate.gte(now))) return reject('WOULD_TRIGGER_IMMEDIATELY', 'Order would immediately trigger.');
      trail = { priceRate: req.callbackRate!, activatePrice: activate, trailExtreme: now, trailActivated: req.activationPrice === undefined };
    }

    // -- post-only must not take
    const postOnly = req.type === 'LIMIT_MAKER' || (req.type === 'LIMIT' && tif === 'GTX');
    if (postOnly && st.last && this.isMarketable(req.side, req.price!, st.last)) {
      return reject('POST_ONLY_WOULD_TAKE', market === 'spot' ? 'Order would immediately match and take.' : 'Due to the order could not be executed as maker, the Post Only order will be rejected.');
    }

    // -- reduce-only needs a position to reduce (hedge mode: a close, SELL LONG or BUY SHORT, needs that leg)
    if (market === 'futures' && reduceOnly && !req.closePosition) {
      const pos = acct.positions.get(posKey(req.symbol, positionSide));
      const amt = pos?.amt ?? ZERO;
      if (amt.isZero() || (amt.gt(0) && req.side === 'BUY') || (amt.lt(0) && req.side === 'SELL')) {
        return reject('REDUCE_ONLY_REJECTED', 'ReduceOnly Order is rejected.');
      }
    }

    // -- funds
    const refForFunds = req.price ?? req.stopPrice ?? req.activationPrice ?? st.last;
    let locked = ZERO;
    if (market === 'spot' && leg) {
      locked = leg.locked;
    } else if (market === 'spot') {
      const [base, quote] = [inst.baseAsset, inst.quoteAsset];
      if (req.side === 'BUY') {
        const cost = req.type === 'MARKET' ? quantity.times(marketFillPrice(this.fill, 'BUY', st.last!, quantity, undefined, inst.filters.price.tickSize)) : quantity.times(req.price!);
        if (this.balance(acct, quote).free.lt(cost)) return reject('INSUFFICIENT_BALANCE', 'Account has insufficient balance for requested action.');
        if (req.type !== 'MARKET') locked = cost;
      } else {
        if (this.balance(acct, base).free.lt(quantity)) return reject('INSUFFICIENT_BALANCE', 'Account has insufficient balance for requested action.');
        if (req.type !== 'MARKET') locked = quantity;
      }
    } else if (!reduceOnly && refForFunds) {
      const lev = this.settingsFor(acct, req.symbol).leverage;
      const required = quantity.times(refForFunds).div(lev);
      if (this.availableBalance(acct).lt(required)) return reject('MARGIN_INSUFFICIENT', 'Margin is insufficient.');
    }

    // -- USD-M rejects a FOK that cannot fill in full right now (-5021, "will not be recorded in the
    //    order history"); spot accepts it and reports it EXPIRED. At placement there is no step volume,
    //    so a marketable limit fills in full and only a non-marketable one can fail.
    if (market === 'futures' && req.type === 'LIMIT' && tif === 'FOK' && !(st.last && this.isMarketable(req.side, req.price!, st.last))) {
      return reject('FOK_WOULD_NOT_FILL', 'Due to the order could not be filled immediately, the FOK order has been rejected. The order will not be recorded in the order history');
    }

    // -- accept
    const now = this.clock.now();
    const order: MutOrder = {
      account: accountId,
      market,
      symbol: req.symbol,
      orderId: leg?.dryRun ? 0 : this.allocOrderId(market, req.symbol),
      clientOrderId,
      side: req.side,
      type: req.type,
      timeInForce: tif,
      positionSide,
      workingType,
      reduceOnly,
      closePosition: req.closePosition ?? false,
      price: req.price ?? ZERO,
      stopPrice: req.stopPrice ?? ZERO,
      origQty: quantity,
      executedQty: ZERO,
      cumQuote: ZERO,
      avgPrice: ZERO,
      status: 'NEW',
      triggered: false,
      time: now,
      updateTime: now,
      locked,
      ...trail,
      ...(leg ? { orderListId: leg.orderListId } : {}),
    };
    if (trail) order.stopPrice = this.trailLevel(inst, order);
    if (leg?.dryRun) return { ok: true, value: this.snapshot(order) };
    if (market === 'spot' && locked.gt(0)) {
      const asset = req.side === 'BUY' ? inst.quoteAsset : inst.baseAsset;
      const b = this.balance(acct, asset);
      b.free = b.free.minus(locked);
      b.locked = b.locked.plus(locked);
      this.emit({ type: 'spotBalances', account: acct.id, time: now, balances: [this.balanceView(acct, asset)] });
    }
    this.ordersOf(market, req.symbol).set(order.orderId, order);
    this.emitOrder(order, 'NEW');

    // -- immediate execution
    if (req.type === 'MARKET' && this.deferMarkets) {
      const k = key(market, req.symbol);
      let q = this.pendingMarkets.get(k);
      if (!q) this.pendingMarkets.set(k, (q = []));
      q.push({ order, arriveAt: now + this.latencyMs });
    } else if (req.type === 'MARKET') {
      this.executeMarket(inst, order, st.last!, st.last!, undefined);
    } else if (req.type === 'LIMIT' || req.type === 'LIMIT_MAKER') {
      const last = st.last;
      if (last && this.isMarketable(order.side, order.price, last)) {
        this.executeMarketableLimit(inst, order, last, undefined);
      } else if (tif === 'IOC' || tif === 'FOK') {
        this.finish(order, 'EXPIRED');
      } else {
        this.workingList(market, req.symbol).push(order);
      }
    } else {
      this.workingList(market, req.symbol).push(order);
    }
    return { ok: true, value: this.snapshot(order) };
  }

  cancelOrder(accountId: string, market: Market, symbol: string, ref: { orderId?: number; clientOrderId?: string }): EngineResult<SimOrder> {
    const found = this.findOrder(accountId, market, symbol, ref);
    if (!found.ok) return reject('UNKNOWN_ORDER', 'Unknown order sent.');
    const order = found.value;
    if (order.status !== 'NEW' && order.status !== 'PARTIALLY_FILLED') return reject('UNKNOWN_ORDER', 'Unknown order sent.');
    this.finish(order, 'CANCELED');
    // "Canceling an individual order from an order list will cancel the entire order list." (Cancel Order list (TRADE))
    if (order.orderListId !== undefined) this.endOrderList(order.orderListId, 'CANCELED');
    return { ok: true, value: this.snapshot(order) };
  }

  /** Cancels every open order of the account on symbol (order list legs included); returns what was cancelled. */
  cancelAll(accountId: string, market: Market, symbol: string): SimOrder[] {
    const mine = this.workingList(market, symbol).filter((o) => o.account === accountId);
    for (const o of mine) this.finish(o, 'CANCELED');
    for (const id of new Set(mine.flatMap((o) => (o.orderListId !== undefined ? [o.orderListId] : [])))) this.endOrderList(id, 'CANCELED');
    return mine.map((o) => this.snapshot(o));
  }

  // ----------------------------------------------------------- order lists

  /**
   * Spot OCO ("New Order list - OCO (TRADE)"): a LIMIT_MAKER take-profit and
   * a STOP_LOSS_LIMIT stop for one quantity, locked once. SELL: the limit is
   * the above leg, the stop the below one, and limit price > last price >
   * stop price; BUY the mirror. Whichever leg fills (even in part) or
   * triggers first, the other one expires (the triggered stop takes over the
   * locked funds); cancelling either leg cancels both. Returns the list and
   * its legs, stop leg first (Binance numbers them that way).
   */
  placeOrderList(accountId: string, req: PlaceOrderListRequest): EngineResult<{ list: SimOrderList; orders: SimOrder[] }> {
    const acct = this.accounts.get(accountId);
    if (!acct) return reject('INVALID_PARAMETER', `unknown account ${accountId}`);
    const inst = this.instrument('spot', req.symbol);
    if (!inst || inst.status !== 'TRADING') return reject('UNKNOWN_SYMBOL', `Invalid symbol ${req.symbol}`);
    const { above, below } = req;
    const isLimit = (l: typeof above): boolean => l.type === 'LIMIT_MAKER';
    const invalid = (listRule: NonNullable<EngineReject['listRule']>, message: string): EngineReject => reject('ORDER_LIST_INVALID', message, { listRule });
    if (isLimit(above) && isLimit(below)) return invalid('BOTH_LIMIT', 'At least one OCO order must be contingent.');
    if (req.side === 'SELL') {
      if (isLimit(below)) return invalid('SELL_LIMIT_MUST_BE_ABOVE', 'A limit order in a sell OCO must be above.');
      if (!isLimit(above)) return invalid('SELL_STOP_MUST_BE_BELOW', 'A stop loss order in a sell OCO must be below.');
    } else {
      if (isLimit(above)) return invalid('BUY_LIMIT_MUST_BE_BELOW', 'A limit order in a buy OCO must be below.');
      if (!isLimit(below)) return invalid('BUY_STOP_MUST_BE_ABOVE', 'A stop loss order in a buy OCO must be above.');
    }
    const [limit, stop] = req.side === 'SELL' ? [above, below] : [below, above];
    if (!limit.price || !stop.price) return reject('INVALID_PARAMETER', "Mandatory parameter 'price' was not sent, was empty/null, or malformed.");
    if (!stop.stopPrice) return reject('INVALID_PARAMETER', "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.");
    const last = this.priceState('spot', req.symbol).last;
    if (!last) return reject('NO_PRICE', `no price yet for ${req.symbol}`);
    const pricesOk = req.side === 'SELL' ? limit.price.gt(last) && last.gt(stop.stopPrice) : limit.price.lt(last) && last.lt(stop.stopPrice);
    if (!pricesOk) return reject('ORDER_LIST_PRICES', 'The relationship of the prices for the orders is not correct.');
    const listClientOrderId = req.listClientOrderId ?? `sim-list-${this.nextOrderListId}`;
    const openList = [...this.orderLists.values()].some((l) => l.account === accountId && l.listClientOrderId === listClientOrderId && l.listStatusType !== 'ALL_DONE');
    if (openList || (limit.clientOrderId !== undefined && limit.clientOrderId === stop.clientOrderId)) return reject('DUPLICATE_CLIENT_ORDER_ID', 'Duplicate order sent.');
    const legReq = (l: typeof above): PlaceOrderRequest => ({
      market: 'spot',
      symbol: req.symbol,
      side: req.side,
      type: l.type,
      quantity: req.quantity,
      price: l.price!,
      ...(l.stopPrice ? { stopPrice: l.stopPrice } : {}),
      ...(l.timeInForce ? { timeInForce: l.timeInForce } : {}),
      ...(l.clientOrderId ? { clientOrderId: l.clientOrderId } : {}),
    });
    // Both legs pass every order check before either is placed.
    for (const l of [stop, limit]) {
      const r = this.placeOrder(accountId, legReq(l), { orderListId: 0, locked: ZERO, dryRun: true });
      if (!r.ok) return r;
    }
    // The quantity is locked once for the pair: base for a SELL; for a BUY the quote the dearer leg needs.
    const lock = req.side === 'SELL' ? req.quantity : Dec.max(req.quantity.times(limit.price), req.quantity.times(stop.price));
    const funds = this.balance(acct, req.side === 'SELL' ? inst.baseAsset : inst.quoteAsset);
    if (funds.free.lt(lock)) return reject('INSUFFICIENT_BALANCE', 'Account has insufficient balance for requested action.');
    const orderListId = this.nextOrderListId++;
    const stopLeg = this.placeOrder(accountId, legReq(stop), { orderListId, locked: ZERO });
    if (!stopLeg.ok) return stopLeg;
    const limitLeg = this.placeOrder(accountId, legReq(limit), { orderListId, locked: lock });
    if (!limitLeg.ok) {
      this.finish(this.ordersOf('spot', req.symbol).get(stopLeg.value.orderId)!, 'EXPIRED');
      return limitLeg;
    }
    const list: Mutable<SimOrderList> = {
      account: accountId,
      symbol: req.symbol,
      orderListId,
      listClientOrderId,
      contingencyType: 'OCO',
      listStatusType: 'EXEC_STARTED',
      listOrderStatus: 'EXECUTING',
      orders: [stopLeg.value, limitLeg.value].map((o) => ({ orderId: o.orderId, clientOrderId: o.clientOrderId })),
      transactionTime: this.clock.now(),
    };
    this.orderLists.set(orderListId, list);
    this.emit({ type: 'orderList', account: accountId, time: list.transactionTime, list: { ...list } });
    return { ok: true, value: { list: { ...list }, orders: [stopLeg.value, limitLeg.value].map((o) => this.snapshot(this.ordersOf('spot', req.symbol).get(o.orderId)!)) } };
  }

  /** Cancels an order list by id or list client id ("Cancel Order list (TRADE)"); returns it with its legs. */
  cancelOrderList(accountId: string, symbol: string, ref: { orderListId?: number; listClientOrderId?: string }): EngineResult<{ list: SimOrderList; orders: SimOrder[] }> {
    const list = this.findOrderList(accountId, ref, symbol);
    if (!list || list.listStatusType === 'ALL_DONE') return reject('UNKNOWN_ORDER', 'Unknown order sent.');
    this.endOrderList(list.orderListId, 'CANCELED');
    return { ok: true, value: { list: { ...list }, orders: this.orderListLegs(list) } };
  }

  /** An order list by id or list client id ("Query Order list (USER_DATA)"), with its legs. */
  getOrderList(accountId: string, ref: { orderListId?: number; listClientOrderId?: string }): EngineResult<{ list: SimOrderList; orders: SimOrder[] }> {
    const list = this.findOrderList(accountId, ref);
    return list ? { ok: true, value: { list: { ...list }, orders: this.orderListLegs(list) } } : reject('UNKNOWN_ORDER', 'Order list does not exist.');
  }

  /** The account's order lists still executing ("Query Open Order lists (USER_DATA)"). */
  openOrderLists(accountId: string): SimOrderList[] {
    return [...this.orderLists.values()].filter((l) => l.account === accountId && l.listStatusType !== 'ALL_DONE').map((l) => ({ ...l }));
  }

  /** Every order list of the account (for the paper account's store; restoreOrderLists puts them back). */
  orderListsOf(accountId: string): SimOrderList[] {
    return [...this.orderLists.values()].filter((l) => l.account === accountId).map((l) => ({ ...l }));
  }

  /** Puts stored order lists back (their legs restored with restoreAccount); later lists get higher ids. */
  restoreOrderLists(lists: readonly SimOrderList[]): void {
    for (const l of lists) {
      this.orderLists.set(l.orderListId, { ...l, orders: [...l.orders] });
      this.nextOrderListId = Math.max(this.nextOrderListId, l.orderListId + 1);
    }
  }

  private findOrderList(accountId: string, ref: { orderListId?: number; listClientOrderId?: string }, symbol?: string): Mutable<SimOrderList> | undefined {
    let found: Mutable<SimOrderList> | undefined;
    if (ref.orderListId !== undefined) found = this.orderLists.get(ref.orderListId);
    // The newest list with that client id (ids are unique among open lists only).
    else for (const l of this.orderLists.values()) if (l.account === accountId && l.listClientOrderId === ref.listClientOrderId) found = l;
    if (!found || found.account !== accountId || (symbol !== undefined && found.symbol !== symbol)) return undefined;
    if (ref.listClientOrderId !== undefined && found.listClientOrderId !== ref.listClientOrderId) return undefined;
    return found;
  }

  private orderListLegs(list: SimOrderList): SimOrder[] {
    return list.orders.map((r) => this.snapshot(this.ordersOf('spot', list.symbol).get(r.orderId)!));
  }

  /**
   * Ends an order list: every leg still working is cancelled (CANCELED) or,
   * when the other leg filled or triggered, expired (EXPIRED, Binance's
   * OCO_TRIGGER); then one listStatus ALL_DONE. A no-op once it is done.
   */
  private endOrderList(orderListId: number, legs: 'CANCELED' | 'EXPIRED', by?: MutOrder): void {
    const list = this.orderLists.get(orderListId);
    if (!list || list.listStatusType === 'ALL_DONE') return;
    for (const r of list.orders) {
      const o = this.ordersOf('spot', list.symbol).get(r.orderId);
      if (!o || o === by || (o.status !== 'NEW' && o.status !== 'PARTIALLY_FILLED')) continue;
      // The pair's funds were locked once, on one leg: a triggered stop takes them over.
      if (by && by.locked.isZero() && o.locked.gt(0)) {
        by.locked = o.locked;
        o.locked = ZERO;
      }
      this.finish(o, legs);
    }
    list.listStatusType = 'ALL_DONE';
    list.listOrderStatus = 'ALL_DONE';
    list.transactionTime = this.clock.now();
    this.emit({ type: 'orderList', account: list.account, time: list.transactionTime, list: { ...list } });
  }

  getOrder(accountId: string, market: Market, symbol: string, ref: { orderId?: number; clientOrderId?: string }): EngineResult<SimOrder> {
    const found = this.findOrder(accountId, market, symbol, ref);
    return found.ok ? { ok: true, value: this.snapshot(found.value) } : reject('UNKNOWN_ORDER', 'Order does not exist.');
  }

  openOrders(accountId: string, market: Market, symbol?: string): SimOrder[] {
    const out: SimOrder[] = [];
    for (const [k, list] of this.working) {
      if (!k.startsWith(`${market}:`) || (symbol && k !== key(market, symbol))) continue;
      for (const o of list) if (o.account === accountId) out.push(this.snapshot(o));
    }
    return out.sort((a, b) => a.time - b.time || a.orderId - b.orderId);
  }

  allOrders(accountId: string, market: Market, symbol: string, q: { orderId?: number; startTime?: number; endTime?: number; limit?: number } = {}): SimOrder[] {
    const all = [...this.ordersOf(market, symbol).values()]
      .filter((o) => o.account === accountId)
      .filter((o) => (q.orderId === undefined || o.orderId >= q.orderId) && (q.startTime === undefined || o.time >= q.startTime) && (q.endTime === undefined || o.time <= q.endTime))
      .sort((a, b) => a.orderId - b.orderId);
    const limit = q.limit ?? 500;
    return (q.orderId === undefined && q.startTime === undefined ? all.slice(-limit) : all.slice(0, limit)).map((o) => this.snapshot(o));
  }

  trades(accountId: string, market: Market, symbol: string, q: { fromId?: number; startTime?: number; endTime?: number; limit?: number; orderId?: number } = {}): SimTrade[] {
    const all = (this.tradesByKey.get(key(market, symbol)) ?? []).filter(
      (t) =>
        t.account === accountId &&
        (q.orderId === undefined || t.orderId === q.orderId) &&
        (q.fromId === undefined || t.tradeId >= q.fromId) &&
        (q.startTime === undefined || t.time >= q.startTime) &&
        (q.endTime === undefined || t.time <= q.endTime),
    );
    const limit = q.limit ?? 500;
    return q.fromId === undefined && q.startTime === undefined ? all.slice(-limit) : all.slice(0, limit);
  }

  incomes(accountId: string, q: { symbol?: string; incomeType?: string; startTime?: number; endTime?: number; limit?: number } = {}): Income[] {
    const acct = this.accounts.get(accountId);
    if (!acct) return [];
    const all = acct.incomes.filter(
      (i) => (!q.symbol || i.symbol === q.symbol) && (!q.incomeType || i.incomeType === q.incomeType) && (q.startTime === undefined || i.time >= q.startTime) && (q.endTime === undefined || i.time <= q.endTime),
    );
    return all.slice(0, q.limit ?? 100);
  }

  // ------------------------------------------------------------- accounts

  spotBalances(accountId: string): SpotBalance[] {
    const acct = this.mustAccount(accountId);
    return [...acct.spot.keys()].sort().map((a) => this.balanceView(acct, a));
  }

  futuresAccount(accountId: string): FuturesAccountView {
    const acct = this.mustAccount(accountId);
    const positions = this.positionViews(acct);
    const unrealized = positions.reduce((s, p) => s.plus(p.unrealizedPnl), ZERO);
    const isolated = positions.reduce((s, p) => s.plus(p.isolatedWallet), ZERO);
    const positionIm = positions.filter((p) => p.marginType === 'cross').reduce((s, p) => s.plus(p.notional.abs().div(p.leverage)), ZERO);
    const orderIm = this.openOrderMargin(acct);
    const maint = positions.reduce((s, p) => s.plus(p.maintMargin), ZERO);
    return {
      asset: 'USDT',
      walletBalance: acct.wallet,
      crossWalletBalance: acct.wallet.minus(isolated),
      unrealizedPnl: unrealized,
      marginBalance: acct.wallet.plus(unrealized),
      availableBalance: this.availableBalance(acct),
      totalInitialMargin: positionIm.plus(orderIm).plus(isolated),
      totalMaintMargin: maint,
      positionInitialMargin: positionIm.plus(isolated),
      openOrderInitialMargin: orderIm,
      dualSidePosition: acct.dual,
      positions,
    };
  }

  positions(accountId: string, symbol?: string): FuturesPosition[] {
    const acct = this.mustAccount(accountId);
    return this.positionViews(acct).filter((p) => !symbol || p.symbol === symbol);
  }

  leverageOf(accountId: string, symbol: string): SymbolSettings {
    return { ...this.settingsFor(this.mustAccount(accountId), symbol) };
  }

  setLeverage(accountId: string, symbol: string, leverage: number): EngineResult<{ leverage: number; maxNotionalValue: Dec }> {
    const acct = this.mustAccount(accountId);
    if (!this.instrument('futures', symbol)) return reject('UNKNOWN_SYMBOL', 'Invalid symbol.');
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > 125) return reject('INVALID_LEVERAGE', `Leverage ${leverage} is not valid`);
    this.settingsFor(acct, symbol).leverage = leverage;
    return { ok: true, value: { leverage, maxNotionalValue: new Dec(leverage >= 50 ? '50000' : leverage >= 20 ? '1000000' : '100000000') } };
  }

  setMarginType(accountId: string, symbol: string, marginType: MarginType): EngineResult<void> {
    const acct = this.mustAccount(accountId);
    if (!this.instrument('futures', symbol)) return reject('UNKNOWN_SYMBOL', 'Invalid symbol.');
    const s = this.settingsFor(acct, symbol);
    if (s.marginType === marginType) return reject('NO_NEED_TO_CHANGE_MARGIN_TYPE', 'No need to change margin type.');
    const hasPosition = [...acct.positions.entries()].some(([k, p]) => k.startsWith(`${symbol}:`) && !p.amt.isZero());
    if (hasPosition) return reject('POSITION_EXISTS', 'Margin type cannot be changed if there exists position.');
    if (this.workingList('futures', symbol).some((o) => o.account === accountId)) return reject('OPEN_ORDERS_EXIST', 'Margin type cannot be changed if there exists open orders.');
    s.marginType = marginType;
    this.emitFuturesAccount(acct, 'MARGIN_TYPE_CHANGE', ZERO, [symbol]);
    return { ok: true, value: undefined };
  }

  setPositionMode(accountId: string, dual: boolean): EngineResult<void> {
    const acct = this.mustAccount(accountId);
    if (acct.dual === dual) return reject('NO_NEED_TO_CHANGE_POSITION_SIDE', 'No need to change position side.');
    if ([...acct.positions.values()].some((p) => !p.amt.isZero())) return reject('POSITION_EXISTS', 'Position side cannot be changed if there exists position.');
    for (const [k, list] of this.working) if (k.startsWith('futures:') && list.some((o) => o.account === accountId)) return reject('OPEN_ORDERS_EXIST', 'Position side cannot be changed if there exists open orders.');
    acct.dual = dual;
    return { ok: true, value: undefined };
  }

  // ---------------------------------------------------------- persistence
  //
  // The paper account of MODE=sim outlives the process (the sim venue stores
  // it); the local exchange and the backtester never call these.

  /** The account's balances, wallet, positions and per-symbol settings, as they are now. */
  accountState(accountId: string): SimAccountState {
    const acct = this.mustAccount(accountId);
    return {
      spot: this.spotBalances(accountId),
      wallet: acct.wallet,
      dualSidePosition: acct.dual,
      positions: [...acct.positions.entries()].map(([k, p]) => ({ symbol: k.slice(0, k.indexOf(':')), positionSide: p.positionSide, amt: p.amt, entry: p.entry, isolatedWallet: p.isolatedWallet, updateTime: p.updateTime })),
      settings: [...acct.settings.entries()].map(([symbol, s]) => ({ symbol, leverage: s.leverage, marginType: s.marginType })),
    };
  }

  /** The next order and trade id of every (market, symbol) that has handed out one. */
  idCounters(): SimIdCounter[] {
    const keys = new Set([...this.nextOrderId.keys(), ...this.nextTradeId.keys()]);
    return [...keys].sort().map((k) => {
      const i = k.indexOf(':');
      return { market: k.slice(0, i) as Market, symbol: k.slice(i + 1), nextOrderId: this.nextOrderId.get(k) ?? 1, nextTradeId: this.nextTradeId.get(k) ?? 1 };
    });
  }

  /** One order with its locked funds and whether it rests on the book. */
  orderRecord(market: Market, symbol: string, orderId: number): SimOrderRecord | undefined {
    const o = this.orders.get(key(market, symbol))?.get(orderId);
    if (!o) return undefined;
    return { ...this.snapshot(o), locked: o.locked, working: this.working.get(key(market, symbol))?.includes(o) ?? false };
  }

  /**
   * Recreates an account as it was stored: balances, positions, settings,
   * every order (the working ones back on the book, in time priority) and
   * trade, and the id counters, never below the largest id restored. Emits
   * nothing.
   */
  restoreAccount(
    accountId: string,
    s: { readonly account: SimAccountState; readonly orders: readonly SimOrderRecord[]; readonly trades: readonly SimTrade[]; readonly counters: readonly SimIdCounter[] },
  ): void {
    if (this.accounts.has(accountId)) throw new Error(`account ${accountId} already exists`);
    const a = s.account;
    const acct: Account = { id: accountId, spot: new Map(), wallet: a.wallet, dual: a.dualSidePosition, positions: new Map(), settings: new Map(), incomes: [] };
    for (const b of a.spot) acct.spot.set(b.asset, { free: b.free, locked: b.locked });
    for (const p of a.positions) acct.positions.set(posKey(p.symbol, p.positionSide), { positionSide: p.positionSide, amt: p.amt, entry: p.entry, isolatedWallet: p.isolatedWallet, updateTime: p.updateTime });
    for (const x of a.settings) acct.settings.set(x.symbol, { leverage: x.leverage, marginType: x.marginType });
    this.accounts.set(accountId, acct);
    for (const r of [...s.orders].sort((x, y) => x.orderId - y.orderId)) {
      const { working, ...rest } = r;
      const o: MutOrder = { ...rest, account: accountId };
      this.ordersOf(o.market, o.symbol).set(o.orderId, o);
      if (working) this.workingList(o.market, o.symbol).push(o);
      this.reserveIds(o.market, o.symbol, { orderId: o.orderId });
    }
    for (const t of [...s.trades].sort((x, y) => x.tradeId - y.tradeId)) {
      this.tradeList(t.market, t.symbol).push({ ...t, account: accountId });
      this.reserveIds(t.market, t.symbol, { tradeId: t.tradeId });
    }
    for (const c of s.counters) this.reserveIds(c.market, c.symbol, { orderId: c.nextOrderId - 1, tradeId: c.nextTradeId - 1 });
  }

  /**
   * Makes the next ids on (market, symbol) come after the given ones (ids a
   * database already holds). Returns true when a counter had to move.
   */
  reserveIds(market: Market, symbol: string, used: { readonly orderId?: number; readonly tradeId?: number }): boolean {
    const k = key(market, symbol);
    let moved = false;
    if (used.orderId !== undefined && (this.nextOrderId.get(k) ?? 1) <= used.orderId) {
      this.nextOrderId.set(k, used.orderId + 1);
      moved = true;
    }
    if (used.tradeId !== undefined && (this.nextTradeId.get(k) ?? 1) <= used.tradeId) {
      this.nextTradeId.set(k, used.tradeId + 1);
      moved = true;
    }
    return moved;
  }

  /**
   * Applies a fill that happened elsewhere (a stored fill) to the account's
   * balances, with the same arithmetic as a fill here: spot pays the notional
   * in quote, receives base, and the fee leaves the fee asset; futures moves
   * the one-way position and the wallet (realized PnL minus fee; a fee in
   * another asset than USDT is not charged to the wallet). No order, no
   * trade, no event.
   */
  bookRecordedFill(
    accountId: string,
    market: Market,
    symbol: string,
    f: { readonly side: Side; readonly qty: Dec; readonly price: Dec; readonly fee: Dec; readonly feeAsset: string; readonly baseAsset?: string; readonly quoteAsset?: string },
  ): void {
    const acct = this.mustAccount(accountId);
    if (market === 'futures') {
      this.applyFuturesFill(acct, symbol, 'BOTH', f.side, f.qty, f.price, f.feeAsset === 'USDT' ? f.fee : ZERO, false);
      return;
    }
    if (!f.baseAsset || !f.quoteAsset) throw new Error(`bookRecordedFill: ${symbol} needs its base and quote asset`);
    const base = this.balance(acct, f.baseAsset);
    const quote = this.balance(acct, f.quoteAsset);
    const notional = f.qty.times(f.price);
    if (f.side === 'BUY') {
      quote.free = quote.free.minus(notional);
      base.free = base.free.plus(f.qty);
    } else {
      base.free = base.free.minus(f.qty);
      quote.free = quote.free.plus(notional);
    }
    const feeFrom = this.balance(acct, f.feeAsset);
    feeFrom.free = feeFrom.free.minus(f.fee);
  }

  // ------------------------------------------------------------ internals

  private validateShape(req: PlaceOrderRequest): EngineReject | undefined {
    const spotOnly: SimOrderType[] = ['LIMIT_MAKER', 'STOP_LOSS_LIMIT'];
    const futuresOnly: SimOrderType[] = ['STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET'];
    if (req.type === 'LIQUIDATION') return reject('INVALID_PARAMETER', 'Invalid orderType.');
    if ((req.market === 'futures' && spotOnly.includes(req.type)) || (req.market === 'spot' && futuresOnly.includes(req.type))) return reject('INVALID_PARAMETER', 'Invalid orderType.');
    if (req.market === 'spot' && (req.reduceOnly || req.closePosition || req.positionSide)) return reject('INVALID_PARAMETER', "Parameter 'reduceOnly' sent when not required.");
    if (req.timeInForce === 'GTX' && req.market === 'spot') return reject('INVALID_PARAMETER', 'Invalid timeInForce.');
    const needsPrice = req.type === 'LIMIT' || req.type === 'LIMIT_MAKER' || req.type === 'STOP_LOSS_LIMIT';
    if (needsPrice && !req.price) return reject('INVALID_PARAMETER', "Mandatory parameter 'price' was not sent, was empty/null, or malformed.");
    if (!needsPrice && req.price && (req.type === 'MARKET' || req.type === 'TRAILING_STOP_MARKET')) return reject('INVALID_PARAMETER', "Parameter 'price' sent when not required.");
    if (req.type === 'TRAILING_STOP_MARKET' && !req.callbackRate) return reject('INVALID_PARAMETER', "Mandatory parameter 'callbackRate' was not sent, was empty/null, or malformed.");
    const conditional = req.type === 'STOP_MARKET' || req.type === 'TAKE_PROFIT_MARKET' || req.type === 'STOP_LOSS_LIMIT';
    if (conditional && !req.stopPrice) return reject('INVALID_PARAMETER', "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.");
    if (req.closePosition && !(req.type === 'STOP_MARKET' || req.type === 'TAKE_PROFIT_MARKET')) return reject('INVALID_PARAMETER', 'closePosition is only for STOP_MARKET and TAKE_PROFIT_MARKET.');
    if (req.closePosition && req.quantity) return reject('INVALID_PARAMETER', "Parameter 'quantity' sent when not required.");
    const hasQty = (req.quantity && req.quantity.gt(0)) || (req.type === 'MARKET' && req.market === 'spot' && req.quoteOrderQty?.gt(0));
    if (!hasQty && !req.closePosition) return reject('INVALID_PARAMETER', "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.");
    return undefined;
  }

  private isMarketable(side: Side, limit: Dec, last: Dec): boolean {
    return side === 'BUY' ? limit.gte(last) : limit.lte(last);
  }

  /** Whether a conditional order's trigger lies within [low, high] of the path. */
  private isTriggered(type: SimOrderType, side: Side, stop: Dec, low: Dec, high: Dec): boolean {
    // Stops trigger against the position (sell below, buy above); take-profits the other way.
    const isStop = type === 'STOP_MARKET' || type === 'STOP_LOSS_LIMIT';
    const triggerBelow = isStop ? side === 'SELL' : side === 'BUY';
    return triggerBelow ? low.lte(stop) : high.gte(stop);
  }

  private processStep(inst: Instrument, list: MutOrder[], step: PriceStep): void {
    // Adverse first: stops, then take-profits, then plain limits; time priority within each.
    const rank = (o: MutOrder): number => (o.triggered ? 2 : o.type === 'STOP_MARKET' || o.type === 'STOP_LOSS_LIMIT' || o.type === 'TRAILING_STOP_MARKET' ? 0 : o.type === 'TAKE_PROFIT_MARKET' ? 1 : 2);
    const ordered = [...list].sort((a, b) => rank(a) - rank(b) || a.orderId - b.orderId);
    for (const o of ordered) {
      if (o.status !== 'NEW' && o.status !== 'PARTIALLY_FILLED') continue;
      if (o.type === 'TRAILING_STOP_MARKET' && !o.triggered) {
        if (o.workingType === 'MARK_PRICE' && inst.market === 'futures') continue;
        // Within a step the order of high and low is unknown: the adverse one first (a SELL sees the
        // low before the high can raise its stop; a BUY the high before the low).
        const path = o.side === 'SELL' ? [step.open, step.low, step.high, step.last] : [step.open, step.high, step.low, step.last];
        const at = this.trailPath(inst, o, path);
        if (at) this.trigger(inst, o, at, step.volume);
        continue;
      }
      const conditional = (o.type === 'STOP_MARKET' || o.type === 'TAKE_PROFIT_MARKET' || o.type === 'STOP_LOSS_LIMIT') && !o.triggered;
      if (conditional) {
        if (o.workingType === 'MARK_PRICE' && inst.market === 'futures') continue;
        if (!this.isTriggered(o.type, o.side, o.stopPrice, step.low, step.high)) continue;
        // A gap through the trigger fills at the price the step opened at.
        const gapped = this.isTriggered(o.type, o.side, o.stopPrice, step.open, step.open);
        this.trigger(inst, o, gapped ? step.open : o.stopPrice, step.volume);
        continue;
      }
      // Resting limit: fills at its price when the path trades through it.
      const through = o.side === 'BUY' ? step.low.lt(o.price) : step.high.gt(o.price);
      if (!through) continue;
      const qty = fillableQty(this.fill, o.origQty.minus(o.executedQty), step.volume, inst.filters.lot.stepSize);
      if (qty.gt(0)) this.fillOrder(inst, o, qty, o.price, true);
    }
  }

  /**
   * A TRAILING_STOP_MARKET along a price path (each point reached from the
   * previous one in a straight line). Binance ("New Algo Order (TRADE)"):
   * SELL triggers when the highest price since placement >= activatePrice
   * and the latest price <= highest * (1 - callbackRate); BUY when the lowest
   * <= activatePrice and the latest >= lowest * (1 + callbackRate). Moves the
   * order's best price and activation along; returns the price the trigger
   * was crossed at (the level, or the first point when it is already past the
   * level: a gap), or undefined.
   */
  private trailPath(inst: Instrument, o: MutOrder, path: readonly Dec[]): Dec | undefined {
    const sell = o.side === 'SELL';
    let prev: Dec | undefined;
    for (const p of path) {
      const better = sell ? p.gt(o.trailExtreme!) : p.lt(o.trailExtreme!);
      if (better) {
        // Moving the favourable way: the best price follows, and no trigger on the way.
        o.trailExtreme = p;
        if (!o.trailActivated && (sell ? p.gte(o.activatePrice!) : p.lte(o.activatePrice!))) o.trailActivated = true;
        o.stopPrice = this.trailLevel(inst, o);
      } else if (o.trailActivated) {
        const level = this.trailLevelExact(o);
        // Crossed on the way from the previous point: at the level; already past at the first point: a gap, there.
        if (sell ? p.lte(level) : p.gte(level)) return prev === undefined ? p : level;
      }
      prev = p;
    }
    return undefined;
  }

  private trailLevelExact(o: MutOrder): Dec {
    const r = o.priceRate!.div(100);
    return o.side === 'SELL' ? o.trailExtreme!.times(new Dec(1).minus(r)) : o.trailExtreme!.times(new Dec(1).plus(r));
  }

  /** The trailing stop's current trigger on the tick (what Binance shows as its stop price); 0 before activation. */
  private trailLevel(inst: Instrument, o: MutOrder): Dec {
    if (!o.trailActivated) return ZERO;
    const tick = inst.filters.price.tickSize;
    const level = this.trailLevelExact(o);
    return tick.isZero() ? level : level.div(tick).toDecimalPlaces(0, Dec.ROUND_HALF_UP).times(tick);
  }

  private trigger(inst: Instrument, o: MutOrder, at: Dec, volume: Dec | undefined): void {
    o.triggered = true;
    o.updateTime = this.clock.now();
    // An OCO stop that starts working expires its limit leg ("activation of one order immediately cancels the other").
    if (o.orderListId !== undefined) this.endOrderList(o.orderListId, 'EXPIRED', o);
    if (o.type === 'STOP_LOSS_LIMIT') {
      // Becomes a limit at its price; marketable at once if the limit is on the taker side of the trigger.
      if (this.isMarketable(o.side, o.price, at)) this.executeMarketableLimit(inst, o, at, volume);
      return;
    }
    this.executeMarket(inst, o, at, at, volume);
  }

  /**
   * next-step mode: fills the waiting MARKET orders that have arrived by the
   * step's start (at its open) or, in the second pass, by its end (at its
   * last price). A step without `time` counts as arriving for every order.
   */
  private fillPendingMarkets(inst: Instrument, pending: Array<{ order: MutOrder; arriveAt: number }>, step: PriceStep, at: 'open' | 'last'): void {
    const start = step.time;
    const due = (arriveAt: number): boolean => start === undefined || (at === 'open' ? arriveAt <= start : arriveAt <= start + (step.durationMs ?? 0));
    let kept = 0;
    for (const p of pending) {
      const live = p.order.status === 'NEW' || p.order.status === 'PARTIALLY_FILLED';
      if (live && due(p.arriveAt)) {
        const price = at === 'open' ? step.open : step.last;
        this.executeMarket(inst, p.order, price, price, step.volume);
      } else if (live) {
        pending[kept++] = p;
      }
    }
    pending.length = kept;
  }

  /** Fills a market-executing order completely at the given price plus slippage. */
  private executeMarket(inst: Instrument, o: MutOrder, price: Dec, _last: Dec, volume: Dec | undefined): void {
    let qty = o.origQty.minus(o.executedQty);
    if (inst.market === 'futures' && (o.reduceOnly || o.closePosition)) {
      const cap = this.reducibleQty(o);
      if (cap.isZero()) return this.finish(o, 'EXPIRED');
      qty = o.closePosition ? cap : Dec.min(qty, cap);
      if (o.closePosition) o.origQty = o.executedQty.plus(qty);
    }
    if (qty.lte(0)) return this.finish(o, 'EXPIRED');
    const px = marketFillPrice(this.fill, o.side, price, qty, volume, inst.filters.price.tickSize);
    this.fillOrder(inst, o, qty, px, false);
    if (o.status === 'NEW' || o.status === 'PARTIALLY_FILLED') this.finish(o, 'EXPIRED');
  }

  /** A limit that can take now: fills what the step allows as taker, never worse than its limit. */
  private executeMarketableLimit(inst: Instrument, o: MutOrder, last: Dec, volume: Dec | undefined): void {
    const remaining = o.origQty.minus(o.executedQty);
    const qty = fillableQty(this.fill, remaining, volume, inst.filters.lot.stepSize);
    if (o.timeInForce === 'FOK' && qty.lt(remaining)) return this.finish(o, 'EXPIRED');
    const slipped = marketFillPrice(this.fill, o.side, last, qty, volume, inst.filters.price.tickSize);
    const px = o.side === 'BUY' ? Dec.min(slipped, o.price) : Dec.max(slipped, o.price);
    if (qty.gt(0)) this.fillOrder(inst, o, qty, px, false);
    if (o.status === 'FILLED') return;
    if (o.timeInForce === 'IOC' || o.timeInForce === 'FOK') return this.finish(o, 'EXPIRED');
    if (!this.workingList(o.market, o.symbol).includes(o)) this.workingList(o.market, o.symbol).push(o);
  }

  /** How much a reduce-only / closePosition order may still close. */
  private reducibleQty(o: MutOrder): Dec {
    const acct = this.accounts.get(o.account)!;
    const pos = acct.positions.get(posKey(o.symbol, o.positionSide));
    if (!pos || pos.amt.isZero()) return ZERO;
    const closing = (pos.amt.gt(0) && o.side === 'SELL') || (pos.amt.lt(0) && o.side === 'BUY');
    return closing ? pos.amt.abs() : ZERO;
  }

  private fillOrder(inst: Instrument, o: MutOrder, qty: Dec, price: Dec, isMaker: boolean, execType: ExecType = 'TRADE'): void {
    const acct = this.accounts.get(o.account)!;
    if (inst.market === 'futures' && o.reduceOnly && !o.closePosition && o.type !== 'LIQUIDATION') {
      const cap = this.reducibleQty(o);
      if (cap.isZero()) return this.finish(o, 'EXPIRED');
      qty = Dec.min(qty, cap);
    }
    const now = this.clock.now();
    const rate = isMaker ? this.fill.fees[inst.market].maker : this.fill.fees[inst.market].taker;
    const notional = qty.times(price);
    let fee: Dec;
    let feeAsset: string;
    let realized = ZERO;
    const tradeId = this.allocTradeId(inst.market, inst.symbol);
    if (inst.market === 'spot') {
      ({ fee, feeAsset } = this.applySpotFill(acct, inst, o, qty, price, rate));
    } else {
      const liqRate = o.type === 'LIQUIDATION' ? (inst.liquidationFee ?? rate) : rate;
      feeAsset = 'USDT';
      ({ realized, fee } = this.applyFuturesFill(acct, inst.symbol, o.positionSide, o.side, qty, price, commission(notional, liqRate), o.type === 'LIQUIDATION'));
      if (!realized.isZero()) this.income(acct, inst.symbol, 'REALIZED_PNL', realized, now, String(tradeId), '');
      if (!fee.isZero()) this.income(acct, inst.symbol, o.type === 'LIQUIDATION' ? 'INSURANCE_CLEAR' : 'COMMISSION', fee.neg(), now, String(tradeId), '');
    }
    o.executedQty = o.executedQty.plus(qty);
    o.cumQuote = o.cumQuote.plus(notional);
    o.avgPrice = o.cumQuote.div(o.executedQty);
    o.updateTime = now;
    o.status = o.executedQty.gte(o.origQty) ? 'FILLED' : 'PARTIALLY_FILLED';
    const trade: SimTrade = {
      account: acct.id,
      market: inst.market,
      symbol: inst.symbol,
      tradeId,
      orderId: o.orderId,
      clientOrderId: o.clientOrderId,
      side: o.side,
      positionSide: o.positionSide,
      price,
      qty,
      quoteQty: notional,
      commission: fee,
      commissionAsset: feeAsset,
      realizedPnl: realized,
      isMaker,
      time: now,
    };
    this.tradeList(inst.market, inst.symbol).push(trade);
    if (o.status === 'FILLED') this.removeWorking(o);
    if (o.status === 'FILLED' && inst.market === 'spot' && o.locked.gt(0)) {
      // An OCO BUY locks what its dearer leg needs: the cheaper one leaves some locked when it fills.
      const b = this.balance(acct, o.side === 'BUY' ? inst.quoteAsset : inst.baseAsset);
      b.locked = b.locked.minus(o.locked);
      b.free = b.free.plus(o.locked);
      o.locked = ZERO;
    }
    this.emitOrder(o, execType, trade);
    if (inst.market === 'spot') {
      this.emit({ type: 'spotBalances', account: acct.id, time: now, balances: [this.balanceView(acct, inst.baseAsset), this.balanceView(acct, inst.quoteAsset)] });
    } else {
      this.emitFuturesAccount(acct, o.type === 'LIQUIDATION' ? 'LIQUIDATION' : 'ORDER', realized.minus(fee), [inst.symbol]);
    }
    // An OCO leg that trades (even in part) expires the other one.
    if (o.orderListId !== undefined) this.endOrderList(o.orderListId, 'EXPIRED', o);
  }

  /**
   * Spot: a buy pays quote and receives base minus the fee (fee in base);
   * a sell pays base and receives quote minus the fee (fee in quote). A
   * resting buy had price*qty locked; it is released and the actual cost
   * (never more, since a buy fills at or below its limit) is charged.
   */
  private applySpotFill(acct: Account, inst: Instrument, o: MutOrder, qty: Dec, price: Dec, rate: Dec): { fee: Dec; feeAsset: string } {
    const base = this.balance(acct, inst.baseAsset);
    const quote = this.balance(acct, inst.quoteAsset);
    const notional = qty.times(price);
    if (o.side === 'BUY') {
      payFrom(quote, o, qty.times(o.price), notional);
      const fee = commission(qty, rate);
      base.free = base.free.plus(qty).minus(fee);
      return { fee, feeAsset: inst.baseAsset };
    }
    payFrom(base, o, qty, qty);
    const fee = commission(notional, rate);
    quote.free = quote.free.plus(notional).minus(fee);
    return { fee, feeAsset: inst.quoteAsset };
  }

  /**
   * Futures: adds to a position at a weighted entry price, or reduces it and
   * realizes (exit - entry) * closed * direction; a one-way order larger than
   * the position flips it. Isolated positions hold their margin in their own
   * wallet (part of walletBalance, not of crossWalletBalance). Fees come out
   * of the wallet. A liquidation of an isolated position loses at most that
   * position's wallet, clearance fee included. Returns the realized PnL
   * (before fees) and the fee actually charged.
   */
  private applyFuturesFill(acct: Account, symbol: string, positionSide: PositionSide, side: Side, qty: Dec, price: Dec, fee: Dec, liquidation: boolean): { realized: Dec; fee: Dec } {
    const settings = this.settingsFor(acct, symbol);
    const k = posKey(symbol, positionSide);
    let pos = acct.positions.get(k);
    if (!pos) {
      pos = { positionSide, amt: ZERO, entry: ZERO, isolatedWallet: ZERO, updateTime: 0 };
      acct.positions.set(k, pos);
    }
    const signed = side === 'BUY' ? qty : qty.neg();
    let realized = ZERO;
    let openQty = qty;
    if (!pos.amt.isZero() && pos.amt.isNeg() !== signed.isNeg()) {
      const closeQty = Dec.min(qty, pos.amt.abs());
      const direction = pos.amt.isNeg() ? -1 : 1;
      realized = price.minus(pos.entry).times(closeQty).times(direction);
      const before = pos.amt.abs();
      if (settings.marginType === 'isolated') {
        // PnL accrues to the isolated wallet; a liquidation can lose at most that wallet.
        let iw = pos.isolatedWallet.plus(realized);
        if (liquidation) {
          if (iw.isNeg()) {
            realized = realized.minus(iw);
            iw = ZERO;
          }
          fee = Dec.min(fee, iw);
          iw = iw.minus(fee);
        }
        const release = iw.times(closeQty).div(before);
        pos.isolatedWallet = iw.minus(release);
      }
      pos.amt = pos.amt.plus(direction > 0 ? closeQty.neg() : closeQty);
      if (pos.amt.isZero()) {
        pos.entry = ZERO;
        pos.isolatedWallet = ZERO;
      }
      openQty = qty.minus(closeQty);
    }
    if (openQty.gt(0)) {
      const openSigned = side === 'BUY' ? openQty : openQty.neg();
      const newAmt = pos.amt.plus(openSigned);
      pos.entry = pos.amt.abs().times(pos.entry).plus(openQty.times(price)).div(newAmt.abs());
      pos.amt = newAmt;
      if (settings.marginType === 'isolated') pos.isolatedWallet = pos.isolatedWallet.plus(openQty.times(price).div(settings.leverage));
    }
    pos.updateTime = this.clock.now();
    acct.wallet = acct.wallet.plus(realized).minus(fee);
    // A cross liquidation can take the wallet to zero, never below.
    if (liquidation && acct.wallet.isNeg()) acct.wallet = ZERO;
    return { realized, fee };
  }

  private onMark(inst: Instrument, mark: Dec): void {
    const st = this.priceState('futures', inst.symbol);
    const prev = st.mark ?? mark;
    st.mark = mark;
    const list = this.workingList('futures', inst.symbol);
    const markOrders = list.filter((o) => o.workingType === 'MARK_PRICE' && !o.triggered).sort((a, b) => a.orderId - b.orderId);
    for (const o of markOrders) {
      if (o.status !== 'NEW') continue;
      if (o.type === 'TRAILING_STOP_MARKET') {
        if (this.trailPath(inst, o, [prev, mark])) this.trigger(inst, o, st.last ?? mark, undefined);
        continue;
      }
      if (this.isTriggered(o.type, o.side, o.stopPrice, Dec.min(prev, mark), Dec.max(prev, mark))) this.trigger(inst, o, st.last ?? mark, undefined);
    }
    this.checkLiquidations(inst.symbol);
  }

  /**
   * Liquidation when maintenance margin is breached: an isolated position
   * when its wallet plus unrealized PnL falls to its maintenance margin; all
   * cross positions when the cross margin balance falls to the cross
   * maintenance margin. Positions close at the mark price; open orders on
   * the symbol are cancelled first, as Binance does.
   */
  private checkLiquidations(symbol: string): void {
    for (const acct of this.accounts.values()) {
      if (acct.positions.size === 0) continue;
      // Runs on every mark (every candle in a backtest): one pass of views, without the liquidation price's division.
      let views = this.positionViews(acct, false);
      if (views.length === 0) continue;
      let liquidated = false;
      for (const p of views) {
        if (p.symbol !== symbol || p.marginType !== 'isolated') continue;
        if (p.isolatedWallet.plus(p.unrealizedPnl).lte(p.maintMargin)) {
          this.liquidate(acct, p);
          liquidated = true;
        }
      }
      if (liquidated) views = this.positionViews(acct, false);
      const cross = views.filter((p) => p.marginType === 'cross');
      if (cross.length === 0) continue;
      const maint = cross.reduce((s, p) => s.plus(p.maintMargin), ZERO);
      const isolated = views.reduce((s, p) => s.plus(p.isolatedWallet), ZERO);
      const balance = acct.wallet.minus(isolated).plus(cross.reduce((s, p) => s.plus(p.unrealizedPnl), ZERO));
      if (maint.gt(0) && balance.lte(maint)) for (const p of cross) this.liquidate(acct, p);
    }
  }

  private liquidate(acct: Account, p: FuturesPosition): void {
    const inst = this.instrument('futures', p.symbol);
    // Not listed in this run (a restored position): no market to close it in.
    if (!inst) return;
    for (const o of this.workingList('futures', p.symbol).filter((x) => x.account === acct.id)) this.finish(o, 'CANCELED');
    const now = this.clock.now();
    const order: MutOrder = {
      account: acct.id,
      market: 'futures',
      symbol: p.symbol,
      orderId: this.allocOrderId('futures', p.symbol),
      clientOrderId: `autoclose-${now}`,
      side: p.positionAmt.gt(0) ? 'SELL' : 'BUY',
      type: 'LIQUIDATION',
      timeInForce: 'IOC',
      positionSide: p.positionSide,
      workingType: 'MARK_PRICE',
      reduceOnly: true,
      closePosition: false,
      price: p.markPrice,
      stopPrice: ZERO,
      origQty: p.positionAmt.abs(),
      executedQty: ZERO,
      cumQuote: ZERO,
      avgPrice: ZERO,
      status: 'NEW',
      triggered: true,
      time: now,
      updateTime: now,
      locked: ZERO,
    };
    this.ordersOf('futures', p.symbol).set(order.orderId, order);
    this.fillOrder(inst, order, order.origQty, p.markPrice, false, 'CALCULATED');
  }

  /** Ends an order (CANCELED / EXPIRED), releasing spot funds still locked for it. */
  private finish(o: MutOrder, status: Extract<SimOrderStatus, 'CANCELED' | 'EXPIRED'>): void {
    const now = this.clock.now();
    o.status = status;
    o.updateTime = now;
    this.removeWorking(o);
    if (o.market === 'spot' && o.locked.gt(0)) {
      const inst = this.instrument('spot', o.symbol)!;
      const asset = o.side === 'BUY' ? inst.quoteAsset : inst.baseAsset;
      const acct = this.accounts.get(o.account)!;
      const b = this.balance(acct, asset);
      b.locked = b.locked.minus(o.locked);
      b.free = b.free.plus(o.locked);
      o.locked = ZERO;
      this.emitOrder(o, status === 'CANCELED' ? 'CANCELED' : 'EXPIRED');
      this.emit({ type: 'spotBalances', account: acct.id, time: now, balances: [this.balanceView(acct, asset)] });
      return;
    }
    this.emitOrder(o, status === 'CANCELED' ? 'CANCELED' : 'EXPIRED');
  }

  /** withLiquidationPrice false: liquidationPrice is left 0 (the liquidation check does not need it). */
  private positionViews(acct: Account, withLiquidationPrice = true): FuturesPosition[] {
    const out: FuturesPosition[] = [];
    for (const [k, pos] of acct.positions) {
      if (pos.amt.isZero()) continue;
      const symbol = k.slice(0, k.indexOf(':'));
      // A restored position on a symbol this run does not list (its exchangeInfo failed to load): default margin rate.
      const inst = this.instrument('futures', symbol);
      const st = this.priceState('futures', symbol);
      const mark = st.mark ?? st.last ?? pos.entry;
      const s = this.settingsFor(acct, symbol);
      const mmr = inst?.maintMarginRate ?? new Dec('0.01');
      const notional = pos.amt.times(mark);
      const upnl = pos.amt.times(mark.minus(pos.entry));
      const maint = notional.abs().times(mmr);
      // Price at which margin equals maintenance: isolated uses its own wallet, cross the cross wallet.
      const margin = s.marginType === 'isolated' ? pos.isolatedWallet : acct.wallet;
      const dir = pos.amt.isNeg() ? -1 : 1;
      const liq = withLiquidationPrice ? pos.amt.times(pos.entry).minus(margin).div(pos.amt.times(new Dec(1).minus(mmr.times(dir)))) : ZERO;
      out.push({
        symbol,
        positionSide: pos.positionSide,
        positionAmt: pos.amt,
        entryPrice: pos.entry,
        markPrice: mark,
        unrealizedPnl: upnl,
        leverage: s.leverage,
        marginType: s.marginType,
        isolatedWallet: s.marginType === 'isolated' ? pos.isolatedWallet : ZERO,
        maintMargin: maint,
        liquidationPrice: liq.isNeg() ? ZERO : inst ? liq.toDecimalPlaces(inst.pricePrecision, Dec.ROUND_HALF_UP) : liq,
        notional,
        updateTime: pos.updateTime,
      });
    }
    return out.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.positionSide < b.positionSide ? -1 : 1));
  }

  /** Initial margin held by open orders that would add to a position. */
  private openOrderMargin(acct: Account): Dec {
    let total = ZERO;
    for (const [k, list] of this.working) {
      if (!k.startsWith('futures:')) continue;
      for (const o of list) {
        if (o.account !== acct.id || o.reduceOnly || o.closePosition) continue;
        const px = o.price.gt(0) ? o.price : o.stopPrice.gt(0) ? o.stopPrice : (o.activatePrice ?? ZERO);
        total = total.plus(o.origQty.minus(o.executedQty).times(px).div(this.settingsFor(acct, o.symbol).leverage));
      }
    }
    return total;
  }

  private availableBalance(acct: Account): Dec {
    const views = this.positionViews(acct);
    const isolated = views.reduce((s, p) => s.plus(p.isolatedWallet), ZERO);
    const crossUpnl = views.filter((p) => p.marginType === 'cross').reduce((s, p) => s.plus(p.unrealizedPnl), ZERO);
    const crossIm = views.filter((p) => p.marginType === 'cross').reduce((s, p) => s.plus(p.notional.abs().div(p.leverage)), ZERO);
    const avail = acct.wallet.minus(isolated).plus(crossUpnl).minus(crossIm).minus(this.openOrderMargin(acct));
    return avail.isNeg() ? ZERO : avail;
  }

  private findOrder(accountId: string, market: Market, symbol: string, ref: { orderId?: number; clientOrderId?: string }): EngineResult<MutOrder> {
    const orders = this.ordersOf(market, symbol);
    let found: MutOrder | undefined;
    if (ref.orderId !== undefined) found = orders.get(ref.orderId);
    else if (ref.clientOrderId !== undefined) {
      // The newest order with that id (ids are unique among open orders only).
      for (const o of orders.values()) if (o.clientOrderId === ref.clientOrderId && o.account === accountId) found = o;
    }
    if (!found || found.account !== accountId) return reject('UNKNOWN_ORDER', 'Order does not exist.');
    return { ok: true, value: found };
  }

  private income(acct: Account, symbol: string, incomeType: Income['incomeType'], amount: Dec, time: number, tradeId: string, info: string): void {
    acct.incomes.push({ symbol, incomeType, income: amount, asset: 'USDT', time, tranId: this.nextTranId++, tradeId, info });
  }

  private emitOrder(o: MutOrder, execType: ExecType, trade?: SimTrade): void {
    this.emit({ type: 'order', account: o.account, time: this.clock.now(), execType, order: this.snapshot(o), ...(trade ? { trade } : {}) });
  }

  private emitFuturesAccount(acct: Account, reason: 'ORDER' | 'FUNDING_FEE' | 'MARGIN_TYPE_CHANGE' | 'LIQUIDATION' | 'DEPOSIT', change: Dec, symbols: string[]): void {
    const positions = this.positionViews(acct).filter((p) => symbols.includes(p.symbol));
    // A position that just closed is reported with amount 0, as Binance does.
    for (const symbol of symbols) {
      for (const side of ['BOTH', 'LONG', 'SHORT'] as const) {
        const pos = acct.positions.get(posKey(symbol, side));
        if (pos && pos.amt.isZero() && !positions.some((p) => p.symbol === symbol && p.positionSide === side)) {
          positions.push({ symbol, positionSide: side, positionAmt: ZERO, entryPrice: ZERO, markPrice: ZERO, unrealizedPnl: ZERO, leverage: this.settingsFor(acct, symbol).leverage, marginType: this.settingsFor(acct, symbol).marginType, isolatedWallet: ZERO, maintMargin: ZERO, liquidationPrice: ZERO, notional: ZERO, updateTime: pos.updateTime });
        }
      }
    }
    const isolated = this.positionViews(acct).reduce((s, p) => s.plus(p.isolatedWallet), ZERO);
    this.emit({ type: 'futuresAccount', account: acct.id, time: this.clock.now(), reason, walletBalance: acct.wallet, crossWalletBalance: acct.wallet.minus(isolated), balanceChange: change, positions });
  }

  private emit(e: EngineEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  private snapshot(o: MutOrder): SimOrder {
    const { locked: _locked, ...rest } = o;
    return Object.freeze({ ...rest });
  }

  private removeWorking(o: MutOrder): void {
    const list = this.working.get(key(o.market, o.symbol));
    if (!list) return;
    const i = list.indexOf(o);
    if (i >= 0) list.splice(i, 1);
  }

  private priceState(market: Market, symbol: string): PriceState {
    const k = key(market, symbol);
    let s = this.prices.get(k);
    if (!s) {
      s = { markExplicit: false, fundingRate: this.defaultFundingRate };
      this.prices.set(k, s);
    }
    return s;
  }

  private workingList(market: Market, symbol: string): MutOrder[] {
    return getOrCreate(this.working, key(market, symbol), () => []);
  }

  private ordersOf(market: Market, symbol: string): Map<number, MutOrder> {
    return getOrCreate(this.orders, key(market, symbol), () => new Map());
  }

  private tradeList(market: Market, symbol: string): SimTrade[] {
    return getOrCreate(this.tradesByKey, key(market, symbol), () => []);
  }

  private allocOrderId(market: Market, symbol: string): number {
    const k = key(market, symbol);
    const id = this.nextOrderId.get(k) ?? 1;
    this.nextOrderId.set(k, id + 1);
    return id;
  }

  private allocTradeId(market: Market, symbol: string): number {
    const k = key(market, symbol);
    const id = this.nextTradeId.get(k) ?? 1;
    this.nextTradeId.set(k, id + 1);
    return id;
  }

  private generateClientOrderId(market: Market, symbol: string): string {
    return `sim-${market === 'spot' ? 's' : 'f'}-${symbol}-${this.nextOrderId.get(key(market, symbol)) ?? 1}`;
  }

  private balance(acct: Account, asset: string): Balance {
    let b = acct.spot.get(asset);
    if (!b) {
      b = { free: ZERO, locked: ZERO };
      acct.spot.set(asset, b);
    }
    return b;
  }

  private balanceView(acct: Account, asset: string): SpotBalance {
    const b = this.balance(acct, asset);
    return { asset, free: b.free, locked: b.locked };
  }

  private settingsFor(acct: Account, symbol: string): SymbolSettings {
    let s = acct.settings.get(symbol);
    if (!s) {
      s = { leverage: this.defaultLeverage, marginType: 'cross' };
      acct.settings.set(symbol, s);
    }
    return s;
  }

  private mustAccount(id: string): Account {
    const a = this.accounts.get(id);
    if (!a) throw new Error(`unknown account ${id}`);
    return a;
  }
}
