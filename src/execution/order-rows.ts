/**
 * The execution engine's order and fill rows: the one writer of the `orders`
 * and `fills` tables and of the order.update and fill events.
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
import type { Clock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { OPEN_ORDER_STATUSES, type OrderSide, type OrderSource, type OrderStatus, type PositionSide } from '../model/events.ts';
import type { Market } from '../model/market.ts';
import type { OrdersTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { VenueFill, VenueOrder } from '../venues/venue.ts';

const FINAL: ReadonlySet<OrderStatus> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);
const RANK: Readonly<Record<OrderStatus, number>> = { PENDING: 0, UNKNOWN: 0, NEW: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELED: 3, REJECTED: 3, EXPIRED: 3 };

/** Binance's own close-out orders: liquidation ("autoclose-") and auto-deleveraging ("adl_autoclose"). */
export function isLiquidation(o: Pick<VenueOrder, 'type' | 'clientOrderId'>): boolean {
  return o.type === 'LIQUIDATION' || o.clientOrderId.startsWith('autoclose-') || o.clientOrderId.startsWith('adl_autoclose');
}

export function isFinal(status: string): boolean {
  return FINAL.has(status as OrderStatus);
}

/** An order whose venue-reported filled quantity is ahead of the fills we hold. */
export interface FillGap {
  readonly symbol: string;
  /** The order's created_at: its fills are fetched from (a little before) then. */
  readonly since: number;
}

export interface OrderRowsDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  market: Market;
  /** The engine's counters (the same object): fills recorded and duplicates dropped. */
  stats: { fills: number; duplicateFills: number };
  /**
   * An order reached a final status (before its row is written): the engine
   * ends what it keeps for it (a time-to-live timer) and may name why it
   * ended, carried as the order.update's reason (TTL_EXPIRED).
   */
  onFinal: (clientOrderId: string, status: OrderStatus) => string | undefined;
}

export class OrderRows {
  /**
   * Orders whose venue-reported filled quantity is ahead of the fills we hold
   * (a place response that said FILLED while the stream was down): the poll
   * fetches their fills, final or not, until the two agree.
   */
  private readonly fillGaps = new Map<string, FillGap>();

  constructor(private readonly deps: OrderRowsDeps) {}

  /** Orders (by client id) whose fills we do not all hold yet. */
  get gaps(): ReadonlyMap<string, FillGap> {
    return this.fillGaps;
  }

  row(cid: string): OrdersTable | undefined {
    // Per order and per fill: one prepared statement on the primary key.
    return this.deps.store.statement(SELECT_ORDER).get(cid) as OrdersTable | undefined;
  }

  /** Our row for an exchange order id (fills from the venue's trade list carry no client order id). */
  private rowByExchangeId(symbol: string, exchangeOrderId: string): OrdersTable | undefined {
    const { store, market } = this.deps;
    return store.all(store.db.selectFrom('orders').selectAll().where('market', '=', market).where('symbol', '=', symbol).where('exchange_order_id', '=', exchangeOrderId))[0];
  }

  /** Our non-final orders (rows), optionally for one symbol. */
  openOrders(symbol?: string): OrdersTable[] {
    const { store } = this.deps;
    let q = store.db.selectFrom('orders').selectAll().where('market', '=', this.deps.market).where('status', 'in', [...OPEN_ORDER_STATUSES]);
    if (symbol) q = q.where('symbol', '=', symbol);
    return store.all(q.orderBy('created_at'));
  }

  /** How many of our orders on the symbol are not final (the MAX_NUM_ORDERS filter, per order: a counted index lookup). */
  openCount(symbol: string): number {
    const row = this.deps.store.statement(COUNT_OPEN).get(this.deps.market, symbol) as { n: number };
    return row.n;
  }

  recordedFillQty(cid: string): Dec {
    const { store } = this.deps;
    const rows = store.all(store.db.selectFrom('fills').select('quantity').where('client_order_id', '=', cid));
    return rows.reduce((s, r) => s.plus(r.quantity), ZERO);
  }

  /**
   * Writes a new order row; false when the client id already has one (the
   * intent was submitted before). On the
   * order path: one prepared statement, no query building per order.
   */
  insert(row: OrdersTable): boolean {
    return this.deps.store.statement(INSERT_ORDER).run(row).changes > 0;
  }

  /** Writes the rows of one order list (an OCO's legs) in one transaction; returns how many were new. */
  insertList(rows: readonly OrdersTable[]): number {
    const { store } = this.deps;
    let written = 0;
    store.sqlite.transaction(() => {
      for (const row of rows) written += store.run(store.db.insertInto('orders').values(row).onConflict((oc) => oc.doNothing())).changes;
    })();
    return written;
  }

  /**
   * The exchange closed a position itself (liquidation: client id
   * "autoclose-...", type LIQUIDATION). It is our position, so its fill is
   * ours to count: the order gets a row (strategy "liquidation") before its
   * fill is applied, once (the intent id is the exchange order id).
   */
  adoptLiquidation(v: VenueOrder): void {
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
    const reason = isFinal(status) ? this.deps.onFinal(v.clientOrderId, status) : undefined;
    if (newFilled.gt(this.recordedFillQty(v.clientOrderId))) this.fillGaps.set(v.clientOrderId, { symbol: row.symbol, since: row.created_at });
    else this.fillGaps.delete(v.clientOrderId);
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
      ...(reason ? { reason } : {}),
    });
  }

  /** Records a fill once: a second arrival (stream and poll) is dropped by the unique key. */
  applyFill(f: VenueFill): void {
    const { store, clock, market } = this.deps;
    // Binance's trade lists (the poll's source) carry no client order id: find the order by its exchange id.
    const row = f.clientOrderId ? this.row(f.clientOrderId) : this.rowByExchangeId(f.symbol, f.exchangeOrderId);
    if (!row) return; // A fill of an order we did not place: reconciliation's call.
    // The (market, symbol, trade_id) unique key drops a second arrival of the same trade.
    const res = store.statement(INSERT_FILL).run({
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
    });
    if (res.changes === 0) {
      this.deps.stats.duplicateFills++;
      return;
    }
    this.deps.stats.fills++;
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

  finishRejected(cid: string, reason: string): void {
    const row = this.row(cid);
    if (!row || isFinal(row.status)) return;
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ status: 'REJECTED', error: reason, updated_at: clock.now() }).where('client_order_id', '=', cid));
    this.deps.bus.publish('order.update', { ...rowUpdate(row, clock.now()), status: 'REJECTED', filledQuantity: new Dec(row.filled_quantity), reason });
  }

  setError(cid: string, error: string): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ error, updated_at: clock.now() }).where('client_order_id', '=', cid));
  }

  /** A placement request is about to leave: from now its row may execute until sent_at + the request window. */
  markSent(cid: string): void {
    const { store, clock } = this.deps;
    const now = clock.now();
    store.run(store.db.updateTable('orders').set({ sent_at: now, updated_at: now }).where('client_order_id', '=', cid));
  }

  /** A local status change (PENDING <-> UNKNOWN), on disk and on the bus. */
  setStatus(cid: string, status: 'PENDING' | 'UNKNOWN', error: string): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ status, error, updated_at: clock.now() }).where('client_order_id', '=', cid).where('status', 'in', ['PENDING', 'UNKNOWN']));
    this.publishRowUpdate(cid, status, error.split(':')[0]);
  }

  /** An order that will not be sent after all (an exit with nothing left to sell): CANCELED, on disk and on the bus. */
  cancelUnsent(cid: string, error: string, reason: string): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ status: 'CANCELED', error, updated_at: clock.now() }).where('client_order_id', '=', cid));
    this.publishRowUpdate(cid, 'CANCELED', reason);
  }

  /** An unsent order's quantity, cut down before it goes (an exit sized to what is still held). */
  resize(cid: string, quantity: Dec): void {
    const { store, clock } = this.deps;
    store.run(store.db.updateTable('orders').set({ quantity: quantity.toFixed(), updated_at: clock.now() }).where('client_order_id', '=', cid));
  }

  /** A row just written, on the bus with the status and filled quantity given (PENDING, 0). */
  publishUpdate(cid: string, status: OrderStatus, filled: Dec): void {
    const row = this.row(cid);
    if (row) this.publishInserted(row, status, filled);
  }

  /** The same for a row the caller holds (it just wrote it): no read back. */
  publishInserted(row: OrdersTable, status: OrderStatus, filled: Dec): void {
    this.deps.bus.publish('order.update', { ...rowUpdate(row, this.deps.clock.now()), status, filledQuantity: filled });
  }

  /** The row's current state on the bus (a local status change, e.g. an exit with nothing left to sell). */
  private publishRowUpdate(cid: string, status: OrderStatus, reason?: string): void {
    const row = this.row(cid);
    if (row) this.deps.bus.publish('order.update', { ...rowUpdate(row, this.deps.clock.now()), status, filledQuantity: new Dec(row.filled_quantity), ...(reason ? { reason } : {}) });
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

const ORDER_COLUMNS = ['client_order_id', 'intent_id', 'strategy', 'market', 'symbol', 'side', 'type', 'time_in_force', 'quantity', 'price', 'stop_price', 'reduce_only', 'status', 'exchange_order_id', 'filled_quantity', 'average_price', 'error', 'created_at', 'updated_at', 'source', 'position_side', 'sent_at'] as const satisfies ReadonlyArray<keyof OrdersTable>;
const INSERT_ORDER = `INSERT INTO orders (${ORDER_COLUMNS.join(', ')}) VALUES (${ORDER_COLUMNS.map((c) => `@${c}`).join(', ')}) ON CONFLICT DO NOTHING`;
const COUNT_OPEN = `SELECT COUNT(*) AS n FROM orders WHERE market = ? AND symbol = ? AND status IN (${OPEN_ORDER_STATUSES.map((x) => `'${x}'`).join(', ')})`;
const SELECT_ORDER = `SELECT ${ORDER_COLUMNS.join(', ')} FROM orders WHERE client_order_id = ?`;
const FILL_COLUMNS = ['market', 'symbol', 'trade_id', 'client_order_id', 'exchange_order_id', 'side', 'price', 'quantity', 'fee', 'fee_asset', 'realized_pnl', 'is_maker', 'ts'] as const;
const INSERT_FILL = `INSERT INTO fills (${FILL_COLUMNS.join(', ')}) VALUES (${FILL_COLUMNS.map((c) => `@${c}`).join(', ')}) ON CONFLICT DO NOTHING`;
