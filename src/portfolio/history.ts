/**
 * Daily equity and PnL, read from the store (no running bot needed):
 * `trader portfolio history` and the daily summary message use these.
 *
 * Per UTC day:
 *   equity (end of day)  the day's last '1m' or '1h' snapshot; without one, the
 *                        next day's '1d' row (equity at that day's first look);
 *                        without that, the day's own '1d' row. For today: the
 *                        latest snapshot so far. A day is listed when it has a
 *                        snapshot or a fill of its own.
 *   start of day         the previous day's last '1m'/'1h' snapshot; else the
 *                        day's '1d' row; else the end of the previous day listed.
 *   day PnL              end - start: the change in equity, so funding, price
 *                        moves of held positions, and deposits or withdrawals
 *                        (and a sim restart's fresh paper balance) are all in it.
 *   realized             PnL realized by the day's fills, net of their fees:
 *                        the portfolio's own Ledger (per-owner average entry,
 *                        spot buy fees paid in the base asset, fees in a third
 *                        asset left out), replayed over every stored fill.
 *
 * Every money figure is an exact decimal string.
 */
import { utcDay, utcDayStart } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Market } from '../model/market.ts';
import type { Fill, PositionSide } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import { cachedInstruments } from '../execution/instrument-book.ts';
import { EXTERNAL, Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import type { PortfolioView } from './portfolio.ts';

const DAY = 86_400_000;

export interface DailyRow {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  dayStart: number;
  /** Equity at the end of the day (today: latest); null when no snapshot tells it. */
  equity: string | null;
  /** When that equity was measured (ms), and from which row. */
  equityAt: number | null;
  equitySource: 'snapshot' | 'next-day-start' | 'day-start' | null;
  /** Equity the day started from (see the module comment); null when unknown. */
  startEquity: string | null;
  /** equity - startEquity; null when either is unknown. */
  pnl: string | null;
  /** pnl as a % of startEquity, 2 decimals; null when unknown or the start is not above zero. */
  pnlPct: string | null;
  /** Realized PnL of the day's fills, net of fees. */
  realized: string;
  /** Fees of the day's fills, in the quote asset (valued as the portfolio does). */
  fees: string;
  /** Fills that day. */
  fills: number;
}

export interface DailyHistory {
  market: Market;
  quoteAsset: string;
  /** First day of the window (ms, UTC day start) and now. */
  from: number;
  now: number;
  /** Days of the window with a snapshot or a fill, oldest first. */
  days: DailyRow[];
}

export interface DaySummary {
  day: string; // YYYY-MM-DD
  quoteAsset: string;
  equity: string;
  dayPnl: string;
  totalPnl: string;
  trades: number;
  openPositions: Array<{ symbol: string; quantity: string; entryPrice: string; unrealizedPnl: string }>;
}

interface Snap {
  resolution: string;
  ts: number;
  equity: string;
  unrealized: string;
}

/** Snapshots by UTC day: the day's last '1m'/'1h' row and its '1d' row. */
interface SnapIndex {
  lastIntraday: Map<number, Snap>;
  daily: Map<number, Snap>;
  /** Newest ts seen (-Infinity when none). */
  maxTs: number;
}

interface FillDay {
  realized: Dec;
  fees: Dec;
  fills: number;
}

/** The last `days` UTC days up to now (today included): equity, day PnL and realized PnL. */
export function dailyHistory(store: Store, o: { market: Market; quoteAsset: string; days: number; now: number }): DailyHistory {
  const today = utcDayStart(o.now);
  const from = today - (Math.max(1, Math.floor(o.days)) - 1) * DAY;
  const snaps = snapshotsBetween(store, from - DAY, today + DAY);
  const fills = realizedByDay(store, o.market, o.quoteAsset);
  const days: DailyRow[] = [];
  let prevEnd: { equity: Dec; unrealized: Dec } | undefined;
  for (let d = from; d <= today; d += DAY) {
    const row = dayRow(d, snaps, fills.get(d), prevEnd);
    if (!row) continue;
    days.push(row.row);
    if (row.end) prevEnd = row.end;
  }
  return { market: o.market, quoteAsset: o.quoteAsset, from, now: o.now, days };
}

/**
 * The day's figures for the 00:00 UTC message (dayStart: that day's 00:00).
 *
 *   equity    end of the day from the snapshots once the next day has one, else
 *             the portfolio's equity now
 *   dayPnl    realized PnL of the day's fills net of fees, plus the change in
 *             unrealized PnL over the day (end minus start, from the snapshots'
 *             unrealized_pnl; the portfolio's now while the day is current):
 *             unlike an equity change, deposits and a sim restart do not count
 *   totalPnl  realized net of fees of every fill up to the end of the day, plus
 *             the unrealized PnL at the end of the day (now while current)
 *   trades    fills that day (each partial fill counts)
 *   openPositions  the portfolio's positions now
 */
export function daySummary(store: Store, portfolio: PortfolioView, dayStart: number): DaySummary {
  const d = utcDayStart(dayStart);
  const snaps = snapshotsBetween(store, d - DAY, d + 2 * DAY);
  const fills = realizedByDay(store, portfolio.market, portfolio.quoteAsset);
  const row = dayRow(d, snaps, fills.get(d), undefined);
  // The day is over once a snapshot from the next day exists.
  const over = snaps.maxTs >= d + DAY;
  const endEquity = over && row?.end ? row.end.equity : portfolio.equity();
  const endUnrealized = over && row?.end ? row.end.unrealized : portfolio.unrealized();
  const startUnrealized = row?.start?.unrealized ?? ZERO;
  const day = fills.get(d);
  let realizedToEnd = ZERO;
  for (const [k, v] of fills) if (k <= d) realizedToEnd = realizedToEnd.plus(v.realized);
  return {
    day: utcDay(d),
    quoteAsset: portfolio.quoteAsset,
    equity: endEquity.toFixed(),
    dayPnl: (day?.realized ?? ZERO).plus(endUnrealized.minus(startUnrealized)).toFixed(),
    totalPnl: realizedToEnd.plus(endUnrealized).toFixed(),
    trades: day?.fills ?? 0,
    openPositions: portfolio
      .positions()
      .filter((p) => !p.quantity.isZero())
      .map((p) => ({ symbol: p.symbol, quantity: p.quantity.toFixed(), entryPrice: p.entryPrice.toFixed(), unrealizedPnl: p.unrealizedPnl.toFixed() })),
  };
}

/** One day's row, or undefined when the day has neither a snapshot nor a fill. */
function dayRow(d: number, snaps: SnapIndex, f: FillDay | undefined, prevEnd: { equity: Dec; unrealized: Dec } | undefined): { row: DailyRow; end?: { equity: Dec; unrealized: Dec }; start?: { equity: Dec; unrealized: Dec } } | undefined {
  const dailyRow = (day: number) => snaps.daily.get(day);
  const own = snaps.lastIntraday.get(d);
  let end: Snap | undefined;
  let source: DailyRow['equitySource'] = null;
  if (own) {
    end = own;
    source = 'snapshot';
  } else if (dailyRow(d + DAY)) {
    end = dailyRow(d + DAY);
    source = 'next-day-start';
  } else if (dailyRow(d)) {
    end = dailyRow(d);
    source = 'day-start';
  }
  // A day is listed for data of its own: the next day's start row alone does not make one.
  if (!own && !dailyRow(d) && !f) return undefined;
  const startSnap = snaps.lastIntraday.get(d - DAY) ?? dailyRow(d);
  const start = startSnap ? { equity: new Dec(startSnap.equity), unrealized: new Dec(startSnap.unrealized) } : prevEnd;
  const endV = end ? { equity: new Dec(end.equity), unrealized: new Dec(end.unrealized) } : undefined;
  const pnl = endV && start ? endV.equity.minus(start.equity) : undefined;
  return {
    row: {
      day: utcDay(d),
      dayStart: d,
      equity: endV ? endV.equity.toFixed() : null,
      equityAt: end ? end.ts : null,
      equitySource: source,
      startEquity: start ? start.equity.toFixed() : null,
      pnl: pnl ? pnl.toFixed() : null,
      pnlPct: pnl && start && start.equity.gt(0) ? pnl.div(start.equity).times(100).toFixed(2) : null,
      realized: (f?.realized ?? ZERO).toFixed(),
      fees: (f?.fees ?? ZERO).toFixed(),
      fills: f?.fills ?? 0,
    },
    ...(endV ? { end: endV } : {}),
    ...(start ? { start } : {}),
  };
}

/** Snapshots of every resolution with ts in [from, to), indexed by UTC day. */
function snapshotsBetween(store: Store, from: number, to: number): SnapIndex {
  const rows = store.all(
    store.db.selectFrom('equity_snapshots').select(['resolution', 'ts', 'equity', 'unrealized_pnl']).where('resolution', 'in', ['1m', '1h', '1d']).where('ts', '>=', from).where('ts', '<', to),
  );
  const index: SnapIndex = { lastIntraday: new Map(), daily: new Map(), maxTs: -Infinity };
  for (const r of rows) {
    const snap: Snap = { resolution: r.resolution, ts: r.ts, equity: r.equity, unrealized: r.unrealized_pnl };
    index.maxTs = Math.max(index.maxTs, r.ts);
    const day = utcDayStart(r.ts);
    if (r.resolution === '1d') index.daily.set(day, snap);
    else {
      // The later row wins, a '1h' row counting as its hour's last minute (the one it holds).
      const at = (x: Snap) => x.ts + (x.resolution === '1h' ? 59 * 60_000 : 0);
      const cur = index.lastIntraday.get(day);
      if (!cur || at(snap) >= at(cur)) index.lastIntraday.set(day, snap);
    }
  }
  return index;
}

/** One stored fill as the portfolio books it: realized PnL (before fees), the fee in quote, and its cash effect. */
export interface BookedFill {
  ts: number;
  symbol: string;
  realized: Dec;
  feeQuote: Dec;
  /** What the fill did to the quote cash ledger (spot: the notional and a quote fee; futures: realized PnL less the fee). */
  cash: Dec;
}

/**
 * Replays every stored fill of the market in the portfolio's order (ts, then
 * id) through the same Ledger the portfolio books with: per-owner average
 * entry, a spot buy's base-asset fee taken off the quantity, fees in a third
 * asset not valued. One arithmetic, so history and the live books agree.
 */
export function replayFills(store: Store, market: Market, quoteAsset: string, onFill: (f: BookedFill) => void): void {
  const fills = store.all(
    store.db
      .selectFrom('fills')
      .leftJoin('orders', 'orders.client_order_id', 'fills.client_order_id')
      .select(['fills.trade_id', 'fills.symbol', 'fills.side', 'fills.price', 'fills.quantity', 'fills.fee', 'fills.fee_asset', 'fills.ts', 'fills.owner', 'fills.position_side as fill_side', 'orders.strategy', 'orders.position_side'])
      .where('fills.market', '=', market)
      .orderBy('fills.ts')
      .orderBy('fills.id'),
  );
  const instruments = new Map(cachedInstruments(store, market).map((i) => [i.symbol, i]));
  // Instruments cached without filters (older rows) still name their base asset, which is all the fee arithmetic needs.
  for (const r of store.all(store.db.selectFrom('instruments').select(['symbol', 'base_asset', 'quote_asset']).where('market', '=', market))) {
    if (!instruments.has(r.symbol)) instruments.set(r.symbol, bareInstrument(market, r.symbol, r.base_asset, r.quote_asset));
  }
  const ledger = new Ledger({ market, quoteAsset, instrument: (s) => instruments.get(s), price: () => undefined });
  for (const r of fills) {
    const price = new Dec(r.price);
    const quantity = new Dec(r.quantity);
    const f: Fill = {
      kind: 'fill',
      ts: r.ts,
      tradeId: r.trade_id,
      strategy: r.strategy ?? r.owner ?? EXTERNAL,
      ...((r.position_side ?? r.fill_side) && (r.position_side ?? r.fill_side) !== 'BOTH' ? { positionSide: (r.position_side ?? r.fill_side) as PositionSide } : {}),
      market,
      symbol: r.symbol,
      side: r.side as 'BUY' | 'SELL',
      price,
      quantity,
      fee: new Dec(r.fee),
      feeAsset: r.fee_asset,
      isMaker: false,
    };
    let realized = ZERO;
    let feeQuote = ZERO;
    for (const c of ledger.applyFill(f)) {
      realized = realized.plus(c.realized);
      feeQuote = feeQuote.plus(c.feeQuote);
    }
    let cash: Dec;
    if (market === 'spot') {
      const notional = price.times(quantity);
      cash = f.side === 'BUY' ? notional.neg() : notional;
      if (f.feeAsset === quoteAsset) cash = cash.minus(f.fee);
    } else cash = realized.minus(feeQuote);
    onFill({ ts: r.ts, symbol: r.symbol, realized, feeQuote, cash });
  }
}

function bareInstrument(market: Market, symbol: string, baseAsset: string, quoteAsset: string): Instrument {
  const lot = { minQty: ZERO, maxQty: ZERO, stepSize: ZERO };
  return { market, symbol, baseAsset, quoteAsset, status: 'TRADING', filters: { price: { minPrice: ZERO, maxPrice: ZERO, tickSize: ZERO }, lot, marketLot: lot, notional: { minNotional: ZERO, applyMinToMarket: false, applyMaxToMarket: false }, maxNumOrders: 200, maxNumAlgoOrders: 10 } } as unknown as Instrument;
}

/** Realized PnL net of fees per UTC day (keyed by day start), from replayFills. */
export function realizedByDay(store: Store, market: Market, quoteAsset: string): Map<number, FillDay> {
  const out = new Map<number, FillDay>();
  replayFills(store, market, quoteAsset, (f) => {
    const day = utcDayStart(f.ts);
    const acc = out.get(day) ?? { realized: ZERO, fees: ZERO, fills: 0 };
    acc.realized = acc.realized.plus(f.realized).minus(f.feeQuote);
    acc.fees = acc.fees.plus(f.feeQuote);
    acc.fills++;
    out.set(day, acc);
  });
  return out;
}
