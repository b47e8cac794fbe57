/**
 * The execution engine: the only component that sends orders to a venue.
 *
 *   order.submit (approved by the risk engine)
 *     -> round to step and tick, check every exchange filter (model/filters.ts);
 *        a failure is an order.denied with the filter's reason, never sent
 *     -> write the order row (PENDING, deterministic clientOrderId), committed
 *     -> send, through a per-symbol queue
 *     -> on a timeout, 5xx or network error: look the order up by its client
 *        id before anything is retried; never two live orders for one intent
 *
 * Venue events (the user-data stream: the fast path) and a REST poll of our
 * non-final orders (the safety net, order-poll.ts) both feed the order and
 * fill rows (order-rows.ts: the one writer of both tables and of the
 * order.update and fill events). Preparing an order (rounding, filters) is
 * prepare-order.ts.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { OrderCancel, OrderIntent, OrderStatus, OrderSubmit } from '../model/events.ts';
import { roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { OrdersTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { ORDER_BUDGET_CODE, VenueError, type PlaceOco, type PlaceOrder, type Venue, type VenueEvent, type VenueFill, type VenueOrder } from '../venues/venue.ts';
import type { InstrumentBook } from './instrument-book.ts';
import type { LedgerView } from '../ledger/ledger.ts';
import { ClientOrderIds } from './client-order-ids.ts';
import { UnknownOutcome, type UnknownOutcomeOptions } from './unknown-outcome.ts';
import { markCleanStop, markRecovered, recoverOrders, takeCleanStop, type PreviousStop, type RecoveryReport } from './order-recovery.ts';
import type { IntentSequence } from './intent-sequence.ts';
import { isFinal, isLiquidation, OrderRows } from './order-rows.ts';
import { OrderPoll } from './order-poll.ts';
import { prepareOco, prepareOrder } from './prepare-order.ts';

export { isFinal, isLiquidation } from './order-rows.ts';
export { prepareOco, prepareOrder, type PreparedOco, type PreparedOrder } from './prepare-order.ts';

/** A send this much later than its row's sent_at rewrites it (within the unknown-outcome margin, and no extra write on the hot path). */
const SENT_AT_SLACK_MS = 250;

export interface ExecutionOptions {
  /** Tries per order for retryable failures (default 5). */
  tries: number;
  /** Delay between tries, ms, before jitter (default 5000; jitter adds up to 100 %). */
  retryDelayMs: number;
  /** Safety-net poll of non-final orders, ms (default 5000). */
  pollMs: number;
  /** A PENDING order with no send in flight for this long is resolved by a lookup (default 30000). */
  ackTimeoutMs: number;
  /** How long an unanswered placement may still execute, and how it is looked up meanwhile (unknown-outcome.ts). */
  unknownOutcome: Partial<UnknownOutcomeOptions>;
}

export const DEFAULT_EXECUTION: ExecutionOptions = { tries: 5, retryDelayMs: 5000, pollMs: 5000, ackTimeoutMs: 30_000, unknownOutcome: {} };

export interface ExecutionDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  venue: Venue;
  market: Market;
  instruments: InstrumentBook;
  /** Reference price for market-order notional and percent-price bands (the portfolio's mark). */
  referencePrice: (symbol: string) => Dec | undefined;
  /** Positions per owner: whether the venue may be told reduce-only, and what a spot exit may still sell after its stop is released. */
  ledger: LedgerView;
  /** Client order ids in this database's namespace (default: the namespace stored in `store`). */
  ids?: ClientOrderIds;
  options?: Partial<ExecutionOptions>;
}

export interface ExecutionStats {
  sent: number;
  denied: number;
  rejected: number;
  retries: number;
  lookups: number;
  fills: number;
  duplicateFills: number;
  pollErrors: number;
  pollsHeldBack: number;
  banned: boolean;
}

export class ExecutionEngine {
  private readonly opts: ExecutionOptions;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<string>();
  private readonly abort = new AbortController();
  private readonly unsubs: Array<() => void> = [];
  private poller: TimerHandle | undefined;
  /** Limit orders with a time to live: their timers, and the ones being cancelled for it. */
  private readonly ttlTimers = new Map<string, TimerHandle>();
  private readonly expiring = new Set<string>();
  /** After a 429: non-essential calls (the poll) wait until then (our clock). */
  private holdUntil = 0;
  /** After a 418: no new orders until then (the ban's end as Binance states it). */
  private bannedUntil = 0;
  /** Order rows written by this process (only the chaos test hook reads it). */
  private chaosRows = 0;
  /** When this engine started: PENDING rows older than this were written by an earlier process. */
  private startedAt = 0;
  /** Whether the run before this one stopped cleanly (else recover() scans the exchange). */
  private previousStop: PreviousStop = { clean: true };
  readonly stats: ExecutionStats = { sent: 0, denied: 0, rejected: 0, retries: 0, lookups: 0, fills: 0, duplicateFills: 0, pollErrors: 0, pollsHeldBack: 0, banned: false };

  /** The one maker of client order ids (the kill switch and `trader order` read theirs here). */
  readonly ids: ClientOrderIds;
  private readonly unknown: UnknownOutcome;
  /** The order and fill rows: every write to them, and every order.update and fill, goes through here. */
  private readonly rows: OrderRows;
  private readonly safetyNet: OrderPoll;

  constructor(private readonly deps: ExecutionDeps) {
    this.opts = { ...DEFAULT_EXECUTION, ...deps.options };
    this.ids = deps.ids ?? ClientOrderIds.of(deps.store, deps.clock.now());
    this.unknown = new UnknownOutcome(deps.venue, deps.clock, this.opts.unknownOutcome);
    const { bus, store, clock, logger, venue, market } = deps;
    this.rows = new OrderRows({ bus, store, clock, logger, market, stats: this.stats, onFinal: (cid, status) => this.onFinal(cid, status) });
    this.safetyNet = new OrderPoll({
      venue,
      clock,
      logger,
      rows: this.rows,
      unknown: this.unknown,
      ackTimeoutMs: this.opts.ackTimeoutMs,
      inFlight: this.inFlight,
      signal: this.abort.signal,
      heldUntil: () => this.holdUntil,
      startedAt: () => this.startedAt,
      conflict: (v) => this.conflict(v),
      stats: this.stats,
    });
  }

  start(): void {
    const { bus, venue, clock } = this.deps;
    this.startedAt = clock.now();
    this.previousStop = takeCleanStop(this.deps.store, clock.now());
    this.unsubs.push(
      bus.handle('order.submit', (cmd) => this.onSubmit(cmd), 'execution'),
      bus.handle('order.cancel', (cmd) => this.onCancel(cmd), 'execution'),
      venue.onEvent((e) => this.onVenueEvent(e)),
    );
    this.poller = clock.every(this.opts.pollMs, () => void this.poll());
  }

  /** Stops taking orders, cuts retries short, and waits for sends in progress. */
  async stop(): Promise<void> {
    for (const u of this.unsubs.splice(0)) u();
    this.poller?.cancel();
    for (const t of this.ttlTimers.values()) t.cancel();
    this.ttlTimers.clear();
    this.abort.abort(new Error('shutting down'));
    await Promise.allSettled([...this.queues.values()]);
    // Every row this run wrote is settled or left for a lookup: nothing to rebuild at the next start,
    // unless a recovery this run owed has not been done (a start that failed before it).
    if (this.previousStop.clean) markCleanStop(this.deps.store, this.deps.clock.now());
  }

  /**
   * After an unclean stop: rebuilds the order rows (and, through the poll,
   * the fills) of this database's namespace that the exchange holds and the
   * database lost, and moves the intent sequence past every id found
   * (order-recovery.ts). Runs before anything trades.
   */
  async recover(o: { sequence: Pick<IntentSequence, 'skipPast'>; symbols: () => readonly string[]; owners: () => readonly string[] }): Promise<RecoveryReport> {
    const { store, venue, clock, logger, market } = this.deps;
    const report = await recoverOrders({ store, venue, clock, logger, market, ids: this.ids, applyOrder: (v) => this.applyOrder(v), ...o }, this.previousStop);
    if (report.scanned) await this.poll();
    if (!this.previousStop.clean) markRecovered(store, this.startedAt);
    this.previousStop = { clean: true };
    return report;
  }

  /** Waits until every queued send has finished (tests, kill switch). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  /** Our non-final orders (rows), optionally for one symbol. */
  openOrders(symbol?: string): OrdersTable[] {
    return this.rows.openOrders(symbol);
  }

  /** Applies what the venue says about an order: status only moves forward, filled quantity only grows (order-rows.ts). */
  applyOrder(v: VenueOrder): void {
    this.rows.applyOrder(v);
  }

  /** Records a fill once: a second arrival (stream and poll) is dropped by the unique key (order-rows.ts). */
  applyFill(f: VenueFill): void {
    this.rows.applyFill(f);
  }

  /** The safety net: every non-final order checked against the venue (order-poll.ts). */
  async poll(): Promise<void> {
    await this.safetyNet.poll();
  }

  // ------------------------------------------------------------- submit

  private onSubmit(cmd: OrderSubmit): void {
    const i = cmd.intent;
    const inst = this.deps.instruments.get(i.symbol);
    if (!inst) return this.deny(i, `UNKNOWN_SYMBOL: symbol=${i.symbol} market=${i.market}`);
    if (inst.status !== 'TRADING') return this.deny(i, `SYMBOL_NOT_TRADING: symbol=${i.symbol} status=${inst.status}`);
    // A hold the venue took on a 429 or 418 that another call drew (a reconcile read, the poll):
    // the same rule as when an order send drew it (below). Without this, orders were written
    // and queued until one of them reached the venue and met the hold.
    const held = this.deps.venue.sendingHeld?.();
    if (held?.kind === 'CIRCUIT_OPEN') {
      // The exchange failed repeatedly: an order written now could only wait behind the breaker.
      return this.deny(i, `CIRCUIT_OPEN: the exchange REST API failed repeatedly; no new orders until ${new Date(held.until).toISOString()}`);
    }
    if (held?.kind === 'BANNED') {
      this.stats.banned = true;
      this.bannedUntil = Math.max(this.bannedUntil, held.until);
    } else if (held) this.holdUntil = Math.max(this.holdUntil, held.until);
    if (this.stats.banned) {
      if (this.deps.clock.now() < this.bannedUntil) return this.deny(i, `IP_BANNED: the venue answered 418; no new orders until ${new Date(this.bannedUntil).toISOString()}`);
      this.stats.banned = false;
    }
    // While a 429's Retry-After runs, a new order would only queue up behind it and go out
    // late, at a price its signal never saw: it is denied now; the strategy signals again.
    if (this.deps.clock.now() < this.holdUntil) return this.deny(i, `RATE_LIMITED: the venue answered 429; no new orders until ${new Date(this.holdUntil).toISOString()}`);

    if (i.type === 'OCO') return this.submitOco(i, inst);
    // The filters see what the venue will see: an exit sent without reduceOnly meets the minimum notional.
    const venueReduce = this.venueReduceOnly(i);
    const prepared = prepareOrder(inst, { ...i, reduceOnly: venueReduce }, this.deps.referencePrice(i.symbol), this.rows.openCount(i.symbol));
    if ('reason' in prepared) return this.deny(i, prepared.reason);

    const cid = this.ids.forIntent(i.strategy, i.seq);
    const now = this.deps.clock.now();
    const row: OrdersTable = {
      client_order_id: cid,
      intent_id: i.intentId,
      strategy: i.strategy,
      market: i.market,
      symbol: i.symbol,
      side: i.side,
      type: i.type,
      time_in_force: i.type === 'LIMIT' || i.type === 'STOP_LOSS_LIMIT' ? 'GTC' : null,
      quantity: prepared.quantity.toFixed(),
      price: prepared.price?.toFixed() ?? null,
      stop_price: prepared.stopPrice?.toFixed() ?? null,
      reduce_only: i.reduceOnly ? 1 : 0,
      status: 'PENDING',
      exchange_order_id: null,
      filled_quantity: '0',
      average_price: null,
      error: null,
      created_at: now,
      updated_at: now,
      source: i.source,
      position_side: i.positionSide ?? 'BOTH',
      // Sent right after this commit (a release-first exit marks it again when it goes).
      sent_at: now,
    };
    if (!this.rows.insert(row)) return this.deny(i, `DUPLICATE_INTENT: intent=${i.intentId} client_order_id=${cid}`);
    // Chaos-suite test hook (tests/chaos): die by SIGKILL between "order row committed" and "request
    // sent", the crash window a restart must resolve. Inert unless TRADER_CHAOS_CRASH_AFTER_ROW=<n> is set:
    // then the n-th order row this process writes is its last act.
    if (process.env.TRADER_CHAOS_CRASH_AFTER_ROW && ++this.chaosRows >= Number(process.env.TRADER_CHAOS_CRASH_AFTER_ROW)) process.kill(process.pid, 'SIGKILL');

    this.rows.publishInserted(row, 'PENDING', ZERO);
    const order: PlaceOrder = {
      symbol: i.symbol,
      side: i.side,
      type: i.type,
      quantity: prepared.quantity,
      clientOrderId: cid,
      ...(prepared.price ? { price: prepared.price } : {}),
      ...(prepared.stopPrice ? { stopPrice: prepared.stopPrice } : {}),
      ...(venueReduce ? { reduceOnly: true } : {}),
      ...(i.positionSide && i.positionSide !== 'BOTH' ? { positionSide: i.positionSide } : {}),
      ...(i.callbackRate ? { callbackRate: i.callbackRate } : {}),
      ...(i.type === 'LIMIT' || i.type === 'STOP_LOSS_LIMIT' ? { timeInForce: 'GTC' as const } : {}),
    };
    this.inFlight.add(cid);
    const release = i.releaseFirst ?? [];
    this.enqueue(i.symbol, async () => {
      try {
        const sized = release.length ? await this.releaseThenSize(order, i, release) : order;
        if (sized) await this.send(sized);
      } finally {
        this.inFlight.delete(cid);
      }
    });
    if (i.ttlMs !== undefined && i.type === 'LIMIT') {
      this.ttlTimers.set(cid, this.deps.clock.after(i.ttlMs, () => this.expire(cid, i.symbol)));
    }
  }

  /**
   * A spot OCO (Binance "New Order list - OCO (TRADE)"): a LIMIT_MAKER
   * take-profit and a STOP_LOSS_LIMIT stop that share the coins; when one
   * fills or triggers, the exchange expires the other. Each leg gets its own
   * order row (client ids `<cid>` and `<cid>-s`, the list `<cid>-l`), both
   * written before the list is sent; after an unanswered try the legs are
   * looked up before anything is sent again, as for single orders.
   */
  private submitOco(i: OrderIntent, inst: Instrument): void {
    const { venue, clock } = this.deps;
    if (!venue.placeOco) return this.deny(i, `OCO_UNSUPPORTED: venue=${venue.name}`);
    const prepared = prepareOco(inst, i, this.deps.referencePrice(i.symbol), this.rows.openCount(i.symbol));
    if ('reason' in prepared) return this.deny(i, prepared.reason);
    const { quantity, limit, stopPrice, stopLimit } = prepared;
    const cid = this.ids.forIntent(i.strategy, i.seq);
    const legs = [
      { cid, intentId: i.intentId, type: 'LIMIT_MAKER', price: limit, stop: null as Dec | null, tif: null as string | null },
      { cid: `${cid}-s`, intentId: `${i.intentId}#stop`, type: 'STOP_LOSS_LIMIT', price: stopLimit, stop: stopPrice, tif: 'GTC' },
    ];
    const now = clock.now();
    const written = this.rows.insertList(
      legs.map((l) => ({ client_order_id: l.cid, intent_id: l.intentId, strategy: i.strategy, market: i.market, symbol: i.symbol, side: i.side, type: l.type, time_in_force: l.tif, quantity: quantity.toFixed(), price: l.price.toFixed(), stop_price: l.stop?.toFixed() ?? null, reduce_only: i.reduceOnly ? 1 : 0, status: 'PENDING', exchange_order_id: null, filled_quantity: '0', average_price: null, error: null, created_at: now, updated_at: now, source: i.source, position_side: 'BOTH', sent_at: now })),
    );
    if (written === 0) return this.deny(i, `DUPLICATE_INTENT: intent=${i.intentId} client_order_id=${cid}`);
    for (const l of legs) this.rows.publishUpdate(l.cid, 'PENDING', ZERO);
    const list = { symbol: i.symbol, side: i.side, quantity, listClientOrderId: `${cid}-l`, limit: { clientOrderId: cid, price: limit }, stop: { clientOrderId: `${cid}-s`, stopPrice, price: stopLimit } };
    for (const l of legs) this.inFlight.add(l.cid);
    this.enqueue(i.symbol, async () => {
      try {
        await this.sendOco(list);
      } finally {
        for (const l of legs) this.inFlight.delete(l.cid);
      }
    });
  }

  /**
   * Sends an OCO list under the same rules as send(): an answer that may hide
   * an execution makes both legs UNKNOWN until the list is found or can no
   * longer execute; never a second list while the first may still land.
   */
  private async sendOco(o: PlaceOco): Promise<void> {
    const { venue, logger, clock } = this.deps;
    const legs = [o.limit.clientOrderId, o.stop.clientOrderId];
    // The list is placed whole or not at all: the limit leg stands for it.
    const expected = { symbol: o.symbol, clientOrderId: o.limit.clientOrderId, side: o.side, quantity: o.quantity };
    let sends = 0;
    for (;;) {
      if (this.abort.signal.aborted) return;
      const row = this.rows.row(o.limit.clientOrderId);
      if (!row || (row.status !== 'PENDING' && row.status !== 'UNKNOWN')) return;
      if (row.status === 'UNKNOWN') {
        const outcome = await this.unknown.resolve(expected, row.sent_at ?? row.created_at, this.abort.signal, () => this.stats.lookups++);
        if (outcome.kind === 'found') {
          this.rows.applyOrder(outcome.order);
          const stop = await this.lookup(o.symbol, o.stop.clientOrderId).catch(() => undefined);
          if (stop) this.rows.applyOrder(stop);
          return;
        }
        if (outcome.kind === 'conflict') {
          this.conflict(outcome.order);
          return this.rows.finishRejected(o.stop.clientOrderId, 'CLIENT_ID_CONFLICT: its list partner is not ours');
        }
        if (outcome.kind === 'unresolved') {
          for (const cid of legs) this.rows.setError(cid, `SEND_UNRESOLVED: ${outcome.reason}`);
          logger.error({ list: o.listClientOrderId }, `OCO ${o.listClientOrderId}: outcome still unknown (${outcome.reason}); its legs stay UNKNOWN and are looked up by the poll`);
          return;
        }
        for (const cid of legs) this.rows.setStatus(cid, 'PENDING', 'NOT_PLACED: the list was not found after its recvWindow');
      }
      if (sends >= this.opts.tries) {
        this.stats.rejected++;
        for (const cid of legs) this.rows.finishRejected(cid, `SEND_FAILED: not placed after ${sends} tries`);
        return;
      }
      if (sends > 0 || row.sent_at === null || clock.now() - row.sent_at > SENT_AT_SLACK_MS) for (const cid of legs) this.rows.markSent(cid);
      if (sends > 0) this.stats.retries++;
      sends++;
      this.stats.sent++;
      try {
        for (const v of await venue.placeOco!(o)) this.rows.applyOrder(v);
        return;
      } catch (err) {
        const e = err instanceof VenueError ? err : undefined;
        if (e?.kind === 'AMBIGUOUS' || e?.kind === 'DUPLICATE') {
          for (const cid of legs) this.rows.setStatus(cid, 'UNKNOWN', `OUTCOME_UNKNOWN: ${e.message}`);
          continue;
        }
        if (e?.kind === 'RETRYABLE') {
          if (sends < this.opts.tries) await this.pause(e.details.retryAfterMs ?? jitter(this.opts.retryDelayMs));
          continue;
        }
        if (e?.kind === 'RATE_LIMITED') this.holdUntil = Math.max(this.holdUntil, clock.now() + (e.details.retryAfterMs ?? 120_000));
        this.stats.rejected++;
        const reason = e ? `${e.kind === 'RATE_LIMITED' || e.kind === 'BANNED' ? e.kind : 'VENUE_REJECTED'}: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(err as Error).message}`;
        for (const cid of legs) this.rows.finishRejected(cid, reason);
        return;
      }
    }
  }

  /**
   * A limit order's time to live ran out: cancel it. The order.update that
   * reports the cancel carries reason TTL_EXPIRED; the planner then re-prices
   * or sends the rest at market, as the strategy's YAML says (through risk).
   */
  private expire(cid: string, symbol: string): void {
    this.ttlTimers.delete(cid);
    const row = this.rows.row(cid);
    if (!row || isFinal(row.status)) return;
    this.expiring.add(cid);
    this.onCancel({ kind: 'order.cancel', ts: this.deps.clock.now(), symbol, clientOrderId: cid, reason: 'TTL_EXPIRED' });
  }

  /** An order reached a final status: its TTL timer ends; a cancel the TTL asked for is reported as TTL_EXPIRED. */
  private onFinal(cid: string, status: OrderStatus): string | undefined {
    const ttlExpired = this.expiring.delete(cid) && status === 'CANCELED';
    this.ttlTimers.get(cid)?.cancel();
    this.ttlTimers.delete(cid);
    return ttlExpired ? 'TTL_EXPIRED' : undefined;
  }

  /**
   * Whether the venue may be told reduce-only. The intent's reduceOnly is the
   * owner's (close my own position); the venue only sees the net of all
   * owners. In one-way mode with another owner on the symbol (strategy A long
   * 1, B short 1: the venue is flat), A's reduce-only sell would be refused or
   * expire, so it goes as a plain order: the net it leaves is what the owners
   * hold. Hedge mode closes by positionSide, and Binance refuses reduceOnly there.
   *
   * A market exit on a shared symbol is told reduce-only when the venue's net
   * position is on the side it reduces and at least as large: then reducing
   * the net is exactly what it does, and Binance exempts reduce-only orders
   * from the minimum notional (-4164 "Order's notional must be no smaller
   * than 5 (unless you choose reduce only)"), so a line worth less than that
   * can still be closed. A resting stop stays plain: the net may have changed
   * sides by the time it triggers.
   */
  private venueReduceOnly(i: OrderIntent): boolean {
    if (!i.reduceOnly || i.market !== 'futures') return false;
    if (i.positionSide && i.positionSide !== 'BOTH') return false;
    const { ledger } = this.deps;
    if (!ledger.sharedWith(i.symbol, i.strategy)) return true;
    if (i.type !== 'MARKET') return false;
    const net = ledger.venueExpected(i.symbol);
    return (i.side === 'SELL' ? net : net.neg()).gte(i.quantity);
  }

  /**
   * A spot exit whose coins a protective order locks: cancel that order first
   * and settle it (a stop that filled meanwhile has its fills booked), then
   * sell only what the owner still holds. No window where a filled stop and
   * the exit both sell: the same per-symbol queue runs both, in that order.
   * Returns the order to send, or undefined when nothing is left to sell.
   */
  private async releaseThenSize(order: PlaceOrder, i: OrderIntent, release: readonly string[]): Promise<PlaceOrder | undefined> {
    for (const cid of release) {
      const row = this.rows.row(cid);
      if (!row || isFinal(row.status)) continue;
      await this.cancelNow(order.symbol, cid);
    }
    // A stop that (partly) filled before the cancel: its fills reach the ledger before the exit is sized.
    if (this.rows.gaps.size > 0) await this.safetyNet.pollFillGaps();
    const { ledger } = this.deps;
    const held = ledger.lot(i.strategy, i.symbol, i.positionSide ?? 'BOTH').quantity;
    // Other exits of this owner still working (not this one) will take their share.
    let others = ZERO;
    for (const w of ledger.working({ strategy: i.strategy, symbol: i.symbol })) {
      // Only its other exits share what it holds: an entry on the same side (the short of a reversal
      // right behind this exit) opens a new position and must not shrink the exit.
      if (w.source === 'protective' || w.entry || w.key === order.clientOrderId || w.key === `intent:${i.intentId}` || w.side !== i.side) continue;
      others = others.plus(Dec.max(ZERO, w.quantity.minus(w.filled)));
    }
    const avail = (i.side === 'SELL' ? held : held.neg()).minus(others);
    const inst = this.deps.instruments.get(order.symbol);
    const cap = inst && !ledger.isDust(order.symbol, avail) ? roundQuantity(roundQuantity(avail, inst.filters.lot), inst.filters.marketLot) : ZERO;
    if (cap.gte(order.quantity)) return order;
    if (cap.lte(0)) {
      this.rows.cancelUnsent(order.clientOrderId, 'NOTHING_TO_EXIT: the protective order filled first', 'NOTHING_TO_EXIT');
      return undefined;
    }
    this.rows.resize(order.clientOrderId, cap);
    return { ...order, quantity: cap };
  }

  private deny(intent: OrderIntent, reason: string): void {
    this.stats.denied++;
    this.deps.bus.publish('order.denied', { kind: 'order.denied', ts: this.deps.clock.now(), intent, reason, source: 'execution' });
  }

  /**
   * Sends one order, at most once per answer that proves it was not placed.
   *
   * - An answer that may hide an execution (timeout, 5xx, "status unknown",
   *   "duplicate") makes the row UNKNOWN: it is looked up with backoff until
   *   found, or until a lookup sent after the request can no longer execute
   *   (unknown-outcome.ts) finds nothing. Only then may it be sent again, with
   *   the same client order id, counting as a try.
   * - "Not sent" (a refused connection, -1008, the breaker): retried after
   *   retryDelayMs, up to `tries` sends.
   * - 429 / 418: denied now and never sent later (a late order trades at a
   *   price its signal never saw); new orders are held until Retry-After.
   * - Anything else: rejected with the venue's reason.
   */
  private async send(order: PlaceOrder): Promise<void> {
    const { venue, logger, clock } = this.deps;
    const cid = order.clientOrderId;
    const expected = { symbol: order.symbol, clientOrderId: cid, side: order.side, quantity: order.quantity };
    let resynced = false;
    let sends = 0;
    for (;;) {
      if (this.abort.signal.aborted) {
        // Shutting down mid-send: the row stays PENDING or UNKNOWN and the next start resolves it by lookup.
        logger.warn({ clientOrderId: cid }, `shutdown while sending ${cid}; it is looked up at the next start`);
        return;
      }
      const row = this.rows.row(cid);
      // Any status the venue gave (the stream may answer before the REST call does): it has the order.
      if (!row || (row.status !== 'PENDING' && row.status !== 'UNKNOWN')) return;
      if (row.status === 'UNKNOWN') {
        const outcome = await this.unknown.resolve(expected, row.sent_at ?? row.created_at, this.abort.signal, () => this.stats.lookups++);
        if (outcome.kind === 'found') return this.rows.applyOrder(outcome.order);
        if (outcome.kind === 'conflict') return this.conflict(outcome.order);
        if (outcome.kind === 'unresolved') {
          this.rows.setError(cid, `SEND_UNRESOLVED: ${outcome.reason}`);
          logger.error({ clientOrderId: cid }, `order ${cid}: outcome still unknown (${outcome.reason}); it stays UNKNOWN and is looked up by the poll, never sent again`);
          return;
        }
        // not-placed: that request can no longer execute; a new one may go.
        this.rows.setStatus(cid, 'PENDING', `NOT_PLACED: the request of ${new Date(row.sent_at ?? row.created_at).toISOString()} was not found after its recvWindow`);
      }
      if (sends >= this.opts.tries) {
        this.stats.rejected++;
        return this.rows.finishRejected(cid, `SEND_FAILED: not placed after ${sends} tries`);
      }
      // The row says when its request left: written with the row, and again when this send is a
      // re-send or went later than that (a queue, a released stop), so the window is never short.
      if (sends > 0 || row.sent_at === null || clock.now() - row.sent_at > SENT_AT_SLACK_MS) this.rows.markSent(cid);
      if (sends > 0) this.stats.retries++;
      sends++;
      this.stats.sent++;
      try {
        return this.rows.applyOrder(await venue.place(order));
      } catch (err) {
        const e = err instanceof VenueError ? err : undefined;
        if (e?.kind === 'AMBIGUOUS' || e?.kind === 'DUPLICATE') {
          logger.warn({ clientOrderId: cid, attempt: sends, err: e }, `order ${cid}: outcome unknown (${e.message}); looking it up until its recvWindow has passed`);
          this.rows.setStatus(cid, 'UNKNOWN', `OUTCOME_UNKNOWN: ${e.message}`);
          continue;
        }
        if (e?.kind === 'RETRYABLE') {
          logger.warn({ clientOrderId: cid, attempt: sends, err: e }, `order ${cid} attempt ${sends} not sent: ${e.message}`);
          if (sends < this.opts.tries) await this.pause(e.details.retryAfterMs ?? jitter(this.opts.retryDelayMs));
          continue;
        }
        if (e?.kind === 'CLOCK_SKEW' && !resynced && venue.resyncClock) {
          // -1021 refused it before processing: nothing was placed.
          resynced = true;
          await venue.resyncClock().catch(() => undefined);
          continue;
        }
        if (e?.kind === 'RATE_LIMITED' || e?.kind === 'BANNED') {
          const until = clock.now() + (e.details.retryAfterMs ?? 120_000);
          if (e.kind === 'BANNED') {
            this.stats.banned = true;
            this.bannedUntil = Math.max(this.bannedUntil, until);
          } else if (e.details.code !== ORDER_BUDGET_CODE) this.holdUntil = Math.max(this.holdUntil, until);
          // Over our own order budget (nothing was sent, reads are unaffected): this order is denied;
          // the venue refuses the next ones itself until the window ends.
          logger.error({ symbol: order.symbol, clientOrderId: cid }, `order ${cid} refused (${e.kind}): denied, never sent later; new orders wait until ${new Date(until).toISOString()}`);
          this.stats.rejected++;
          return this.rows.finishRejected(cid, `${e.kind}: ${e.message}`);
        }
        const reason = e ? `VENUE_REJECTED: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(err as Error).message}`;
        this.stats.rejected++;
        this.rows.finishRejected(cid, reason);
        // A filter rejection means our filters are stale (Binance changed them): reload.
        if (e && (e.details.code === -1013 || e.details.code === 'FILTER')) void this.deps.instruments.refresh();
        return;
      }
    }
  }

  /** An order under our client id that is not ours to adopt (another side or quantity): the intent fails, loudly. */
  private conflict(v: VenueOrder): void {
    this.deps.logger.error({ clientOrderId: v.clientOrderId, side: v.side, quantity: v.quantity.toFixed(), exchangeOrderId: v.exchangeOrderId }, `order ${v.clientOrderId}: the exchange holds a different order under this client id (${v.side} ${v.quantity.toFixed()}); not adopted`);
    this.stats.rejected++;
    this.rows.finishRejected(v.clientOrderId, `CLIENT_ID_CONFLICT: the exchange's order ${v.exchangeOrderId} under this id is ${v.side} ${v.quantity.toFixed()}`);
  }

  /** Waits ms on the engine's clock, cut short by stop(). */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const t = this.deps.clock.after(ms, () => {
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      });
      const done = (): void => {
        t.cancel();
        resolve();
      };
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  private async lookup(symbol: string, cid: string): Promise<VenueOrder | undefined> {
    this.stats.lookups++;
    try {
      return await this.deps.venue.fetchOrder(symbol, cid);
    } catch (err) {
      // A failed lookup is not "not found": stay unsure (AMBIGUOUS) and try again later.
      throw new VenueError('AMBIGUOUS', `lookup of ${cid} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private enqueue(symbol: string, job: () => Promise<void>): void {
    const prev = this.queues.get(symbol) ?? Promise.resolve();
    const next = prev.then(job).catch((err) => this.deps.logger.error({ err, symbol }, `execution queue for ${symbol} failed: ${(err as Error).message}`));
    this.queues.set(symbol, next);
    void next.finally(() => {
      if (this.queues.get(symbol) === next) this.queues.delete(symbol);
    });
  }

  // ------------------------------------------------------------- cancel

  private onCancel(cmd: OrderCancel): void {
    this.enqueue(cmd.symbol, async () => {
      await this.cancelNow(cmd.symbol, cmd.clientOrderId);
    });
  }

  /** Cancels one order and applies the venue's final word on it (in the caller's queue slot). */
  private async cancelNow(symbol: string, clientOrderId: string): Promise<void> {
    const { venue, logger } = this.deps;
    // A cancel is idempotent: retry what may not have arrived, resync the clock once on -1021.
    let resynced = false;
    for (let attempt = 1; attempt <= this.opts.tries; attempt++) {
      if (this.abort.signal.aborted) return;
      try {
        this.rows.applyOrder(await venue.cancel(symbol, clientOrderId));
        return;
      } catch (err) {
        if (err instanceof VenueError && err.kind === 'UNKNOWN_ORDER') {
          const found = await venue.fetchOrder(symbol, clientOrderId).catch(() => undefined);
          if (found) this.rows.applyOrder(found);
          else this.rows.finishRejected(clientOrderId, 'CANCEL_UNKNOWN: the venue has no such order');
          return;
        }
        if (err instanceof VenueError && err.kind === 'CLOCK_SKEW' && !resynced && venue.resyncClock) {
          resynced = true;
          await venue.resyncClock().catch(() => undefined);
          continue;
        }
        const retry = err instanceof VenueError && ['AMBIGUOUS', 'RETRYABLE', 'RATE_LIMITED'].includes(err.kind);
        if (!retry || attempt === this.opts.tries) {
          logger.error({ err, clientOrderId, attempt }, `cancel of ${clientOrderId} failed: ${(err as Error).message}`);
          return;
        }
        const wait = err instanceof VenueError && err.details.retryAfterMs !== undefined ? err.details.retryAfterMs : this.opts.retryDelayMs;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  // ------------------------------------------------------- venue events

  private onVenueEvent(e: VenueEvent): void {
    if (e.type === 'order') {
      if (isLiquidation(e.order)) this.rows.adoptLiquidation(e.order);
      // The fill first: the order update that reports it may be the one that makes the order FILLED.
      if (e.fill) this.rows.applyFill(e.fill);
      this.rows.applyOrder(e.order);
    } else if (e.type === 'account') {
      const a = e.account;
      const funding = a.reason === 'FUNDING_FEE' && a.balanceChange !== undefined;
      this.deps.bus.publish('account.updated', {
        kind: 'account.updated',
        ts: this.deps.clock.now(),
        balances: a.balances,
        ...(a.walletBalance ? { walletBalance: a.walletBalance } : {}),
        ...(funding ? { reason: 'FUNDING_FEE' as const, balanceChange: a.balanceChange! } : { reason: 'ORDER' as const }),
      });
    } else if (e.type === 'stream' && e.status === 'reconnected') {
      // Whatever happened while the stream was down: the poll finds it now.
      void this.poll();
    }
  }
}

/** ms plus up to 100 % (spreads retries of many orders over time). */
function jitter(ms: number): number {
  return ms + Math.floor(Math.random() * ms);
}
