/**
 * Reconciliation: what happened on the exchange while we were not looking.
 *
 * At start (before any strategy may trade), every `intervalSec` while running,
 * and after every user-data stream reconnect:
 *
 *   1. our working orders are settled against the venue (the execution
 *      engine's poll: final status, and their fills);
 *   2. the fills since our last recorded one are fetched per symbol; fills
 *      of our orders that we missed are inserted (deduplicated by trade id);
 *   3. open orders we did not place are adopted, ignored or halt the symbol,
 *      as `reconcile.external` says; they are never cancelled;
 *   4. positions: ours (rebuilt from fills) against the venue's, which is the
 *      truth for quantity. A position the venue has and we never had is
 *      external (same policy); a position we hold that the venue disagrees
 *      with cannot be explained by anything we know: the books are adjusted
 *      to the venue's quantity (an adjustment fill at the mark) and the
 *      symbol goes HALTED, with the difference in the log, the heartbeat and
 *      the report, until a person resumes it.
 *
 * Dry run (`trader reconcile --dry-run`) reports the same diff and changes nothing.
 *
 * A stop (the bus's system.shutdown, published before anything is stopped)
 * ends reconciliation: no pass starts after it, and a pass in flight ends at
 * its next step (a venue read the stopping venue cuts off included) with
 * ReconcileStopped, deciding and writing nothing more. That is an outcome of
 * the stop, not a failure: the periodic passes log it at debug.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import { TraderError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { ExecutionEngine } from '../execution/execution-engine.ts';
import type { InstrumentBook } from '../execution/instrument-book.ts';
import type { Market } from '../model/market.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { readKv, writeKv } from '../store/kv.ts';
import { z } from 'zod';
import type { RiskEngine } from '../risk/risk-engine.ts';
import type { Store } from '../store/store.ts';
import { VenueError, type Venue, type VenueFill, type VenueOrder, type VenuePosition } from '../venues/venue.ts';
import type { PositionSide } from '../model/events.ts';

/** The venue's quantity on one leg (one-way: the BOTH position). */
function legQty(held: readonly VenuePosition[], symbol: string, side: PositionSide): Dec {
  return held.filter((p) => p.symbol === symbol && (side === 'BOTH' ? true : p.positionSide === side)).reduce((a, p) => a.plus(p.quantity), ZERO);
}

export type ExternalPolicy = 'adopt' | 'ignore' | 'halt';

export interface SymbolDiff {
  readonly symbol: string;
  /** Fills of our orders we had missed, now recorded. */
  readonly fillsAdded: number;
  readonly externalOrders: ReadonlyArray<{ readonly clientOrderId: string; readonly side: string; readonly type: string; readonly quantity: string; readonly action: ExternalPolicy }>;
  /** moving: the symbol traded during the check, so no verdict this pass (the next one looks again). */
  readonly position: { readonly ours: string; readonly venue: string; readonly external?: string; readonly status: 'match' | 'external' | 'unexplained' | 'moving'; readonly action?: string };
  /** Hedge mode: each leg's verdict (position is the one that needs a look). */
  readonly legs?: ReadonlyArray<SymbolDiff['position'] & { readonly side: PositionSide }>;
}

export interface ReconcileReport {
  readonly at: string;
  readonly dryRun: boolean;
  /** Fills of our working orders the settling poll recorded. */
  readonly fillsFromWorkingOrders: number;
  readonly symbols: readonly SymbolDiff[];
  /** Differences that changed state or need a person (0 when everything matched). */
  readonly discrepancies: number;
  readonly halted: readonly string[];
  readonly durationMs: number;
}

/** A pass refused or cut short because the bot is stopping (code STOPPING): nothing more was decided or written. */
export class ReconcileStopped extends TraderError {
  constructor(message: string, cause?: unknown) {
    super('STOPPING', message, { cause });
  }
}

export interface ReconcilerDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  venue: Venue;
  market: Market;
  execution: ExecutionEngine;
  portfolio: PortfolioView;
  risk: RiskEngine;
  instruments: InstrumentBook;
  /** The symbols the bot trades (configured, with rows, or held). */
  symbols: () => string[];
  external: () => ExternalPolicy;
  /** The owner `reconcile.external: adopt` hands external holdings to (reconcile.adoptOwner). */
  adoptOwner: () => string;
  /** Positions per owner, and the external line this reconciler keeps. */
  ledger: Ledger;
}

export class Reconciler {
  last: ReconcileReport | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private stopping = false;

  constructor(private readonly deps: ReconcilerDeps) {
    deps.bus.on('system.shutdown', () => this.stop(), 'reconcile');
  }

  /** One pass at a time; a caller during a pass gets that pass's report. After stop(): ReconcileStopped. */
  run(opts: { dryRun?: boolean } = {}): Promise<ReconcileReport> {
    if (this.stopping && !this.running) return Promise.reject(new ReconcileStopped('reconciliation not started: the bot is stopping'));
    this.running ??= this.pass(opts.dryRun ?? false)
      .catch((err: unknown) => {
        // Whatever a stopping venue answers (e.g. "The client is destroyed") means the stop, not a fault.
        if (!this.stopping || err instanceof ReconcileStopped) throw err;
        throw new ReconcileStopped(`reconciliation cut short by the stop: ${(err as Error).message}`, err);
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * A pass nobody awaits (the periodic timer, a user-stream reconnect): a
   * failure is logged here as an error; a pass the stop cut short is not one.
   */
  runInBackground(): void {
    this.run().catch((err: unknown) => {
      if (err instanceof ReconcileStopped) this.deps.logger.debug({ reason: err.message }, 'reconciliation pass ended by the stop');
      else this.deps.logger.error({ err }, `reconciliation failed: ${(err as Error).message}`);
    });
  }

  /** No pass starts from now on; one in flight ends at its next step. Idempotent (system.shutdown calls it too). */
  stop(): void {
    this.stopping = true;
  }

  /** Between the steps of a pass: after a stop, nothing more is read, decided or written. */
  private checkpoint(): void {
    if (this.stopping) throw new ReconcileStopped('reconciliation cut short: the bot is stopping');
  }

  private async pass(dryRun: boolean): Promise<ReconcileReport> {
    const { venue, execution, clock, logger, portfolio } = this.deps;
    const started = clock.now();
    const settledBefore = execution.stats.fills;
    if (!dryRun) await execution.poll();
    this.checkpoint();
    const settled = execution.stats.fills - settledBefore;

    const venueOpen = await this.venueCall(() => venue.openOrders());
    const heldByVenue = await this.venueCall(() => venue.positions(this.deps.market === 'futures' ? undefined : this.deps.symbols()));
    const symbols = new Set<string>([...this.deps.symbols(), ...venueOpen.map((o) => o.symbol), ...heldByVenue.map((p) => p.symbol), ...portfolio.positions().map((p) => p.symbol)]);
    const out: SymbolDiff[] = [];
    const halted: string[] = [];
    let discrepancies = 0;
    for (const symbol of [...symbols].sort()) {
      const diff = await this.symbol(symbol, venueOpen.filter((o) => o.symbol === symbol), heldByVenue.filter((p) => p.symbol === symbol), dryRun);
      if (diff.fillsAdded > 0 || diff.externalOrders.length > 0 || (diff.position.status !== 'match' && diff.position.status !== 'moving')) {
        discrepancies++;
        out.push(diff);
      }
      if (diff.position.action === 'HALTED' || diff.externalOrders.some((e) => e.action === 'halt')) halted.push(symbol);
    }
    this.checkpoint();
    const report: ReconcileReport = { at: new Date(clock.now()).toISOString(), dryRun, fillsFromWorkingOrders: settled, symbols: out, discrepancies, halted, durationMs: clock.now() - started };
    if (!dryRun) {
      this.last = report;
      this.deps.bus.publish('reconcile.done', { kind: 'reconcile.done', ts: clock.now(), ok: halted.length === 0, discrepancies, ...(out.length ? { detail: JSON.stringify(out).slice(0, 2000) } : {}) });
    }
    if (discrepancies > 0) logger.warn({ report }, `reconciliation${dryRun ? ' (dry run)' : ''}: ${discrepancies} symbol(s) differed${halted.length ? `; HALTED ${halted.join(', ')}` : ''}`);
    return report;
  }

  /**
   * Our fills of the symbol the venue has and we do not (a minute of overlap:
   * the unique key makes repeats harmless), applied; a dry run only counts
   * what they would do to the position.
   */
  private async catchUpFills(symbol: string, dryRun: boolean): Promise<{ added: number; pendingQty: Dec }> {
    const { store, execution, market } = this.deps;
    const lastFill = store.all(store.db.selectFrom('fills').select('ts').where('market', '=', market).where('symbol', '=', symbol).orderBy('ts', 'desc').limit(1))[0]?.ts;
    const firstOrder = store.all(store.db.selectFrom('orders').select('created_at').where('market', '=', market).where('symbol', '=', symbol).orderBy('created_at').limit(1))[0]?.created_at;
    let added = 0;
    let pendingQty = ZERO;
    if (firstOrder === undefined) return { added, pendingQty };
    const since = (lastFill ?? firstOrder) - 60_000;
    const fills = await this.venueCall(() => this.deps.venue.fills(symbol, since));
    for (const f of fills) {
      if (!this.known(f)) continue; // Not ours: external fills show up in the position check.
      if (this.recorded(symbol, f.tradeId)) continue;
      added++;
      if (dryRun) pendingQty = pendingQty.plus(this.positionChange(f));
      else execution.applyFill(f);
    }
    return { added, pendingQty };
  }

  /**
   * What a fill does to the position, as the ledger books it: spot is counted
   * as received, so a base-asset fee never arrives on a buy and leaves with a
   * sell. A dry run adds this instead of applying the fill; the gross quantity
   * made ours differ from the exchange's by the fee.
   */
  private positionChange(f: VenueFill): Dec {
    const baseFee = f.feeAsset === this.deps.instruments.get(f.symbol)?.baseAsset ? f.fee : ZERO;
    return f.side === 'BUY' ? f.quantity.minus(baseFee) : f.quantity.plus(baseFee).neg();
  }

  /**
   * The venue's position and ours at one moment: the venue's position, then
   * any fills we lack, then the position again. Two equal reads mean nothing
   * traded in between, so our books (fills up to the second read) and the
   * venue's figure describe the same trades. Undefined when the symbol
   * traded meanwhile (the reads differ, or a fill reached us during the
   * second read).
   */
  private async settledPosition(symbol: string, side: PositionSide, dryRun: boolean): Promise<{ venueQty: Dec; added: number; pendingQty: Dec } | undefined> {
    const { venue, store, market } = this.deps;
    const read = async (): Promise<Dec> => legQty(await this.venueCall(() => venue.positions([symbol])), symbol, side);
    const fillCount = (): number => Number(store.sqlite.prepare('SELECT COUNT(*) AS n FROM fills WHERE market = ? AND symbol = ?').pluck().get(market, symbol));
    const first = await read();
    const caught = await this.catchUpFills(symbol, dryRun);
    const booked = fillCount();
    const second = await read();
    if (!first.eq(second) || fillCount() !== booked) return undefined;
    return { venueQty: second, ...caught };
  }

  private async symbol(symbol: string, venueOpen: VenueOrder[], venueHeld: readonly VenuePosition[], dryRun: boolean): Promise<SymbolDiff> {
    const { store, portfolio, risk, logger } = this.deps;
    const policy = this.deps.external();

    const caught = await this.catchUpFills(symbol, dryRun);
    let fillsAdded = caught.added;

    // Open orders we did not place.
    const externalOrders: Array<SymbolDiff['externalOrders'][number]> = [];
    for (const o of venueOpen) {
      const ours = store.all(store.db.selectFrom('orders').select('client_order_id').where('client_order_id', '=', o.clientOrderId))[0];
      if (ours) continue;
      externalOrders.push({ clientOrderId: o.clientOrderId, side: o.side, type: o.type, quantity: o.quantity.toFixed(), action: policy });
      if (dryRun) continue;
      if (policy === 'adopt') this.adopt(o);
      else if (policy === 'halt') risk.setState('symbol', symbol, 'HALTED', `RECONCILE_EXTERNAL_ORDER: ${o.clientOrderId} ${o.side} ${o.type} ${o.quantity.toFixed()}`, 'reconcile');
      else logger.warn({ symbol, clientOrderId: o.clientOrderId }, `open order ${o.clientOrderId} on ${symbol} was not placed by this bot: left alone (reconcile.external: ignore)`);
    }

    // Positions, per leg: BOTH in one-way mode (and spot), LONG and SHORT in hedge mode.
    const legs: Array<NonNullable<SymbolDiff['legs']>[number]> = [];
    for (const side of this.deps.ledger.hedge ? (['LONG', 'SHORT'] as const) : (['BOTH'] as const)) {
      // A dry run's missed fills are counted, not applied: they belong to the one-way position (hedge legs: not split).
      const r = await this.leg(symbol, side, legQty(venueHeld, symbol, side), side === 'BOTH' ? caught.pendingQty : ZERO, dryRun);
      fillsAdded = dryRun ? Math.max(fillsAdded, r.added) : fillsAdded + r.added;
      legs.push({ side, ...r.position });
    }
    // The leg that needs a look speaks for the symbol (match only when every leg matches).
    const rank = { unexplained: 3, external: 2, moving: 1, match: 0 } as const;
    const worst = legs.reduce((a, b) => (rank[b.status] > rank[a.status] ? b : a));
    const { side: _side, ...position } = worst;
    return { symbol, fillsAdded, externalOrders, position, ...(legs.length > 1 ? { legs } : {}) };
  }

  /**
   * One leg's verdict. The venue holds the bot's owners plus the external line. The bot's own lines
   * come from its fills only; what the venue holds beyond them is external (holdings the user had, or
   * traded by hand), never a strategy's. A venue holding less of the bot's direction than the bot's
   * owners hold cannot be explained by anything we know: the symbol is HALTED, and the books follow.
   */
  private async leg(symbol: string, side: PositionSide, venueQty: Dec, pendingQty: Dec, dryRun: boolean): Promise<{ added: number; position: SymbolDiff['position'] }> {
    const { ledger, risk, logger } = this.deps;
    const policy = this.deps.external();
    const inst = this.deps.instruments.get(symbol);
    const dust = inst ? inst.filters.lot.minQty : ZERO;
    // Exact: the venue's position is the sum of the owners' lines and the external one, to the last
    // unit. (A tolerance of minQty called 0.003998 and 0.003996 a match and hid a wrong figure.)
    const differs = (a: Dec, b: Dec): boolean => !a.eq(b);
    const where = side === 'BOTH' ? symbol : `${symbol} ${side}`;
    const external = ledger.external(symbol, side);
    let ours = ledger.net(symbol, side).plus(pendingQty);
    let added = 0;
    if (differs(venueQty, ours.plus(external))) {
      // The venue's positions were read at the start of the pass, and fills keep arriving while it
      // runs: a trade in between makes the two sides differ for a moment. Before any verdict, look
      // again consistently; a symbol still trading gets no verdict until the next pass.
      const again = await this.settledPosition(symbol, side, dryRun);
      if (!again) return { added, position: { ours: ours.toFixed(), venue: venueQty.toFixed(), external: external.toFixed(), status: 'moving' } };
      venueQty = again.venueQty;
      added = again.added;
      // A dry run applied nothing: the second look's missed fills replace the first look's.
      ours = ledger.net(symbol, side).plus(side === 'BOTH' ? again.pendingQty : ZERO);
    }
    let position: SymbolDiff['position'] = { ours: ours.toFixed(), venue: venueQty.toFixed(), external: external.toFixed(), status: 'match' };
    if (!differs(venueQty, ours.plus(external))) return { added, position };
    const covered = ours.abs().lte(dust) || (venueQty.isPos() === ours.isPos() && venueQty.abs().gte(ours.abs()));
    if (covered) {
      // Everything beyond the bot's own lines is external.
      const ext = venueQty.minus(ours);
      position = { ...position, external: ext.toFixed(), status: 'external', action: policy === 'halt' ? 'HALTED' : policy === 'adopt' ? `adopted by ${this.deps.adoptOwner()}` : 'ignored' };
      if (dryRun) return { added, position };
      // Adopted holdings become the adopting owner's (no external line); without a price yet, the next pass adopts them.
      if (policy === 'adopt') {
        if (this.adoptPosition(symbol, ext.minus(external), side)) this.setExternal(symbol, ZERO, side);
      } else this.setExternal(symbol, ext, side);
      if (policy === 'halt') risk.setState('symbol', symbol, 'HALTED', `RECONCILE_EXTERNAL_POSITION: venue=${venueQty.toFixed()} ours=${ours.toFixed()} external=${ext.toFixed()}${side === 'BOTH' ? '' : ` side=${side}`}`, 'reconcile');
      else if (policy === 'ignore') logger.warn({ symbol, side, venue: venueQty.toFixed(), ours: ours.toFixed(), external: ext.toFixed() }, `${where}: ${ext.toFixed()} held on the exchange beyond the bot's own positions is external: no strategy trades it (reconcile.external: ignore)`);
      return { added, position };
    }
    // The bot's own holdings are not all there (sold by hand, liquidated unseen). The books follow
    // the exchange: a 'reconcile' adjustment closes what is missing from the owners' lines (it can
    // only shrink a claim to what exists, never give an owner what it did not buy), and a person
    // decides (HALTED until resumed).
    position = { ...position, status: 'unexplained', action: 'HALTED' };
    if (!dryRun) {
      this.setExternal(symbol, ZERO, side);
      risk.setState('symbol', symbol, 'HALTED', `RECONCILE_POSITION_MISMATCH: venue=${venueQty.toFixed()} ours=${ours.toFixed()} diff=${venueQty.minus(ours).toFixed()}${side === 'BOTH' ? '' : ` side=${side}`}`, 'reconcile');
      this.bookShortfall(symbol, venueQty.minus(ours), side);
    }
    return { added, position };
  }

  /**
   * A venue read; on -1021 the clock is resynced once and the read repeated.
   * Every read is a step: none starts after a stop, and what one returns after
   * a stop is not acted on (every write of a pass follows a read).
   */
  private async venueCall<T>(fn: () => Promise<T>): Promise<T> {
    this.checkpoint();
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      const v = this.deps.venue;
      if (!(err instanceof VenueError && err.kind === 'CLOCK_SKEW' && v.resyncClock) || this.stopping) throw err;
      await v.resyncClock();
      result = await fn();
    }
    this.checkpoint();
    return result;
  }

  /** A fill is ours when it belongs to an order row (by client id or exchange id). */
  private known(f: VenueFill): boolean {
    const { store } = this.deps;
    if (f.clientOrderId && store.all(store.db.selectFrom('orders').select('client_order_id').where('client_order_id', '=', f.clientOrderId))[0]) return true;
    return store.all(store.db.selectFrom('orders').select('client_order_id').where('market', '=', this.deps.market).where('symbol', '=', f.symbol).where('exchange_order_id', '=', f.exchangeOrderId))[0] !== undefined;
  }

  private recorded(symbol: string, tradeId: string): boolean {
    const { store } = this.deps;
    return store.all(store.db.selectFrom('fills').select('id').where('market', '=', this.deps.market).where('symbol', '=', symbol).where('trade_id', '=', tradeId))[0] !== undefined;
  }

  /** An external open order becomes ours to track (strategy 'external'); it is not cancelled. */
  private adopt(o: VenueOrder): void {
    const { store, clock } = this.deps;
    const now = clock.now();
    store.run(
      store.db
        .insertInto('orders')
        .values({
          client_order_id: o.clientOrderId,
          intent_id: `external/${o.symbol}/${o.clientOrderId}`,
          strategy: 'external',
          market: this.deps.market,
          symbol: o.symbol,
          side: o.side,
          type: o.type,
          time_in_force: null,
          quantity: o.quantity.toFixed(),
          price: o.price?.toFixed() ?? null,
          stop_price: o.stopPrice?.toFixed() ?? null,
          reduce_only: o.reduceOnly ? 1 : 0,
          status: o.status,
          exchange_order_id: o.exchangeOrderId,
          filled_quantity: o.filledQuantity.toFixed(),
          average_price: o.averagePrice?.toFixed() ?? null,
          error: null,
          created_at: now,
          updated_at: now,
          source: 'strategy',
          position_side: o.positionSide ?? 'BOTH',
        })
        .onConflict((oc) => oc.doNothing()),
    );
  }

  /**
   * External holdings handed to a named owner (reconcile.external: adopt):
   * one adjustment fill at the mark (trade id `reconcile-...`), booked to that
   * owner explicitly, so positions, PnL, protection and the kill switch see it
   * from now on. The external line shrinks by what was adopted.
   */
  adoptPosition(symbol: string, qty: Dec, positionSide: PositionSide = 'BOTH'): boolean {
    const { store, clock, portfolio, market, bus } = this.deps;
    if (qty.isZero()) return true;
    const price = portfolio.mark(symbol);
    if (!price) {
      this.deps.logger.warn({ symbol }, `cannot adopt the external position on ${symbol}: no price yet; it is adopted at the next pass`);
      return false;
    }
    const owner = this.deps.adoptOwner();
    const now = clock.now();
    const tradeId = `reconcile-${symbol}-${now}`;
    const side = qty.isPos() ? 'BUY' : 'SELL';
    const res = store.run(
      store.db
        .insertInto('fills')
        .values({ market, symbol, trade_id: tradeId, client_order_id: null, exchange_order_id: null, side, price: price.toFixed(), quantity: qty.abs().toFixed(), fee: '0', fee_asset: portfolio.quoteAsset, realized_pnl: null, is_maker: 0, ts: now, owner, position_side: positionSide })
        .onConflict((oc) => oc.doNothing()),
    );
    if (res.changes === 0) return false;
    bus.publish('fill', { kind: 'fill', ts: now, tradeId, strategy: owner, ...(positionSide !== 'BOTH' ? { positionSide } : {}), market, symbol, side, price, quantity: qty.abs(), fee: new Dec(0), feeAsset: portfolio.quoteAsset, isMaker: false });
    return true;
  }

  /** A 'reconcile' fill of the missing quantity: the ledger closes the owners' lines it reduces. */
  private bookShortfall(symbol: string, diff: Dec, positionSide: PositionSide): void {
    const { store, clock, portfolio, market, bus } = this.deps;
    const price = portfolio.mark(symbol) ?? portfolio.position(symbol).entryPrice;
    const now = clock.now();
    const tradeId = `reconcile-${symbol}-${positionSide}-${now}`;
    const side = diff.isPos() ? 'BUY' : 'SELL';
    const res = store.run(
      store.db
        .insertInto('fills')
        .values({ market, symbol, trade_id: tradeId, client_order_id: null, exchange_order_id: null, side, price: price.toFixed(), quantity: diff.abs().toFixed(), fee: '0', fee_asset: portfolio.quoteAsset, realized_pnl: null, is_maker: 0, ts: now, owner: 'reconcile', position_side: positionSide })
        .onConflict((oc) => oc.doNothing()),
    );
    if (res.changes === 0) return;
    bus.publish('fill', { kind: 'fill', ts: now, tradeId, strategy: 'reconcile', ...(positionSide !== 'BOTH' ? { positionSide } : {}), market, symbol, side, price, quantity: diff.abs(), fee: new Dec(0), feeAsset: portfolio.quoteAsset, isMaker: false });
  }

  /** Loads the external lines an earlier run found (after the portfolio replayed the fills: these are the truth for external). */
  static restore(store: Store, ledger: Ledger, market: Market): void {
    const saved = readKv(store, `${KV_EXTERNAL}.${market}`, externalSchema);
    if (saved.ok && saved.value) {
      for (const [key, qty] of Object.entries(saved.value.lines)) {
        const [symbol, side] = key.split(' ') as [string, PositionSide | undefined];
        ledger.setExternal(symbol, new Dec(qty), undefined, side ?? 'BOTH');
      }
    }
  }

  private setExternal(symbol: string, qty: Dec, side: PositionSide = 'BOTH'): void {
    const { ledger, store, clock, market } = this.deps;
    ledger.setExternal(symbol, qty, this.deps.portfolio.mark(symbol), side);
    const key = side === 'BOTH' ? symbol : `${symbol} ${side}`;
    const saved = readKv(store, `${KV_EXTERNAL}.${market}`, externalSchema);
    const value = saved.ok && saved.value ? saved.value : { lines: {} };
    const lines: Record<string, string> = { ...value.lines };
    if (qty.isZero()) delete lines[key];
    else lines[key] = qty.toFixed();
    writeKv(store, `${KV_EXTERNAL}.${market}`, { ...value, lines }, clock.now());
  }

}

/** External lines per symbol (what the venue held beyond the bot's owners at the last pass). */
const KV_EXTERNAL = 'ledger.external';
const externalSchema = z.object({ lines: z.record(z.string(), z.string()) });
