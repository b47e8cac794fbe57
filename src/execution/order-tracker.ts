/**
 * Our orders that are not final yet, as the bus reports them (order.update).
 * The planner and the risk engine each keep one, so each knows what is in
 * flight without calling another engine: the position a symbol will have
 * once working orders fill, and which entries are already open.
 */
import type { Bus } from '../bus/bus.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { OrderSide, OrderUpdate } from '../model/events.ts';

interface Working {
  readonly symbol: string;
  readonly strategy?: string;
  readonly side: OrderSide;
  readonly quantity: Dec;
  filled: Dec;
  readonly entry: boolean;
}

const FINAL = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);

export class OrderTracker {
  private readonly working = new Map<string, Working>();
  private readonly unsubs: Array<() => void>;

  constructor(bus: Bus, name: string) {
    this.unsubs = [
      bus.on('order.update', (u) => this.onUpdate(u), name),
      // Denied after approval (the execution engine's filters): never becomes an order.
      bus.on('order.denied', (d) => this.working.delete(`intent:${d.intent.intentId}`), name),
    ];
  }

  /**
   * Registers an order the moment it is approved, before the execution
   * engine's PENDING update, so a second signal in the same tick sees it.
   * `key` is replaced by the client order id when the first update arrives.
   */
  expect(intentId: string, symbol: string, side: OrderSide, quantity: Dec, entry: boolean, strategy?: string): void {
    this.working.set(`intent:${intentId}`, { symbol, side, quantity, filled: ZERO, entry, ...(strategy ? { strategy } : {}) });
  }

  stop(): void {
    for (const u of this.unsubs) u();
  }

  private onUpdate(u: OrderUpdate): void {
    // Protective stops and targets are contingent: counting them would make a
    // protected long look flat to the planner (and let it buy again).
    if (u.strategy === 'protective') return;
    const pre = u.intentId ? this.working.get(`intent:${u.intentId}`) : undefined;
    if (pre) {
      this.working.delete(`intent:${u.intentId}`);
      this.working.set(u.clientOrderId, pre);
    }
    const w = this.working.get(u.clientOrderId);
    if (FINAL.has(u.status)) {
      this.working.delete(u.clientOrderId);
      return;
    }
    if (w) w.filled = u.filledQuantity;
    else if (u.side && u.status === 'PENDING') {
      // An order someone else approved (manual, kill switch): count it too.
      this.working.set(u.clientOrderId, { symbol: u.symbol, side: u.side, quantity: ZERO, filled: ZERO, entry: !u.reduceOnly, ...(u.strategy ? { strategy: u.strategy } : {}) });
    }
  }

  /** Signed quantity still to fill on the symbol (BUY +, SELL -). */
  pendingQty(symbol: string): Dec {
    let q = ZERO;
    for (const w of this.working.values()) {
      if (w.symbol !== symbol) continue;
      const rest = Dec.max(ZERO, w.quantity.minus(w.filled));
      q = w.side === 'BUY' ? q.plus(rest) : q.minus(rest);
    }
    return q;
  }

  /** Open or in-flight entry orders on the symbol, by side. */
  openEntries(symbol: string): { BUY: number; SELL: number } {
    const out = { BUY: 0, SELL: 0 };
    for (const w of this.working.values()) if (w.symbol === symbol && w.entry) out[w.side]++;
    return out;
  }

  /** Symbols with an open or in-flight entry order (the risk engine's position cap counts them). */
  entrySymbols(strategy?: string): Set<string> {
    const out = new Set<string>();
    for (const w of this.working.values()) if (w.entry && (strategy === undefined || w.strategy === strategy)) out.add(w.symbol);
    return out;
  }

  /** Quote tied up by open entry buys (for the balance guard): quantity left times price. */
  reservedQuote(price: (symbol: string) => Dec | undefined): Dec {
    let r = ZERO;
    for (const w of this.working.values()) {
      if (!w.entry) continue;
      const p = price(w.symbol);
      if (p) r = r.plus(Dec.max(ZERO, w.quantity.minus(w.filled)).times(p));
    }
    return r;
  }
}
