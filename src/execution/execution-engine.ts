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
 * non-final orders (the safety net) both feed applyOrder / applyFill. Fills
 * are inserted with the (market, symbol, trade_id) unique key: the second
 * arrival of a fill changes nothing and publishes nothing.
 *
 * Every write is committed before the bus hears about it, so anything that
 * reacts to an order.update or fill can rely on the row being on disk.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { OPEN_ORDER_STATUSES, type OrderCancel, type OrderIntent, type OrderSide, type OrderSource, type OrderStatus, type OrderSubmit, type PositionSide } from '../model/events.ts';
import { checkCallbackRate, checkOrder, roundPrice, roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { OrdersTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { ORDER_BUDGET_CODE, VenueError, type PlaceOco, type PlaceOrder, type Venue, type VenueEvent, type VenueFill, type VenueOrder } from '../venues/venue.ts';
import type { InstrumentBook } from './instrument-book.ts';
import type { LedgerView } from '../ledger/ledger.ts';
import { ClientOrderIds } from './client-order-ids.ts';
import { UnknownOutcome, type UnknownOutcomeOptions } from './unknown-outcome.ts';
import { markCleanStop, recoverOrders, takeCleanStop, type RecoveryReport } from './order-recovery.ts';
import type { IntentSequence } from './intent-sequence.ts';

const FINAL: ReadonlySet<OrderStatus> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);
const RANK: Readonly<Record<OrderStatus, number>> = { PENDING: 0, UNKNOWN: 0, NEW: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELED: 3, REJECTED: 3, EXPIRED: 3 };
const MARKET_TYPES = new Set(['MARKET', 'STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET']);
/** A send this much later than its row's sent_at rewrites it (within the unknown-outcome margin, and no extra write on the hot path). */
const SENT_AT_SLACK_MS = 250;
/** Binance's REQUEST_WEIGHT per minute (exchangeInfo rateLimits): spot 6000, USD-M 2400. */
const WEIGHT_BUDGET: Readonly<Record<Market, number>> = { spot: 6000, futures: 2400 };

/** Binance's own close-out orders: liquidation ("autoclose-") and auto-deleveraging ("adl_autoclose"). */
export function isLiquidation(o: Pick<VenueOrder, 'type' | 'clientOrderId'>): boolean {
  return o.type === 'LIQUIDATION' || o.clientOrderId.startsWith('autoclose-') || o.clientOrderId.startsWith('adl_autoclose');
}

export function isFinal(status: string): boolean {
  return FINAL.has(status as OrderStatus);
}

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
  private polling = false;
  /** Limit orders with a time to live: their timers, and the ones being cancelled for it. */
  private readonly ttlTimers = new Map<string, TimerHandle>();
  private readonly expiring = new Set<string>();
  /**
   * Orders whose venue-reported filled quantity is ahead of the fills we hold
   * (a place response that said FILLED while the stream was down): the poll
   * fetches their fills, final or not, until the two agree.
   */
  private readonly fillGaps = new Map<string, { symbol: string; since: number }>();
  /** After a 429: non-essential calls (the poll) wait until then (our clock). */
  private holdUntil = 0;
  /** After a 418: no new orders until then (the ban's end as Binance states it). */
  private bannedUntil = 0;
  /** Order rows written by this process (only the chaos test hook reads it). */
  private chaosRows = 0;
  /** When this engine started: PENDING rows older than this were written by an earlier process. */
  private startedAt = 0;
  /** Whether the run before this one stopped cleanly (else recover() scans the exchange). */
  private previousStopWasClean = true;
  readonly stats: ExecutionStats = { sent: 0, denied: 0, rejected: 0, retries: 0, lookups: 0, fills: 0, duplicateFills: 0, pollErrors: 0, pollsHeldBack: 0, banned: false };

  /** The one maker of client order ids (the kill switch and `trader order` read theirs here). */
  readonly ids: ClientOrderIds;
  private readonly unknown: UnknownOutcome;

  constructor(private readonly deps: ExecutionDeps) {
    this.opts = { ...DEFAULT_EXECUTION, ...deps.options };
    this.ids = deps.ids ?? ClientOrderIds.of(deps.store, deps.clock.now());
    this.unknown = new UnknownOutcome(deps.venue, deps.clock, this.opts.unknownOutcome);
  }

  start(): void {
    const { bus, venue, clock } = this.deps;
    this.startedAt = clock.now();
    this.previousStopWasClean = takeCleanStop(this.deps.store, clock.now());
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
    if (this.previousStopWasClean) markCleanStop(this.deps.store, this.deps.clock.now());
  }

  /**
   * After an unclean stop: rebuilds the order rows (and, through the poll,
   * the fills) of this database's namespace that the exchange holds and the
   * database lost, and moves the intent sequence past every id found
   * (order-recovery.ts). Runs before anything trades.
   */
  async recover(o: { sequence: Pick<IntentSequence, 'skipPast'>; symbols: () => readonly string[]; owners: () => readonly string[] }): Promise<RecoveryReport> {
    const { store, venue, clock, logger, market } = this.deps;
    const report = await recoverOrders({ store, venue, clock, logger, market, ids: this.ids, applyOrder: (v) => this.applyOrder(v), ...o }, this.previousStopWasClean);
    if (report.scanned) await this.poll();
    this.previousStopWasClean = true;
    return report;
  }

  /** Waits until every queued send has finished (tests, kill switch). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  /** Our non-final orders (rows), optionally for one symbol. */
  openOrders(symbol?: string): OrdersTable[] {
    const { store } = this.deps;
    let q = store.db.selectFrom('orders').selectAll().where('market', '=', this.deps.market).where('status', 'in', [...OPEN_ORDER_STATUSES]);
    if (symbol) q = q.where('symbol', '=', symbol);
    return store.all(q.orderBy('created_at'));
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
    const prepared = prepareOrder(inst, i, this.deps.referencePrice(i.symbol), this.openOrders(i.symbol).length);
    if ('reason' in prepared) return this.deny(i, prepared.reason);

    const cid = this.ids.forIntent(i.strategy, i.seq);
    const now = this.deps.clock.now();
    const { store } = this.deps;
    const inserted = store.run(
      store.db
        .insertInto('orders')
        .values({
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
        })
        .onConflict((oc) => oc.doNothing()),
    );
    if (inserted.changes === 0) return this.deny(i, `DUPLICATE_INTENT: intent=${i.intentId} client_order_id=${cid}`);
    // Chaos-suite test hook (tests/chaos): die by SIGKILL between "order row committed" and "request
    // sent", the crash window a restart must resolve. Inert unless TRADER_CHAOS_CRASH_AFTER_ROW=<n> is set:
    // then the n-th order row this process writes is its last act.
    if (process.env.TRADER_CHAOS_CRASH_AFTER_ROW && ++this.chaosRows >= Number(process.env.TRADER_CHAOS_CRASH_AFTER_ROW)) process.kill(process.pid, 'SIGKILL');

    this.publishUpdate(cid, i, 'PENDING', ZERO);
    const order: PlaceOrder = {
      symbol: i.symbol,
      side: i.side,
      type: i.type,
      quantity: prepared.quantity,
      clientOrderId: cid,
      ...(prepared.price ? { price: prepared.price } : {}),
      ...(prepared.stopPrice ? { stopPrice: prepared.stopPrice } : {}),
      ...(this.venueReduceOnly(i) ? { reduceOnly: true } : {}),
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
    const { venue, store, clock } = this.deps;
    if (!venue.placeOco) return this.deny(i, `OCO_UNSUPPORTED: venue=${venue.name}`);
    if (!i.price || !i.stopPrice || !i.stopLimitPrice) return this.deny(i, 'OCO_INCOMPLETE: an OCO needs price (take-profit), stopPrice and stopLimitPrice');
    const quantity = roundQuantity(i.quantity, inst.filters.lot);
    // The take-profit rests on the passive side; the stop triggers no later than asked; its limit lets it fill.
    const limit = roundPrice(i.price, inst, i.side === 'SELL' ? 'SELL' : 'BUY');
    const stopPrice = roundPrice(i.stopPrice, inst, i.side === 'SELL' ? 'SELL' : 'BUY');
    const stopLimit = roundPrice(i.stopLimitPrice, inst, i.side === 'SELL' ? 'BUY' : 'SELL');
    if (quantity.lte(0)) return this.deny(i, `QTY_ROUNDS_TO_ZERO: quantity=${i.quantity.toFixed()} step=${inst.filters.lot.stepSize.toFixed()}`);
    const open = this.openOrders(i.symbol).length;
    for (const leg of [{ price: limit }, { price: stopLimit, stopPrice }]) {
      const failure = checkOrder(inst, { side: i.side, isMarket: false, quantity, ...leg }, { ...(this.deps.referencePrice(i.symbol) ? { referencePrice: this.deps.referencePrice(i.symbol)! } : {}), openOrders: open + 1 });
      if (failure) return this.deny(i, failure.reason);
    }
    const cid = this.ids.forIntent(i.strategy, i.seq);
    const legs = [
      { cid, intentId: i.intentId, type: 'LIMIT_MAKER', price: limit, stop: null as Dec | null, tif: null as string | null },
      { cid: `${cid}-s`, intentId: `${i.intentId}#stop`, type: 'STOP_LOSS_LIMIT', price: stopLimit, stop: stopPrice, tif: 'GTC' },
    ];
    const now = clock.now();
    let written = 0;
    store.sqlite.transaction(() => {
      for (const l of legs) {
        written += store.run(
          store.db
            .insertInto('orders')
            .values({ client_order_id: l.cid, intent_id: l.intentId, strategy: i.strategy, market: i.market, symbol: i.symbol, side: i.side, type: l.type, time_in_force: l.tif, quantity: quantity.toFixed(), price: l.price.toFixed(), stop_price: l.stop?.toFixed() ?? null, reduce_only: i.reduceOnly ? 1 : 0, status: 'PENDING', exchange_order_id: null, filled_quantity: '0', average_price: null, error: null, created_at: now, updated_at: now, source: i.source, position_side: 'BOTH', sent_at: now })
            .onConflict((oc) => oc.doNothing()),
        ).changes;
      }
    })();
    if (written === 0) return this.deny(i, `DUPLICATE_INTENT: intent=${i.intentId} client_order_id=${cid}`);
    for (const l of legs) this.publishUpdate(l.cid, i, 'PENDING', ZERO);
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
      const row = this.row(o.limit.clientOrderId);
      if (!row || (row.status !== 'PENDING' && row.status !== 'UNKNOWN')) return;
      if (row.status === 'UNKNOWN') {
        const outcome = await this.unknown.resolve(expected, row.sent_at ?? row.created_at, this.abort.signal, () => this.stats.lookups++);
        if (outcome.kind === 'found') {
          this.applyOrder(outcome.order);
          const stop = await this.lookup(o.symbol, o.stop.clientOrderId).catch(() => undefined);
          if (stop) this.applyOrder(stop);
          return;
        }
        if (outcome.kind === 'conflict') {
          this.conflict(outcome.order);
          return this.finishRejected(o.stop.clientOrderId, 'CLIENT_ID_CONFLICT: its list partner is not ours');
        }
        if (outcome.kind === 'unresolved') {
          for (const cid of legs) this.setError(cid, `SEND_UNRESOLVED: ${outcome.reason}`);
          logger.error({ list: o.listClientOrderId }, `OCO ${o.listClientOrderId}: outcome still unknown (${outcome.reason}); its legs stay UNKNOWN and are looked up by the poll`);
          return;
        }
        for (const cid of legs) this.setStatus(cid, 'PENDING', 'NOT_PLACED: the list was not found after its recvWindow');
      }
      if (sends >= this.opts.tries) {
        this.stats.rejected++;
        for (const cid of legs) this.finishRejected(cid, `SEND_FAILED: not placed after ${sends} tries`);
        return;
      }
      if (sends > 0 || row.sent_at === null || clock.now() - row.sent_at > SENT_AT_SLACK_MS) for (const cid of legs) this.markSent(cid);
      if (sends > 0) this.stats.retries++;
      sends++;
      this.stats.sent++;
      try {
        for (const v of await venue.placeOco!(o)) this.applyOrder(v);
        return;
      } catch (err) {
        const e = err instanceof VenueError ? err : undefined;
        if (e?.kind === 'AMBIGUOUS' || e?.kind === 'DUPLICATE') {
          for (const cid of legs) this.setStatus(cid, 'UNKNOWN', `OUTCOME_UNKNOWN: ${e.message}`);
          continue;
        }
        if (e?.kind === 'RETRYABLE') {
          if (sends < this.opts.tries) await this.pause(e.details.retryAfterMs ?? jitter(this.opts.retryDelayMs));
          continue;
        }
        if (e?.kind === 'RATE_LIMITED') this.holdUntil = Math.max(this.holdUntil, clock.now() + (e.details.retryAfterMs ?? 120_000));
        this.stats.rejected++;
        const reason = e ? `${e.kind === 'RATE_LIMITED' || e.kind === 'BANNED' ? e.kind : 'VENUE_REJECTED'}: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(err as Error).message}`;
        for (const cid of legs) this.finishRejected(cid, reason);
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
    const row = this.row(cid);
    if (!row || isFinal(row.status)) return;
    this.expiring.add(cid);
    this.onCancel({ kind: 'order.cancel', ts: this.deps.clock.now(), symbol, clientOrderId: cid, reason: 'TTL_EXPIRED' });
  }

  /**
   * Whether the venue may be told reduce-only. The intent's reduceOnly is the
   * owner's (close my own position); the venue only sees the net of all
   * owners. In one-way mode with another owner on the symbol (strategy A long
   * 1, B short 1: the venue is flat), A's reduce-only sell would be refused or
   * expire, so it goes as a plain order: the net it leaves is what the owners
   * hold. Hedge mode closes by positionSide, and Binance refuses reduceOnly there.
   */
  private venueReduceOnly(i: OrderIntent): boolean {
    if (!i.reduceOnly || i.market !== 'futures') return false;
    if (i.positionSide && i.positionSide !== 'BOTH') return false;
    return !this.deps.ledger.sharedWith(i.symbol, i.strategy);
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
      const row = this.row(cid);
      if (!row || isFinal(row.status)) continue;
      await this.cancelNow(order.symbol, cid);
    }
    // A stop that (partly) filled before the cancel: its fills reach the ledger before the exit is sized.
    if (this.fillGaps.size > 0) await this.pollFillGaps();
    const { ledger } = this.deps;
    const held = ledger.lot(i.strategy, i.symbol, i.positionSide ?? 'BOTH').quantity;
    // Other exits of this owner still working (not this one) will take their share.
    let others = ZERO;
    for (const w of ledger.working({ strategy: i.strategy, symbol: i.symbol })) {
      if (w.source === 'protective' || w.key === order.clientOrderId || w.key === `intent:${i.intentId}` || w.side !== i.side) continue;
      others = others.plus(Dec.max(ZERO, w.quantity.minus(w.filled)));
    }
    const avail = (i.side === 'SELL' ? held : held.neg()).minus(others);
    const inst = this.deps.instruments.get(order.symbol);
    const cap = inst && !ledger.isDust(order.symbol, avail) ? roundQuantity(roundQuantity(avail, inst.filters.lot), inst.filters.marketLot) : ZERO;
    if (cap.gte(order.quantity)) return order;
    const { store, clock } = this.deps;
    if (cap.lte(0)) {
      store.run(store.db.updateTable('orders').set({ status: 'CANCELED', error: 'NOTHING_TO_EXIT: the protective order filled first', updated_at: clock.now() }).where('client_order_id', '=', order.clientOrderId));
      this.publishRowUpdate(order.clientOrderId, 'CANCELED', 'NOTHING_TO_EXIT');
      return undefined;
    }
    store.run(store.db.updateTable('orders').set({ quantity: cap.toFixed(), updated_at: clock.now() }).where('client_order_id', '=', order.clientOrderId));
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
      const row = this.row(cid);
      // Any status the venue gave (the stream may answer before the REST call does): it has the order.
      if (!row || (row.status !== 'PENDING' && row.status !== 'UNKNOWN')) return;
      if (row.status === 'UNKNOWN') {
        const outcome = await this.unknown.resolve(expected, row.sent_at ?? row.created_at, this.abort.signal, () => this.stats.lookups++);
        if (outcome.kind === 'found') return this.applyOrder(outcome.order);
        if (outcome.kind === 'conflict') return this.conflict(outcome.order);
        if (outcome.kind === 'unresolved') {
          this.setError(cid, `SEND_UNRESOLVED: ${outcome.reason}`);
          logger.error({ clientOrderId: cid }, `order ${cid}: outcome still unknown (${outcome.reason}); it stays UNKNOWN and is looked up by the poll, never sent again`);
          return;
        }
        // not-placed: that request can no longer execute; a new one may go.
        this.setStatus(cid, 'PENDING', `NOT_PLACED: the request of ${new Date(row.sent_at ?? row.created_at).toISOString()} was not found after its recvWindow`);
      }
      if (sends >= this.opts.tries) {
        this.stats.rejected++;
        return this.finishRejected(cid, `SEND_FAILED: not placed after ${sends} tries`);
      }
      // The row says when its request left: written with the row, and again when this send is a
      // re-send or went later than that (a queue, a released stop), so the window is never short.
      if (sends > 0 || row.sent_at === null || clock.now() - row.sent_at > SENT_AT_SLACK_MS) this.markSent(cid);
      if (sends > 0) this.stats.retries++;
      sends++;
      this.stats.sent++;
      try {
        return this.applyOrder(await venue.place(order));
      } catch (err) {
        const e = err instanceof VenueError ? err : undefined;
        if (e?.kind === 'AMBIGUOUS' || e?.kind === 'DUPLICATE') {
          logger.warn({ clientOrderId: cid, attempt: sends, err: e }, `order ${cid}: outcome unknown (${e.message}); looking it up until its recvWindow has passed`);
          this.setStatus(cid, 'UNKNOWN', `OUTCOME_UNKNOWN: ${e.message}`);
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
          return this.finishRejected(cid, `${e.kind}: ${e.message}`);
        }
        const reason = e ? `VENUE_REJECTED: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(err as Error).message}`;
        this.stats.rejected++;
        this.finishRejected(cid, reason);
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
    this.finishRejected(v.clientOrderId, `CLIENT_ID_CONFLICT: the exchange's order ${v.exchangeOrderId} under this id is ${v.side} ${v.quantity.toFixed()}`);
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

  /** A placement request is about to leave: from now its row may execute until sent_at + the request window. */
  private markSent(cid: string): void {
    const { store, clock } = this.deps;
    const now = clock.now();
    store.run(store.db.updateTable('orders').set({ sent_at: now, updated_at: now }).where('client_order_id', '=', cid));
  }

  /** A local status change (PENDING <-> UNKNOWN), on disk and on the bus. */
  private setStatus(cid: string, status: 'PENDING' | 'UNKNOWN', error: string): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ status, error, updated_at: clock.now() }).where('client_order_id', '=', cid).where('status', 'in', ['PENDING', 'UNKNOWN']));
    this.publishRowUpdate(cid, status, error.split(':')[0]);
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
        this.applyOrder(await venue.cancel(symbol, clientOrderId));
        return;
      } catch (err) {
        if (err instanceof VenueError && err.kind === 'UNKNOWN_ORDER') {
          const found = await venue.fetchOrder(symbol, clientOrderId).catch(() => undefined);
          if (found) this.applyOrder(found);
          else this.finishRejected(clientOrderId, 'CANCEL_UNKNOWN: the venue has no such order');
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
      if (isLiquidation(e.order)) this.adoptLiquidation(e.order);
      // The fill first: the order update that reports it may be the one that makes the order FILLED.
      if (e.fill) this.applyFill(e.fill);
      this.applyOrder(e.order);
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

  /**
   * The exchange closed a position itself (liquidation: client id
   * "autoclose-...", type LIQUIDATION). It is our position, so its fill is
   * ours to count: the order gets a row (strategy "liquidation") before its
   * fill is applied, once (the intent id is the exchange order id).
   */
  private adoptLiquidation(v: VenueOrder): void {
    const { store, clock, market } = this.deps;
    if (this.row(v.clientOrderId)) return;
    const now = clock.now();
    store.run(
      store.db
        .insertInto('orders')
        .values({
          client_order_id: v.clientOrderId,
          intent_id: `liquidation:${v.symbol}:${v.exchangeOrderId}`,
          strategy: 'liquidation',
          market,
          symbol: v.symbol,
          side: v.side,
          type: 'MARKET',
          time_in_force: null,
          quantity: v.quantity.toFixed(),
          price: null,
          stop_price: null,
          reduce_only: 1,
          status: 'NEW',
          exchange_order_id: v.exchangeOrderId,
          filled_quantity: '0',
          average_price: null,
          error: null,
          created_at: now,
          updated_at: now,
          source: 'strategy',
          position_side: v.positionSide ?? 'BOTH',
          sent_at: null,
        })
        .onConflict((oc) => oc.doNothing()),
    );
    this.deps.logger.error({ symbol: v.symbol, side: v.side, quantity: v.quantity.toFixed(), exchangeOrderId: v.exchangeOrderId }, `${v.symbol} position LIQUIDATED by the exchange: ${v.side} ${v.quantity.toFixed()}`);
  }

  private row(cid: string): OrdersTable | undefined {
    const { store } = this.deps;
    return store.all(store.db.selectFrom('orders').selectAll().where('client_order_id', '=', cid))[0];
  }

  /** Applies what the venue says about an order: status only moves forward, filled quantity only grows. */
  applyOrder(v: VenueOrder): void {
    const row = this.row(v.clientOrderId);
    if (!row) return; // Not ours: reconciliation decides about external orders.
    const cur = row.status as OrderStatus;
    const filled = new Dec(row.filled_quantity);
    const newFilled = Dec.max(filled, v.filledQuantity);
    const advance = RANK[v.status] > RANK[cur] || (RANK[v.status] === RANK[cur] && v.status !== cur && !isFinal(cur));
    const status = advance ? v.status : cur;
    if (status === cur && newFilled.eq(filled) && row.exchange_order_id === v.exchangeOrderId) return;
    const { store, clock } = this.deps;
    const ttlExpired = isFinal(status) && this.expiring.delete(v.clientOrderId) && status === 'CANCELED';
    if (newFilled.gt(this.recordedFillQty(v.clientOrderId))) this.fillGaps.set(v.clientOrderId, { symbol: row.symbol, since: row.created_at });
    else this.fillGaps.delete(v.clientOrderId);
    if (isFinal(status)) {
      this.ttlTimers.get(v.clientOrderId)?.cancel();
      this.ttlTimers.delete(v.clientOrderId);
    }
    store.run(
      store.db
        .updateTable('orders')
        .set({ status, filled_quantity: newFilled.toFixed(), average_price: v.averagePrice?.toFixed() ?? row.average_price, exchange_order_id: v.exchangeOrderId, updated_at: clock.now() })
        .where('client_order_id', '=', v.clientOrderId),
    );
    this.deps.bus.publish('order.update', {
      ...rowUpdate(row, clock.now()),
      eventTs: v.updateTime,
      exchangeOrderId: v.exchangeOrderId,
      status,
      filledQuantity: newFilled,
      ...(v.averagePrice ? { averagePrice: v.averagePrice } : {}),
      ...(ttlExpired ? { reason: 'TTL_EXPIRED' } : {}),
    });
  }

  /** Records a fill once: a second arrival (stream and poll) is dropped by the unique key. */
  applyFill(f: VenueFill): void {
    const { store, clock, market } = this.deps;
    // Binance's trade lists (the poll's source) carry no client order id: find the order by its exchange id.
    const row = f.clientOrderId ? this.row(f.clientOrderId) : this.rowByExchangeId(f.symbol, f.exchangeOrderId);
    if (!row) return; // A fill of an order we did not place: reconciliation's call.
    const res = store.run(
      store.db
        .insertInto('fills')
        .values({
          market,
          symbol: f.symbol,
          trade_id: f.tradeId,
          client_order_id: row.client_order_id,
          exchange_order_id: f.exchangeOrderId,
          side: f.side,
          price: f.price.toFixed(),
          quantity: f.quantity.toFixed(),
          fee: f.fee.toFixed(),
          fee_asset: f.feeAsset,
          realized_pnl: f.realizedPnl?.toFixed() ?? null,
          is_maker: f.isMaker ? 1 : 0,
          ts: f.time,
        })
        .onConflict((oc) => oc.doNothing()),
    );
    if (res.changes === 0) {
      this.stats.duplicateFills++;
      return;
    }
    this.stats.fills++;
    const gap = this.fillGaps.get(row.client_order_id);
    if (gap && !new Dec(row.filled_quantity).gt(this.recordedFillQty(row.client_order_id))) this.fillGaps.delete(row.client_order_id);
    this.deps.bus.publish('fill', {
      kind: 'fill',
      ts: clock.now(),
      eventTs: f.time,
      tradeId: f.tradeId,
      clientOrderId: row.client_order_id,
      strategy: row.strategy,
      ...(row.position_side !== 'BOTH' ? { positionSide: row.position_side as PositionSide } : {}),
      market,
      symbol: f.symbol,
      side: f.side,
      price: f.price,
      quantity: f.quantity,
      fee: f.fee,
      feeAsset: f.feeAsset,
      isMaker: f.isMaker,
      ...(f.realizedPnl ? { realizedPnl: f.realizedPnl } : {}),
    });
  }

  private finishRejected(cid: string, reason: string): void {
    const row = this.row(cid);
    if (!row || isFinal(row.status)) return;
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ status: 'REJECTED', error: reason, updated_at: clock.now() }).where('client_order_id', '=', cid));
    this.deps.bus.publish('order.update', { ...rowUpdate(row, clock.now()), status: 'REJECTED', filledQuantity: new Dec(row.filled_quantity), reason });
  }

  private setError(cid: string, error: string): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ error, updated_at: clock.now() }).where('client_order_id', '=', cid));
  }

  private publishUpdate(cid: string, i: OrderIntent, status: OrderStatus, filled: Dec): void {
    const row = this.row(cid);
    if (row) this.deps.bus.publish('order.update', { ...rowUpdate(row, this.deps.clock.now()), status, filledQuantity: filled });
  }

  /** The row's current state on the bus (a local status change, e.g. an exit with nothing left to sell). */
  private publishRowUpdate(cid: string, status: OrderStatus, reason?: string): void {
    const row = this.row(cid);
    if (row) this.deps.bus.publish('order.update', { ...rowUpdate(row, this.deps.clock.now()), status, filledQuantity: new Dec(row.filled_quantity), ...(reason ? { reason } : {}) });
  }

  // ------------------------------------------------------------- poll

  /**
   * The safety net: every non-final order is checked against the venue, and
   * the fills of any order whose filled quantity moved are fetched. Anything
   * the stream already delivered is a no-op here.
   */
  async poll(): Promise<void> {
    if (this.polling) return;
    // The poll is the safety net, not the main path: it gives way when the budget is tight.
    if (this.deps.clock.now() < this.holdUntil) {
      this.stats.pollsHeldBack++;
      return;
    }
    const usage = this.deps.venue.usage?.();
    if (usage?.usedWeight1m !== undefined && usage.usedWeight1m > WEIGHT_BUDGET[this.deps.market] * 0.8) {
      this.stats.pollsHeldBack++;
      this.deps.logger.warn({ usedWeight1m: usage.usedWeight1m, limit: WEIGHT_BUDGET[this.deps.market] }, `request weight ${usage.usedWeight1m}/${WEIGHT_BUDGET[this.deps.market]} this minute: order poll held back`);
      return;
    }
    this.polling = true;
    try {
      const rows = this.openOrders().filter((r) => !this.inFlight.has(r.client_order_id));
      const bySymbol = new Map<string, OrdersTable[]>();
      for (const r of rows) bySymbol.set(r.symbol, [...(bySymbol.get(r.symbol) ?? []), r]);
      for (const [symbol, list] of bySymbol) {
        if (this.abort.signal.aborted) return;
        try {
          await this.pollSymbol(symbol, list);
        } catch (err) {
          this.stats.pollErrors++;
          this.deps.logger.warn({ err, symbol }, `order poll for ${symbol} failed: ${(err as Error).message}`);
        }
      }
      await this.pollFillGaps();
    } finally {
      this.polling = false;
    }
  }

  /** Fetches the fills of orders (final ones included) whose fills we do not all hold yet. */
  private async pollFillGaps(): Promise<void> {
    const bySymbol = new Map<string, number>();
    for (const [cid, g] of this.fillGaps) {
      if (this.inFlight.has(cid)) continue;
      bySymbol.set(g.symbol, Math.min(bySymbol.get(g.symbol) ?? g.since, g.since));
    }
    for (const [symbol, since] of bySymbol) {
      if (this.abort.signal.aborted) return;
      try {
        for (const f of await this.deps.venue.fills(symbol, since - 60_000)) this.applyFill(f);
      } catch (err) {
        this.stats.pollErrors++;
        this.deps.logger.warn({ err, symbol }, `fill poll for ${symbol} failed: ${(err as Error).message}`);
      }
    }
  }

  private async pollSymbol(symbol: string, rows: OrdersTable[]): Promise<void> {
    const { venue, clock } = this.deps;
    const open = new Map((await venue.openOrders(symbol)).map((o) => [o.clientOrderId, o]));
    // The venue's trade list names orders by exchange id only; a row may not have that id yet (PENDING).
    const cidOf = new Map([...open.values()].map((o) => [o.exchangeOrderId, o.clientOrderId]));
    const applyFills = async (since: number): Promise<void> => {
      for (const f of await venue.fills(symbol, since)) this.applyFill(f.clientOrderId ? f : { ...f, clientOrderId: cidOf.get(f.exchangeOrderId) });
    };
    let fetchFillsSince: number | undefined;
    for (const r of rows) {
      let v = open.get(r.client_order_id);
      if (!v) {
        // Not open on the venue: finished while we were not looking, or never arrived.
        // A row an earlier process wrote (killed between writing it and hearing back) has no send
        // in flight any more: look it up now, or the reconcile that runs at start cannot tell whose
        // fill the venue reports (its row has no exchange id yet) and halts the symbol as unexplained.
        const unanswered = r.status === 'PENDING' || r.status === 'UNKNOWN';
        if (r.status === 'PENDING' && r.created_at >= this.startedAt && clock.now() - r.created_at < this.opts.ackTimeoutMs) continue;
        if (unanswered) {
          // Its request may still execute until its window closes: only a lookup sent after that says "not placed".
          const verdict = await this.unknown.check({ symbol, clientOrderId: r.client_order_id, side: r.side as OrderSide, quantity: new Dec(r.quantity) }, r.sent_at ?? r.created_at);
          if (!verdict) continue;
          if (verdict.kind === 'not-placed') {
            this.finishRejected(r.client_order_id, `NO_ACK: the venue has no order ${r.client_order_id} ${Math.round((clock.now() - (r.sent_at ?? r.created_at)) / 1000)} s after its request left, and it can no longer execute`);
            continue;
          }
          if (verdict.kind === 'conflict') {
            this.conflict(verdict.order);
            continue;
          }
          v = verdict.order;
        } else v = await venue.fetchOrder(symbol, r.client_order_id);
        if (!v) continue;
        cidOf.set(v.exchangeOrderId, r.client_order_id);
      }
      if (v.filledQuantity.gt(this.recordedFillQty(r.client_order_id))) fetchFillsSince = Math.min(fetchFillsSince ?? r.created_at, r.created_at);
      // Fills before the order's final status, as the stream would have it.
      if (fetchFillsSince !== undefined && isFinal(v.status)) {
        await applyFills(fetchFillsSince - 60_000);
        fetchFillsSince = undefined;
      }
      this.applyOrder(v);
    }
    if (fetchFillsSince !== undefined) await applyFills(fetchFillsSince - 60_000);
  }

  /** Our row for an exchange order id (fills from the venue's trade list carry no client order id). */
  private rowByExchangeId(symbol: string, exchangeOrderId: string): OrdersTable | undefined {
    const { store, market } = this.deps;
    return store.all(store.db.selectFrom('orders').selectAll().where('market', '=', market).where('symbol', '=', symbol).where('exchange_order_id', '=', exchangeOrderId))[0];
  }

  private recordedFillQty(cid: string): Dec {
    const { store } = this.deps;
    const rows = store.all(store.db.selectFrom('fills').select('quantity').where('client_order_id', '=', cid));
    return rows.reduce((s, r) => s.plus(r.quantity), ZERO);
  }
}

/** The fields every order.update of a row carries: who owns it, who asked, what it is. */
function rowUpdate(row: OrdersTable, ts: number) {
  return {
    kind: 'order.update' as const,
    ts,
    clientOrderId: row.client_order_id,
    intentId: row.intent_id,
    strategy: row.strategy,
    source: row.source as OrderSource,
    market: row.market as Market,
    side: row.side as OrderSide,
    reduceOnly: row.reduce_only === 1,
    positionSide: row.position_side as PositionSide,
    quantity: new Dec(row.quantity),
    symbol: row.symbol,
  };
}

export interface PreparedOrder {
  readonly quantity: Dec;
  readonly price?: Dec;
  readonly stopPrice?: Dec;
}

/**
 * Rounds an intent to the instrument and checks every filter. Quantity is
 * truncated (never rounded up) to LOT_SIZE and, for orders that execute at
 * market, MARKET_LOT_SIZE too; prices go to the tick on the passive side.
 */
export function prepareOrder(inst: Instrument, i: Pick<OrderIntent, 'type' | 'side' | 'quantity' | 'price' | 'stopPrice' | 'reduceOnly' | 'callbackRate'>, referencePrice: Dec | undefined, openOrders: number): PreparedOrder | { reason: string } {
  const isMarket = MARKET_TYPES.has(i.type);
  let quantity = roundQuantity(i.quantity, inst.filters.lot);
  if (isMarket) quantity = roundQuantity(quantity, inst.filters.marketLot);
  const price = i.price ? roundPrice(i.price, inst, i.side) : undefined;
  // A stop rounds toward triggering sooner (a sell stop up, a buy stop down): never later than asked.
  const stopPrice = i.stopPrice ? roundPrice(i.stopPrice, inst, i.side === 'SELL' ? 'SELL' : 'BUY') : undefined;
  if (quantity.lte(0)) return { reason: `QTY_ROUNDS_TO_ZERO: quantity=${i.quantity.toFixed()} step=${inst.filters.lot.stepSize.toFixed()}` };
  if (i.type === 'TRAILING_STOP_MARKET') {
    const bad = i.callbackRate ? checkCallbackRate(i.callbackRate) : 'CALLBACK_RATE_MISSING: a trailing stop needs callbackRate';
    if (bad) return { reason: bad };
  }
  const failure = checkOrder(
    inst,
    { side: i.side, isMarket, quantity, ...(price ? { price } : {}), ...(stopPrice ? { stopPrice } : {}), ...(i.reduceOnly ? { reduceOnly: true } : {}) },
    { ...(referencePrice ? { referencePrice } : {}), openOrders },
  );
  if (failure) return { reason: failure.reason };
  return { quantity, ...(price ? { price } : {}), ...(stopPrice ? { stopPrice } : {}) };
}

/** ms plus up to 100 % (spreads retries of many orders over time). */
function jitter(ms: number): number {
  return ms + Math.floor(Math.random() * ms);
}
