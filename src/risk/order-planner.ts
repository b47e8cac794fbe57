/**
 * Turns strategy signals into order requests: which side, how much (sizing,
 * rounded by the exchange filters), what kind of order (the YAML's `order`),
 * and the protective stop and target. Also the one place manual orders and
 * the kill switch get their intents from, so every intent has a persisted
 * sequence number and a deterministic client order id.
 *
 *   enterLong  -> BUY,  sized                  (nothing while already long)
 *   exitLong   -> SELL, the whole long, reduce-only
 *   enterShort -> SELL, sized (futures only)   (nothing while already short)
 *   exitShort  -> BUY,  the whole short, reduce-only
 *
 * Unit signals (a grid level: Signal.unit) size one unit either way: an entry
 * adds one even while in a position, an exit closes one unit at today's
 * price (all of it when less than a unit, or only dust, would be left).
 *
 * "The position" is the strategy's own line in the ledger (never another
 * strategy's, never the account's external holdings), including what its
 * working orders will do once they fill, so a signal that repeats before the
 * first order fills is not doubled. Below the filters (spot dust) it is flat.
 *
 * Hedge mode: long signals act on the LONG leg, short signals on the SHORT
 * leg; an entry never closes the other leg (no flips).
 *
 * Spot exits release first: the owner's protective orders lock its coins, so
 * the exit names them (releaseFirst) and the execution engine cancels and
 * settles them before it sells what is still held.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { IntentSequence } from '../execution/intent-sequence.ts';
import { roundQuantity } from '../model/filters.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { OrderIntent, OrderSide, OrderSource, OrderType, PositionSide, Signal } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market, Timeframe } from '../model/market.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { StrategyConfig } from '../settings/strategy-config.ts';
import { ALL_SIGNALS } from '../bus/bus.ts';
import { CandleAggregator } from '../strategy/timeframes.ts';
import { sizeOrder } from './sizing.ts';

const HUNDRED = new Dec(100);
const BPS = new Dec(10_000);
/** A limit re-priced this many times without filling goes at market. */
const MAX_REPRICES = 5;

export interface PlannerDeps {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  market: Market;
  portfolio: PortfolioView;
  /** Read, and told of every intent the moment it is asked for (reserve). */
  ledger: Ledger;
  instrument: (symbol: string) => Instrument | undefined;
  strategy: (strategy: string, symbol: string) => { config: StrategyConfig; timeframe: Timeframe } | undefined;
  sequence: IntentSequence;
}

export interface ManualOrder {
  readonly symbol: string;
  readonly side: OrderSide;
  readonly quantity: Dec;
  readonly price?: Dec;
  readonly reduceOnly?: boolean;
  readonly source: OrderSource;
  readonly strategy: string;
  readonly reason: string;
  readonly positionSide?: PositionSide;
  readonly releaseFirst?: readonly string[];
}

/** Wilder ATR on the strategy's own timeframe, for volatility sizing. */
class Atr {
  private readonly agg: CandleAggregator;
  private prevClose: number | undefined;
  private n = 0;
  private sum = 0;
  value: number | undefined;

  constructor(symbol: string, timeframe: Timeframe, private readonly period: number) {
    this.agg = new CandleAggregator(symbol, timeframe);
  }

  push(c: { openTime: number; open: number; high: number; low: number; close: number; volume: number }): void {
    for (const k of this.agg.push(c)) {
      const tr = this.prevClose === undefined ? k.high - k.low : Math.max(k.high - k.low, Math.abs(k.high - this.prevClose), Math.abs(k.low - this.prevClose));
      this.prevClose = k.close;
      if (this.n < this.period) {
        this.sum += tr;
        this.n++;
        if (this.n === this.period) this.value = this.sum / this.period;
      } else this.value = (this.value! * (this.period - 1) + tr) / this.period;
    }
  }
}

export class OrderPlanner {
  private readonly atrs = new Map<string, Atr>();
  private readonly unsubs: Array<() => void> = [];
  /** Limit intents with a TTL, until final: what to do with the rest when the TTL cancels them. */
  private readonly timed = new Map<string, { intent: OrderIntent; reprices: number }>();

  constructor(private readonly deps: PlannerDeps) {}

  start(): void {
    const { bus } = this.deps;
    this.unsubs.push(
      bus.on(ALL_SIGNALS, (s) => this.onSignal(s), 'planner'),
      bus.on('order.update', (u) => {
        if (!u.intentId) return;
        const t = this.timed.get(u.intentId);
        if (!t || !['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'].includes(u.status)) return;
        this.timed.delete(u.intentId);
        if (u.status === 'CANCELED' && u.reason === 'TTL_EXPIRED') this.onTtlExpired(t.intent, u.filledQuantity, t.reprices);
      }, 'planner-ttl'),
      bus.on('candle.closed', (c) => {
        if (c.timeframe !== '1m') return;
        for (const [k, a] of this.atrs) if (k.startsWith(`${c.symbol}\u0000`)) a.push(c);
      }, 'planner-atr'),
    );
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
  }

  /** The leg a signal acts on: BOTH in one-way mode, LONG or SHORT in hedge mode. */
  private legOf(action: Signal['action']): PositionSide {
    if (!this.deps.ledger.hedge) return 'BOTH';
    return action === 'enterLong' || action === 'exitLong' ? 'LONG' : 'SHORT';
  }

  /**
   * What an exit cancels (and settles) before it is sent: on spot the owner's protective orders,
   * which lock the coins it sells; on USD-M one-way when another owner shares the symbol, its
   * stops too, which then went without reduceOnly (the venue nets the owners) and would fill after
   * the exit and open a position nobody asked for. Alone on a symbol, a USD-M stop is reduce-only
   * and cannot outlive the position it protected.
   */
  releaseFor(strategy: string, symbol: string): string[] {
    const { market, ledger } = this.deps;
    if (market === 'spot' || (!ledger.hedge && ledger.sharedWith(symbol, strategy))) return this.protectiveOf(strategy, symbol);
    return [];
  }

  /** The owner's protective orders on the venue (they lock spot coins an exit needs). */
  protectiveOf(strategy: string, symbol: string): string[] {
    return this.deps.ledger.working({ strategy, symbol, source: 'protective' }).map((w) => w.key).filter((key) => !key.startsWith('intent:'));
  }

  /**
   * Closes what an owner holds on a symbol (a spot take-profit or trailing stop fired, a strategy
   * switched off): reduce-only, its protective orders released first on spot.
   */
  closeOwner(o: { strategy: string; symbol: string; side?: PositionSide; source: OrderSource; reason: string }): OrderIntent | undefined {
    const leg = o.side ?? 'BOTH';
    const held = this.deps.ledger.projected(o.strategy, o.symbol, leg);
    const qty = this.deps.ledger.exitable(o.strategy, o.symbol, leg);
    if (qty.lte(0)) return undefined;
    const release = this.releaseFor(o.strategy, o.symbol);
    return this.request({ strategy: o.strategy, symbol: o.symbol, side: held.isPos() ? 'SELL' : 'BUY', type: 'MARKET', quantity: qty, reduceOnly: true, source: o.source, reason: o.reason, ...(leg !== 'BOTH' ? { positionSide: leg } : {}), ...(release.length ? { releaseFirst: release } : {}) });
  }

  private onSignal(s: Signal): void {
    const { logger } = this.deps;
    const found = this.deps.strategy(s.strategy, s.symbol);
    const inst = this.deps.instrument(s.symbol);
    if (!found || !inst) {
      logger.warn({ strategy: s.strategy, symbol: s.symbol }, `signal from ${s.strategy} on ${s.symbol} ignored: ${!found ? 'no enabled YAML for it' : 'the venue does not list the symbol'}`);
      return;
    }
    const cfg = found.config;
    if (cfg.sizing?.type === 'volatility') this.ensureAtr(s.symbol, found.timeframe, cfg.sizing.atrPeriod);
    const { ledger } = this.deps;
    const leg = this.legOf(s.action);
    const pos = ledger.projected(s.strategy, s.symbol, leg);
    const inPosition = !ledger.isDust(s.symbol, pos);
    const long = inPosition && pos.isPos();
    const short = inPosition && pos.isNeg();
    const entry = s.action === 'enterLong' || s.action === 'enterShort';
    const side: OrderSide = s.action === 'enterLong' || s.action === 'exitShort' ? 'BUY' : 'SELL';
    const legField = leg !== 'BOTH' ? { positionSide: leg } : {};

    if (!entry) {
      if (s.action === 'exitLong' ? !long : !short) return; // Nothing of its own to exit (flat or dust).
      let qty = ledger.exitable(s.strategy, s.symbol, leg);
      if (s.unit) {
        const unit = this.size(s, cfg, inst, found.timeframe, side, true);
        if ('quantity' in unit && !ledger.isDust(s.symbol, qty.minus(unit.quantity))) qty = unit.quantity;
      }
      if (qty.lte(0)) return;
      const release = this.releaseFor(s.strategy, s.symbol);
      this.request({ strategy: s.strategy, symbol: s.symbol, side, type: 'MARKET', quantity: qty, reduceOnly: true, source: 'strategy', reason: s.reason, ...legField, ...(release.length ? { releaseFirst: release } : {}) });
      return;
    }
    if (s.action === 'enterShort' && this.deps.market === 'spot') return this.denyUnsized(s, side, 'SHORT_ON_SPOT: spot cannot sell what it does not hold; use market: futures');
    // Already in: one position per direction, unless the signal is one more unit.
    if (!s.unit && ((s.action === 'enterLong' && long) || (s.action === 'enterShort' && short))) return;

    const price = this.deps.portfolio.last(s.symbol);
    if (!price) return this.denyUnsized(s, side, `NO_PRICE: no market price for ${s.symbol} yet`);
    const { stop, target } = this.protective(s, cfg, price, side);
    const trail = s.trailing ?? (cfg.risk.trailingPct !== undefined ? new Dec(cfg.risk.trailingPct) : undefined);
    const isLimit = cfg.order.type === 'limit';
    const sized = this.size(s, cfg, inst, found.timeframe, side, !isLimit);
    if ('reason' in sized) return this.denyUnsized(s, side, sized.reason);
    // A flip (short -> long, one-way) closes the owner's old position and opens the new one in one order.
    const flipping = leg === 'BOTH' && inPosition && ((s.action === 'enterLong' && pos.isNeg()) || (s.action === 'enterShort' && pos.isPos()));
    const quantity = flipping ? sized.quantity.plus(ledger.exitable(s.strategy, s.symbol, leg)) : sized.quantity;
    let type: OrderType = 'MARKET';
    let limitPrice: Dec | undefined;
    let ttl: { ttlMs: number; onExpiry: 'cancel' | 'reprice' | 'market' } | undefined;
    if (cfg.order.type === 'limit') {
      type = 'LIMIT';
      const off = new Dec(cfg.order.offsetBps);
      limitPrice = side === 'BUY' ? price.times(BPS.minus(off)).div(BPS) : price.times(BPS.plus(off)).div(BPS);
      ttl = { ttlMs: cfg.order.ttlSec * 1000, onExpiry: cfg.order.onExpiry };
    }
    this.request({
      strategy: s.strategy,
      symbol: s.symbol,
      side,
      type,
      quantity,
      ...(limitPrice ? { price: limitPrice } : {}),
      source: 'strategy',
      reason: `${s.reason} (${sized.detail})`,
      ...(stop ? { stopLoss: stop } : {}),
      ...(target ? { takeProfit: target } : {}),
      ...(trail ? { callbackRate: trail } : {}),
      ...legField,
      ...(ttl ?? {}),
    });
  }

  private protective(s: Signal, cfg: StrategyConfig, price: Dec, side: OrderSide): { stop?: Dec; target?: Dec } {
    const stop = s.stopLoss ?? (cfg.risk.stopLossPct !== undefined ? price.times(HUNDRED.plus(side === 'BUY' ? -cfg.risk.stopLossPct : cfg.risk.stopLossPct)).div(HUNDRED) : undefined);
    const target = s.takeProfit ?? (cfg.risk.takeProfitPct !== undefined ? price.times(HUNDRED.plus(side === 'BUY' ? cfg.risk.takeProfitPct : -cfg.risk.takeProfitPct)).div(HUNDRED) : undefined);
    return { ...(stop ? { stop } : {}), ...(target ? { target } : {}) };
  }

  /** The sized quantity for one entry (or one unit), rounded by the filters. */
  private size(s: Signal, cfg: StrategyConfig, inst: Instrument, timeframe: Timeframe, side: OrderSide, isMarket: boolean): ReturnType<typeof sizeOrder> {
    const price = this.deps.portfolio.last(s.symbol);
    if (!price) return { reason: `NO_PRICE: no market price for ${s.symbol} yet` };
    const { stop } = this.protective(s, cfg, price, side);
    const atr = cfg.sizing?.type === 'volatility' ? this.atrs.get(`${s.symbol}\u0000${timeframe}\u0000${cfg.sizing.atrPeriod}`)?.value : undefined;
    return sizeOrder(
      cfg.sizing,
      { price, equity: this.deps.portfolio.equity(), ...(stop ? { stopPrice: stop } : {}), trips: this.deps.portfolio.trips(s.strategy, s.symbol), ...(atr !== undefined ? { atr } : {}) },
      inst,
      isMarket,
    );
  }

  /** A protective exit (stop, take-profit, trailing stop) for an owner's position: reduce-only, admitted by risk in any state. */
  protect(o: { strategy: string; symbol: string; side: OrderSide; type: OrderType; quantity: Dec; stopPrice?: Dec; price?: Dec; stopLimitPrice?: Dec; callbackRate?: Dec; positionSide?: PositionSide; releaseFirst?: readonly string[]; reason: string }): OrderIntent {
    return this.request({
      strategy: o.strategy,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      quantity: o.quantity,
      ...(o.stopPrice ? { stopPrice: o.stopPrice } : {}),
      ...(o.price ? { price: o.price } : {}),
      ...(o.stopLimitPrice ? { stopLimitPrice: o.stopLimitPrice } : {}),
      ...(o.callbackRate ? { callbackRate: o.callbackRate } : {}),
      ...(o.positionSide && o.positionSide !== 'BOTH' ? { positionSide: o.positionSide } : {}),
      ...(o.releaseFirst?.length ? { releaseFirst: o.releaseFirst } : {}),
      reduceOnly: true,
      source: 'protective',
      reason: o.reason,
    });
  }

  /** A manual, kill-switch or protective order: takes a sequence number and goes to risk like any other. */
  submit(o: ManualOrder): OrderIntent {
    return this.request({ strategy: o.strategy, symbol: o.symbol, side: o.side, type: o.price ? 'LIMIT' : 'MARKET', quantity: o.quantity, ...(o.price ? { price: o.price } : {}), ...(o.reduceOnly ? { reduceOnly: true } : {}), ...(o.positionSide && o.positionSide !== 'BOTH' ? { positionSide: o.positionSide } : {}), ...(o.releaseFirst?.length ? { releaseFirst: o.releaseFirst } : {}), source: o.source, reason: o.reason });
  }

  private request(p: Omit<OrderIntent, 'intentId' | 'seq' | 'market'>, reprices = 0): OrderIntent {
    const seq = this.deps.sequence.next();
    const intent: OrderIntent = { ...p, intentId: `${p.strategy}/${p.symbol}/${seq}`, seq, market: this.deps.market };
    // Counted as in flight from this moment: the execution engine's PENDING update comes later (its
    // queue is async), and a second signal of the same candle (exitLong then enterShort) must size
    // against the position that exit leaves, not the one it is closing. A denial removes it again.
    this.deps.ledger.reserve(intent);
    if (intent.ttlMs !== undefined && intent.onExpiry !== undefined && intent.onExpiry !== 'cancel') this.timed.set(intent.intentId, { intent, reprices });
    this.deps.bus.publish('order.request', { kind: 'order.request', ts: this.deps.clock.now(), intent });
    return intent;
  }

  /**
   * A limit entry's TTL ran out with `rest` unfilled: re-price it at the
   * current price (same offset and TTL; after MAX_REPRICES the rest goes at
   * market) or send the rest at market. Either way a new intent, through risk.
   */
  private onTtlExpired(i: OrderIntent, filled: Dec, reprices: number): void {
    const inst = this.deps.instrument(i.symbol);
    const price = this.deps.portfolio.last(i.symbol);
    if (!inst) return;
    const rest = roundQuantity(i.quantity.minus(filled), inst.filters.lot);
    if (rest.lt(inst.filters.lot.minQty) || rest.isZero()) return;
    const base = { strategy: i.strategy, symbol: i.symbol, side: i.side, quantity: rest, source: i.source, ...(i.reduceOnly ? { reduceOnly: true } : {}), ...(i.stopLoss ? { stopLoss: i.stopLoss } : {}), ...(i.takeProfit ? { takeProfit: i.takeProfit } : {}) };
    if (i.onExpiry === 'reprice' && price && reprices < MAX_REPRICES) {
      const cfg = this.deps.strategy(i.strategy, i.symbol)?.config;
      const off = new Dec(cfg?.order.type === 'limit' ? cfg.order.offsetBps : 0);
      const limit = i.side === 'BUY' ? price.times(BPS.minus(off)).div(BPS) : price.times(BPS.plus(off)).div(BPS);
      this.request({ ...base, type: 'LIMIT', price: limit, reason: `${i.reason ?? ''} (re-priced after TTL, ${reprices + 1})`, ttlMs: i.ttlMs!, onExpiry: 'reprice' }, reprices + 1);
    } else {
      this.request({ ...base, type: 'MARKET', reason: `${i.reason ?? ''} (rest at market after TTL)` });
    }
  }

  /** A signal that cannot become an order still leaves an order.denied (and so a risk_events row). */
  private denyUnsized(s: Signal, side: OrderSide, reason: string): void {
    const intent: OrderIntent = { intentId: `${s.strategy}/${s.symbol}/unsized-${s.ts}`, seq: 0, source: 'strategy', strategy: s.strategy, market: this.deps.market, symbol: s.symbol, side, type: 'MARKET', quantity: ZERO, reason: s.reason };
    this.deps.bus.publish('order.denied', { kind: 'order.denied', ts: this.deps.clock.now(), intent, reason, source: 'sizing' });
  }

  /** Starts an ATR for volatility sizing, so it is warm by the first signal (the kernel calls it per instance). */
  trackAtr(symbol: string, timeframe: Timeframe, period: number): void {
    this.ensureAtr(symbol, timeframe, period);
  }

  private ensureAtr(symbol: string, timeframe: Timeframe, period: number): void {
    const k = `${symbol}\u0000${timeframe}\u0000${period}`;
    if (!this.atrs.has(k)) this.atrs.set(k, new Atr(symbol, timeframe, period));
  }
}
