/**
 * Turns the fills of a backtest into round trips (flat -> position -> flat)
 * per symbol, for the trade list and the metrics. It listens to `fill` on
 * the bus like any other component; prices, quantities, fees and PnL stay
 * Decimal until they are written out as strings.
 *
 * PnL of a trip = (exit value - entry value) signed by side, minus every fee
 * of its fills (fees in the quote asset; a spot fee paid in the base asset
 * is valued at the fill price), minus the funding paid while it was open.
 * A fill that flips the position closes the trip at that fill and opens the
 * next one with the rest of its quantity.
 *
 * Spot buys pay their fee in the coin bought: the position grows by the
 * quantity net of it (what can be sold later), and the fee is valued at the
 * fill price. A remainder below what the exchange lets one sell (`isDust`)
 * ends the trip.
 */
import { Dec, ZERO } from '../core/decimal.ts';
import type { Fill } from '../model/events.ts';
import type { BacktestTrade } from './types.ts';

interface OpenTrip {
  side: 'LONG' | 'SHORT';
  entryTime: number;
  /** Signed position now. */
  qty: Dec;
  maxQty: Dec;
  entryQty: Dec;
  entryValue: Dec;
  exitQty: Dec;
  exitValue: Dec;
  fees: Dec;
  funding: Dec;
}

export class TradeRecorder {
  readonly trades: BacktestTrade[] = [];
  private readonly open = new Map<string, OpenTrip>();
  feesPaid = ZERO;
  fundingPaid = ZERO;

  constructor(
    private readonly quoteAsset: string,
    private readonly isDust: (symbol: string, qty: Dec) => boolean = (_s, q) => q.isZero(),
  ) {}

  /** Symbols with a trip open, and since when (time in market, the end-of-run marking). */
  openTrips(): ReadonlyMap<string, { readonly side: 'LONG' | 'SHORT'; readonly entryTime: number }> {
    return this.open;
  }

  onFill(f: Fill): void {
    const feeInBase = f.feeAsset !== this.quoteAsset && f.feeAsset !== '' && f.side === 'BUY';
    const fee = feeInBase ? f.fee.times(f.price) : f.fee;
    this.feesPaid = this.feesPaid.plus(fee);
    let qty = feeInBase ? f.quantity.minus(f.fee) : f.quantity;
    const signed = (q: Dec): Dec => (f.side === 'BUY' ? q : q.neg());
    let trip = this.open.get(f.symbol);
    if (!trip) {
      this.open.set(f.symbol, this.start(f, qty, fee));
      return;
    }
    const adding = (trip.side === 'LONG') === (f.side === 'BUY');
    if (adding) {
      trip.qty = trip.qty.plus(signed(qty));
      trip.entryQty = trip.entryQty.plus(qty);
      trip.entryValue = trip.entryValue.plus(qty.times(f.price));
      trip.fees = trip.fees.plus(fee);
      if (trip.qty.abs().gt(trip.maxQty)) trip.maxQty = trip.qty.abs();
      return;
    }
    // Reducing: up to the open quantity closes; any rest opens the other way.
    const closing = Dec.min(qty, trip.qty.abs());
    const share = closing.div(qty);
    trip.exitQty = trip.exitQty.plus(closing);
    trip.exitValue = trip.exitValue.plus(closing.times(f.price));
    trip.fees = trip.fees.plus(fee.times(share));
    trip.qty = trip.qty.plus(signed(closing));
    qty = qty.minus(closing);
    if (trip.qty.isZero() || (qty.isZero() && this.isDust(f.symbol, trip.qty.abs()))) {
      this.close(f.symbol, trip, f.ts);
      if (qty.gt(0)) this.open.set(f.symbol, this.start(f, qty, fee.minus(fee.times(share))));
    }
  }

  /** Funding settled on a symbol (positive amount = received). */
  onFunding(symbol: string, amount: Dec): void {
    this.fundingPaid = this.fundingPaid.minus(amount);
    const trip = this.open.get(symbol);
    if (trip) trip.funding = trip.funding.minus(amount);
  }

  /**
   * Trips still open when the data ends are closed at the last price, so the
   * trade list accounts for the whole equity change (marked `pnl` at that
   * price, with the fee a market exit would pay).
   */
  closeAtEnd(symbol: string, price: Dec, at: number, takerFee: Dec): void {
    const trip = this.open.get(symbol);
    if (!trip) return;
    const qty = trip.qty.abs();
    trip.exitQty = trip.exitQty.plus(qty);
    trip.exitValue = trip.exitValue.plus(qty.times(price));
    const fee = qty.times(price).times(takerFee);
    trip.fees = trip.fees.plus(fee);
    this.feesPaid = this.feesPaid.plus(fee);
    trip.qty = ZERO;
    this.close(symbol, trip, at);
  }

  private start(f: Fill, qty: Dec, fee: Dec): OpenTrip {
    return {
      side: f.side === 'BUY' ? 'LONG' : 'SHORT',
      entryTime: f.ts,
      qty: f.side === 'BUY' ? qty : qty.neg(),
      maxQty: qty,
      entryQty: qty,
      entryValue: qty.times(f.price),
      exitQty: ZERO,
      exitValue: ZERO,
      fees: fee,
      funding: ZERO,
    };
  }

  private close(symbol: string, t: OpenTrip, at: number): void {
    this.open.delete(symbol);
    const entryPrice = t.entryValue.div(t.entryQty);
    const exitPrice = t.exitValue.div(t.exitQty);
    // Entry and exit quantities match over a whole trip: value difference is the price PnL.
    const gross = t.side === 'LONG' ? t.exitValue.minus(t.entryValue) : t.entryValue.minus(t.exitValue);
    const pnl = gross.minus(t.fees).minus(t.funding);
    this.trades.push({
      symbol,
      side: t.side,
      entryTime: t.entryTime,
      exitTime: at,
      entryPrice: entryPrice.toFixed(),
      exitPrice: exitPrice.toFixed(),
      quantity: t.maxQty.toFixed(),
      pnl: pnl.toFixed(),
      pnlPct: pnl.div(entryPrice.times(t.maxQty)).times(100).toNumber(),
      fees: t.fees.toFixed(),
      funding: t.funding.toFixed(),
      holdingMs: at - t.entryTime,
    });
  }
}
