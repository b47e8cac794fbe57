/**
 * The Binance venue: the Venue port over ccxt (REST) and `ws` (user data),
 * for spot or USD-M futures, against Binance, its testnets or the local
 * exchange (only the base URLs differ). This file holds the port's methods;
 * the pieces they compose live beside it:
 *  - spot-payloads.ts, usdm-payloads.ts, payloads.ts: zod schemas of the raw
 *    REST answers and stream events; mappers.ts turns them into the port's
 *    types (money from Binance's raw strings as exact Decimals; ccxt's parsed
 *    floats are never read);
 *  - rest-gate.ts, errors.ts: every call passes the 429 / 418 hold and the
 *    circuit breaker, and every failure becomes a VenueError whose kind is
 *    decided on Binance's error code and the HTTP status of that response;
 *  - client.ts: the ccxt client, signing with our clock corrected by the
 *    measured offset to the server (start(), every 10 minutes, and
 *    resyncClock() on demand), and the usage headers;
 *  - rate-budget.ts: Binance's request weight and order-count limits (from
 *    exchangeInfo), kept on our side: other requests wait for weight, an
 *    order that does not fit is refused unsent (RATE_LIMITED, ORDER_BUDGET);
 *  - user-stream.ts, user-data.ts: the user-data stream (futures: listenKey
 *    stream with keepalive and re-creation on expiry; spot: WebSocket API
 *    subscription), reconnecting with backoff and reporting connected /
 *    disconnected / reconnected, so the caller knows when to reconcile.
 *
 * Futures conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET,
 * TRAILING_STOP_MARKET) live on Binance's algo-order service: place / cancel /
 * fetchOrder / openOrders look there too, so callers see one kind of order.
 *
 * Options (BinanceVenueOptions):
 *   market        'spot' | 'futures'
 *   spotBase, futuresBase   REST bases (https://api.binance.com,
 *                 https://fapi.binance.com, or http://127.0.0.1:PORT); both,
 *                 because ccxt's clients carry URLs for both APIs.
 *   wsBase        user-data WebSocket. Futures: the stream base
 *                 (wss://fstream.binance.com; local ws://127.0.0.1:PORT/futures),
 *                 connected as `${wsBase}/private/ws?listenKey=..`. Spot: the WebSocket
 *                 API URL (wss://ws-api.binance.com:443/ws-api/v3; local
 *                 ws://127.0.0.1:PORT/ws-api/v3).
 *   apiKey, secret  strings or Secret.
 *   clock, logger   injected; logger defaults to silent.
 *   recvWindowMs (5000), timeoutMs (10000), enableRateLimit (false: ccxt's
 *                 own throttle; the venue budgets by Binance's published
 *                 limits instead, see rate-budget.ts).
 *   userStream    open the user-data stream at start() (default true; one-shot
 *                 commands that only call REST turn it off).
 *   timers        clockSyncMs (600000), listenKeyKeepAliveMs (1800000),
 *                 streamStaleMs (600000: no frame and no ping for this long
 *                 forces a reconnect; 0 disables).
 *   reconnect     backoff { baseMs (500), capMs (30000), random }.
 *
 * Optional port capabilities it offers: clockOffsetMs, resyncClock(), usage()
 * (Binance's weight and order-count headers), userStreamStatus(),
 * sendingHeld(), breakerView().
 */
import { z } from 'zod';
import type { BreakerView, CircuitBreaker } from '../../core/circuit-breaker.ts';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import { dec, ZERO, type Dec } from '../../core/decimal.ts';
import { TraderError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import { Secret } from '../../core/secret.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';
import { VenueError, type FuturesSetup, type FuturesSetupReport, type PlaceOco, type PlaceOrder, type UserStreamStatus, type Venue, type VenueAccount, type VenueEvent, type VenueFill, type VenueOrder, type VenuePosition, type VenueUsage } from '../venue.ts';
import { BinanceClient, type Client } from './client.ts';
import { afterWrite, parsePayload } from './errors.ts';
import { instrumentFromBinance } from './exchange-info.ts';
import { algoOrder, compareIds, FINAL, futuresAccount, futuresFill, futuresOrder, futuresPosition, spotAccount, spotFill, spotOrder } from './mappers.ts';
import { orderCost, RateBudget, type Cost } from './rate-budget.ts';
import { RestGate, type SendingHold } from './rest-gate.ts';
import { orderListRaw, orderListViewRaw, spotAccountRaw, spotOrderRaw, spotTradeRaw, type OrderListRaw, type OrderListViewRaw } from './spot-payloads.ts';
import { algoOrderRaw, bracketsRaw, futuresAccountRaw, futuresOrderRaw, futuresTradeRaw, positionRaw } from './usdm-payloads.ts';
import { userDataDeps } from './user-data.ts';
import { EchoWatch, type EchoWatchOptions } from './echo-watch.ts';
import { UserStream, userStreamStatus, type UserStreamDeps } from './user-stream.ts';

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
  /** Connected but silent user-data streams (echo-watch.ts): how long an acknowledged order may wait for its event, how many in a row. */
  readonly echoWatch?: Partial<EchoWatchOptions>;
  /**
   * The circuit breaker around REST calls: timeouts, 5xx and network
   * failures in a row open it, and calls then fail at once, unsent. Answers
   * (a rejection, an unknown order, a 429) are not outages and do not count.
   */
  readonly breaker?: CircuitBreaker;
  readonly reconnect?: { readonly baseMs?: number; readonly capMs?: number; readonly random?: () => number };
}

const DEFAULTS = {
  recvWindowMs: 5000,
  timeoutMs: 10_000,
  clockSyncMs: 10 * 60_000,
  listenKeyKeepAliveMs: 30 * 60_000,
  streamStaleMs: 10 * 60_000,
  reconnectBaseMs: 500,
  reconnectCapMs: 30_000,
} as const;

const reveal = (s: string | Secret): string => (typeof s === 'string' ? s : s.reveal());

// ------------------------------------------------------------- the venue

export class BinanceVenue implements Venue {
  readonly name = 'binance';
  readonly market: Market;
  /** Futures: STOP_MARKET / TAKE_PROFIT_MARKET wait on Binance's algo service. Spot (local exchange) has no stop-market. */
  readonly holdsConditionals: boolean;

  private readonly o: BinanceVenueOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly gate: RestGate;
  private readonly client: BinanceClient;
  private readonly budget: RateBudget;
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
  private echo: EchoWatch | undefined;
  /** Bumped by stop(): tells a start() in progress that it was cancelled. */
  private run = 0;

  constructor(opts: BinanceVenueOptions) {
    this.o = opts;
    this.market = opts.market;
    this.clock = opts.clock;
    this.holdsConditionals = opts.market === 'futures';
    this.log = (opts.logger ?? silentLogger()).child({ component: 'binance-venue', market: opts.market });
    // Binance counts its windows in server time.
    this.budget = new RateBudget(opts.market, () => this.client.serverNow());
    this.gate = new RestGate({ clock: this.clock, log: this.log, ...(opts.breaker ? { breaker: opts.breaker } : {}), serverNow: () => this.client.serverNow(), budget: this.budget });
    this.client = new BinanceClient(
      {
        market: opts.market,
        spotBase: opts.spotBase,
        futuresBase: opts.futuresBase,
        apiKey: reveal(opts.apiKey),
        secret: reveal(opts.secret),
        clock: this.clock,
        log: this.log,
        enableRateLimit: opts.enableRateLimit ?? false,
        timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
        recvWindowMs: opts.recvWindowMs ?? DEFAULTS.recvWindowMs,
        budget: this.budget,
      },
      this.gate,
    );
  }

  private get ex(): Client {
    return this.client.ex;
  }

  private call<T>(op: 'place' | 'cancel' | 'read', what: string, fn: () => Promise<T>, orders?: Cost): Promise<T> {
    return this.gate.call(op, what, fn, orders);
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
    this.client.renew();
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
      this.echo = new EchoWatch(
        this.clock,
        () => stream.connected,
        (missed) => {
          this.log.error({ missed }, `user-data stream connected but silent: ${missed} acknowledged orders in a row got no event; reconnecting (fills ride on the REST poll meanwhile)`);
          stream.restart(`connected but silent: ${missed} acknowledged orders got no event`);
        },
        this.o.echoWatch,
      );
      this.echo.start();
    }
    this.log.info({ clockOffsetMs: this.clockOffsetMs, symbols: this.toCcxt.size }, 'binance venue started');
  }

  async stop(): Promise<void> {
    this.run++;
    this.starting = undefined;
    this.syncTimer?.cancel();
    this.syncTimer = undefined;
    this.echo?.stop();
    this.echo = undefined;
    const stream = this.stream;
    this.stream = undefined;
    await stream?.stop();
    await this.client.dispose();
  }

  onEvent(fn: (e: VenueEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ---------------------------------------------------------- capabilities

  /** Server time minus our clock, ms (positive: the server runs ahead). */
  get clockOffsetMs(): number {
    return this.client.clockOffsetMs;
  }

  /**
   * Measures the offset to the server clock again (call it after a CLOCK_SKEW
   * error); resolves with the offset in use afterwards. Calls that overlap
   * share one measurement.
   */
  resyncClock(): Promise<number> {
    return this.client.resyncClock();
  }

  /** A 429 / 418 hold, or the breaker OPEN: see RestGate.sendingHeld. */
  sendingHeld(): SendingHold | undefined {
    return this.gate.sendingHeld();
  }

  /** The REST circuit breaker's state (for /health and the heartbeat); undefined without one. */
  breakerView(): BreakerView | undefined {
    return this.gate.breakerView();
  }

  /** Binance's request-weight and order-count headers from the latest response. */
  usage(): VenueUsage {
    return this.client.usage();
  }

  userStreamStatus(): UserStreamStatus {
    const s = userStreamStatus(this.stream);
    return this.echo ? { ...s, silences: this.echo.silences } : s;
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
      for (const b of parsePayload(bracketsRaw, raw, 'leverageBracket')) {
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

    const res = await this.call('place', `place ${order.type} ${order.symbol} ${order.clientOrderId}`, () => this.ex.createOrder(symbol, type, order.side === 'BUY' ? 'buy' : 'sell', amount, withPrice ? price : undefined, base), orderCost(this.market, conditional ? 'conditional' : 'order'));
    const placed = afterWrite(() => this.orderFrom(res.info, conditional ? 'algo' : 'regular', 'createOrder'));
    this.echo?.placed(placed.clientOrderId);
    return placed;
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
        return afterWrite(() => this.orderFrom(res.info, 'regular', 'cancelOrder'));
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
    const res = await this.call('place', `place OCO ${o.symbol} ${o.listClientOrderId}`, () => ex.privatePostOrderListOco(params), orderCost('spot', 'oco'));
    const legs = afterWrite(() => this.legsOf(parsePayload(orderListRaw, res, 'orderList/oco'), o.limit.clientOrderId));
    this.echo?.placed(o.limit.clientOrderId);
    return legs;
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
      return afterWrite(() => this.legsOf(parsePayload(orderListRaw, res, 'orderList cancel')));
    } catch (e) {
      if (!(e instanceof VenueError) || e.kind !== 'UNKNOWN_ORDER') throw e;
      let view: OrderListViewRaw;
      try {
        view = parsePayload(orderListViewRaw, await this.call('read', `orderList ${listClientOrderId}`, () => ex.privateGetOrderList({ origClientOrderId: listClientOrderId })), 'orderList');
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
  private legsOf(raw: OrderListRaw, firstClientOrderId?: string): VenueOrder[] {
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

  async ordersSince(symbol: string, since: number): Promise<VenueOrder[]> {
    const sym = this.unified(symbol);
    const byId = new Map<string, VenueOrder>();
    const PAGE = 1000;
    // Binance caps an order query's time range (spot allOrders 24 h, USD-M 7 days): walk it in windows.
    const span = this.market === 'spot' ? 24 * 3_600_000 - 1 : 7 * 86_400_000 - 1;
    const end = this.client.serverNow() + 60_000;
    const kinds: Array<'regular' | 'algo'> = this.market === 'futures' ? ['regular', 'algo'] : ['regular'];
    for (const kind of kinds) {
      const what = kind === 'algo' ? 'allAlgoOrders' : 'allOrders';
      for (let start = since; start <= end; ) {
        const windowEnd = Math.min(start + span, end);
        const params = kind === 'algo' ? { endTime: windowEnd, trigger: true } : { endTime: windowEnd };
        const rows = await this.call('read', what, () => this.ex.fetchOrders(sym, start, PAGE, params));
        const page = rows.map((x) => this.orderFrom(x.info, kind, what));
        for (const o of page) byId.set(`${kind}:${o.exchangeOrderId}`, o);
        if (page.length >= PAGE) {
          const last = Math.max(...rows.map((x) => x.timestamp ?? start));
          start = last > start ? last : start + 1;
        } else start = windowEnd + 1;
      }
    }
    return [...byId.values()];
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
      const end = this.client.serverNow() + 60_000;
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
      const raw = parsePayload(spotAccountRaw, bal.info, 'account');
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
      const p = futuresPosition(parsePayload(positionRaw, r.info, 'positionRisk'));
      if (p.quantity.isZero() || (symbols && !symbols.includes(p.symbol))) continue;
      out.push(p);
    }
    return out;
  }

  async account(): Promise<VenueAccount> {
    const bal = await this.call('read', 'account', () => this.ex.fetchBalance());
    return this.market === 'spot' ? spotAccount(parsePayload(spotAccountRaw, bal.info, 'account')) : futuresAccount(parsePayload(futuresAccountRaw, bal.info, 'account'));
  }


  // ------------------------------------------------------------- internals

  private orderFrom(raw: unknown, kind: 'regular' | 'algo', what: string): VenueOrder {
    if (kind === 'algo') return algoOrder(parsePayload(algoOrderRaw, raw, what));
    return this.market === 'spot' ? this.withListClientId(spotOrder(parsePayload(spotOrderRaw, raw, what))) : futuresOrder(parsePayload(futuresOrderRaw, raw, what));
  }

  private fillFrom(raw: unknown): VenueFill {
    return this.market === 'spot' ? spotFill(parsePayload(spotTradeRaw, raw, 'myTrades')) : futuresFill(parsePayload(futuresTradeRaw, raw, 'userTrades'));
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
      const algo = parsePayload(algoOrderRaw, r.info, 'algoOrder');
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
    if (e.type === 'order') this.echo?.echoed(e.order.clientOrderId);
    else if (e.type === 'stream' && e.status !== 'connected') this.echo?.reset();
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
    return userDataDeps({
      market: this.market,
      wsBase: this.o.wsBase,
      apiKey: reveal(this.o.apiKey),
      secret: reveal(this.o.secret),
      recvWindowMs: this.o.recvWindowMs ?? DEFAULTS.recvWindowMs,
      timeoutMs: this.o.timeoutMs ?? DEFAULTS.timeoutMs,
      staleMs: this.o.timers?.streamStaleMs ?? DEFAULTS.streamStaleMs,
      listenKeyKeepAliveMs: this.o.timers?.listenKeyKeepAliveMs ?? DEFAULTS.listenKeyKeepAliveMs,
      backoff: { baseMs: this.o.reconnect?.baseMs ?? DEFAULTS.reconnectBaseMs, capMs: this.o.reconnect?.capMs ?? DEFAULTS.reconnectCapMs, random: this.o.reconnect?.random ?? Math.random },
      clock: this.clock,
      log: this.log,
      call: (op, what, fn) => this.call(op, what, fn),
      listenKeyApi: () => this.ex as unknown as { fapiPrivatePostListenKey(): Promise<unknown>; fapiPrivatePutListenKey(): Promise<unknown> },
      serverNow: () => this.client.serverNow(),
      resyncClock: () => this.resyncClock(),
      emit: (e) => this.emit(e),
      rememberList: (listId, clientId) => this.listClientIds.set(listId, clientId),
      withListClientId: (o) => this.withListClientId(o),
    });
  }
}
