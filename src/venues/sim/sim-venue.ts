/**
 * The sim venue (MODE=sim): the in-process matching engine behind the Venue
 * port, so paper trading runs the same execution engine, risk engine and
 * portfolio as live. Prices come from the bot's own feed (live or replay):
 * the kernel hands every closed 1m candle to onCandle().
 *
 * The engine answers synchronously and emits its events during the call
 * (a market order's fill arrives before place() resolves), exactly the
 * out-of-order case the execution engine must handle against Binance too.
 *
 * The paper account outlives the process when a persistence port is given
 * (MODE=sim: the bot's database, see account-store.ts): balances, positions,
 * every order and trade and the id counters are written before the bot
 * hears of a change, as an exchange commits before it reports, so after a
 * restart the account continues exactly where it stopped and its ids never
 * repeat one the bot's books hold. Without the port (the backtester) it
 * lives in memory and costs nothing extra.
 */
import type { Clock } from '../../core/clock.ts';
import { Dec } from '../../core/decimal.ts';
import type { Logger } from '../../core/logger.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';
import type { OrderStatus } from '../../model/events.ts';
import type { FuturesSetup, FuturesSetupReport, PlaceOco, PlaceOrder, Venue, VenueAccount, VenueEvent, VenueFill, VenueOrder, VenuePosition } from '../venue.ts';
import type { SimOrderList } from './types.ts';
import { VenueError } from '../venue.ts';
import type { RecordedFill, SimAccountOrigin, SimAccountPersistence } from './account-store.ts';
import { MatchingEngine, type EngineOptions } from './engine.ts';
import type { EngineEvent, EngineReject, SimOrder, SimOrderRecord, SimTrade } from './types.ts';

const ACCOUNT = 'sim';

export interface SimVenueOptions {
  market: Market;
  clock: Clock;
  /** What the paper exchange lists: a fixed list, or (live feed) Binance's exchangeInfo at start, with the fixed list as the fallback. */
  instruments: readonly Instrument[];
  loadInstruments?: () => Promise<Instrument[]>;
  onLoadError?: (err: unknown) => void;
  quoteAsset: string;
  /** Starting quote balance. */
  balance: Dec;
  /** Fill model and market-order timing (the backtester: next-step with latency). */
  engine?: Pick<EngineOptions, 'fillModel' | 'marketOrders' | 'latencyMs'>;
  /**
   * Where the paper account is kept between runs (MODE=sim). Read at
   * start(): a stored account wins over `balance`; with none stored one is
   * seeded (or rebuilt from the bot's stored fills, see openAccount()).
   * Without it (the backtester) the account lives in memory only.
   */
  persistence?: SimAccountPersistence;
  /** Says which account this run trades (continued, seeded, rebuilt) and reports a failed save. */
  logger?: Logger;
}

export class SimVenue implements Venue {
  readonly name = 'sim';
  readonly market: Market;
  readonly holdsConditionals = true;
  engine: MatchingEngine;
  private readonly listeners = new Set<(e: VenueEvent) => void>();
  private instrumentList: readonly Instrument[];

  // Persistence only (o.persistence): what changed since the last save, and the events held until it is saved.
  private origin: SimAccountOrigin = 'seeded';
  private dirty = false;
  private readonly changedOrders = new Map<string, { market: Market; symbol: string; orderId: number }>();
  private readonly newTrades: SimTrade[] = [];
  private readonly changedLists = new Map<number, SimOrderList>();
  private readonly held: VenueEvent[] = [];
  private depth = 0;
  private draining = false;

  constructor(private readonly o: SimVenueOptions) {
    this.market = o.market;
    this.instrumentList = o.instruments;
    this.engine = this.build(o.instruments, false);
  }

  /** A new engine over these instruments, with the paper account: the stored one (persisted), else a fresh one. */
  private build(instruments: readonly Instrument[], persisted: boolean): MatchingEngine {
    const o = this.o;
    const engine = new MatchingEngine({ clock: o.clock, instruments, ...o.engine });
    this.engine = engine;
    this.changedOrders.clear();
    this.newTrades.length = 0;
    this.changedLists.clear();
    this.dirty = false;
    if (persisted) this.openAccount(engine);
    else engine.createAccount(ACCOUNT, this.seedBalances());
    engine.onEvent((e) => {
      if (e.account !== ACCOUNT) return;
      if (o.persistence) this.track(e);
      const out = this.toVenueEvent(e);
      if (!out) return;
      if (!o.persistence) this.emit(out);
      else if (this.depth > 0) this.held.push(out);
      else {
        // A change outside place / cancel / onCandle (someone drove venue.engine directly): saved, then told.
        this.save();
        this.emit(out);
      }
    });
    return engine;
  }

  private seedBalances(): { spot?: Record<string, string>; futures?: string } {
    const o = this.o;
    return o.market === 'spot' ? { spot: { [o.quoteAsset]: o.balance.toFixed() } } : { futures: o.balance.toFixed() };
  }

  private toVenueEvent(e: EngineEvent): VenueEvent | undefined {
    if (e.type === 'order' && e.order.market === this.market) {
      return { type: 'order', order: toOrder(e.order), ...(e.trade ? { fill: toFill(e.trade) } : {}) };
    }
    if (e.type === 'spotBalances' && this.market === 'spot') {
      return { type: 'account', account: { balances: e.balances.map((b) => ({ asset: b.asset, free: b.free, locked: b.locked })) } };
    }
    if (e.type === 'futuresAccount' && this.market === 'futures') {
      return { type: 'account', account: { balances: [], walletBalance: e.walletBalance, ...(e.reason === 'FUNDING_FEE' ? { reason: 'FUNDING_FEE' as const, balanceChange: e.balanceChange } : {}) } };
    }
    return undefined;
  }

  /** One closed 1m candle moves the sim market: open, then the range, then the close. */
  onCandle(symbol: string, c: { open: number; high: number; low: number; close: number; volume: number; openTime?: number }): void {
    this.mutate(() => this.engine.step(this.market, symbol, { open: new Dec(c.open), high: new Dec(c.high), low: new Dec(c.low), last: new Dec(c.close), ...(c.openTime !== undefined ? { time: c.openTime, durationMs: 60_000 } : {}) }));
  }

  async start(): Promise<void> {
    let list = this.instrumentList;
    if (this.o.loadInstruments) {
      try {
        // Paper trading any symbol the live feed streams: list what Binance lists.
        const loaded = await this.o.loadInstruments();
        if (loaded.length > 0) list = loaded;
      } catch (err) {
        this.o.onLoadError?.(err);
      }
    }
    if (list !== this.instrumentList || this.o.persistence) {
      this.instrumentList = list;
      this.build(list, this.o.persistence !== undefined);
    }
    this.emit({ type: 'stream', status: 'connected', detail: 'in-process sim venue' });
  }

  async stop(): Promise<void> {
    if (this.dirty) this.save();
    this.listeners.clear();
  }

  // ---------------------------------------------------------- persistence

  /**
   * Puts the stored account into the engine, or creates one: seeded with
   * sim.balance on a fresh database; on a database that holds fills but no
   * stored account (written by a version that kept the paper account in
   * memory), sim.balance plus every stored fill, booked with the engine's
   * own arithmetic, so the venue agrees with the books the portfolio
   * rebuilds from those same fills (open orders of those runs are gone).
   * Either way the id counters then move past every numeric trade and
   * exchange order id the bot's tables hold: no id is handed out twice.
   */
  private openAccount(engine: MatchingEngine): void {
    const p = this.o.persistence!;
    const log = this.o.logger;
    const seed = this.o.balance;
    const stored = p.load(this.market);
    if (stored) {
      engine.restoreAccount(ACCOUNT, { account: stored.account, orders: stored.orders, trades: stored.trades, counters: stored.counters });
      engine.restoreOrderLists(stored.orderLists);
      this.origin = stored.origin;
      const working = stored.orders.filter((x) => x.working).length;
      const created = new Date(stored.createdAt).toISOString();
      const differs = stored.seed.eq(seed) ? '' : `; sim.balance ${seed.toFixed()} in bot.yaml applies to a new account only`;
      log?.info(
        { market: this.market, origin: stored.origin, createdAt: created, seed: stored.seed.toFixed(), openOrders: working, trades: stored.trades.length },
        `sim account: the stored paper account continues (created ${created} with ${stored.seed.toFixed()} ${stored.quoteAsset}, ${stored.origin}; ${working} open orders, ${stored.trades.length} trades)${differs}`,
      );
    } else {
      engine.createAccount(ACCOUNT, this.seedBalances());
      const fills = p.recordedFills(this.market);
      if (fills.length === 0) {
        this.origin = 'seeded';
        log?.info({ market: this.market, seed: seed.toFixed() }, `sim account: a new paper account with sim.balance ${seed.toFixed()} ${this.o.quoteAsset} (bot.yaml)`);
      } else {
        this.origin = 'rebuilt';
        const skipped = this.rebuild(engine, fills);
        const a = engine.accountState(ACCOUNT);
        const balances = this.market === 'spot' ? a.spot.filter((b) => !b.free.isZero() || !b.locked.isZero()).map((b) => `${b.free.plus(b.locked).toFixed()} ${b.asset}`) : [`wallet ${a.wallet.toFixed()} USDT`];
        const negative = this.market === 'spot' ? a.spot.filter((b) => b.free.isNeg()).map((b) => b.asset) : a.wallet.isNeg() ? ['USDT'] : [];
        log?.warn(
          { market: this.market, seed: seed.toFixed(), fills: fills.length, skipped, balances },
          `sim account: none stored, but the database holds ${fills.length} ${this.market} fills (written by a version that kept the paper account in memory): ` +
            `the paper balances are rebuilt as sim.balance ${seed.toFixed()} ${this.o.quoteAsset} plus those fills (${balances.join(', ')}); open orders of those runs are gone` +
            (skipped > 0 ? `; ${skipped} fills skipped (base asset unknown)` : '') +
            (negative.length > 0 ? `; the stored fills spend more than sim.balance: ${negative.join(', ')} below zero` : ''),
        );
      }
    }
    const moved: string[] = [];
    for (const u of p.usedIds(this.market)) if (engine.reserveIds(this.market, u.symbol, u)) moved.push(u.symbol);
    if (moved.length > 0) {
      if (stored) log?.warn({ market: this.market, symbols: moved }, `sim account: the stored id counters were behind the bot's orders and fills on ${moved.join(', ')}; new ids continue after the stored ones`);
      else log?.info({ market: this.market, symbols: moved }, `sim account: order and trade ids continue after the ones stored for ${moved.join(', ')}`);
    }
    if (!stored || moved.length > 0) this.save(engine);
  }

  /** Books the stored fills into a fresh account; returns how many could not be (spot, base asset unknown). */
  private rebuild(engine: MatchingEngine, fills: readonly RecordedFill[]): number {
    let skipped = 0;
    for (const f of fills) {
      let assets: { baseAsset: string; quoteAsset: string } | undefined;
      if (this.market === 'spot') {
        const inst = engine.instrument('spot', f.symbol);
        const q = this.o.quoteAsset;
        if (inst) assets = { baseAsset: inst.baseAsset, quoteAsset: inst.quoteAsset };
        else if (f.symbol.endsWith(q) && f.symbol.length > q.length) assets = { baseAsset: f.symbol.slice(0, -q.length), quoteAsset: q };
        if (!assets) {
          skipped++;
          continue;
        }
      }
      engine.bookRecordedFill(ACCOUNT, this.market, f.symbol, { side: f.side, qty: f.quantity, price: f.price, fee: f.fee, feeAsset: f.feeAsset, ...assets });
    }
    return skipped;
  }

  /** What an engine event changed, for the next save. */
  private track(e: EngineEvent): void {
    this.dirty = true;
    if (e.type === 'orderList') this.changedLists.set(e.list.orderListId, e.list);
    if (e.type !== 'order') return;
    this.changedOrders.set(`${e.order.market}:${e.order.symbol}:${e.order.orderId}`, { market: e.order.market, symbol: e.order.symbol, orderId: e.order.orderId });
    if (e.trade) this.newTrades.push(e.trade);
  }

  /**
   * Runs a call that may change the account. With persistence, the events it
   * raises are held until the state they describe is saved (one save per
   * call), then delivered in order, before the call returns: a fill is in
   * the sim's tables before the bot books it. A call a listener makes while
   * they are delivered is saved and delivered in turn.
   */
  private mutate<T>(fn: () => T): T {
    if (!this.o.persistence) return fn();
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      if (this.depth === 0) this.drain();
    }
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.held.length > 0) {
        if (this.dirty) this.save();
        for (const e of this.held.splice(0)) this.emit(e);
      }
      if (this.dirty) this.save();
    } finally {
      this.draining = false;
    }
  }

  /**
   * Writes the account as it is now. A failed write is logged and the
   * changes are kept for the next save (the engine still holds them): the
   * run goes on, and the next change retries.
   */
  private save(engine: MatchingEngine = this.engine): void {
    const p = this.o.persistence;
    if (!p) return;
    // A spot OCO is kept on its legs' rows: a changed list re-saves its legs, and a saved leg carries its list as it is now.
    for (const l of this.changedLists.values()) for (const x of l.orders) this.changedOrders.set(`spot:${l.symbol}:${x.orderId}`, { market: 'spot', symbol: l.symbol, orderId: x.orderId });
    const orders: SimOrderRecord[] = [];
    const lists = new Map<number, SimOrderList>();
    for (const r of this.changedOrders.values()) {
      const rec = engine.orderRecord(r.market, r.symbol, r.orderId);
      if (!rec) continue;
      orders.push(rec);
      if (rec.orderListId === undefined || lists.has(rec.orderListId)) continue;
      const l = engine.getOrderList(ACCOUNT, { orderListId: rec.orderListId });
      if (l.ok) lists.set(rec.orderListId, l.value.list);
    }
    try {
      p.save(this.market, {
        now: this.o.clock.now(),
        quoteAsset: this.o.quoteAsset,
        seed: this.o.balance,
        origin: this.origin,
        account: engine.accountState(ACCOUNT),
        counters: engine.idCounters(),
        orders,
        trades: [...this.newTrades],
        orderLists: [...lists.values()],
      });
      this.changedOrders.clear();
      this.newTrades.length = 0;
      this.changedLists.clear();
      this.dirty = false;
    } catch (err) {
      this.dirty = true;
      this.o.logger?.error({ err }, `sim account: cannot save the paper account (${(err as Error).message}); kept in memory, retried at the next change`);
    }
  }

  async instruments(): Promise<Instrument[]> {
    return this.engine.instruments(this.market);
  }

  async place(p: PlaceOrder): Promise<VenueOrder> {
    const r = this.mutate(() => this.engine.placeOrder(ACCOUNT, {
      market: this.market,
      symbol: p.symbol,
      side: p.side,
      type: p.type,
      quantity: p.quantity,
      clientOrderId: p.clientOrderId,
      ...(p.price ? { price: p.price } : {}),
      ...(p.stopPrice ? { stopPrice: p.stopPrice } : {}),
      // Hedge mode (LONG / SHORT) refuses reduceOnly (-1106): the side of the position says it.
      ...(p.reduceOnly && this.market === 'futures' && p.positionSide !== 'LONG' && p.positionSide !== 'SHORT' ? { reduceOnly: true } : {}),
      ...(p.positionSide && this.market === 'futures' ? { positionSide: p.positionSide } : {}),
      ...(p.callbackRate ? { callbackRate: p.callbackRate } : {}),
      ...(p.activationPrice ? { activationPrice: p.activationPrice } : {}),
      ...(p.timeInForce ? { timeInForce: p.timeInForce } : {}),
    }));
    if (!r.ok) throw rejected(r);
    return toOrder(r.value);
  }

  async cancel(symbol: string, clientOrderId: string): Promise<VenueOrder> {
    const r = this.mutate(() => this.engine.cancelOrder(ACCOUNT, this.market, symbol, { clientOrderId }));
    if (r.ok) return toOrder(r.value);
    // Already final: Binance answers -2011; the port returns the final order when it exists.
    const known = this.engine.getOrder(ACCOUNT, this.market, symbol, { clientOrderId });
    if (known.ok) return toOrder(known.value);
    throw rejected(r);
  }

  async fetchOrder(symbol: string, clientOrderId: string): Promise<VenueOrder | undefined> {
    const r = this.engine.getOrder(ACCOUNT, this.market, symbol, { clientOrderId });
    return r.ok ? toOrder(r.value) : undefined;
  }

  /** Spot OCO on the engine's order lists (the same rules as the local exchange's POST /api/v3/orderList/oco). */
  async placeOco(o: PlaceOco): Promise<VenueOrder[]> {
    if (this.market !== 'spot') throw new VenueError('REJECTED', `OCO order lists are a spot feature (list ${o.listClientOrderId})`);
    const limit = { type: 'LIMIT_MAKER' as const, price: o.limit.price, clientOrderId: o.limit.clientOrderId };
    const stop = { type: 'STOP_LOSS_LIMIT' as const, price: o.stop.price, stopPrice: o.stop.stopPrice, timeInForce: 'GTC' as const, clientOrderId: o.stop.clientOrderId };
    const r = this.mutate(() => this.engine.placeOrderList(ACCOUNT, { symbol: o.symbol, side: o.side, quantity: o.quantity, listClientOrderId: o.listClientOrderId, ...(o.side === 'SELL' ? { above: limit, below: stop } : { above: stop, below: limit }) }));
    if (!r.ok) throw rejected(r);
    const legs = r.value.orders.map((x) => ({ ...toOrder(x), listClientOrderId: r.value.list.listClientOrderId }));
    return [...legs.filter((l) => l.clientOrderId === o.limit.clientOrderId), ...legs.filter((l) => l.clientOrderId !== o.limit.clientOrderId)];
  }

  async cancelOrderList(symbol: string, listClientOrderId: string): Promise<VenueOrder[]> {
    const legs = (v: { list: SimOrderList; orders: SimOrder[] }): VenueOrder[] => v.orders.map((x) => ({ ...toOrder(x), listClientOrderId: v.list.listClientOrderId }));
    const r = this.mutate(() => this.engine.cancelOrderList(ACCOUNT, symbol, { listClientOrderId }));
    if (r.ok) return legs(r.value);
    // Already ended: the legs as they ended (Binance answers -2011; the port returns them).
    const known = this.engine.getOrderList(ACCOUNT, { listClientOrderId });
    if (known.ok && known.value.list.symbol === symbol) return legs(known.value);
    throw rejected(r);
  }

  async openOrders(symbol?: string): Promise<VenueOrder[]> {
    return this.engine.openOrders(ACCOUNT, this.market, symbol).map(toOrder);
  }

  async fills(symbol: string, since?: number): Promise<VenueFill[]> {
    return this.engine.trades(ACCOUNT, this.market, symbol, { ...(since !== undefined ? { startTime: since } : {}), limit: 1000 }).map(toFill);
  }

  async positions(symbols?: readonly string[]): Promise<VenuePosition[]> {
    if (this.market === 'futures') {
      return this.engine
        .positions(ACCOUNT)
        .filter((p) => !p.positionAmt.isZero() && (!symbols || symbols.includes(p.symbol)))
        .map((p) => ({ symbol: p.symbol, positionSide: p.positionSide, quantity: p.positionAmt, entryPrice: p.entryPrice, markPrice: p.markPrice, unrealizedPnl: p.unrealizedPnl, liquidationPrice: p.liquidationPrice, leverage: p.leverage }));
    }
    const balances = new Map(this.engine.spotBalances(ACCOUNT).map((b) => [b.asset, b]));
    const out: VenuePosition[] = [];
    for (const inst of this.engine.instruments('spot')) {
      if (symbols && !symbols.includes(inst.symbol)) continue;
      const b = balances.get(inst.baseAsset);
      const qty = b ? b.free.plus(b.locked) : undefined;
      if (qty && !qty.isZero()) out.push({ symbol: inst.symbol, positionSide: 'BOTH', quantity: qty });
    }
    return out;
  }

  async account(): Promise<VenueAccount> {
    if (this.market === 'futures') {
      const a = this.engine.futuresAccount(ACCOUNT);
      return { balances: [{ asset: a.asset, free: a.availableBalance, locked: a.walletBalance.minus(a.availableBalance) }], walletBalance: a.walletBalance, availableBalance: a.availableBalance };
    }
    return { balances: this.engine.spotBalances(ACCOUNT).map((b) => ({ asset: b.asset, free: b.free, locked: b.locked })) };
  }

  async price(symbol: string): Promise<Dec> {
    const p = this.engine.price(this.market, symbol);
    const v = p.mark ?? p.last;
    if (!v) throw new VenueError('REJECTED', `no price for ${symbol} yet`);
    return v;
  }

  async configureFutures(setup: FuturesSetup): Promise<FuturesSetupReport> {
    if (this.market !== 'futures') return { positionMode: 'unchanged', symbols: [] };
    return this.mutate(() => {
      // Binance's rules apply: "no need to change" is unchanged; open orders or positions refuse the switch.
      const mode = this.engine.setPositionMode(ACCOUNT, setup.positionMode === 'HEDGE');
      if (!mode.ok && mode.kind !== 'NO_NEED_TO_CHANGE_POSITION_SIDE') throw rejected(mode);
      const out: Array<{ symbol: string; leverage: number; marginType: string }> = [];
      for (const s of setup.symbols) {
        if (!this.engine.instrument('futures', s.symbol)) continue;
        if (s.marginType) this.engine.setMarginType(ACCOUNT, s.symbol, s.marginType);
        this.engine.setLeverage(ACCOUNT, s.symbol, s.leverage);
        out.push({ symbol: s.symbol, leverage: s.leverage, marginType: s.marginType ?? 'unchanged' });
      }
      // Position mode and leverage changes raise no event: saved all the same.
      if (this.o.persistence) this.dirty = true;
      return { positionMode: mode.ok ? ('set' as const) : ('unchanged' as const), symbols: out };
    });
  }

  onEvent(fn: (e: VenueEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: VenueEvent): void {
    for (const fn of this.listeners) fn(e);
  }
}

function rejected(r: EngineReject): VenueError {
  if (r.kind === 'UNKNOWN_ORDER') return new VenueError('UNKNOWN_ORDER', r.message);
  if (r.kind === 'DUPLICATE_CLIENT_ORDER_ID') return new VenueError('DUPLICATE', r.message);
  return new VenueError('REJECTED', r.filter ? r.filter.reason : `${r.kind}: ${r.message}`, { code: r.kind });
}

function toOrder(o: SimOrder): VenueOrder {
  return {
    symbol: o.symbol,
    clientOrderId: o.clientOrderId,
    exchangeOrderId: String(o.orderId),
    side: o.side,
    type: o.type,
    status: o.status as OrderStatus,
    quantity: o.origQty,
    filledQuantity: o.executedQty,
    ...(o.price.isZero() ? {} : { price: o.price }),
    ...(o.stopPrice.isZero() ? {} : { stopPrice: o.stopPrice }),
    ...(o.executedQty.isZero() ? {} : { averagePrice: o.avgPrice }),
    reduceOnly: o.reduceOnly,
    updateTime: o.updateTime,
    ...(o.market === 'futures' ? { positionSide: o.positionSide } : {}),
    ...(o.orderListId !== undefined ? { orderListId: String(o.orderListId) } : {}),
  };
}

function toFill(t: SimTrade): VenueFill {
  return {
    symbol: t.symbol,
    tradeId: String(t.tradeId),
    clientOrderId: t.clientOrderId,
    exchangeOrderId: String(t.orderId),
    side: t.side,
    price: t.price,
    quantity: t.qty,
    fee: t.commission,
    feeAsset: t.commissionAsset,
    isMaker: t.isMaker,
    ...(t.market === 'futures' ? { realizedPnl: t.realizedPnl } : {}),
    time: t.time,
  };
}
