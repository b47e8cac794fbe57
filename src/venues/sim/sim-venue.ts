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
 * The account lives in memory: a restart begins a new paper account with
 * the configured balance (noted in the heartbeat's userStream block).
 */
import type { Clock } from '../../core/clock.ts';
import { Dec } from '../../core/decimal.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';
import type { OrderStatus } from '../../model/events.ts';
import type { FuturesSetup, FuturesSetupReport, PlaceOrder, Venue, VenueAccount, VenueEvent, VenueFill, VenueOrder, VenuePosition } from '../venue.ts';
import { VenueError } from '../venue.ts';
import { MatchingEngine, type EngineOptions } from './engine.ts';
import type { EngineReject, SimOrder, SimTrade } from './types.ts';

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
}

export class SimVenue implements Venue {
  readonly name = 'sim';
  readonly market: Market;
  readonly holdsConditionals = true;
  engine: MatchingEngine;
  private readonly listeners = new Set<(e: VenueEvent) => void>();

  constructor(private readonly o: SimVenueOptions) {
    this.market = o.market;
    this.engine = this.build(o.instruments);
  }

  /** A fresh engine and paper account over these instruments. */
  private build(instruments: readonly Instrument[]): MatchingEngine {
    const o = this.o;
    const engine = new MatchingEngine({ clock: o.clock, instruments, ...o.engine });
    this.engine = engine;
    engine.createAccount(ACCOUNT, o.market === 'spot' ? { spot: { [o.quoteAsset]: o.balance.toFixed() } } : { futures: o.balance.toFixed() });
    engine.onEvent((e) => {
      if (e.account !== ACCOUNT) return;
      if (e.type === 'order' && e.order.market === this.market) {
        this.emit({ type: 'order', order: toOrder(e.order), ...(e.trade ? { fill: toFill(e.trade) } : {}) });
      } else if (e.type === 'spotBalances' && this.market === 'spot') {
        this.emit({ type: 'account', account: { balances: e.balances.map((b) => ({ asset: b.asset, free: b.free, locked: b.locked })) } });
      } else if (e.type === 'futuresAccount' && this.market === 'futures') {
        this.emit({ type: 'account', account: { balances: [], walletBalance: e.walletBalance, ...(e.reason === 'FUNDING_FEE' ? { reason: 'FUNDING_FEE' as const, balanceChange: e.balanceChange } : {}) } });
      }
    });
    return engine;
  }

  /** One closed 1m candle moves the sim market: open, then the range, then the close. */
  onCandle(symbol: string, c: { open: number; high: number; low: number; close: number; volume: number; openTime?: number }): void {
    this.engine.step(this.market, symbol, { open: new Dec(c.open), high: new Dec(c.high), low: new Dec(c.low), last: new Dec(c.close), ...(c.openTime !== undefined ? { time: c.openTime, durationMs: 60_000 } : {}) });
  }

  async start(): Promise<void> {
    if (this.o.loadInstruments) {
      try {
        // Paper trading any symbol the live feed streams: list what Binance lists.
        const list = await this.o.loadInstruments();
        if (list.length > 0) this.build(list);
      } catch (err) {
        this.o.onLoadError?.(err);
      }
    }
    this.emit({ type: 'stream', status: 'connected', detail: 'in-process sim venue' });
  }

  async stop(): Promise<void> {
    this.listeners.clear();
  }

  async instruments(): Promise<Instrument[]> {
    return this.engine.instruments(this.market);
  }

  async place(p: PlaceOrder): Promise<VenueOrder> {
    const r = this.engine.placeOrder(ACCOUNT, {
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
    });
    if (!r.ok) throw rejected(r);
    return toOrder(r.value);
  }

  async cancel(symbol: string, clientOrderId: string): Promise<VenueOrder> {
    const r = this.engine.cancelOrder(ACCOUNT, this.market, symbol, { clientOrderId });
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
    return { positionMode: mode.ok ? 'set' : 'unchanged', symbols: out };
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
