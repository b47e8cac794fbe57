/**
 * The execution engine's safety net: a REST poll of our non-final orders,
 * and of the fills of any order whose filled quantity moved. The user-data
 * stream is the fast path; whatever it already delivered is a no-op here
 * (OrderRows drops it), and whatever it missed (a disconnect, a row an
 * earlier process wrote) is found here.
 */
import type { Clock } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { OrderSide } from '../model/events.ts';
import type { OrdersTable } from '../store/schema.ts';
import type { Venue, VenueOrder } from '../venues/venue.ts';
import { isFinal, type OrderRows } from './order-rows.ts';
import type { UnknownOutcome } from './unknown-outcome.ts';

export interface OrderPollDeps {
  venue: Venue;
  clock: Clock;
  logger: Logger;
  rows: OrderRows;
  unknown: Pick<UnknownOutcome, 'check'>;
  /** A PENDING order with no send in flight for this long is resolved by a lookup. */
  ackTimeoutMs: number;
  /** Orders a send is working on: that send settles them, the poll leaves them alone. */
  inFlight: ReadonlySet<string>;
  /** The engine's stop(): a poll in progress ends at its next symbol. */
  signal: AbortSignal;
  /** After a 429: until then (our clock) the poll, a non-essential call, waits. */
  heldUntil: () => number;
  /** When the engine started: PENDING rows older than this were written by an earlier process. */
  startedAt: () => number;
  /** An order under our client id that is not ours to adopt: the engine fails its intent. */
  conflict: (v: VenueOrder) => void;
  /** The engine's counters (the same object). */
  stats: { pollErrors: number; pollsHeldBack: number };
}

export class OrderPoll {
  private polling = false;

  constructor(private readonly deps: OrderPollDeps) {}

  /**
   * The safety net: every non-final order is checked against the venue, and
   * the fills of any order whose filled quantity moved are fetched. Anything
   * the stream already delivered is a no-op here.
   */
  async poll(): Promise<void> {
    if (this.polling) return;
    const { clock, venue, logger, stats } = this.deps;
    // The poll is the safety net, not the main path: it gives way when the budget is tight.
    if (clock.now() < this.deps.heldUntil()) {
      stats.pollsHeldBack++;
      return;
    }
    // The venue's budget holds the published request-weight limit (exchangeInfo rateLimits): one owner of it.
    const usage = venue.usage?.();
    const weight = usage?.budget?.find((b) => b.rateLimitType === 'REQUEST_WEIGHT' && b.interval === 'MINUTE' && b.intervalNum === 1);
    const used = usage?.usedWeight1m ?? weight?.used;
    if (weight && used !== undefined && used > weight.limit * 0.8) {
      stats.pollsHeldBack++;
      logger.warn({ usedWeight1m: used, limit: weight.limit }, `request weight ${used}/${weight.limit} this minute: order poll held back`);
      return;
    }
    this.polling = true;
    try {
      const rows = this.deps.rows.openOrders().filter((r) => !this.deps.inFlight.has(r.client_order_id));
      const bySymbol = new Map<string, OrdersTable[]>();
      for (const r of rows) bySymbol.set(r.symbol, [...(bySymbol.get(r.symbol) ?? []), r]);
      for (const [symbol, list] of bySymbol) {
        if (this.deps.signal.aborted) return;
        try {
          await this.pollSymbol(symbol, list);
        } catch (err) {
          stats.pollErrors++;
          logger.warn({ err, symbol }, `order poll for ${symbol} failed: ${(err as Error).message}`);
        }
      }
      await this.pollFillGaps();
    } finally {
      this.polling = false;
    }
  }

  /** Fetches the fills of orders (final ones included) whose fills we do not all hold yet. */
  async pollFillGaps(): Promise<void> {
    const { rows, venue, logger, stats } = this.deps;
    const bySymbol = new Map<string, number>();
    for (const [cid, g] of rows.gaps) {
      if (this.deps.inFlight.has(cid)) continue;
      bySymbol.set(g.symbol, Math.min(bySymbol.get(g.symbol) ?? g.since, g.since));
    }
    for (const [symbol, since] of bySymbol) {
      if (this.deps.signal.aborted) return;
      try {
        for (const f of await venue.fills(symbol, since - 60_000)) rows.applyFill(f);
      } catch (err) {
        stats.pollErrors++;
        logger.warn({ err, symbol }, `fill poll for ${symbol} failed: ${(err as Error).message}`);
      }
    }
  }

  private async pollSymbol(symbol: string, list: OrdersTable[]): Promise<void> {
    const { venue, clock, rows } = this.deps;
    const open = new Map((await venue.openOrders(symbol)).map((o) => [o.clientOrderId, o]));
    // The venue's trade list names orders by exchange id only; a row may not have that id yet (PENDING).
    const cidOf = new Map([...open.values()].map((o) => [o.exchangeOrderId, o.clientOrderId]));
    const applyFills = async (since: number): Promise<void> => {
      for (const f of await venue.fills(symbol, since)) rows.applyFill(f.clientOrderId ? f : { ...f, clientOrderId: cidOf.get(f.exchangeOrderId) });
    };
    let fetchFillsSince: number | undefined;
    for (const r of list) {
      let v = open.get(r.client_order_id);
      if (!v) {
        // Not open on the venue: finished while we were not looking, or never arrived.
        // A row an earlier process wrote (killed between writing it and hearing back) has no send
        // in flight any more: look it up now, or the reconcile that runs at start cannot tell whose
        // fill the venue reports (its row has no exchange id yet) and halts the symbol as unexplained.
        const unanswered = r.status === 'PENDING' || r.status === 'UNKNOWN';
        if (r.status === 'PENDING' && r.created_at >= this.deps.startedAt() && clock.now() - r.created_at < this.deps.ackTimeoutMs) continue;
        if (unanswered) {
          // Its request may still execute until its window closes: only a lookup sent after that says "not placed".
          const verdict = await this.deps.unknown.check({ symbol, clientOrderId: r.client_order_id, side: r.side as OrderSide, quantity: new Dec(r.quantity) }, r.sent_at ?? r.created_at);
          if (!verdict) continue;
          if (verdict.kind === 'not-placed') {
            rows.finishRejected(r.client_order_id, `NO_ACK: the venue has no order ${r.client_order_id} ${Math.round((clock.now() - (r.sent_at ?? r.created_at)) / 1000)} s after its request left, and it can no longer execute`);
            continue;
          }
          if (verdict.kind === 'conflict') {
            this.deps.conflict(verdict.order);
            continue;
          }
          v = verdict.order;
        } else v = await venue.fetchOrder(symbol, r.client_order_id);
        if (!v) continue;
        cidOf.set(v.exchangeOrderId, r.client_order_id);
      }
      if (v.filledQuantity.gt(rows.recordedFillQty(r.client_order_id))) fetchFillsSince = Math.min(fetchFillsSince ?? r.created_at, r.created_at);
      // Fills before the order's final status, as the stream would have it.
      if (fetchFillsSince !== undefined && isFinal(v.status)) {
        await applyFills(fetchFillsSince - 60_000);
        fetchFillsSince = undefined;
      }
      rows.applyOrder(v);
    }
    if (fetchFillsSince !== undefined) await applyFills(fetchFillsSince - 60_000);
  }
}
