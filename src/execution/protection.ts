/**
 * Protective exits: a position's stop-loss and take-profit, kept on the
 * exchange so they survive a crash of the bot.
 *
 *   futures: STOP_MARKET and TAKE_PROFIT_MARKET, reduce-only, on the venue;
 *   spot:    the stop as a STOP_LOSS_LIMIT on the venue; the take-profit is
 *            emulated from the mark price (a resting sell would need the same
 *            coins the stop already locks, and OCO is not available), and the
 *            heartbeat says so.
 *
 * Levels come from the entry intent (the signal's stopLoss / takeProfit, or
 * the strategy YAML's stopLossPct / takeProfitPct, applied by the planner) and
 * are kept in kv, so a restart keeps protecting. When the position's size
 * changes the protective orders are replaced (cancel first: on spot the old
 * stop still locks the coins); when it closes they are cancelled, so no stop
 * is left behind to open a position later.
 *
 * Protective orders go through the normal order path (source 'protective':
 * the risk engine admits them in any state, they only ever reduce).
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { roundQuantity } from '../model/filters.ts';
import type { OrderIntent, PositionChanged } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { OrderPlanner } from '../risk/order-planner.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

const KV = 'protection.levels';
const levelsSchema = z.record(z.string(), z.object({ stop: z.string().optional(), target: z.string().optional() }));
/** How far below (above, for a short) its trigger a spot stop-limit may fill. */
const STOP_LIMIT_SLIPPAGE = new Dec('0.005');

interface Levels {
  stop?: Dec;
  target?: Dec;
}

interface Working {
  /** Signed quantity the protective orders cover. */
  covered: Dec;
  stopCid?: string;
  targetCid?: string;
  /** The emulated take-profit fired (one close per position). */
  emulatedFired: boolean;
}

export interface ProtectionDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  market: Market;
  portfolio: PortfolioView;
  instrument: (symbol: string) => Instrument | undefined;
  planner: OrderPlanner;
}

export class ProtectionManager {
  private readonly levels = new Map<string, Levels>();
  private readonly working = new Map<string, Working>();
  /** Intent id -> which leg, until its first order.update names the client order id. */
  private readonly legs = new Map<string, { symbol: string; leg: 'stop' | 'target' }>();
  private readonly unsubs: Array<() => void> = [];

  constructor(private readonly deps: ProtectionDeps) {}

  start(): void {
    const { bus, store } = this.deps;
    const saved = readKv(store, KV, levelsSchema);
    if (saved.ok && saved.value) {
      for (const [s, l] of Object.entries(saved.value)) this.levels.set(s, { ...(l.stop ? { stop: new Dec(l.stop) } : {}), ...(l.target ? { target: new Dec(l.target) } : {}) });
    }
    // Protective orders a previous run left working: ours to replace or cancel.
    const rows = store.all(store.db.selectFrom('orders').select(['client_order_id', 'symbol', 'type', 'quantity', 'side']).where('strategy', '=', 'protective').where('status', 'in', ['PENDING', 'NEW', 'PARTIALLY_FILLED']).where('market', '=', this.deps.market));
    for (const r of rows) {
      const w = this.work(r.symbol);
      const q = new Dec(r.quantity);
      w.covered = r.side === 'SELL' ? q : q.neg();
      if (r.type === 'TAKE_PROFIT_MARKET') w.targetCid = r.client_order_id;
      else w.stopCid = r.client_order_id;
    }
    this.unsubs.push(
      bus.observe('order.submit', (c) => this.onSubmit(c.intent), 'protection'),
      bus.on('position.changed', (p) => this.onPosition(p), 'protection'),
      bus.on('order.update', (u) => {
        if (u.strategy !== 'protective' || !u.intentId) return;
        const leg = this.legs.get(u.intentId);
        if (leg) {
          this.legs.delete(u.intentId);
          const w = this.work(leg.symbol);
          if (leg.leg === 'stop') w.stopCid = u.clientOrderId;
          else w.targetCid = u.clientOrderId;
        }
        if (['CANCELED', 'REJECTED', 'EXPIRED', 'FILLED'].includes(u.status)) {
          const w = this.working.get(u.symbol);
          if (w?.stopCid === u.clientOrderId) delete w.stopCid;
          if (w?.targetCid === u.clientOrderId) delete w.targetCid;
          if (u.status === 'REJECTED') this.deps.logger.error({ symbol: u.symbol, reason: u.reason }, `protective order on ${u.symbol} was rejected (${u.reason ?? 'no reason'}); the position is not protected on the exchange`);
        }
      }, 'protection'),
      bus.on('candle.closed', (c) => c.timeframe === '1m' && this.checkEmulated(c.symbol), 'protection'),
      bus.on('mark.price', (m) => this.checkEmulated(m.symbol), 'protection'),
    );
    // Positions held at start get their protection checked against what is working.
    for (const p of this.deps.portfolio.positions()) this.sync(p.symbol, p.quantity);
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
  }

  /** For the heartbeat: what is protected and how. */
  view(): { symbols: Array<{ symbol: string; stop?: string; target?: string; onExchange: string[]; emulated: string[] }> } {
    const out = [];
    for (const [symbol, l] of this.levels) {
      const w = this.working.get(symbol);
      out.push({
        symbol,
        ...(l.stop ? { stop: l.stop.toFixed() } : {}),
        ...(l.target ? { target: l.target.toFixed() } : {}),
        onExchange: [...(w?.stopCid ? ['stop'] : []), ...(w?.targetCid ? ['target'] : [])],
        emulated: l.target && this.deps.market === 'spot' ? ['target'] : [],
      });
    }
    return { symbols: out };
  }

  /** An entry with protective levels: remember them for the position it opens. */
  private onSubmit(i: OrderIntent): void {
    if (i.source !== 'strategy' || i.reduceOnly || (!i.stopLoss && !i.takeProfit)) return;
    this.levels.set(i.symbol, { ...(i.stopLoss ? { stop: i.stopLoss } : {}), ...(i.takeProfit ? { target: i.takeProfit } : {}) });
    this.persist();
  }

  private onPosition(p: PositionChanged): void {
    if (p.market !== this.deps.market) return;
    this.sync(p.symbol, p.quantity);
  }

  private work(symbol: string): Working {
    let w = this.working.get(symbol);
    if (!w) {
      w = { covered: new Dec(0), emulatedFired: false };
      this.working.set(symbol, w);
    }
    return w;
  }

  private isFlat(symbol: string, qty: Dec): boolean {
    const inst = this.deps.instrument(symbol);
    return qty.isZero() || (inst !== undefined && qty.abs().lt(inst.filters.lot.minQty));
  }

  /** Makes the working protective orders match the position. */
  private sync(symbol: string, qty: Dec): void {
    const w = this.work(symbol);
    if (this.isFlat(symbol, qty)) {
      this.cancelLegs(symbol, w, 'position closed');
      w.covered = new Dec(0);
      w.emulatedFired = false;
      if (this.levels.delete(symbol)) this.persist();
      return;
    }
    const l = this.levels.get(symbol);
    if (!l) return;
    const inst = this.deps.instrument(symbol);
    if (!inst) return;
    const size = roundQuantity(qty.abs(), inst.filters.lot);
    const signed = qty.isPos() ? size : size.neg();
    const hasLegs = (l.stop ? w.stopCid !== undefined : true) && (l.target && this.deps.market === 'futures' ? w.targetCid !== undefined : true);
    if (w.covered.eq(signed) && hasLegs) return;
    this.cancelLegs(symbol, w, 'position size changed');
    w.covered = signed;
    if (size.lt(inst.filters.lot.minQty)) return;
    const side = qty.isPos() ? 'SELL' : 'BUY';
    if (l.stop) {
      const stopIntent =
        this.deps.market === 'futures'
          ? this.deps.planner.protect({ symbol, side, type: 'STOP_MARKET', quantity: size, stopPrice: l.stop, reason: `stop-loss at ${l.stop.toFixed()}` })
          : this.deps.planner.protect({ symbol, side, type: 'STOP_LOSS_LIMIT', quantity: size, stopPrice: l.stop, price: side === 'SELL' ? l.stop.times(Dec.sub(1, STOP_LIMIT_SLIPPAGE)) : l.stop.times(Dec.add(1, STOP_LIMIT_SLIPPAGE)), reason: `stop-loss at ${l.stop.toFixed()}` });
      this.legs.set(stopIntent.intentId, { symbol, leg: 'stop' });
    }
    if (l.target && this.deps.market === 'futures') {
      const t = this.deps.planner.protect({ symbol, side, type: 'TAKE_PROFIT_MARKET', quantity: size, stopPrice: l.target, reason: `take-profit at ${l.target.toFixed()}` });
      this.legs.set(t.intentId, { symbol, leg: 'target' });
    }
  }

  private cancelLegs(symbol: string, w: Working, why: string): void {
    for (const cid of [w.stopCid, w.targetCid]) {
      if (cid) this.deps.bus.publish('order.cancel', { kind: 'order.cancel', ts: this.deps.clock.now(), symbol, clientOrderId: cid, reason: `protective order: ${why}` });
    }
    delete w.stopCid;
    delete w.targetCid;
  }

  /** Spot take-profits live here: close at market once the mark reaches the target. */
  private checkEmulated(symbol: string): void {
    if (this.deps.market !== 'spot') return;
    const l = this.levels.get(symbol);
    if (!l?.target) return;
    const w = this.work(symbol);
    const pos = this.deps.portfolio.position(symbol).quantity;
    const mark = this.deps.portfolio.mark(symbol);
    if (w.emulatedFired || !mark || this.isFlat(symbol, pos)) return;
    const hit = pos.isPos() ? mark.gte(l.target) : mark.lte(l.target);
    if (!hit) return;
    w.emulatedFired = true;
    // The stop locks the coins: cancel it first (same per-symbol queue, so it goes first).
    this.cancelLegs(symbol, w, 'take-profit reached');
    const inst = this.deps.instrument(symbol);
    const qty = inst ? roundQuantity(pos.abs(), inst.filters.lot) : pos.abs();
    this.deps.logger.info({ symbol, mark: mark.toFixed(), target: l.target.toFixed() }, `take-profit on ${symbol} reached (emulated): closing at market`);
    this.deps.planner.protect({ symbol, side: pos.isPos() ? 'SELL' : 'BUY', type: 'MARKET', quantity: qty, reason: `take-profit at ${l.target.toFixed()} (emulated)` });
  }

  private persist(): void {
    const out: Record<string, { stop?: string; target?: string }> = {};
    for (const [s, l] of this.levels) out[s] = { ...(l.stop ? { stop: l.stop.toFixed() } : {}), ...(l.target ? { target: l.target.toFixed() } : {}) };
    writeKv(this.deps.store, KV, out, this.deps.clock.now());
  }
}
