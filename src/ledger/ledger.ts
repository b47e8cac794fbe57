/**
 * The ledger: the one owner of positions and working orders.
 *
 * A position belongs to an owner: (strategy, symbol) and, in hedge mode, a
 * side (LONG / SHORT; one-way mode uses BOTH). Holdings and positions the bot
 * did not create belong to the `external` owner: no strategy ever trades them.
 * In one-way mode the venue nets every owner's orders into one position per
 * symbol: the sum of the owners' lines (external included) is the venue's
 * position, and the reconciler checks exactly that.
 *
 * Everything that asks "what do I hold, including what is in flight" reads
 * this: the planner (what a strategy may exit, whether it is already in), risk
 * (entry or exit, open entries, reserved quote), protection (what a stop must
 * cover), the reconciler, the portfolio views and the strategy host. Nobody
 * keeps a second copy (there were five, and they disagreed about dust).
 *
 * Spot is counted as received: a buy whose fee is charged in the base asset
 * adds quantity minus fee. What is left below the instrument's minimum
 * quantity or notional is dust: the owner is flat, the dust stays on its line
 * (with its cost) and is swept into the owner's next sell once that sell is
 * large enough to pass the filters.
 *
 * The portfolio applies fills (it owns cash and the day's counters and needs
 * each fill's realized PnL); the ledger tracks working orders from the bus.
 *
 * Each line keeps the exact cost of what it holds: a reduce realizes its
 * proceeds less its share of that cost (the whole cost when the line closes),
 * so realized PnL plus what is held at cost adds up to the cash that moved,
 * to the last unit, also when the average entry price does not divide
 * evenly (a spot buy net of its base-asset fee on top of dust). Each line
 * also books its open round trip (what was added and taken away, at what
 * value, its largest size, its fees) and hands it over when the trip
 * closes; the backtester's trade list is made of these trips.
 */
import type { Bus } from '../bus/bus.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Fill, OrderIntent, OrderSide, OrderSource, OrderUpdate, PositionSide } from '../model/events.ts';
import { roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';

/** The owner of holdings the bot did not create (never traded by a strategy). */
export const EXTERNAL = 'external';

/**
 * Order labels that are not owners: fills of such orders (older databases
 * stored protective and kill-switch orders under these names, and the
 * exchange's liquidations have no owner; a reconcile shortfall adjustment
 * shrinks the owners' claims to what the venue holds) reduce the owners'
 * positions they close.
 */
const NOT_OWNERS: ReadonlySet<string> = new Set(['protective', 'kill-switch', 'liquidation', 'reconcile']);

export interface OwnerKey {
  readonly strategy: string;
  readonly symbol: string;
  readonly side: PositionSide;
}

export interface LotView extends OwnerKey {
  /** Signed: positive long, negative short. Spot: base asset received (dust included). */
  readonly quantity: Dec;
  /** Average cost of the quantity held. */
  readonly entryPrice: Dec;
  /** Lifetime realized PnL of this owner on this symbol, fees included. */
  readonly realizedPnl: Dec;
  /** Fees paid, in the quote asset (base-asset fees valued at the fill price). */
  readonly fees: Dec;
  /** True when what is held is below the filters (nothing, or dust). */
  readonly flat: boolean;
  /** The quantity held while flat (spot rounding and base-asset fees leave it). */
  readonly dust: Dec;
  readonly openedAt?: number;
}

/** A round trip on one owner's line: from the fill that opened it (flat to position) until now, or until it closed. */
export interface TripView {
  /** LONG or SHORT: the side of the position the trip held. */
  readonly side: 'LONG' | 'SHORT';
  readonly openedAt: number;
  /** Quantity and quote value the trip's adding fills put on (spot buys net of a base-asset fee), at their prices. */
  readonly entryQuantity: Dec;
  readonly entryValue: Dec;
  /** Dust the line held when the trip opened, and its cost: the trip's exits sell it (0 when there was none). */
  readonly carriedQuantity: Dec;
  readonly carriedCost: Dec;
  /** Quantity taken off and its value at the fills' prices (a spot sell's base-asset fee leaves with it). */
  readonly exitQuantity: Dec;
  readonly exitValue: Dec;
  /** Largest absolute position during the trip. */
  readonly maxQuantity: Dec;
  /** Fees charged to the trip, in quote (a flip's fee is the new trip's). */
  readonly fees: Dec;
  /** Realized PnL, fees included (a closed trip: its whole PnL). */
  readonly pnl: Dec;
}

/** A trip that closed: flat (or dust) again. */
export interface ClosedTripView extends TripView {
  readonly closedAt: number;
}

/** One owner's holding at exact cost, with its open round trip. */
export interface HoldingView extends OwnerKey {
  /** Signed quantity (dust included). */
  readonly quantity: Dec;
  /** What the quantity held cost, in quote (positive for longs and shorts alike): its entry value. */
  readonly cost: Dec;
  readonly flat: boolean;
  /** The trip under way (absent when none was opened since the last one closed). */
  readonly trip?: TripView;
}

/** What one fill did to one owner's line. */
export interface LotChange {
  readonly key: OwnerKey;
  readonly quantity: Dec;
  /** PnL realized by the reducing part, before fees. */
  readonly realized: Dec;
  /** This owner's share of the fee, in quote (0 when the fee asset cannot be valued). */
  readonly feeQuote: Dec;
  /** A round trip this change closed (flat to flat): pnl fees included, and the trip's figures. */
  readonly closedTrip?: ClosedTripView;
  readonly lot: LotView;
}

export interface WorkingOrderView {
  readonly key: string;
  readonly strategy: string;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly positionSide: PositionSide;
  readonly quantity: Dec;
  readonly filled: Dec;
  readonly source: OrderSource;
  /** Opens or adds to a position (not reduce-only, not protective). */
  readonly entry: boolean;
}

/** What the other engines may read. */
export interface LedgerView {
  readonly market: Market;
  readonly hedge: boolean;
  lot(strategy: string, symbol: string, side?: PositionSide): LotView;
  /** Every non-empty line (dust and external included), optionally of one symbol. */
  lots(symbol?: string): LotView[];
  /** The bot's net position on the symbol (one hedge leg, when side is given): every owner but external. */
  net(symbol: string, side?: PositionSide): Dec;
  /** What the venue should hold: the bot's net plus external. */
  venueExpected(symbol: string, side?: PositionSide): Dec;
  external(symbol: string, side?: PositionSide): Dec;
  realized(symbol: string): Dec;
  /** Each non-empty line: owner, quantity, average cost, open (not dust when it last changed), trip start. */
  eachLine(symbol: string, fn: (strategy: string, quantity: Dec, entryPrice: Dec, open: boolean, openedAt: number | undefined) => void): void;
  /** Signed quantity the owner's working orders will still add (protective legs excluded: they are contingent). */
  pending(strategy: string, symbol: string, side?: PositionSide): Dec;
  /** The owner's position once its working orders fill. */
  projected(strategy: string, symbol: string, side?: PositionSide): Dec;
  /** Below the filters: no quantity, or less than minQty, or (with a price) less than the minimum notional. */
  isDust(symbol: string, qty: Dec): boolean;
  /** What the owner can sell (buy back) now: its projected holding rounded down to the lot; 0 while it is dust. */
  exitable(strategy: string, symbol: string, side?: PositionSide, marketLot?: boolean): Dec;
  working(filter?: { strategy?: string; symbol?: string; source?: OrderSource }): WorkingOrderView[];
  /** Whether a working order (client order id, or `intent:<id>` before its first update) is counted. */
  isWorking(key: string): boolean;
  /** Whether any other owner holds the symbol or has a working (non-protective) order on it: the venue nets them. */
  sharedWith(symbol: string, strategy: string): boolean;
  /** Working entries on the symbol (of one owner), leaving out the order `except` names (a key of working()). */
  openEntries(symbol: string, strategy?: string, except?: string): { BUY: number; SELL: number };
  /** Symbols with a position or an entry in flight, per strategy (the open-positions caps count these), leaving out `except`. */
  openSymbols(strategy?: string, except?: string): Set<string>;
  /** Quote tied up by working entry buys: quantity left times price (leaving out `except`). */
  reservedQuote(price: (symbol: string) => Dec | undefined, except?: string): Dec;
}

interface Lot {
  readonly key: OwnerKey;
  qty: Dec;
  entry: Dec;
  realized: Dec;
  fees: Dec;
  openedAt: number | undefined;
  tripPnl: Dec;
  /** Whether the line held a position (not dust) after the last change. */
  open: boolean;
  /** Exact quote cost of |qty| (see the header). */
  cost: Dec;
  /** The open trip's figures (beside openedAt and tripPnl). */
  trip: TripBook;
}

interface TripBook {
  side: 'LONG' | 'SHORT' | undefined;
  entryQty: Dec;
  entryValue: Dec;
  carriedQty: Dec;
  carriedCost: Dec;
  exitQty: Dec;
  exitValue: Dec;
  maxQty: Dec;
  fees: Dec;
}

/**
 * A partial reduce takes cost * closed / held, rounded to this many decimals
 * (far below any quote asset's unit; sums of such figures stay exact at 40
 * significant digits). A full close takes the whole cost, so nothing is lost.
 */
const COST_DP = 20;

/** A trip's book: `carried` is dust the line holds when it opens (a flip's rest is an entry: `entry`). */
const freshTrip = (carried: { qty: Dec; cost: Dec } = { qty: ZERO, cost: ZERO }, entry: { qty: Dec; value: Dec } = { qty: ZERO, value: ZERO }): TripBook => {
  const held = carried.qty.isZero() ? entry.qty : carried.qty;
  return { side: held.isZero() ? undefined : held.isPos() ? 'LONG' : 'SHORT', entryQty: entry.qty.abs(), entryValue: entry.value, carriedQty: carried.qty.abs(), carriedCost: carried.cost, exitQty: ZERO, exitValue: ZERO, maxQty: carried.qty.abs().plus(entry.qty.abs()), fees: ZERO };
};

interface Working {
  strategy: string;
  symbol: string;
  side: OrderSide;
  positionSide: PositionSide;
  quantity: Dec;
  filled: Dec;
  source: OrderSource;
  entry: boolean;
}

const FINAL = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);

export interface LedgerDeps {
  market: Market;
  quoteAsset: string;
  /** Hedge mode (USD-M dual side position): owners hold LONG and SHORT legs. */
  hedge?: boolean;
  instrument: (symbol: string) => Instrument | undefined;
  /** A price for the minimum-notional dust test (the mark); without one only minQty decides. */
  price: (symbol: string) => Dec | undefined;
}

const k = (strategy: string, symbol: string, side: PositionSide): string => `${strategy}\u0000${symbol}\u0000${side}`;

export class Ledger implements LedgerView {
  readonly market: Market;
  readonly hedge: boolean;
  private readonly lines = new Map<string, Lot>();
  private readonly bySymbol = new Map<string, Set<Lot>>();
  private readonly orders = new Map<string, Working>();
  private readonly warnedFeeAssets = new Set<string>();
  private readonly watchers = new Set<(changes: readonly LotChange[], fill: Fill) => void>();
  private unsubs: Array<() => void> = [];

  constructor(private readonly deps: LedgerDeps) {
    this.market = deps.market;
    this.hedge = deps.hedge ?? false;
  }

  /** Follows working orders on the bus (fills come through the portfolio's applyFill). */
  start(bus: Bus): void {
    this.unsubs.push(
      bus.on('order.update', (u) => this.onUpdate(u), 'ledger'),
      // Denied after the planner counted it (risk, or the execution engine's filters): never an order.
      bus.on('order.denied', (d) => this.orders.delete(`intent:${d.intent.intentId}`), 'ledger'),
    );
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
  }

  // ------------------------------------------------------------ working orders

  /**
   * Counts an intent as working from the moment it is requested, before the
   * execution engine's PENDING update: a second signal in the same tick (a
   * flip: exitLong then enterShort) must see it.
   */
  reserve(i: Pick<OrderIntent, 'intentId' | 'strategy' | 'symbol' | 'side' | 'quantity' | 'reduceOnly' | 'source' | 'positionSide'>): void {
    this.orders.set(`intent:${i.intentId}`, {
      strategy: i.strategy,
      symbol: i.symbol,
      side: i.side,
      positionSide: i.positionSide ?? 'BOTH',
      quantity: i.quantity,
      filled: ZERO,
      source: i.source,
      entry: !i.reduceOnly && i.source !== 'protective',
    });
  }

  private onUpdate(u: OrderUpdate): void {
    if (u.market !== undefined && u.market !== this.market) return;
    const pre = u.intentId ? this.orders.get(`intent:${u.intentId}`) : undefined;
    if (pre) {
      this.orders.delete(`intent:${u.intentId}`);
      this.orders.set(u.clientOrderId, pre);
    }
    if (FINAL.has(u.status)) {
      this.orders.delete(u.clientOrderId);
      return;
    }
    const w = this.orders.get(u.clientOrderId);
    if (w) {
      // The row's quantity is the rounded one the venue got.
      if (u.quantity) w.quantity = u.quantity;
      w.filled = u.filledQuantity;
    } else if (u.side && u.strategy) {
      // An order the planner did not count (restored at start, adopted by the reconciler).
      this.orders.set(u.clientOrderId, {
        strategy: u.strategy,
        symbol: u.symbol,
        side: u.side,
        positionSide: u.positionSide ?? 'BOTH',
        quantity: u.quantity ?? ZERO,
        filled: u.filledQuantity,
        source: u.source ?? (u.strategy === 'protective' ? 'protective' : 'strategy'),
        entry: !u.reduceOnly && u.source !== 'protective' && u.strategy !== 'protective',
      });
    }
  }

  /** Orders the last run left working (rows), so in-flight quantities survive a restart. */
  restoreWorking(rows: ReadonlyArray<{ clientOrderId: string } & Omit<Working, 'entry'> & { reduceOnly: boolean }>): void {
    for (const r of rows) this.orders.set(r.clientOrderId, { ...r, entry: !r.reduceOnly && r.source !== 'protective' });
  }

  working(filter: { strategy?: string; symbol?: string; source?: OrderSource } = {}): WorkingOrderView[] {
    const out: WorkingOrderView[] = [];
    for (const [key, w] of this.orders) {
      if (filter.strategy !== undefined && w.strategy !== filter.strategy) continue;
      if (filter.symbol !== undefined && w.symbol !== filter.symbol) continue;
      if (filter.source !== undefined && w.source !== filter.source) continue;
      out.push({ key, ...w });
    }
    return out;
  }

  isWorking(key: string): boolean {
    return this.orders.has(key);
  }

  sharedWith(symbol: string, strategy: string): boolean {
    for (const l of this.bySymbol.get(symbol) ?? []) if (l.key.strategy !== strategy && !l.qty.isZero()) return true;
    for (const w of this.orders.values()) if (w.symbol === symbol && w.strategy !== strategy && w.source !== 'protective') return true;
    return false;
  }

  pending(strategy: string, symbol: string, side: PositionSide = 'BOTH'): Dec {
    let q = ZERO;
    for (const w of this.orders.values()) {
      if (w.strategy !== strategy || w.symbol !== symbol || w.positionSide !== side || w.source === 'protective') continue;
      const rest = Dec.max(ZERO, w.quantity.minus(w.filled));
      q = w.side === 'BUY' ? q.plus(rest) : q.minus(rest);
    }
    return q;
  }

  openEntries(symbol: string, strategy?: string, except?: string): { BUY: number; SELL: number } {
    const out = { BUY: 0, SELL: 0 };
    for (const [key, w] of this.orders) if (key !== except && w.symbol === symbol && w.entry && (strategy === undefined || w.strategy === strategy)) out[w.side]++;
    return out;
  }

  openSymbols(strategy?: string, except?: string): Set<string> {
    const out = new Set<string>();
    for (const [key, w] of this.orders) if (key !== except && w.entry && w.strategy !== EXTERNAL && (strategy === undefined || w.strategy === strategy)) out.add(w.symbol);
    // Each line's open flag was set by the dust test when it last changed: no filter arithmetic per order here.
    for (const l of this.lines.values()) {
      if (l.key.strategy === EXTERNAL || (strategy !== undefined && l.key.strategy !== strategy)) continue;
      if (l.open) out.add(l.key.symbol);
    }
    return out;
  }

  reservedQuote(price: (symbol: string) => Dec | undefined, except?: string): Dec {
    let r = ZERO;
    for (const [key, w] of this.orders) {
      if (!w.entry || key === except) continue;
      const p = price(w.symbol);
      if (p) r = r.plus(Dec.max(ZERO, w.quantity.minus(w.filled)).times(p));
    }
    return r;
  }

  // ------------------------------------------------------------ positions

  lot(strategy: string, symbol: string, side: PositionSide = 'BOTH'): LotView {
    const l = this.lines.get(k(strategy, symbol, side));
    return l ? this.view(l) : this.view(this.blank({ strategy, symbol, side }));
  }

  lots(symbol?: string): LotView[] {
    const src = symbol === undefined ? [...this.lines.values()] : [...(this.bySymbol.get(symbol) ?? [])];
    return src.filter((l) => !l.qty.isZero()).map((l) => this.view(l)).sort((a, b) => (a.symbol + a.strategy + a.side < b.symbol + b.strategy + b.side ? -1 : 1));
  }

  net(symbol: string, side?: PositionSide): Dec {
    let q = ZERO;
    for (const l of this.bySymbol.get(symbol) ?? []) if (l.key.strategy !== EXTERNAL && (side === undefined || l.key.side === side)) q = q.plus(l.qty);
    return q;
  }

  /**
   * The hot path (every candle and mark of a held symbol): each line's owner, quantity and average
   * cost, without building views or testing dust.
   */
  eachLine(symbol: string, fn: (strategy: string, quantity: Dec, entryPrice: Dec, open: boolean, openedAt: number | undefined) => void): void {
    for (const l of this.bySymbol.get(symbol) ?? []) if (!l.qty.isZero()) fn(l.key.strategy, l.qty, l.entry, l.open, l.openedAt);
  }

  /** Lifetime realized PnL on the symbol, fees included, of every line (fills on external lines move the cash too). */
  realized(symbol: string): Dec {
    let r = ZERO;
    for (const l of this.bySymbol.get(symbol) ?? []) r = r.plus(l.realized);
    return r;
  }

  external(symbol: string, side: PositionSide = 'BOTH'): Dec {
    return this.lines.get(k(EXTERNAL, symbol, side))?.qty ?? ZERO;
  }

  venueExpected(symbol: string, side?: PositionSide): Dec {
    let q = ZERO;
    for (const l of this.bySymbol.get(symbol) ?? []) if (side === undefined || l.key.side === side) q = q.plus(l.qty);
    return q;
  }

  projected(strategy: string, symbol: string, side: PositionSide = 'BOTH'): Dec {
    // Per signal and per order: the line's quantity, not a whole view of it.
    const held = this.lines.get(k(strategy, symbol, side))?.qty ?? ZERO;
    return held.plus(this.pending(strategy, symbol, side));
  }

  isDust(symbol: string, qty: Dec): boolean {
    if (qty.isZero()) return true;
    const inst = this.deps.instrument(symbol);
    if (!inst) return false;
    const abs = qty.abs();
    const minQty = inst.filters.lot.minQty.isZero() ? inst.filters.lot.stepSize : inst.filters.lot.minQty;
    if (abs.lt(minQty)) return true;
    // What could be sold: rounded down to the step. Below the minimum notional it cannot leave the account.
    const sellable = roundQuantity(abs, inst.filters.lot);
    if (sellable.lt(minQty)) return true;
    const price = this.deps.price(symbol);
    const minNotional = inst.filters.notional.minNotional;
    // Futures reduce-only orders are exempt from MIN_NOTIONAL, so a futures position is never dust by notional.
    return this.market === 'spot' && price !== undefined && !minNotional.isZero() && sellable.times(price).lt(minNotional);
  }

  exitable(strategy: string, symbol: string, side: PositionSide = 'BOTH', marketLot = true): Dec {
    const inst = this.deps.instrument(symbol);
    const held = this.projected(strategy, symbol, side);
    if (!inst || this.isDust(symbol, held)) return ZERO;
    const lot = marketLot && inst.filters.marketLot.stepSize.gt(inst.filters.lot.stepSize) ? inst.filters.marketLot : inst.filters.lot;
    return roundQuantity(held.abs(), lot);
  }

  /** One owner's holding at exact cost and its open round trip (the backtester's trade list reads it). */
  holding(strategy: string, symbol: string, side: PositionSide = 'BOTH'): HoldingView {
    const l = this.lines.get(k(strategy, symbol, side)) ?? this.blank({ strategy, symbol, side });
    const trip = l.openedAt !== undefined ? this.tripView(l, l.openedAt) : undefined;
    return { ...l.key, quantity: l.qty, cost: l.cost, flat: this.isDust(symbol, l.qty), ...(trip ? { trip } : {}) };
  }

  /**
   * Calls `fn` with what each fill did, after it is booked (the backtester's
   * trade recorder listens here; a bus handler on `fill` may run before the
   * portfolio's). Returns the unsubscribe.
   */
  watch(fn: (changes: readonly LotChange[], fill: Fill) => void): () => void {
    this.watchers.add(fn);
    return () => void this.watchers.delete(fn);
  }

  // ------------------------------------------------------------ fills

  /**
   * Books one fill into the owners' lines. The owner is the fill's strategy;
   * a fill of an order with no owner (a liquidation, or an older database's
   * protective and kill-switch rows) closes the owners' positions it reduces,
   * largest first, the remainder going to external.
   */
  applyFill(f: Fill): LotChange[] {
    const side = f.positionSide ?? 'BOTH';
    const fee = this.feeOf(f);
    if (!NOT_OWNERS.has(f.strategy)) return this.notify([this.applyTo({ strategy: f.strategy, symbol: f.symbol, side }, f, f.quantity, fee.quote, fee.base, f.ts)], f);
    // Allocate a reducing fill across the lines it closes.
    const sign = f.side === 'BUY' ? -1 : 1; // a SELL reduces longs, a BUY reduces shorts
    const lines = [...(this.bySymbol.get(f.symbol) ?? [])].filter((l) => l.key.side === side && (sign > 0 ? l.qty.isPos() : l.qty.isNeg())).sort((a, b) => b.qty.abs().cmp(a.qty.abs()) || (a.key.strategy < b.key.strategy ? -1 : 1));
    let rest = f.quantity;
    const out: LotChange[] = [];
    for (const l of lines) {
      if (rest.isZero()) break;
      const q = Dec.min(rest, l.qty.abs());
      const share = q.div(f.quantity);
      out.push(this.applyTo(l.key, f, q, fee.quote.times(share), fee.base.times(share), f.ts));
      rest = rest.minus(q);
    }
    if (!rest.isZero()) {
      const share = rest.div(f.quantity);
      out.push(this.applyTo({ strategy: EXTERNAL, symbol: f.symbol, side }, f, rest, fee.quote.times(share), fee.base.times(share), f.ts));
    }
    return this.notify(out, f);
  }

  private notify(changes: LotChange[], f: Fill): LotChange[] {
    for (const w of this.watchers) w(changes, f);
    return changes;
  }

  /** The fee in the quote asset, and how much of the base asset it took (spot buys pay in base). */
  private feeOf(f: Fill): { quote: Dec; base: Dec } {
    if (f.fee.isZero()) return { quote: ZERO, base: ZERO };
    if (f.feeAsset === this.deps.quoteAsset) return { quote: f.fee, base: ZERO };
    const inst = this.deps.instrument(f.symbol);
    if (inst && f.feeAsset === inst.baseAsset) return { quote: f.fee.times(f.price), base: f.fee };
    if (!this.warnedFeeAssets.has(f.feeAsset)) this.warnedFeeAssets.add(f.feeAsset);
    return { quote: ZERO, base: ZERO };
  }

  /** Fee assets seen that could not be valued (the portfolio logs them once). */
  unvaluedFeeAssets(): readonly string[] {
    return [...this.warnedFeeAssets];
  }

  private applyTo(key: OwnerKey, f: Fill, quantity: Dec, feeQuote: Dec, feeBase: Dec, ts: number): LotChange {
    const l = this.line(key);
    // What the position changes by: a spot buy's base fee never arrives; a spot sell's base fee leaves too.
    const signed = f.side === 'BUY' ? quantity.minus(feeBase) : quantity.plus(feeBase).neg();
    const wasOpen = l.open;
    // The side the line held before this fill (what a trip it closes was).
    const heldSide = l.qty.isNeg() ? 'SHORT' : 'LONG';
    let realized = ZERO;
    let closedTrip: LotChange['closedTrip'];
    if (!wasOpen && l.openedAt === undefined) {
      l.openedAt = ts;
      l.tripPnl = ZERO;
      // Dust the line holds joins the trip at its cost: the trip's exits sell it.
      l.trip = freshTrip({ qty: l.qty, cost: l.cost });
    }
    if (l.qty.isZero() || l.qty.isPos() === signed.isPos()) {
      const total = l.qty.abs().plus(signed.abs());
      const value = f.price.times(signed.abs());
      l.entry = total.isZero() ? ZERO : l.entry.times(l.qty.abs()).plus(value).div(total);
      l.qty = l.qty.plus(signed);
      l.cost = l.cost.plus(value);
      l.trip.entryQty = l.trip.entryQty.plus(signed.abs());
      l.trip.entryValue = l.trip.entryValue.plus(value);
    } else {
      const held = l.qty.abs();
      const closeQty = Dec.min(signed.abs(), held);
      // Proceeds less the closed part's cost: all of it when the line closes, so realized plus cost held is the cash that moved.
      const share = closeQty.eq(held) ? l.cost : l.cost.times(closeQty).div(held).toDecimalPlaces(COST_DP, Dec.ROUND_HALF_EVEN);
      const proceeds = f.price.times(closeQty);
      realized = l.qty.isPos() ? proceeds.minus(share) : share.minus(proceeds);
      const flipped = signed.abs().gt(held);
      l.qty = l.qty.plus(signed);
      l.cost = l.cost.minus(share);
      l.realized = l.realized.plus(realized);
      l.tripPnl = l.tripPnl.plus(realized);
      l.trip.exitQty = l.trip.exitQty.plus(closeQty);
      l.trip.exitValue = l.trip.exitValue.plus(proceeds);
      if (flipped) {
        // The old trip closes on its own PnL; the rest opens a new one at this price, which pays the fee.
        closedTrip = { ...this.tripView(l, l.openedAt ?? ts, heldSide), closedAt: ts };
        l.entry = f.price;
        l.cost = f.price.times(l.qty.abs());
        l.openedAt = ts;
        l.tripPnl = ZERO;
        l.trip = freshTrip(undefined, { qty: l.qty, value: l.cost });
      } else if (l.qty.isZero()) l.entry = ZERO;
    }
    l.realized = l.realized.minus(feeQuote);
    l.fees = l.fees.plus(feeQuote);
    l.tripPnl = l.tripPnl.minus(feeQuote);
    l.trip.fees = l.trip.fees.plus(feeQuote);
    if (l.qty.abs().gt(l.trip.maxQty)) l.trip.maxQty = l.qty.abs();
    const nowOpen = !this.isDust(key.symbol, l.qty);
    if (nowOpen && l.trip.side === undefined) l.trip.side = l.qty.isPos() ? 'LONG' : 'SHORT';
    if (!closedTrip && wasOpen && !nowOpen) {
      closedTrip = { ...this.tripView(l, l.openedAt ?? ts, heldSide), closedAt: ts };
      l.tripPnl = ZERO;
      l.openedAt = undefined;
      l.trip = freshTrip();
    } else if (closedTrip && !nowOpen) {
      l.openedAt = undefined;
    }
    l.open = nowOpen;
    return { key, quantity, realized, feeQuote, ...(closedTrip ? { closedTrip } : {}), lot: this.view(l) };
  }

  /** The line's trip figures; `side` when the book has none yet (a trip that closes without ever being open). */
  private tripView(l: Lot, openedAt: number, side: 'LONG' | 'SHORT' = l.qty.isNeg() ? 'SHORT' : 'LONG'): TripView {
    const t = l.trip;
    return {
      side: t.side ?? side,
      openedAt,
      entryQuantity: t.entryQty,
      entryValue: t.entryValue,
      carriedQuantity: t.carriedQty,
      carriedCost: t.carriedCost,
      exitQuantity: t.exitQty,
      exitValue: t.exitValue,
      maxQuantity: t.maxQty,
      fees: t.fees,
      pnl: l.tripPnl,
    };
  }

  /**
   * Sets the external line to what the venue holds beyond the bot's owners
   * (the reconciler's call: holdings found at start, or changed by hand).
   * Returns the change.
   */
  setExternal(symbol: string, qty: Dec, price: Dec | undefined, side: PositionSide = 'BOTH'): Dec {
    const l = this.line({ strategy: EXTERNAL, symbol, side });
    const diff = qty.minus(l.qty);
    if (!diff.isZero() && (l.qty.isZero() || !qty.isZero())) l.entry = price ?? l.entry;
    l.qty = qty;
    if (qty.isZero()) l.entry = ZERO;
    l.cost = l.entry.times(qty.abs());
    l.open = !this.isDust(symbol, qty);
    return diff;
  }

  private blank(key: OwnerKey): Lot {
    return { key, qty: ZERO, entry: ZERO, realized: ZERO, fees: ZERO, openedAt: undefined, tripPnl: ZERO, open: false, cost: ZERO, trip: freshTrip() };
  }

  private line(key: OwnerKey): Lot {
    const id = k(key.strategy, key.symbol, key.side);
    let l = this.lines.get(id);
    if (!l) {
      l = this.blank(key);
      this.lines.set(id, l);
      let s = this.bySymbol.get(key.symbol);
      if (!s) this.bySymbol.set(key.symbol, (s = new Set()));
      s.add(l);
    }
    return l;
  }

  private view(l: Lot): LotView {
    const flat = this.isDust(l.key.symbol, l.qty);
    return {
      ...l.key,
      quantity: l.qty,
      entryPrice: l.entry,
      realizedPnl: l.realized,
      fees: l.fees,
      flat,
      dust: flat ? l.qty : ZERO,
      ...(l.openedAt !== undefined && !flat ? { openedAt: l.openedAt } : {}),
    };
  }
}
