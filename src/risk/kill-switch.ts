/**
 * The kill switch: `trader trade stop-all [--flatten]`.
 *
 *   1. the account goes HALTED (persisted first: a crash mid-way still
 *      leaves it halted, and a restart keeps it until someone resumes);
 *   2. sends already under way finish (so none lands after the sweep);
 *   3. every open order on every symbol is cancelled, ours or not;
 *   4. with --flatten, every owner's position in the ledger is closed at
 *      market as that owner's order, through the normal order path, so each
 *      close has an order row, a client order id and recorded fills on the
 *      line it closes. Holdings the bot did not create (external) are left
 *      alone and reported as remaining.
 *
 * The same code runs inside the bot (through the control API) and from the
 * CLI when the bot is stopped (a short-lived trading core on the same
 * database). Running it twice is harmless: the second run finds nothing
 * open and nothing held.
 */
import type { Bus } from '../bus/bus.ts';
import type { Logger } from '../core/logger.ts';
import type { ExecutionEngine } from '../execution/execution-engine.ts';
import type { InstrumentBook } from '../execution/instrument-book.ts';
import { EXTERNAL, type LedgerView } from '../ledger/ledger.ts';
import { roundQuantity } from '../model/filters.ts';
import { ZERO } from '../core/decimal.ts';
import type { Market } from '../model/market.ts';
import { VenueError, type Venue } from '../venues/venue.ts';
import type { OrderPlanner } from './order-planner.ts';
import type { RiskEngine } from './risk-engine.ts';

export interface KillSwitchReport {
  readonly halted: { readonly changed: boolean; readonly reason: string };
  readonly cancelled: Array<{ readonly symbol: string; readonly clientOrderId: string; readonly status: string }>;
  readonly closed: Array<{ readonly symbol: string; readonly side: string; readonly quantity: string; readonly clientOrderId?: string; readonly status: string; readonly detail?: string }>;
  readonly failures: string[];
  /** What is still open or held afterwards (should be empty). */
  readonly remaining: { readonly openOrders: number; readonly positions: Array<{ readonly symbol: string; readonly quantity: string }> };
}

export interface KillSwitchDeps {
  bus: Bus;
  venue: Venue;
  risk: RiskEngine;
  planner: OrderPlanner;
  execution: ExecutionEngine;
  instruments: InstrumentBook;
  /** Every owner's position: the kill switch closes each as its own order. */
  ledger: LedgerView;
  market: Market;
  /**
   * Symbols whose positions flatten looks at: spot holdings are per base
   * asset, so spot names its symbols; undefined (futures) means every position.
   */
  symbols: () => string[] | undefined;
  logger: Logger;
}

export class KillSwitch {
  private running: Promise<KillSwitchReport> | undefined;

  constructor(private readonly deps: KillSwitchDeps) {}

  /** One stop-all at a time; a second caller gets the same report. */
  stopAll(flatten: boolean, source: string): Promise<KillSwitchReport> {
    this.running ??= this.run(flatten, source).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(flatten: boolean, source: string): Promise<KillSwitchReport> {
    const { venue, risk, execution, logger } = this.deps;
    const reason = `KILL_SWITCH: stop-all${flatten ? ' --flatten' : ''} by ${source}`;
    const change = risk.setState('account', risk.accountKey(), 'HALTED', reason, source);
    logger.warn({ flatten, source }, `kill switch: account HALTED${flatten ? ', cancelling and flattening' : ', cancelling every open order'}`);
    const report: KillSwitchReport = { halted: { changed: change !== undefined, reason }, cancelled: [], closed: [], failures: [], remaining: { openOrders: 0, positions: [] } };

    await execution.idle();
    await this.cancelAll(report);

    if (flatten) {
      const denied = new Map<string, string>();
      const unsub = this.deps.bus.on('order.denied', (d) => denied.set(d.intent.intentId, d.reason), 'kill-switch');
      try {
        // Each owner's position is closed as that owner's order, so every fill lands on the line it
        // closes. Holdings the bot did not create (external) are not the bot's to sell: they are
        // reported as remaining, never traded.
        for (const lot of this.deps.ledger.lots()) {
          if (lot.strategy === EXTERNAL || lot.flat) continue;
          const qty = this.deps.ledger.exitable(lot.strategy, lot.symbol, lot.side);
          if (qty.lte(0)) continue;
          const closeSide = lot.quantity.isPos() ? 'SELL' : 'BUY';
          const release = this.deps.planner.releaseFor(lot.strategy, lot.symbol);
          const intent = this.deps.planner.submit({ symbol: lot.symbol, side: closeSide, quantity: qty, reduceOnly: true, source: 'kill-switch', strategy: lot.strategy, reason, ...(lot.side !== 'BOTH' ? { positionSide: lot.side } : {}), ...(release.length ? { releaseFirst: release } : {}) });
          const d = denied.get(intent.intentId);
          if (d) report.closed.push({ symbol: lot.symbol, side: closeSide, quantity: qty.toFixed(), status: 'DENIED', detail: d });
          else report.closed.push({ symbol: lot.symbol, side: closeSide, quantity: qty.toFixed(), clientOrderId: execution.ids.forIntent(lot.strategy, intent.seq), status: 'SENT' });
        }
        await execution.idle();
        // Fills the stream has not delivered yet: fetch them now so the books are right.
        await execution.poll();
        // Futures positions placed by hand are closed too (a person asked for a flat account), once the
        // owners' closes are settled: as the external owner's orders, so their fills land on the external
        // line. Spot coins the bot did not buy are the user's holdings, not a position: never sold.
        if (this.deps.market === 'futures') {
          for (const p of await venue.positions(this.deps.symbols())) {
            const side = p.positionSide === 'SHORT' || p.positionSide === 'LONG' ? p.positionSide : 'BOTH';
            const ours = this.deps.ledger.lots(p.symbol).filter((l) => l.strategy !== EXTERNAL && l.side === side).reduce((a, l) => a.plus(l.quantity), ZERO);
            const theirs = p.quantity.minus(ours);
            const inst = this.deps.instruments.get(p.symbol);
            if (!inst || this.deps.ledger.isDust(p.symbol, theirs)) continue;
            const qty = roundQuantity(theirs.abs(), inst.filters.marketLot.stepSize.gt(inst.filters.lot.stepSize) ? inst.filters.marketLot : inst.filters.lot);
            const closeSide = theirs.isPos() ? 'SELL' : 'BUY';
            const intent = this.deps.planner.submit({ symbol: p.symbol, side: closeSide, quantity: qty, reduceOnly: true, source: 'kill-switch', strategy: EXTERNAL, reason, ...(side !== 'BOTH' ? { positionSide: side } : {}) });
            const d = denied.get(intent.intentId);
            if (d) report.closed.push({ symbol: p.symbol, side: closeSide, quantity: qty.toFixed(), status: 'DENIED', detail: d });
            else report.closed.push({ symbol: p.symbol, side: closeSide, quantity: qty.toFixed(), clientOrderId: execution.ids.forIntent(EXTERNAL, intent.seq), status: 'SENT' });
          }
          await execution.idle();
          await execution.poll();
        }
        for (const c of report.closed) {
          if (!c.clientOrderId) continue;
          const o = await venue.fetchOrder(c.symbol, c.clientOrderId).catch(() => undefined);
          (c as { status: string }).status = o?.status ?? 'UNKNOWN';
          if (o) execution.applyOrder(o);
        }
      } catch (err) {
        report.failures.push(`flatten: ${(err as Error).message}`);
      } finally {
        unsub();
      }
    }

    try {
      const open = await venue.openOrders();
      const held = flatten ? await venue.positions(this.deps.symbols()) : [];
      // What the venue holds beyond the external lines is the bot's, and should be gone.
      const remaining = held.map((p) => ({ symbol: p.symbol, quantity: p.quantity.minus(this.deps.ledger.external(p.symbol, p.positionSide)) })).filter((p) => !this.deps.ledger.isDust(p.symbol, p.quantity));
      Object.assign(report.remaining, { openOrders: open.length, positions: remaining.map((p) => ({ symbol: p.symbol, quantity: p.quantity.toFixed() })) });
    } catch (err) {
      report.failures.push(`final check: ${(err as Error).message}`);
    }
    logger.warn({ cancelled: report.cancelled.length, closed: report.closed.length, failures: report.failures, remaining: report.remaining }, `kill switch done: ${report.cancelled.length} orders cancelled, ${report.closed.length} positions closed`);
    return report;
  }

  private async cancelAll(report: KillSwitchReport): Promise<void> {
    const { venue, execution } = this.deps;
    let open;
    try {
      open = await venue.openOrders();
    } catch (err) {
      report.failures.push(`list open orders: ${(err as Error).message}`);
      return;
    }
    for (const o of open) {
      try {
        const done = await venue.cancel(o.symbol, o.clientOrderId);
        execution.applyOrder(done);
        report.cancelled.push({ symbol: o.symbol, clientOrderId: o.clientOrderId, status: done.status });
      } catch (err) {
        if (err instanceof VenueError && err.kind === 'UNKNOWN_ORDER') continue; // Filled or cancelled meanwhile.
        report.failures.push(`cancel ${o.symbol} ${o.clientOrderId}: ${(err as Error).message}`);
      }
    }
  }
}
