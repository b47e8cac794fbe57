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
import pRetry, { AbortError } from 'p-retry';
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import { clientOrderId as makeClientOrderId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { OrderCancel, OrderIntent, OrderSide, OrderSource, OrderStatus, OrderSubmit, PositionSide } from '../model/events.ts';
import { checkCallbackRate, checkOrder, roundPrice, roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { OrdersTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { VenueError, type PlaceOco, type PlaceOrder, type Venue, type VenueEvent, type VenueFill, type VenueOrder } from '../venues/venue.ts';
import type { InstrumentBook } from './instrument-book.ts';
import type { LedgerView } from '../ledger/ledger.ts';

const FINAL: ReadonlySet<OrderStatus> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);
const RANK: Readonly<Record<OrderStatus, number>> = { PENDING: 0, NEW: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELED: 3, REJECTED: 3, EXPIRED: 3 };
const MARKET_TYPES = new Set(['MARKET', 'STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET']);
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
}

export const DEFAULT_EXECUTION: ExecutionOptions = { tries: 5, retryDelayMs: 5000, pollMs: 5000, ackTimeoutMs: 30_000 };

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
  readonly stats: ExecutionStats = { sent: 0, denied: 0, rejected: 0, retries: 0, lookups: 0, fills: 0, duplicateFills: 0, pollErrors: 0, pollsHeldBack: 0, banned: false };

  constructor(private readonly deps: ExecutionDeps) {
    this.opts = { ...DEFAULT_EXECUTION, ...deps.options };
  }

  start(): void {
    const { bus, venue, clock } = this.deps;
    this.startedAt = clock.now();
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
  }

  /** Waits until every queued send has finished (tests, kill switch). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  /** Our non-final orders (rows), optionally for one symbol. */
  openOrders(symbol?: string): OrdersTable[] {
    const { store } = this.deps;
    let q = store.db.selectFrom('orders').selectAll().where('market', '=', this.deps.market).where('status', 'in', ['PENDING', 'NEW', 'PARTIALLY_FILLED']);
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

    const cid = makeClientOrderId(i.strategy, i.symbol, i.seq);
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
    const cid = makeClientOrderId(i.strategy, i.symbol, i.seq);
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
            .values({ client_order_id: l.cid, intent_id: l.intentId, strategy: i.strategy, market: i.market, symbol: i.symbol, side: i.side, type: l.type, time_in_force: l.tif, quantity: quantity.toFixed(), price: l.price.toFixed(), stop_price: l.stop?.toFixed() ?? null, reduce_only: i.reduceOnly ? 1 : 0, status: 'PENDING', exchange_order_id: null, filled_quantity: '0', average_price: null, error: null, created_at: now, updated_at: now, source: i.source, position_side: 'BOTH' })
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

  /** Sends an OCO list; a try that may have reached the venue is resolved by looking the legs up first. */
  private async sendOco(o: PlaceOco): Promise<void> {
    const { venue, logger } = this.deps;
    const legs = [o.limit.clientOrderId, o.stop.clientOrderId];
    let unsure = false;
    for (let attempt = 1; attempt <= this.opts.tries; attempt++) {
      if (this.abort.signal.aborted) return;
      try {
        if (unsure) {
          const found = await Promise.all(legs.map((cid) => this.lookup(o.symbol, cid)));
          if (found.every((f) => f !== undefined)) {
            for (const f of found) this.applyOrder(f!);
            return;
          }
          unsure = false;
        }
        this.stats.sent++;
        for (const v of await venue.placeOco!(o)) this.applyOrder(v);
        return;
      } catch (err) {
        const e = err instanceof VenueError ? err : undefined;
        if (e && (e.kind === 'AMBIGUOUS' || e.kind === 'DUPLICATE')) unsure = true;
        const retry = e && ['AMBIGUOUS', 'RETRYABLE', 'RATE_LIMITED', 'DUPLICATE'].includes(e.kind);
        if (!retry || attempt === this.opts.tries) {
          if (retry) {
            for (const cid of legs) this.setError(cid, `SEND_UNRESOLVED: ${(err as Error).message}`);
            logger.error({ list: o.listClientOrderId, err }, `OCO ${o.listClientOrderId}: no answer after ${this.opts.tries} tries; its legs stay PENDING until a lookup settles them`);
            return;
          }
          this.stats.rejected++;
          const reason = e ? `VENUE_REJECTED: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(err as Error).message}`;
          for (const cid of legs) this.finishRejected(cid, reason);
          return;
        }
        this.stats.retries++;
        const wait = e?.details.retryAfterMs ?? this.opts.retryDelayMs;
        await new Promise<void>((r) => this.deps.clock.after(wait, r));
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
   * Sends one order. Every failure that leaves us unsure whether the venue
   * took it is answered by a lookup first; only "not there" leads to a retry,
   * with the same client order id (the venue refuses a duplicate of an open
   * order, which we also resolve by lookup).
   */
  private async send(order: PlaceOrder): Promise<void> {
    const { venue, logger } = this.deps;
    let resynced = false;
    // Set while an earlier try may have reached the venue (no answer, or "duplicate") and no lookup
    // has yet said it did not: every further try is a lookup first, never a blind second placement.
    // (Binance accepts a filled order's client id again, so a second placement could fill twice.)
    let unsure = false;
    try {
      const result = await pRetry(
        async () => {
          if (this.abort.signal.aborted) throw new AbortError('shutting down');
          if (unsure) {
            // A failed lookup throws AMBIGUOUS: still unsure, and the next try looks up again.
            const found = await this.lookup(order.symbol, order.clientOrderId);
            if (found) return found;
            unsure = false;
          }
          try {
            this.stats.sent++;
            return await venue.place(order);
          } catch (err) {
            if (!(err instanceof VenueError)) throw new AbortError(err as Error);
            switch (err.kind) {
              case 'AMBIGUOUS':
              case 'RETRYABLE':
              case 'DUPLICATE': {
                if (err.kind !== 'RETRYABLE') unsure = true;
                const found = await this.lookup(order.symbol, order.clientOrderId);
                if (found) return found;
                unsure = false;
                if (err.kind === 'DUPLICATE') throw new AbortError(err);
                throw err;
              }
              case 'CLOCK_SKEW': {
                const v = venue as Venue & { resyncClock?: () => Promise<void> };
                if (resynced || !v.resyncClock) throw new AbortError(err);
                resynced = true;
                await v.resyncClock();
                throw err;
              }
              case 'RATE_LIMITED':
                throw err;
              case 'BANNED':
                this.stats.banned = true;
                this.bannedUntil = this.deps.clock.now() + (err.details.retryAfterMs ?? 120_000);
                logger.error({ symbol: order.symbol, clientOrderId: order.clientOrderId }, 'the venue banned this IP (418): no new orders are sent until the ban lifts');
                throw new AbortError(err);
              default:
                throw new AbortError(err);
            }
          }
        },
        {
          retries: this.opts.tries - 1,
          factor: 1,
          minTimeout: this.opts.retryDelayMs,
          maxTimeout: this.opts.retryDelayMs * 2,
          randomize: true,
          signal: this.abort.signal,
          onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
            this.stats.retries++;
            logger.warn({ symbol: order.symbol, clientOrderId: order.clientOrderId, attempt: attemptNumber, retriesLeft, err: error }, `order ${order.clientOrderId} attempt ${attemptNumber} failed: ${error.message}`);
            const wait = error instanceof VenueError && error.kind === 'RATE_LIMITED' ? (error.details.retryAfterMs ?? 0) : 0;
            if (wait > 0) this.holdUntil = Math.max(this.holdUntil, this.deps.clock.now() + wait);
            if (wait > 0) await new Promise<void>((r) => this.deps.clock.after(wait, r));
          },
        },
      );
      this.applyOrder(result);
    } catch (err) {
      const e = err instanceof AbortError ? ((err as AbortError).originalError ?? err) : err;
      if (this.abort.signal.aborted && !(e instanceof VenueError && e.kind === 'REJECTED')) {
        // Shutting down mid-send: the row stays PENDING and the next start resolves it by lookup.
        logger.warn({ clientOrderId: order.clientOrderId }, `shutdown while sending ${order.clientOrderId}; it stays PENDING and is looked up at the next start`);
        return;
      }
      if (e instanceof VenueError && (e.kind === 'AMBIGUOUS' || e.kind === 'RETRYABLE' || e.kind === 'RATE_LIMITED')) {
        // Out of tries and still unsure: keep PENDING; the poll resolves it by lookup.
        this.setError(order.clientOrderId, `SEND_UNRESOLVED: ${e.message}`);
        logger.error({ clientOrderId: order.clientOrderId, err: e }, `order ${order.clientOrderId}: no answer after ${this.opts.tries} tries; it stays PENDING until a lookup settles it`);
        return;
      }
      const reason = e instanceof VenueError ? `VENUE_REJECTED: ${e.message}${e.details.code !== undefined ? ` (code ${e.details.code})` : ''}` : `SEND_FAILED: ${(e as Error).message}`;
      this.stats.rejected++;
      this.finishRejected(order.clientOrderId, reason);
      // A filter rejection means our filters are stale (Binance changed them): reload.
      if (e instanceof VenueError && (e.details.code === -1013 || e.details.code === 'FILTER')) void this.deps.instruments.refresh();
    }
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
        const v = venue as Venue & { resyncClock?: () => Promise<void> };
        if (err instanceof VenueError && err.kind === 'CLOCK_SKEW' && !resynced && v.resyncClock) {
          resynced = true;
          await v.resyncClock().catch(() => undefined);
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
    const usage = (this.deps.venue as Venue & { usage?: () => { usedWeight1m?: number } }).usage?.();
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
        if (r.status === 'PENDING' && r.created_at >= this.startedAt && clock.now() - r.created_at < this.opts.ackTimeoutMs) continue;
        v = await venue.fetchOrder(symbol, r.client_order_id);
        if (!v) {
          if (r.status === 'PENDING') this.finishRejected(r.client_order_id, `NO_ACK: the venue has no order ${r.client_order_id} ${Math.round((clock.now() - r.created_at) / 1000)} s after it was written`);
          continue;
        }
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
