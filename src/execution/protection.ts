/**
 * Protective exits: each owner's stop-loss, take-profit and trailing stop,
 * attached to that owner's position (strategy, symbol, leg), kept on the
 * exchange where the exchange can hold them so they survive a crash.
 *
 *   futures: STOP_MARKET, TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET
 *            (callbackRate), on the venue;
 *   spot:    stop and take-profit together as one OCO order list on the
 *            venue (LIMIT_MAKER + STOP_LOSS_LIMIT sharing the coins: one fills,
 *            the exchange expires the other), where the venue offers it; a
 *            stop alone as a STOP_LOSS_LIMIT; without OCO the take-profit, and
 *            always the trailing stop, are emulated from the mark (a resting
 *            sell would need the coins the stop locks), and the heartbeat says so.
 *
 * Levels travel with the entry intent and attach to the owner's position when
 * that entry fills, not when it is submitted: on a reversal (exit and
 * opposite entry on one candle) the exit's fill closes the old position and
 * cancels its legs, and the entry's fill then protects the new one. (Attaching
 * at submit let the exit's "position closed" delete the new entry's levels:
 * 730 of 730 reversal entries had no stop.)
 *
 * When the owner's position changes size the legs are replaced (cancel first:
 * on spot the old stop still locks the coins); when it closes they are
 * cancelled, so no stop is left behind to open a position later. A rejected
 * or failed leg is retried; while a position with levels has no working stop,
 * it is listed as unprotected (the heartbeat turns unhealthy, an ERROR log
 * notifies).
 *
 * Protective orders go through the normal order path (source 'protective',
 * owned by the strategy they protect: risk admits them in any state, their
 * fills close that strategy's position and no other).
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { LedgerView } from '../ledger/ledger.ts';
import { CALLBACK_RATE, roundQuantity } from '../model/filters.ts';
import { OPEN_ORDER_STATUSES, type Fill, type OrderIntent, type OrderUpdate, type PositionChanged, type PositionSide } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { OrderPlanner } from '../risk/order-planner.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

const KV = 'protection.owners';
const levelSchema = z.object({ stop: z.string().optional(), target: z.string().optional(), trail: z.string().optional(), peak: z.string().optional() });
const savedSchema = z.object({ active: z.record(z.string(), levelSchema), pending: z.record(z.string(), levelSchema) });
/** How far below (above, for a short) its trigger a spot stop-limit may fill. */
const STOP_LIMIT_SLIPPAGE = new Dec('0.005');
/** A rejected or failed leg is tried again after this long, this many times, then left unprotected (and reported). */
const RETRY_MS = 5_000;
const MAX_RETRIES = 5;

interface Levels {
  stop?: Dec;
  target?: Dec;
  /** Trailing distance, percent. */
  trail?: Dec;
  /** Spot emulated trailing: the best mark since the position opened. */
  peak?: Dec;
}

type Leg = 'stop' | 'target' | 'trail';

interface Owner {
  readonly strategy: string;
  readonly symbol: string;
  readonly side: PositionSide;
}

interface Working {
  /** Signed quantity the legs cover. */
  covered: Dec;
  cids: Partial<Record<Leg, string>>;
  /** An emulated exit fired (one close per position). */
  fired: boolean;
  failures: number;
  retry?: TimerHandle;
}

export interface ProtectionView {
  owners: Array<{ strategy: string; symbol: string; side: PositionSide; stop?: string; target?: string; trail?: string; onExchange: Leg[]; emulated: Leg[] }>;
  /** Positions with protective levels and no working stop on the exchange (after retries): the heartbeat is unhealthy while this is not empty. */
  unprotected: Array<{ strategy: string; symbol: string; side: PositionSide; reason: string }>;
}

export interface ProtectionDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  market: Market;
  portfolio: PortfolioView;
  ledger: LedgerView;
  instrument: (symbol: string) => Instrument | undefined;
  planner: OrderPlanner;
  /** Spot stop + take-profit go as one OCO list (the venue has placeOco and keeps lists across restarts). */
  oco?: boolean;
}

const ownerKey = (o: Owner): string => `${o.strategy}\u0000${o.symbol}\u0000${o.side}`;
const ownerOf = (key: string): Owner => {
  const [strategy, symbol, side] = key.split('\u0000') as [string, string, PositionSide];
  return { strategy, symbol, side };
};

export class ProtectionManager {
  /** Levels of open positions, per owner. */
  private readonly active = new Map<string, Levels>();
  /** Levels of entries not filled yet, per intent id. */
  private readonly pending = new Map<string, Levels>();
  private readonly cidToIntent = new Map<string, string>();
  private readonly working = new Map<string, Working>();
  /** Intent id -> which leg of which owner, until its first order.update names the client order id. */
  private readonly legs = new Map<string, { owner: string; leg: Leg }>();
  private readonly unprotectedWhy = new Map<string, string>();
  private peakWrittenAt = -Infinity;
  private readonly unsubs: Array<() => void> = [];

  constructor(private readonly deps: ProtectionDeps) {}

  start(): void {
    const { bus, store } = this.deps;
    const saved = readKv(store, KV, savedSchema);
    if (saved.ok && saved.value) {
      for (const [k, l] of Object.entries(saved.value.active)) this.active.set(k, parse(l));
      for (const [k, l] of Object.entries(saved.value.pending)) this.pending.set(k, parse(l));
    }
    // Protective orders a previous run left working: ours to keep, replace or cancel.
    const rows = store.all(store.db.selectFrom('orders').select(['client_order_id', 'strategy', 'symbol', 'type', 'quantity', 'side', 'position_side']).where('source', '=', 'protective').where('status', 'in', [...OPEN_ORDER_STATUSES]).where('market', '=', this.deps.market));
    for (const r of rows) {
      const w = this.work(ownerKey({ strategy: r.strategy, symbol: r.symbol, side: r.position_side as PositionSide }));
      const q = new Dec(r.quantity);
      w.covered = r.side === 'SELL' ? q : q.neg();
      w.cids[r.type === 'TAKE_PROFIT_MARKET' || r.type === 'LIMIT_MAKER' ? 'target' : r.type === 'TRAILING_STOP_MARKET' ? 'trail' : 'stop'] = r.client_order_id;
    }
    this.unsubs.push(
      bus.observe('order.submit', (c) => this.onSubmit(c.intent), 'protection'),
      bus.on('order.denied', (d) => this.pending.delete(d.intent.intentId) && this.persist(), 'protection'),
      bus.on('fill', (f) => this.onFill(f), 'protection'),
      bus.on('position.changed', (p) => this.onPosition(p), 'protection'),
      bus.on('order.update', (u) => this.onUpdate(u), 'protection'),
      bus.on('candle.closed', (c) => c.timeframe === '1m' && this.checkEmulated(c.symbol), 'protection'),
      bus.on('mark.price', (m) => this.checkEmulated(m.symbol), 'protection'),
    );
    // Positions held at start get their protection checked against what is working.
    // Every owner with a line or with protective orders left working: a stop whose position closed
    // while the bot was down (or just before a kill) is cancelled now, not left to open a position.
    const owners = new Set<string>([...this.working.keys()]);
    for (const l of this.deps.ledger.lots()) if (l.strategy !== 'external') owners.add(ownerKey(l));
    for (const key of owners) {
      const o = ownerOf(key);
      this.sync(this.deps.ledger.lot(o.strategy, o.symbol, o.side));
    }
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
    for (const w of this.working.values()) w.retry?.cancel();
  }

  /** For the heartbeat: what is protected, how, and what is not. */
  view(): ProtectionView {
    const owners: ProtectionView['owners'] = [];
    for (const [key, l] of this.active) {
      const w = this.working.get(key);
      const o = ownerOf(key);
      const emulated = this.emulatedLegs(l);
      owners.push({
        ...o,
        ...(l.stop ? { stop: l.stop.toFixed() } : {}),
        ...(l.target ? { target: l.target.toFixed() } : {}),
        ...(l.trail ? { trail: l.trail.toFixed() } : {}),
        onExchange: (Object.keys(w?.cids ?? {}) as Leg[]).filter((k) => w?.cids[k] !== undefined),
        emulated,
      });
    }
    const unprotected = [...this.unprotectedWhy].map(([key, reason]) => ({ ...ownerOf(key), reason }));
    return { owners, unprotected };
  }

  private emulatedLegs(l: Levels): Leg[] {
    if (this.deps.market !== 'spot') return [];
    return [...(l.target && !this.ocoFor(l) ? (['target'] as const) : []), ...(l.trail ? (['trail'] as const) : [])];
  }

  /** Spot with both a stop and a target, on a venue with OCO lists: one list holds both. */
  private ocoFor(l: Levels): boolean {
    return this.deps.market === 'spot' && this.deps.oco === true && l.stop !== undefined && l.target !== undefined;
  }

  /** An entry with protective levels: remembered until its fill opens the position. */
  private onSubmit(i: OrderIntent): void {
    if (i.source === 'protective' || i.reduceOnly || (!i.stopLoss && !i.takeProfit && !i.callbackRate)) return;
    this.pending.set(i.intentId, { ...(i.stopLoss ? { stop: i.stopLoss } : {}), ...(i.takeProfit ? { target: i.takeProfit } : {}), ...(i.callbackRate ? { trail: i.callbackRate } : {}) });
    this.persist();
  }

  private onUpdate(u: OrderUpdate): void {
    if (u.intentId && this.pending.has(u.intentId)) {
      this.cidToIntent.set(u.clientOrderId, u.intentId);
      // An entry that ended without any fill never opens a position.
      if (['CANCELED', 'REJECTED', 'EXPIRED'].includes(u.status) && u.filledQuantity.isZero()) {
        this.pending.delete(u.intentId);
        this.persist();
      }
    }
    if (u.source !== 'protective' || !u.intentId) return;
    const leg = this.legs.get(u.intentId);
    if (leg) {
      this.legs.delete(u.intentId);
      this.work(leg.owner).cids[leg.leg] = u.clientOrderId;
    }
    // A stop working on the exchange again: the position is protected (a retry succeeded).
    if ((u.status === 'NEW' || u.status === 'PARTIALLY_FILLED') && this.unprotectedWhy.size > 0) {
      for (const [key, w] of this.working) {
        if (w.cids.stop === u.clientOrderId || w.cids.trail === u.clientOrderId) {
          this.unprotectedWhy.delete(key);
          w.failures = 0;
        }
      }
    }
    if (!['CANCELED', 'REJECTED', 'EXPIRED', 'FILLED'].includes(u.status)) return;
    for (const [key, w] of this.working) {
      for (const l of Object.keys(w.cids) as Leg[]) {
        if (w.cids[l] !== u.clientOrderId) continue;
        delete w.cids[l];
        if (u.status === 'REJECTED' || (u.status === 'EXPIRED' && u.filledQuantity.isZero() && w.covered.abs().gt(0) && !w.fired)) this.legFailed(key, w, `${l} ${u.status.toLowerCase()}${u.reason ? `: ${u.reason}` : ''}`);
      }
    }
  }

  /** A leg was refused or expired while the position is open: try again later, and say it is unprotected. */
  private legFailed(key: string, w: Working, why: string): void {
    const o = ownerOf(key);
    w.failures++;
    w.covered = new Dec(0); // forces a re-place at the next sync
    this.unprotectedWhy.set(key, why);
    this.deps.logger.error({ strategy: o.strategy, symbol: o.symbol, reason: why, attempt: w.failures }, `protective order of ${o.strategy} on ${o.symbol} failed (${why}); the position is NOT protected on the exchange${w.failures <= MAX_RETRIES ? `; retrying in ${RETRY_MS / 1000} s` : '; giving up until the position changes'}`);
    if (w.failures > MAX_RETRIES || w.retry) return;
    w.retry = this.deps.clock.after(RETRY_MS, () => {
      delete w.retry;
      this.sync(this.deps.ledger.lot(o.strategy, o.symbol, o.side));
    });
  }

  /** The fill of an entry that carried levels: they now belong to the owner's position. */
  private onFill(f: Fill): void {
    if (!f.clientOrderId || this.pending.size === 0) return;
    // After a restart the map is empty: the order row names the intent (its levels were kept in kv).
    const intent = this.cidToIntent.get(f.clientOrderId) ?? this.intentOfRow(f.clientOrderId);
    const l = intent ? this.pending.get(intent) : undefined;
    if (!intent || !l) return;
    const key = ownerKey({ strategy: f.strategy, symbol: f.symbol, side: f.positionSide ?? 'BOTH' });
    this.active.set(key, { ...l, ...(l.trail ? { peak: f.price } : {}) });
    const w = this.work(key);
    w.fired = false;
    w.failures = 0;
    this.persist();
  }

  private intentOfRow(cid: string): string | undefined {
    const { store } = this.deps;
    return store.all(store.db.selectFrom('orders').select('intent_id').where('client_order_id', '=', cid))[0]?.intent_id;
  }

  private onPosition(p: PositionChanged): void {
    if (p.market !== this.deps.market || p.strategy === 'external') return;
    this.sync(this.deps.ledger.lot(p.strategy, p.symbol, p.positionSide));
  }

  private work(key: string): Working {
    let w = this.working.get(key);
    if (!w) {
      w = { covered: new Dec(0), cids: {}, fired: false, failures: 0 };
      this.working.set(key, w);
    }
    return w;
  }

  /** Makes the owner's working protective orders match its position. */
  private sync(lot: { strategy: string; symbol: string; side: PositionSide; quantity: Dec; flat: boolean }): void {
    const key = ownerKey(lot);
    const w = this.work(key);
    if (lot.flat) {
      this.cancelLegs(lot.symbol, w, 'position closed');
      w.covered = new Dec(0);
      w.fired = false;
      w.failures = 0;
      w.retry?.cancel();
      delete w.retry;
      this.unprotectedWhy.delete(key);
      if (this.active.delete(key)) this.persist();
      return;
    }
    const l = this.active.get(key);
    if (!l) return;
    const inst = this.deps.instrument(lot.symbol);
    if (!inst) return;
    const size = roundQuantity(lot.quantity.abs(), inst.filters.lot);
    const signed = lot.quantity.isPos() ? size : size.neg();
    const futures = this.deps.market === 'futures';
    const oco = this.ocoFor(l);
    const wanted: Leg[] = [...(l.stop ? (['stop'] as const) : []), ...(l.target && (futures || oco) ? (['target'] as const) : []), ...(l.trail && futures ? (['trail'] as const) : [])];
    const hasLegs = wanted.every((leg) => w.cids[leg] !== undefined);
    if (w.covered.eq(signed) && hasLegs) {
      this.unprotectedWhy.delete(key);
      return;
    }
    this.cancelLegs(lot.symbol, w, 'position size changed');
    w.covered = signed;
    if (size.lt(inst.filters.lot.minQty)) return;
    const side = lot.quantity.isPos() ? 'SELL' : 'BUY';
    const base = { strategy: lot.strategy, symbol: lot.symbol, side, quantity: size, ...(lot.side !== 'BOTH' ? { positionSide: lot.side } : {}) } as const;
    if (oco) {
      const stopLimit = side === 'SELL' ? l.stop!.times(Dec.sub(1, STOP_LIMIT_SLIPPAGE)) : l.stop!.times(Dec.add(1, STOP_LIMIT_SLIPPAGE));
      const i = this.deps.planner.protect({ ...base, type: 'OCO', price: l.target!, stopPrice: l.stop!, stopLimitPrice: stopLimit, reason: `OCO: take-profit at ${l.target!.toFixed()}, stop-loss at ${l.stop!.toFixed()}` });
      // Two rows, one per leg: the take-profit keeps the intent id, the stop has '#stop'.
      this.legs.set(i.intentId, { owner: key, leg: 'target' });
      this.legs.set(`${i.intentId}#stop`, { owner: key, leg: 'stop' });
    } else if (l.stop) {
      const i = futures
        ? this.deps.planner.protect({ ...base, type: 'STOP_MARKET', stopPrice: l.stop, reason: `stop-loss at ${l.stop.toFixed()}` })
        : this.deps.planner.protect({ ...base, type: 'STOP_LOSS_LIMIT', stopPrice: l.stop, price: side === 'SELL' ? l.stop.times(Dec.sub(1, STOP_LIMIT_SLIPPAGE)) : l.stop.times(Dec.add(1, STOP_LIMIT_SLIPPAGE)), reason: `stop-loss at ${l.stop.toFixed()}` });
      this.legs.set(i.intentId, { owner: key, leg: 'stop' });
    }
    if (l.target && futures) {
      const i = this.deps.planner.protect({ ...base, type: 'TAKE_PROFIT_MARKET', stopPrice: l.target, reason: `take-profit at ${l.target.toFixed()}` });
      this.legs.set(i.intentId, { owner: key, leg: 'target' });
    }
    if (l.trail && futures) {
      // Binance takes 0.1..5 % in steps of 0.1 (model/filters.ts CALLBACK_RATE): the nearest rate it accepts.
      const { min, max, step } = CALLBACK_RATE;
      const rate = Dec.min(max, Dec.max(min, l.trail.div(step).toDecimalPlaces(0, Dec.ROUND_HALF_UP).times(step)));
      if (!rate.eq(l.trail)) this.deps.logger.warn({ symbol: lot.symbol, trailingPct: l.trail.toFixed(), callbackRate: rate.toFixed() }, `trailing ${l.trail.toFixed()} % is not a callbackRate Binance accepts (${min.toFixed()}..${max.toFixed()} % in steps of ${step.toFixed()}): using ${rate.toFixed()} %`);
      const i = this.deps.planner.protect({ ...base, type: 'TRAILING_STOP_MARKET', callbackRate: rate, reason: `trailing stop ${rate.toFixed()} %` });
      this.legs.set(i.intentId, { owner: key, leg: 'trail' });
    }
  }

  private cancelLegs(symbol: string, w: Working, why: string): void {
    for (const cid of Object.values(w.cids)) {
      if (cid) this.deps.bus.publish('order.cancel', { kind: 'order.cancel', ts: this.deps.clock.now(), symbol, clientOrderId: cid, reason: `protective order: ${why}` });
    }
    w.cids = {};
  }

  /**
   * Spot take-profits and trailing stops live here: the owner's position is
   * closed at market once the mark reaches the target or falls back by the
   * trailing distance from its best (its stop is released first).
   */
  private checkEmulated(symbol: string): void {
    if (this.deps.market !== 'spot') return;
    const mark = this.deps.portfolio.mark(symbol);
    if (!mark) return;
    for (const [key, l] of this.active) {
      const emulatedTarget = l.target !== undefined && !this.ocoFor(l);
      if (!emulatedTarget && !l.trail) continue;
      const o = ownerOf(key);
      if (o.symbol !== symbol) continue;
      const w = this.work(key);
      const lot = this.deps.ledger.lot(o.strategy, o.symbol, o.side);
      if (w.fired || lot.flat) continue;
      const long = lot.quantity.isPos();
      let why: string | undefined;
      if (emulatedTarget && l.target && (long ? mark.gte(l.target) : mark.lte(l.target))) why = `take-profit at ${l.target.toFixed()} (emulated)`;
      if (l.trail) {
        const peak = l.peak === undefined ? mark : long ? Dec.max(l.peak, mark) : Dec.min(l.peak, mark);
        if (!l.peak || !peak.eq(l.peak)) {
          l.peak = peak;
          // Kept across a restart (a trail restarted from the entry price would sell later than set),
          // written at most once a minute: every new best on every candle would be an fsync each.
          if (this.deps.clock.now() - this.peakWrittenAt >= 60_000) {
            this.peakWrittenAt = this.deps.clock.now();
            this.persist();
          }
        }
        const trigger = long ? peak.times(Dec.sub(1, l.trail.div(100))) : peak.times(Dec.add(1, l.trail.div(100)));
        if (!why && (long ? mark.lte(trigger) : mark.gte(trigger))) why = `trailing stop ${l.trail.toFixed()} % from ${peak.toFixed()} (emulated)`;
      }
      if (!why) continue;
      w.fired = true;
      this.deps.logger.info({ strategy: o.strategy, symbol, mark: mark.toFixed() }, `${why} on ${symbol} for ${o.strategy}: closing at market`);
      this.deps.planner.closeOwner({ strategy: o.strategy, symbol, side: o.side, source: 'protective', reason: why });
    }
  }

  private persist(): void {
    const out = { active: {} as Record<string, z.infer<typeof levelSchema>>, pending: {} as Record<string, z.infer<typeof levelSchema>> };
    for (const [k, l] of this.active) out.active[k] = serialize(l);
    for (const [k, l] of this.pending) out.pending[k] = serialize(l);
    writeKv(this.deps.store, KV, out, this.deps.clock.now());
  }
}

function parse(l: z.infer<typeof levelSchema>): Levels {
  return { ...(l.stop ? { stop: new Dec(l.stop) } : {}), ...(l.target ? { target: new Dec(l.target) } : {}), ...(l.trail ? { trail: new Dec(l.trail) } : {}), ...(l.peak ? { peak: new Dec(l.peak) } : {}) };
}

function serialize(l: Levels): z.infer<typeof levelSchema> {
  return { ...(l.stop ? { stop: l.stop.toFixed() } : {}), ...(l.target ? { target: l.target.toFixed() } : {}), ...(l.trail ? { trail: l.trail.toFixed() } : {}), ...(l.peak ? { peak: l.peak.toFixed() } : {}) };
}
