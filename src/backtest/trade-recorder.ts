/**
 * The backtest's trade list: the ledger's round trips of the strategies under
 * test, one row per trip that closed (flat -> position -> flat, per owner:
 * strategy, symbol and side). The ledger is the one owner of positions
 * (DESIGN.md); this keeps no position of its own, so it cannot invent a trip
 * the books did not make (spot dust read as a position used to open a tiny
 * SHORT trip here) and its PnL is the books' PnL.
 *
 * From the ledger, per trip: entry and exit times, side, quantities and
 * values (so average entry and exit prices), the largest size, the fees and
 * the realized PnL, fees included. Spot is counted as received: a buy's fee in
 * the base asset never arrives, and what is left below the filters is dust
 * that the strategy is flat on; it stays on the owner's line at its cost and
 * is sold by the owner's next trip, whose PnL counts it at that cost (its
 * entry price is the average of its own fills).
 *
 * Funding is not in the ledger: each settlement is split over the owners'
 * lines by their quantity as the venue computes it (-quantity x mark x rate,
 * to 8 decimals; the venue's rounding remainder goes to the largest line)
 * and charged to the owner's trip that is open (or to its next one).
 *
 * So the trips' PnL (fees and funding included) plus what the owners still
 * hold at the end, valued at the last price, is the equity change to the last
 * unit. A trip still open at the end is closed at the last price with the fee
 * a market exit would pay (the run reports it in closedAtEnd); dust is
 * reported as held (heldAtEnd).
 */
import { Dec, ZERO } from '../core/decimal.ts';
import { EXTERNAL, type ClosedTripView, type Ledger, type LotChange, type OwnerKey, type TripView } from '../ledger/ledger.ts';
import type { Market } from '../model/market.ts';
import type { BacktestTrade } from './types.ts';

/** What an owner still held at the end below the filters (dust), valued at the last price. */
export interface HeldAtEnd {
  readonly strategy: string;
  readonly symbol: string;
  readonly side: string;
  readonly quantity: string;
  /** What it cost (quote). */
  readonly cost: string;
  /** Its value at the last price less its cost (futures: mark less entry, times quantity, as the equity counts it). */
  readonly unrealizedPnl: string;
  /** Funding charged to the line after its last trip closed (paid positive). */
  readonly funding: string;
}

const key = (k: OwnerKey): string => `${k.strategy}\u0000${k.symbol}\u0000${k.side}`;

/** Average prices: exact for one fill; an average that does not divide evenly is shown to 12 decimals. */
const avg = (value: Dec, qty: Dec): string => (qty.isZero() ? '0' : value.div(qty).toDecimalPlaces(12, Dec.ROUND_HALF_EVEN).toFixed());

export class TradeRecorder {
  readonly trades: BacktestTrade[] = [];
  readonly heldAtEnd: HeldAtEnd[] = [];
  /** Funding charged to each owner's line since its last trip closed (paid positive). */
  private readonly funding = new Map<string, Dec>();
  /** Funding on no trip and no holding of the owners under test (received positive): none in practice, kept so nothing is lost. */
  unattributedFunding = ZERO;
  private readonly unwatch: () => void;

  constructor(
    private readonly ledger: Ledger,
    private readonly market: Market,
    /** The strategies under test (other lines are not theirs). */
    private readonly owners: ReadonlySet<string>,
  ) {
    this.unwatch = ledger.watch((changes) => this.onChanges(changes));
  }

  stop(): void {
    this.unwatch();
  }

  private onChanges(changes: readonly LotChange[]): void {
    for (const c of changes) {
      if (c.closedTrip && this.owners.has(c.key.strategy)) this.push(c.key, c.closedTrip, c.closedTrip.closedAt, ZERO, ZERO);
    }
  }

  /**
   * Funding settled on a symbol: `amount` the account received (negative =
   * paid), at `mark` and `rate`, as the venue computed it per position.
   */
  onFunding(symbol: string, amount: Dec, mark: Dec, rate: Dec): void {
    const lines = this.ledger.lots(symbol).filter((l) => l.strategy !== EXTERNAL && !l.quantity.isZero());
    let rest = amount;
    let largest: OwnerKey | undefined;
    let largestQty = ZERO;
    for (const l of lines) {
      const received = l.quantity.neg().times(mark).times(rate).toDecimalPlaces(8, Dec.ROUND_HALF_UP);
      this.charge(l, received.neg());
      rest = rest.minus(received);
      if (l.quantity.abs().gt(largestQty)) {
        largest = l;
        largestQty = l.quantity.abs();
      }
    }
    if (rest.isZero()) return;
    if (largest) this.charge(largest, rest.neg());
    else this.unattributedFunding = this.unattributedFunding.plus(rest);
  }

  private charge(k: OwnerKey, paid: Dec): void {
    const id = key(k);
    this.funding.set(id, (this.funding.get(id) ?? ZERO).plus(paid));
  }

  /**
   * The end of the data: each owner's trip still open is closed at `price`
   * with a market exit's fee (`takerFee` of its value) and listed; dust is
   * listed in heldAtEnd. Returns the symbols whose trips were closed, and the
   * exit fees charged (not paid to anyone: the equity curve's last point
   * takes them off).
   */
  closeAtEnd(price: (symbol: string) => Dec | undefined, at: number, takerFee: Dec): { closed: string[]; fees: Dec } {
    const closed = new Set<string>();
    let fees = ZERO;
    for (const lot of this.ledger.lots()) {
      if (!this.owners.has(lot.strategy)) continue;
      const mark = price(lot.symbol);
      if (!mark) continue;
      const h = this.ledger.holding(lot.strategy, lot.symbol, lot.side);
      // As the portfolio values it: spot holds the coins at the mark; futures count (mark - entry) x quantity.
      const unrealized = this.market === 'spot' ? h.quantity.times(mark).minus(h.cost) : mark.minus(lot.entryPrice).times(h.quantity);
      if (!h.flat && h.trip) {
        const qty = h.quantity.abs();
        const fee = qty.times(mark).times(takerFee);
        fees = fees.plus(fee);
        const t = h.trip;
        const trip: TripView = { ...t, exitQuantity: t.exitQuantity.plus(qty), exitValue: t.exitValue.plus(qty.times(mark)), fees: t.fees.plus(fee) };
        this.push(lot, trip, at, unrealized, fee);
        closed.add(lot.symbol);
      } else {
        const funding = this.funding.get(key(lot)) ?? ZERO;
        this.funding.delete(key(lot));
        this.heldAtEnd.push({ strategy: lot.strategy, symbol: lot.symbol, side: lot.side, quantity: h.quantity.toFixed(), cost: h.cost.toFixed(), unrealizedPnl: unrealized.toFixed(), funding: funding.toFixed() });
      }
    }
    // Funding charged to a line that went to zero without closing a trip (none in practice): kept, not lost.
    for (const paid of this.funding.values()) this.unattributedFunding = this.unattributedFunding.minus(paid);
    this.funding.clear();
    return { closed: [...closed].sort(), fees };
  }

  /** One trade row; `unrealized` and `exitFee` for a trip closed at the end of the data. */
  private push(k: OwnerKey, t: TripView | ClosedTripView, exitTime: number, unrealized: Dec, exitFee: Dec): void {
    const id = key(k);
    const funding = this.funding.get(id) ?? ZERO;
    this.funding.delete(id);
    const pnl = t.pnl.plus(unrealized).minus(exitFee).minus(funding);
    // The price the trip bought (sold) at: its own fills. Dust it carried in is in its PnL at that dust's cost, not in this average.
    const entryPrice = t.entryQuantity.isZero() ? avg(t.carriedCost, t.carriedQuantity) : avg(t.entryValue, t.entryQuantity);
    const entered = t.entryQuantity.plus(t.carriedQuantity);
    const basis = entered.isZero() ? ZERO : t.entryValue.plus(t.carriedCost).div(entered).times(t.maxQuantity);
    this.trades.push({
      symbol: k.symbol,
      side: t.side,
      entryTime: t.openedAt,
      exitTime,
      entryPrice,
      exitPrice: avg(t.exitValue, t.exitQuantity),
      quantity: t.maxQuantity.toFixed(),
      pnl: pnl.toFixed(),
      pnlPct: basis.isZero() ? 0 : pnl.div(basis).times(100).toNumber(),
      fees: t.fees.toFixed(),
      funding: funding.toFixed(),
      holdingMs: exitTime - t.openedAt,
    });
  }
}
