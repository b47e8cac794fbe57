/**
 * The portfolio: positions from fills, PnL from mark prices, equity, the
 * UTC day's realized PnL per account and strategy, peak equity, and each
 * strategy's closed round trips (the loss streak guard and Kelly sizing read
 * them).
 *
 * Positions are net per symbol (one-way), as the venue holds them. A round
 * trip runs from flat to flat; it belongs to the strategy whose fill opened
 * it, and all of its PnL and fees are that strategy's, whoever closes it (a
 * kill-switch flatten still charges the loss to the strategy that took the
 * risk). Several strategies on one symbol share the net position; the first
 * to open owns the trip.
 *
 * Cash is a ledger: the venue's balance at start (an account.updated
 * SNAPSHOT), then every fill's cash effect as the fill arrives, and funding
 * from FUNDING_FEE updates. Applying the venue's post-fill balances instead
 * would count a fill's notional in the position before the cash left the
 * balance (the two arrive as separate messages), inflating equity and its
 * peak for a moment; the ledger moves both in one step.
 *
 * State is rebuilt at start by replaying the fills table, so restarts give
 * the same positions, streaks and day PnL; only the day-start and peak
 * equity are kept in kv.
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.ts';
import { utcDayStart, type Clock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { OPEN_ORDER_STATUSES, type AccountUpdated, type CandleClosed, type Fill, type MarkPrice, type OrderSource, type PositionSide } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import { EXTERNAL, Ledger, type LedgerView } from '../ledger/ledger.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

export interface PositionView {
  readonly symbol: string;
  /** Signed: positive long, negative short. */
  readonly quantity: Dec;
  readonly entryPrice: Dec;
  /** Lifetime realized PnL on the symbol, fees included. */
  readonly realizedPnl: Dec;
  readonly unrealizedPnl: Dec;
  readonly markPrice?: Dec;
  /** Strategy that opened the current round trip. */
  readonly owner?: string;
  readonly openedAt?: number;
}

export interface TripStats {
  readonly trades: number;
  readonly wins: number;
  readonly losses: number;
  /** Sum of winning trips' PnL, and of losing trips' |PnL|. */
  readonly grossWin: Dec;
  readonly grossLoss: Dec;
  readonly consecutiveLosses: number;
  readonly lastLossAt?: number;
}

/** What other components may read (never write). */
export interface PortfolioView {
  readonly market: Market;
  readonly quoteAsset: string;
  /** Positions per owner and working orders. */
  readonly ledger: LedgerView;
  position(symbol: string): PositionView;
  positions(): PositionView[];
  /** Symbols the bot holds a position in (unordered). */
  heldSymbols(): readonly string[];
  /** Initial margin the bot's positions tie up at their marks over the given leverage (futures). */
  marginUsed(leverage: (symbol: string) => number): Dec;
  /** Mark price (futures mark, else the last close). */
  mark(symbol: string): Dec | undefined;
  last(symbol: string): Dec | undefined;
  /** When market data for the symbol last arrived (our clock, ms); 0 when never. */
  lastDataAt(symbol: string): number;
  prevCandle(symbol: string): { open: number; high: number; low: number; close: number } | undefined;
  nextFundingTime(symbol: string): number | undefined;
  /** Quote balance (spot: free + locked quote; futures: wallet). */
  cash(): Dec;
  equity(): Dec;
  unrealized(): Dec;
  peakEquity(): Dec;
  dayStartEquity(): Dec;
  /** Realized PnL (fees included) of today's fills, UTC. */
  realizedToday(): Dec;
  strategyRealizedToday(strategy: string): Dec;
  trips(strategy: string, symbol: string): TripStats;
  /** Quantity traded today per symbol (entries and exits). */
  tradedToday(symbol: string): Dec;
  /** Daily returns (fractions) from stored daily equity snapshots, oldest first. */
  dailyReturns(): number[];
}

interface MutTrips {
  trades: number;
  wins: number;
  losses: number;
  grossWin: Dec;
  grossLoss: Dec;
  consecutiveLosses: number;
  lastLossAt?: number;
}

const marksSchema = z.object({ day: z.number(), dayStartEquity: z.string(), peakEquity: z.string() });
const KV_MARKS = 'portfolio.marks';

export interface PortfolioDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  market: Market;
  quoteAsset: string;
  /** The instrument and its filters (what is dust, the base asset a fee may be charged in). */
  instrument: (symbol: string) => Instrument | undefined;
  /** USD-M hedge mode: owners hold LONG and SHORT legs. */
  hedge?: boolean;
}

export class Portfolio implements PortfolioView {
  readonly market: Market;
  readonly quoteAsset: string;
  /** Positions and working orders: the ledger owns them; the portfolio applies fills to it. */
  readonly ledger: Ledger;
  /** Symbols whose quantity is not zero (dust included: it is worth something). */
  private readonly held = new Set<string>();
  private readonly contrib = new Map<string, { unreal: Dec; holding: Dec }>();
  private sumUnrealized = ZERO;
  private sumHoldings = ZERO;
  private marksWrittenAt = -Infinity;
  private returnsCache: { day: number; returns: number[] } | undefined;
  private readonly marks = new Map<string, Dec>();
  private readonly lasts = new Map<string, Dec>();
  private readonly dataAt = new Map<string, number>();
  private readonly prev = new Map<string, { open: number; high: number; low: number; close: number }>();
  private readonly funding = new Map<string, number>();
  private readonly tripStats = new Map<string, MutTrips>();
  private cashLedger = ZERO;
  private day = 0;
  private realizedDay = ZERO;
  private readonly strategyDay = new Map<string, Dec>();
  private readonly tradedDay = new Map<string, Dec>();
  private peak = ZERO;
  private dayStart = ZERO;
  private readonly unsubs: Array<() => void> = [];
  private readonly warnedFeeAssets = new Set<string>();

  constructor(private readonly deps: PortfolioDeps) {
    this.market = deps.market;
    this.quoteAsset = deps.quoteAsset;
    this.ledger = new Ledger({ market: deps.market, quoteAsset: deps.quoteAsset, ...(deps.hedge ? { hedge: true } : {}), instrument: deps.instrument, price: (symbol) => this.mark(symbol) });
  }

  /**
   * Rebuilds from the fills table, restores peak and day-start equity, and
   * subscribes. The cash ledger starts at zero until the first SNAPSHOT.
   */
  start(): void {
    const { store, bus, clock } = this.deps;
    // The day is left at 0 during the replay so each fill rolls the day
    // counters by its own time; the roll to today comes after. (Setting today
    // first made every stored fill, of any day, count as today's PnL.)
    this.day = 0;
    const rows = store.all(
      store.db
        .selectFrom('fills')
        .leftJoin('orders', 'orders.client_order_id', 'fills.client_order_id')
        .select(['fills.trade_id', 'fills.client_order_id', 'fills.market', 'fills.symbol', 'fills.side', 'fills.price', 'fills.quantity', 'fills.fee', 'fills.fee_asset', 'fills.is_maker', 'fills.realized_pnl', 'fills.ts', 'orders.strategy', 'orders.position_side', 'fills.owner', 'fills.position_side as fill_side'])
        .where('fills.market', '=', this.market)
        .orderBy('fills.ts')
        .orderBy('fills.id'),
    );
    for (const r of rows) {
      this.applyFill({
        kind: 'fill',
        ts: r.ts,
        tradeId: r.trade_id,
        ...(r.client_order_id ? { clientOrderId: r.client_order_id } : {}),
        strategy: r.strategy ?? r.owner ?? EXTERNAL,
        ...((r.position_side ?? r.fill_side) && (r.position_side ?? r.fill_side) !== 'BOTH' ? { positionSide: (r.position_side ?? r.fill_side) as PositionSide } : {}),
        market: this.market,
        symbol: r.symbol,
        side: r.side as 'BUY' | 'SELL',
        price: new Dec(r.price),
        quantity: new Dec(r.quantity),
        fee: new Dec(r.fee),
        feeAsset: r.fee_asset,
        isMaker: r.is_maker === 1,
      }, false);
    }
    this.rollDay(clock.now());
    // Orders the last run left working count as in flight until their updates arrive.
    const working = store.all(store.db.selectFrom('orders').select(['client_order_id', 'strategy', 'symbol', 'side', 'position_side', 'quantity', 'filled_quantity', 'source', 'reduce_only']).where('market', '=', this.market).where('status', 'in', [...OPEN_ORDER_STATUSES]));
    this.ledger.restoreWorking(
      working.map((r) => ({ clientOrderId: r.client_order_id, strategy: r.strategy, symbol: r.symbol, side: r.side as 'BUY' | 'SELL', positionSide: r.position_side as PositionSide, quantity: new Dec(r.quantity), filled: new Dec(r.filled_quantity), source: r.source as OrderSource, reduceOnly: r.reduce_only === 1 })),
    );
    this.ledger.start(bus);
    // The positions table (what `trader portfolio show` reads with the bot stopped) follows the fills:
    // a kill between a fill's row and the positions row left it stale until the symbol traded again.
    const stored = store.all(store.db.selectFrom('positions').select('symbol').distinct().where('market', '=', this.market)).map((r) => r.symbol);
    for (const symbol of new Set([...stored, ...this.ledger.lots().map((l) => l.symbol)])) this.persistPositions(symbol);
    const saved = readKv(store, KV_MARKS, marksSchema);
    if (!saved.ok) this.deps.logger.warn({ error: saved.error }, 'stored peak equity unreadable; starting from current equity');
    else if (saved.value) {
      this.peak = new Dec(saved.value.peakEquity);
      if (saved.value.day === this.day) this.dayStart = new Dec(saved.value.dayStartEquity);
    }
    this.unsubs.push(
      bus.on('fill', (f) => this.applyFill(f, true), 'portfolio'),
      bus.on('candle.closed', (c) => this.onCandle(c), 'portfolio'),
      bus.on('mark.price', (m) => this.onMark(m), 'portfolio'),
      bus.on('account.updated', (a) => this.onAccount(a), 'portfolio'),
    );
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
    this.ledger.stop();
    // A peak still inside its 10 s write throttle lands now.
    if ((this.peak.gt(0) || this.dayStart.gt(0)) && this.deps.store.isOpen) this.writeMarks();
  }

  // ------------------------------------------------------------- reading

  /**
   * The bot's net position on the symbol (every owner but external): quantity
   * summed, entry the cost-weighted average (so its unrealized PnL is the sum of
   * the owners'). One owner's line: ledger.lot().
   */
  position(symbol: string): PositionView {
    const mark = this.mark(symbol);
    let qty = ZERO;
    let cost = ZERO;
    const owners: string[] = [];
    let openedAt: number | undefined;
    let lines = 0;
    let only = ZERO;
    // Per order and per candle (risk snapshots, VaR over every held symbol): a raw walk, no views.
    this.ledger.eachLine(symbol, (strategy, quantity, entryPrice, open, since) => {
      if (strategy === EXTERNAL) return;
      lines++;
      only = entryPrice;
      qty = qty.plus(quantity);
      cost = cost.plus(quantity.times(entryPrice));
      if (open) {
        owners.push(strategy);
        if (since !== undefined) openedAt = Math.min(openedAt ?? since, since);
      }
    });
    const realized = this.ledger.realized(symbol);
    // One line (the usual case): its own average; several: the cost-weighted one.
    const entry = qty.isZero() ? ZERO : lines === 1 ? only : cost.div(qty);
    const flat = owners.length === 0 && this.isFlat(symbol, qty);
    return {
      symbol,
      quantity: qty,
      entryPrice: entry,
      realizedPnl: realized,
      unrealizedPnl: flat || !mark ? ZERO : mark.times(qty).minus(cost),
      ...(mark ? { markPrice: mark } : {}),
      ...(owners.length ? { owner: owners.join(',') } : {}),
      ...(openedAt !== undefined ? { openedAt } : {}),
    };
  }

  positions(): PositionView[] {
    return [...this.held].sort().map((s) => this.position(s));
  }

  heldSymbols(): readonly string[] {
    return [...this.held];
  }

  /**
   * Initial margin the bot's positions tie up (futures): each symbol's net
   * at its mark (at cost without one) over its leverage. The risk engine
   * reads it per order: the per-symbol holdings revalue() keeps up to date,
   * summed per leverage and divided once per leverage.
   */
  marginUsed(leverage: (symbol: string) => number): Dec {
    const byLeverage = new Map<number, Dec>();
    for (const [symbol, c] of this.contrib) {
      if (c.holding.isZero()) continue;
      const lev = leverage(symbol);
      byLeverage.set(lev, (byLeverage.get(lev) ?? ZERO).plus(c.holding.abs()));
    }
    let margin = ZERO;
    for (const [lev, notional] of byLeverage) margin = margin.plus(notional.div(lev));
    return margin;
  }

  mark(symbol: string): Dec | undefined {
    return this.marks.get(symbol) ?? this.lasts.get(symbol);
  }

  last(symbol: string): Dec | undefined {
    return this.lasts.get(symbol) ?? this.marks.get(symbol);
  }

  lastDataAt(symbol: string): number {
    return this.dataAt.get(symbol) ?? 0;
  }

  prevCandle(symbol: string): { open: number; high: number; low: number; close: number } | undefined {
    return this.prev.get(symbol);
  }

  nextFundingTime(symbol: string): number | undefined {
    return this.funding.get(symbol);
  }

  cash(): Dec {
    return this.cashLedger;
  }

  // Equity and unrealized PnL are running sums, updated per symbol as its
  // price or position moves (revalue()): with 200 symbols streaming, every
  // candle and mark price asks for them, and a sum over the books would be
  // paid 200 times a minute.
  unrealized(): Dec {
    return this.sumUnrealized;
  }

  equity(): Dec {
    // Futures: wallet plus unrealized PnL; spot: quote cash plus every base holding at its mark.
    return this.cashLedger.plus(this.market === 'futures' ? this.sumUnrealized : this.sumHoldings);
  }

  /** Recomputes one symbol's share of the running sums (its position or its price changed). */
  private revalue(symbol: string): void {
    const prev = this.contrib.get(symbol);
    let unreal = ZERO;
    let holding = ZERO;
    const mark = this.mark(symbol);
    this.ledger.eachLine(symbol, (strategy, quantity, entryPrice) => {
      if (strategy === EXTERNAL) return;
      holding = holding.plus(quantity.times(mark ?? entryPrice));
      if (mark) unreal = unreal.plus(mark.minus(entryPrice).times(quantity));
    });
    this.sumUnrealized = this.sumUnrealized.plus(unreal).minus(prev?.unreal ?? ZERO);
    this.sumHoldings = this.sumHoldings.plus(holding).minus(prev?.holding ?? ZERO);
    if (unreal.isZero() && holding.isZero()) this.contrib.delete(symbol);
    else this.contrib.set(symbol, { unreal, holding });
  }

  peakEquity(): Dec {
    return Dec.max(this.peak, this.equity());
  }

  dayStartEquity(): Dec {
    return this.dayStart.isZero() ? this.equity() : this.dayStart;
  }

  realizedToday(): Dec {
    this.rollDay();
    return this.realizedDay;
  }

  strategyRealizedToday(strategy: string): Dec {
    this.rollDay();
    return this.strategyDay.get(strategy) ?? ZERO;
  }

  trips(strategy: string, symbol: string): TripStats {
    const t = this.tripStats.get(`${strategy}\u0000${symbol}`);
    return t ? { ...t } : { trades: 0, wins: 0, losses: 0, grossWin: ZERO, grossLoss: ZERO, consecutiveLosses: 0 };
  }

  tradedToday(symbol: string): Dec {
    this.rollDay();
    return this.tradedDay.get(symbol) ?? ZERO;
  }

  dailyReturns(): number[] {
    // Daily rows change once a day: read them once a day, not per order.
    this.rollDay();
    if (this.returnsCache?.day === this.day) return this.returnsCache.returns;
    const returns = this.readReturns();
    this.returnsCache = { day: this.day, returns };
    return returns;
  }

  private readReturns(): number[] {
    const { store } = this.deps;
    const rows = store.all(store.db.selectFrom('equity_snapshots').select(['equity']).where('resolution', '=', '1d').orderBy('ts').limit(1000));
    const out: number[] = [];
    for (let i = 1; i < rows.length; i++) {
      const a = Number(rows[i - 1]!.equity);
      const b = Number(rows[i]!.equity);
      if (a > 0) out.push(b / a - 1);
    }
    return out;
  }

  // ------------------------------------------------------------- updates

  private isFlat(symbol: string, qty: Dec): boolean {
    return this.ledger.isDust(symbol, qty);
  }

  private applyFill(f: Fill, live: boolean): void {
    if (f.market !== this.market) return;
    this.rollDay(f.ts);
    const changes = this.ledger.applyFill(f);
    let realized = ZERO;
    let feeQuote = ZERO;
    for (const c of changes) {
      realized = realized.plus(c.realized);
      feeQuote = feeQuote.plus(c.feeQuote);
      // The day's PnL goes to the owner whose position moved (a stop's loss is its strategy's).
      this.addToDay(c.key.strategy, c.realized.minus(c.feeQuote));
      if (c.closedTrip) this.recordTrip(f.symbol, c.key.strategy, c.closedTrip.pnl, f.ts);
    }
    for (const asset of this.ledger.unvaluedFeeAssets()) {
      if (this.warnedFeeAssets.has(asset)) continue;
      this.warnedFeeAssets.add(asset);
      this.deps.logger.warn({ feeAsset: asset }, `fees paid in ${asset} are not valued (no ${asset}${this.quoteAsset} price); PnL leaves them out`);
    }
    this.tradedDay.set(f.symbol, (this.tradedDay.get(f.symbol) ?? ZERO).plus(f.quantity));

    // Cash: spot moves the notional (a base-asset fee was taken from the coins, not the cash); futures only the realized PnL and fees.
    if (this.market === 'spot') {
      const notional = f.price.times(f.quantity);
      this.cashLedger = f.side === 'BUY' ? this.cashLedger.minus(notional) : this.cashLedger.plus(notional);
      if (f.feeAsset === this.quoteAsset) this.cashLedger = this.cashLedger.minus(f.fee);
    } else {
      this.cashLedger = this.cashLedger.plus(realized).minus(feeQuote);
    }

    let ours = false;
    this.ledger.eachLine(f.symbol, (strategy) => (ours ||= strategy !== EXTERNAL));
    if (ours) this.held.add(f.symbol);
    else this.held.delete(f.symbol);
    if (!this.lasts.has(f.symbol)) this.lasts.set(f.symbol, f.price);
    this.revalue(f.symbol);

    if (live) {
      const net = this.ledger.net(f.symbol);
      this.persistPositions(f.symbol);
      for (const c of changes) {
        this.deps.bus.publish('position.changed', {
          kind: 'position.changed',
          ts: this.deps.clock.now(),
          market: this.market,
          symbol: f.symbol,
          strategy: c.key.strategy,
          positionSide: c.key.side,
          quantity: c.lot.quantity,
          flat: c.lot.flat,
          entryPrice: c.lot.entryPrice,
          realizedPnl: c.lot.realizedPnl,
          netQuantity: net,
          ...(c.closedTrip ? { closedTrade: { strategy: c.key.strategy, pnl: c.closedTrip.pnl, openedAt: c.closedTrip.openedAt } } : {}),
        });
      }
      this.updateMarks();
    }
  }

  private addToDay(strategy: string, pnl: Dec): void {
    this.realizedDay = this.realizedDay.plus(pnl);
    this.strategyDay.set(strategy, (this.strategyDay.get(strategy) ?? ZERO).plus(pnl));
  }

  private recordTrip(symbol: string, strategy: string, pnl: Dec, at: number): void {
    const k = `${strategy}\u0000${symbol}`;
    const t = this.tripStats.get(k) ?? { trades: 0, wins: 0, losses: 0, grossWin: ZERO, grossLoss: ZERO, consecutiveLosses: 0 };
    t.trades++;
    if (pnl.isNeg()) {
      t.losses++;
      t.grossLoss = t.grossLoss.plus(pnl.abs());
      t.consecutiveLosses++;
      t.lastLossAt = at;
    } else {
      t.wins++;
      t.grossWin = t.grossWin.plus(pnl);
      t.consecutiveLosses = 0;
    }
    this.tripStats.set(k, t);
  }

  /** The symbol's per-side totals (the venue's view of our books), for `trader portfolio show` with the bot stopped. */
  private persistPositions(symbol: string): void {
    const { store, clock } = this.deps;
    const sides = new Map<string, { qty: Dec; cost: Dec; realized: Dec }>();
    for (const l of this.ledger.lots(symbol)) {
      if (l.strategy === EXTERNAL) continue;
      const t = sides.get(l.side) ?? { qty: ZERO, cost: ZERO, realized: ZERO };
      sides.set(l.side, { qty: t.qty.plus(l.quantity), cost: t.cost.plus(l.quantity.times(l.entryPrice)), realized: t.realized.plus(l.realizedPnl) });
    }
    // Every leg is written, the closed ones as zero (a hedge leg that closed stayed in the table).
    for (const side of this.ledger.hedge ? ['LONG', 'SHORT'] : ['BOTH']) if (!sides.has(side)) sides.set(side, { qty: ZERO, cost: ZERO, realized: ZERO });
    for (const [side, t] of sides) {
      const row = { market: this.market, symbol, position_side: side, quantity: t.qty.toFixed(), entry_price: t.qty.isZero() ? '0' : t.cost.div(t.qty).toFixed(), realized_pnl: t.realized.toFixed(), updated_at: clock.now() };
      // Per fill: one prepared upsert, no query building.
      store.statement(UPSERT_POSITION).run(row);
    }
  }

  /** A new UTC day resets the day's counters (fills replayed at start roll by their own time). */
  private rollDay(at = this.deps.clock.now()): void {
    const d = utcDayStart(at);
    if (d <= this.day) return;
    this.day = d;
    this.realizedDay = ZERO;
    this.strategyDay.clear();
    this.tradedDay.clear();
    this.dayStart = ZERO;
  }

  private onCandle(c: CandleClosed): void {
    if (c.market !== this.market || c.timeframe !== '1m') return;
    const close = new Dec(c.close);
    this.lasts.set(c.symbol, close);
    // Spot has no mark price: the last close is the mark.
    if (this.market === 'spot') this.marks.set(c.symbol, close);
    this.dataAt.set(c.symbol, this.deps.clock.now());
    this.prev.set(c.symbol, { open: c.open, high: c.high, low: c.low, close: c.close });
    if (this.held.has(c.symbol)) this.revalue(c.symbol);
    this.updateMarks();
  }

  private onMark(m: MarkPrice): void {
    this.marks.set(m.symbol, m.markPrice);
    this.dataAt.set(m.symbol, this.deps.clock.now());
    if (m.nextFundingTime !== undefined) this.funding.set(m.symbol, m.nextFundingTime);
    if (this.held.has(m.symbol)) this.revalue(m.symbol);
    this.updateMarks();
  }

  private onAccount(a: AccountUpdated): void {
    if (a.reason === 'SNAPSHOT') {
      if (this.market === 'futures' && a.walletBalance) this.cashLedger = a.walletBalance;
      else {
        const q = a.balances.find((b) => b.asset === this.quoteAsset);
        this.cashLedger = q ? q.free.plus(q.locked) : ZERO;
      }
      this.updateMarks();
    } else if (a.reason === 'FUNDING_FEE' && a.balanceChange) {
      this.cashLedger = this.cashLedger.plus(a.balanceChange);
      this.updateMarks();
    }
  }

  /**
   * Day-start and peak equity: set on the day's first look, persisted when
   * they move. A new day start is written at once; a rising peak at most every
   * 10 s (in an uptrend every candle is a new peak, and each write is an fsync;
   * a crash loses at most 10 s of peak, which only makes the drawdown guard
   * measure from a slightly lower peak).
   */
  private updateMarks(): void {
    this.rollDay();
    const eq = this.equity();
    let urgent = false;
    let changed = false;
    if (this.dayStart.isZero() && eq.gt(0)) {
      this.dayStart = eq;
      urgent = true;
      this.snapshotDay(eq);
    }
    if (eq.gt(this.peak)) {
      this.peak = eq;
      changed = true;
    }
    if (urgent || (changed && this.deps.clock.now() - this.marksWrittenAt >= 10_000)) this.writeMarks();
  }

  private writeMarks(): void {
    const now = this.deps.clock.now();
    this.marksWrittenAt = now;
    writeKv(this.deps.store, KV_MARKS, { day: this.day, dayStartEquity: this.dayStart.toFixed(), peakEquity: this.peak.toFixed() }, now);
  }

  /** One daily equity row (the VaR guard's returns and `portfolio history` read them). */
  private snapshotDay(eq: Dec): void {
    const { store } = this.deps;
    store.run(
      store.db
        .insertInto('equity_snapshots')
        .values({ resolution: '1d', ts: this.day, equity: eq.toFixed(), balance: this.cashLedger.toFixed(), unrealized_pnl: this.unrealized().toFixed() })
        .onConflict((oc) => oc.doNothing()),
    );
  }
}

const UPSERT_POSITION =
  'INSERT INTO positions (market, symbol, position_side, quantity, entry_price, realized_pnl, updated_at) VALUES (@market, @symbol, @position_side, @quantity, @entry_price, @realized_pnl, @updated_at) ' +
  'ON CONFLICT (market, symbol, position_side) DO UPDATE SET quantity = excluded.quantity, entry_price = excluded.entry_price, realized_pnl = excluded.realized_pnl, updated_at = excluded.updated_at';
