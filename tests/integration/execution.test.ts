/**
 * The execution engine end to end: order.submit / order.cancel on a real
 * bus -> ExecutionEngine (filters, rounding, the row before the send, lookup
 * before retry) -> the real BinanceVenue (ccxt REST + ws user data) -> the
 * local exchange on 127.0.0.1, with its fault injection. Every claim is
 * checked where it matters: the orders and fills tables, the events on the
 * bus, and the exchange's own records (what it received, how many orders it
 * holds under a client id).
 *
 * Each test gets its own exchange, database and engine. The exchange's
 * server time and the venue's signing clock are one TestClock, so nothing
 * depends on the wall clock except the client's request timeout and the
 * engine's 20 ms retry delay (Retry-After runs on the TestClock). Waits are
 * on events, never sleeps.
 *
 * Figures by hand (catalog and default fill model): futures taker 0.05 %,
 * maker 0.02 %, fees in USDT; spot 0.1 % charged in the received asset;
 * market orders fill at the last price; a resting limit fills at its price
 * when the path trades through it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/bot-process.ts';
import type WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { ClientOrderIds } from '../../src/execution/client-order-ids.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { ExecutionEngine, type ExecutionOptions } from '../../src/execution/execution-engine.ts';
import { InstrumentBook } from '../../src/execution/instrument-book.ts';
import { DEFAULT_ACCOUNT, LocalExchange, type LocalExchangeOptions } from '../../src/local-exchange/local-exchange.ts';
import type { ComponentFault, Fill, OrderDenied, OrderIntent, OrderSide, OrderStatus, OrderType, OrderUpdate } from '../../src/model/events.ts';
import type { Market } from '../../src/model/market.ts';
import type { OrdersTable } from '../../src/store/schema.ts';
import { Store } from '../../src/store/store.ts';
import { BinanceVenue, type BinanceVenueOptions } from '../../src/venues/binance/binance-venue.ts';
import { defaultFillModel, type FillModelConfig } from '../../src/venues/sim/fill-model.ts';
import type { SimOrder } from '../../src/venues/sim/types.ts';
import type { VenueEvent } from '../../src/venues/venue.ts';

const d = (s: string): Dec => new Dec(s);
const DAY = 86_400_000;
const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);
const INTERNAL_ERROR = 'Internal error; unable to process your request. Please try again.';

interface OrderSpec {
  readonly symbol: string;
  readonly side: OrderSide;
  readonly type: OrderType;
  readonly quantity: string;
  readonly price?: string;
  readonly stopPrice?: string;
  readonly reduceOnly?: boolean;
}

interface RigOptions {
  readonly market: Market;
  /** Last prices set on the exchange before anything starts. */
  readonly prices: Record<string, string>;
  readonly t0?: number;
  readonly venue?: Partial<BinanceVenueOptions>;
  readonly engine?: Partial<ExecutionOptions>;
  readonly fillModel?: FillModelConfig;
  /** The exchange's order-count limits (exchangeInfo rateLimits ORDERS). */
  readonly orderLimits?: LocalExchangeOptions['orderLimits'];
  /** The exchange's request-weight limit per minute (exchangeInfo rateLimits REQUEST_WEIGHT). */
  readonly weightLimit?: LocalExchangeOptions['weightLimit'];
  /** Another rig's exchange and clock (the same account seen by a second database); closed by its owner. */
  readonly shareExchangeOf?: Rig;
}

/**
 * One exchange, one database, one bus, one venue, one engine; records every
 * order.update, fill, order.denied, component.fault and venue event, and
 * resolves waits on them (history first, so a wait set up late still sees it).
 */
class Rig {
  readonly updates: OrderUpdate[] = [];
  readonly fills: Fill[] = [];
  readonly denials: OrderDenied[] = [];
  readonly faults: ComponentFault[] = [];
  readonly venueEvents: VenueEvent[] = [];
  engine!: ExecutionEngine;
  private seq = 0;
  private waiters = new Set<() => boolean>();

  private constructor(
    readonly market: Market,
    readonly clock: TestClock,
    readonly ex: LocalExchange,
    private readonly dir: string,
    readonly store: Store,
    readonly bus: Bus,
    readonly venue: BinanceVenue,
    readonly instruments: InstrumentBook,
    private readonly engineOptions: Partial<ExecutionOptions>,
    private readonly ownsExchange = true,
  ) {}

  static async start(o: RigOptions): Promise<Rig> {
    const clock = o.shareExchangeOf?.clock ?? new TestClock(o.t0 ?? T0);
    const ex = o.shareExchangeOf?.ex ?? (await LocalExchange.start({ clock, funding: false, ...(o.fillModel ? { fillModel: o.fillModel } : {}), ...(o.orderLimits ? { orderLimits: o.orderLimits } : {}), ...(o.weightLimit ? { weightLimit: o.weightLimit } : {}) }));
    for (const [symbol, price] of Object.entries(o.prices)) ex.setPrice(o.market, symbol, d(price));
    const dir = mkdtempSync(join(tmpdir(), 'execution-test-'));
    const store = Store.open(join(dir, 'trader.db'));
    await store.migrate();
    const logger = silentLogger();
    const bus = new Bus({ logger, clock });
    const urls = ex.urls();
    const venue = new BinanceVenue({
      market: o.market,
      spotBase: ex.url,
      futuresBase: ex.url,
      wsBase: o.market === 'spot' ? urls.spotWsApi : urls.futuresWs,
      apiKey: DEFAULT_ACCOUNT.apiKey,
      secret: DEFAULT_ACCOUNT.secret,
      clock,
      enableRateLimit: false,
      timeoutMs: 5000,
      // No REST call of the venue's own (clock sync, keepalive) may land between a fault and the order it is for.
      timers: { streamStaleMs: 0, clockSyncMs: DAY, listenKeyKeepAliveMs: DAY },
      reconnect: { baseMs: 500, capMs: 500, random: () => 1 },
      ...o.venue,
    });
    await venue.start();
    const instruments = new InstrumentBook({ venue, store, clock, logger, market: o.market });
    await instruments.load();
    instruments.stop();
    const rig = new Rig(o.market, clock, ex, dir, store, bus, venue, instruments, { retryDelayMs: 20, pollMs: DAY, ...o.engine }, o.shareExchangeOf === undefined);
    rigs.push(rig);
    bus.on('order.update', (e) => rig.record(rig.updates, e), 'test');
    bus.on('fill', (e) => rig.record(rig.fills, e), 'test');
    bus.on('order.denied', (e) => rig.record(rig.denials, e), 'test');
    bus.on('component.fault', (e) => rig.record(rig.faults, e), 'test');
    rig.engine = rig.newEngine();
    rig.engine.start();
    // After the engine's own listener: when the test hears a venue event, the engine has applied it.
    venue.onEvent((e) => rig.record(rig.venueEvents, e));
    return rig;
  }

  /** A fresh engine over the same store, bus and venue (a restarted process); not started. */
  newEngine(): ExecutionEngine {
    const { ex, market } = this;
    return new ExecutionEngine({
      bus: this.bus,
      store: this.store,
      clock: this.clock,
      logger: silentLogger(),
      venue: this.venue,
      market,
      instruments: this.instruments,
      // The kernel passes the portfolio's mark; here the exchange's own price.
      referencePrice: (symbol) => ex.engine.price(market, symbol).mark ?? ex.engine.price(market, symbol).last,
      ledger: new Ledger({ market, quoteAsset: 'USDT', instrument: (s) => this.instruments.get(s), price: () => undefined }),
      options: this.engineOptions,
    });
  }

  async close(): Promise<void> {
    await this.engine.stop();
    await this.venue.stop();
    if (this.ownsExchange) await this.ex.close();
    this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------ commands

  intent(o: OrderSpec, strategy = 'manual'): { intent: OrderIntent; cid: string } {
    const seq = ++this.seq;
    const intent: OrderIntent = {
      intentId: `${strategy}/${o.symbol}/${seq}`,
      seq,
      source: 'manual',
      strategy,
      market: this.market,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      quantity: d(o.quantity),
      ...(o.price !== undefined ? { price: d(o.price) } : {}),
      ...(o.stopPrice !== undefined ? { stopPrice: d(o.stopPrice) } : {}),
      ...(o.reduceOnly ? { reduceOnly: true } : {}),
      reason: 'execution test',
    };
    return { intent, cid: ClientOrderIds.of(this.store, this.clock.now()).forIntent(strategy, seq) };
  }

  /**
   * Waits until every send is done, moving the test clock on while the engine
   * waits on it (the lookups' backoff, a recvWindow running out, retry pauses).
   */
  async settle(stepMs = 250, maxMs = 120_000): Promise<void> {
    let done = false;
    void this.engine.idle().then(() => {
      done = true;
    });
    for (let waited = 0; !done; waited += stepMs) {
      if (waited > maxMs) throw new Error(`the engine is not idle after ${maxMs} ms of test clock`);
      await new Promise((res) => setTimeout(res, 5));
      if (!done) this.clock.advanceBy(stepMs);
    }
  }

  submit(o: OrderSpec): { intent: OrderIntent; cid: string } {
    const x = this.intent(o);
    this.bus.publish('order.submit', { kind: 'order.submit', ts: this.clock.now(), intent: x.intent });
    return x;
  }

  cancel(symbol: string, cid: string): void {
    this.bus.publish('order.cancel', { kind: 'order.cancel', ts: this.clock.now(), symbol, clientOrderId: cid, reason: 'execution test' });
  }

  /** Writes a PENDING row the way the engine does before it sends (a process that died right after). */
  insertPending(o: OrderSpec): string {
    const { intent, cid } = this.intent(o);
    const now = this.clock.now();
    this.store.run(
      this.store.db.insertInto('orders').values({
        client_order_id: cid,
        intent_id: intent.intentId,
        strategy: intent.strategy,
        market: this.market,
        symbol: o.symbol,
        side: o.side,
        type: o.type,
        time_in_force: o.type === 'LIMIT' ? 'GTC' : null,
        quantity: o.quantity,
        price: o.price ?? null,
        stop_price: o.stopPrice ?? null,
        reduce_only: o.reduceOnly ? 1 : 0,
        status: 'PENDING',
        exchange_order_id: null,
        filled_quantity: '0',
        average_price: null,
        error: null,
        created_at: now,
        updated_at: now,
        source: 'strategy',
        position_side: 'BOTH',
        sent_at: now,
      }),
    );
    return cid;
  }

  // --------------------------------------------------------------- reads

  row(cid: string): OrdersTable | undefined {
    return this.store.all(this.store.db.selectFrom('orders').selectAll().where('client_order_id', '=', cid))[0];
  }

  fillRows(cid: string): Array<{ trade_id: string; price: string; quantity: string; fee: string; is_maker: number; exchange_order_id: string | null }> {
    return this.store.all(this.store.db.selectFrom('fills').select(['trade_id', 'price', 'quantity', 'fee', 'is_maker', 'exchange_order_id']).where('client_order_id', '=', cid).orderBy('id'));
  }

  fillEvents(cid: string): Fill[] {
    return this.fills.filter((f) => f.clientOrderId === cid);
  }

  private get account(): string {
    return this.ex.accountOf(DEFAULT_ACCOUNT.apiKey);
  }

  /** Every order the exchange holds under this client id (Binance's allOrders). */
  exchangeOrders(symbol: string, cid: string): SimOrder[] {
    return this.ex.engine.allOrders(this.account, this.market, symbol, { limit: 100_000 }).filter((o) => o.clientOrderId === cid);
  }

  exchangeOrder(symbol: string, cid: string): SimOrder {
    const all = this.exchangeOrders(symbol, cid);
    expect(all, `exactly one exchange order under ${cid}`).toHaveLength(1);
    return all[0]!;
  }

  exchangeOpenOrders(): SimOrder[] {
    return this.ex.engine.openOrders(this.account, this.market);
  }

  /** All orders the exchange has for this account, every symbol of the market. */
  exchangeOrderCount(): number {
    return this.ex.engine.instruments(this.market).reduce((n, i) => n + this.ex.engine.allOrders(this.account, this.market, i.symbol, { limit: 100_000 }).length, 0);
  }

  // --------------------------------------------------------------- waits

  private record<T>(list: T[], e: T): void {
    list.push(e);
    for (const w of [...this.waiters]) if (w()) this.waiters.delete(w);
  }

  until<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const v = find();
        if (v === undefined) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const last = this.updates.slice(-4).map((u) => `${u.clientOrderId} ${u.status}${u.reason ? ` (${u.reason})` : ''}`);
        reject(new Error(`no ${what} within ${timeoutMs} ms; last order.updates: ${last.join('; ')}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  status(cid: string, status: OrderStatus): Promise<OrderUpdate> {
    return this.until(`order.update ${status} of ${cid}`, () => this.updates.find((u) => u.clientOrderId === cid && u.status === status));
  }

  fillOf(cid: string, n = 1): Promise<Fill> {
    return this.until(`fill #${n} of ${cid}`, () => this.fillEvents(cid)[n - 1]);
  }

  denialOf(intentId: string): Promise<OrderDenied> {
    return this.until(`order.denied of ${intentId}`, () => this.denials.find((x) => x.intent.intentId === intentId));
  }

  /** Holds the user-data frames in the client's socket (a slow reader): they arrive on resume, in order. */
  userSocket(): WebSocket {
    const ws = (this.venue as unknown as { stream?: { ws?: WebSocket } }).stream?.ws;
    if (!ws) throw new Error('the venue has no user-data socket');
    return ws;
  }

  /** What must hold after every test: one fill event and one row per trade, and no handler fault. */
  checkInvariants(): void {
    const ids = this.fills.map((f) => `${f.symbol}/${f.tradeId}`);
    expect(new Set(ids).size, `one fill event per trade: ${ids.join(', ')}`).toBe(ids.length);
    const rows = this.store.all(this.store.db.selectFrom('fills').select(['symbol', 'trade_id']));
    expect(rows.map((r) => `${r.symbol}/${r.trade_id}`).sort(), 'one fills row per fill event').toEqual([...ids].sort());
    expect(this.faults.map((f) => `${f.component} on ${f.channel}: ${f.error.message}`), 'no handler threw').toEqual([]);
  }
}

const rigs: Rig[] = [];
afterEach(async () => {
  const open = rigs.splice(0);
  try {
    for (const r of open) r.checkInvariants();
  } finally {
    for (const r of open) await r.close();
  }
});

/** An intent the engine must deny locally with exactly this reason, sending nothing. */
async function expectDenied(r: Rig, o: OrderSpec, reason: string): Promise<void> {
  const before = r.exchangeOrderCount();
  const sent = r.engine.stats.sent;
  const { intent, cid } = r.submit(o);
  const denial = await r.denialOf(intent.intentId);
  expect([denial.reason, denial.source], `${o.type} ${o.side} ${o.quantity} ${o.symbol}${o.price ? ` @ ${o.price}` : ''}`).toEqual([reason, 'execution']);
  await r.engine.idle();
  expect(r.row(cid), 'a denied intent never becomes a row').toBeUndefined();
  expect(r.updates.filter((u) => u.clientOrderId === cid), 'nor an order.update').toEqual([]);
  expect(r.engine.stats.sent, 'nothing was sent').toBe(sent);
  expect(r.exchangeOrderCount(), 'the exchange holds no new order').toBe(before);
}

/** The row, the exchange's order and the exchange id agree. */
function expectRowMatchesExchange(r: Rig, symbol: string, cid: string, status: OrderStatus): SimOrder {
  const row = r.row(cid)!;
  const x = r.exchangeOrder(symbol, cid);
  expect([row.status, row.exchange_order_id, row.error], `row of ${cid}`).toEqual([status, String(x.orderId), row.error]);
  expect(x.status, `exchange order ${cid}`).toBe(status);
  return x;
}

// ===================================================================== claim 1

describe('every order type round-trips through the engine', () => {
  it('spot: MARKET fills (row FILLED, its fill recorded once); LIMIT rests, and order.cancel makes the row CANCELED', async () => {
    const r = await Rig.start({ market: 'spot', prices: { BTCUSDT: '20000' } });

    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.001' });
    expect(r.updates.filter((u) => u.clientOrderId === m.cid).map((u) => u.status), 'the row is written (PENDING) before anything is sent').toEqual(['PENDING']);
    const fill = await r.fillOf(m.cid);
    await r.status(m.cid, 'FILLED');
    await r.engine.idle();
    // 0.001 BTC at 20000; fee 0.1 % of the BTC received.
    expect([fill.price.toFixed(), fill.quantity.toFixed(), fill.fee.toFixed(), fill.feeAsset, fill.side, fill.strategy]).toEqual(['20000', '0.001', '0.000001', 'BTC', 'BUY', 'manual']);
    expectRowMatchesExchange(r, 'BTCUSDT', m.cid, 'FILLED');
    expect(r.row(m.cid)).toMatchObject({ filled_quantity: '0.001', average_price: '20000', quantity: '0.001', price: null });
    expect(r.fillRows(m.cid).map((f) => [f.trade_id, f.price, f.quantity, f.fee])).toEqual([[fill.tradeId, '20000', '0.001', '0.000001']]);

    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.001', price: '19000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'NEW');
    expect(r.exchangeOpenOrders().map((o) => [o.clientOrderId, o.price.toFixed(), o.origQty.toFixed()]), 'resting on the book').toEqual([[l.cid, '19000', '0.001']]);
    r.cancel('BTCUSDT', l.cid);
    await r.status(l.cid, 'CANCELED');
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'CANCELED');
    expect(r.exchangeOpenOrders()).toEqual([]);
    expect(r.engine.openOrders(), 'nothing left open in the table').toEqual([]);
  });

  it('futures: MARKET fills; LIMIT rests and cancels; STOP_MARKET and TAKE_PROFIT_MARKET reduce-only rest as conditional orders and cancel', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });

    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.01' });
    const fill = await r.fillOf(m.cid);
    await r.status(m.cid, 'FILLED');
    await r.engine.idle();
    // 0.01 * 50000 = 500 notional; taker 0.05 % = 0.25 USDT; an opening fill realizes nothing.
    expect([fill.price.toFixed(), fill.quantity.toFixed(), fill.fee.toFixed(), fill.feeAsset, fill.realizedPnl?.toFixed(), fill.isMaker]).toEqual(['50000', '0.01', '0.25', 'USDT', '0', false]);
    expectRowMatchesExchange(r, 'BTCUSDT', m.cid, 'FILLED');
    expect(r.fillRows(m.cid)).toHaveLength(1);

    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'NEW');
    r.cancel('BTCUSDT', l.cid);
    await r.status(l.cid, 'CANCELED');
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'CANCELED');

    // Protective exits for the 0.01 long. A sell stop rounds up (triggers sooner, never later): 48000.04 -> 48000.1.
    const sl = r.submit({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_MARKET', quantity: '0.01', stopPrice: '48000.04', reduceOnly: true });
    const tp = r.submit({ symbol: 'BTCUSDT', side: 'SELL', type: 'TAKE_PROFIT_MARKET', quantity: '0.01', stopPrice: '52000', reduceOnly: true });
    await r.status(sl.cid, 'NEW');
    await r.status(tp.cid, 'NEW');
    await r.engine.idle();
    expect(r.row(sl.cid)).toMatchObject({ status: 'NEW', type: 'STOP_MARKET', stop_price: '48000.1', reduce_only: 1, price: null });
    expect(r.row(tp.cid)).toMatchObject({ status: 'NEW', type: 'TAKE_PROFIT_MARKET', stop_price: '52000', reduce_only: 1 });
    expect(
      r.exchangeOpenOrders().map((o) => [o.clientOrderId, o.type, o.stopPrice.toFixed(), o.origQty.toFixed(), o.reduceOnly, o.triggered]),
      'both wait on the exchange as untriggered conditional orders',
    ).toEqual([
      [sl.cid, 'STOP_MARKET', '48000.1', '0.01', true, false],
      [tp.cid, 'TAKE_PROFIT_MARKET', '52000', '0.01', true, false],
    ]);
    r.cancel('BTCUSDT', sl.cid);
    r.cancel('BTCUSDT', tp.cid);
    await r.status(sl.cid, 'CANCELED');
    await r.status(tp.cid, 'CANCELED');
    await r.engine.idle();
    expect([r.row(sl.cid)?.status, r.row(tp.cid)?.status]).toEqual(['CANCELED', 'CANCELED']);
    expect([r.exchangeOrder('BTCUSDT', sl.cid).status, r.exchangeOrder('BTCUSDT', tp.cid).status]).toEqual(['CANCELED', 'CANCELED']);
    expect(r.exchangeOpenOrders()).toEqual([]);
    expect(r.engine.openOrders()).toEqual([]);
    expect(r.engine.stats).toMatchObject({ sent: 4, retries: 0, rejected: 0, denied: 0 });
  });

  it('futures: a resting LIMIT fills when the price trades through it: FILLED, its maker fill recorded once', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });
    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();
    expect(r.fillEvents(l.cid)).toEqual([]);

    r.ex.setPrice('futures', 'BTCUSDT', d('48900'));
    const fill = await r.fillOf(l.cid);
    await r.status(l.cid, 'FILLED');
    // 0.003 at its limit 49000 = 147 notional; maker 0.02 % = 0.0294.
    expect([fill.price.toFixed(), fill.quantity.toFixed(), fill.fee.toFixed(), fill.isMaker]).toEqual(['49000', '0.003', '0.0294', true]);
    expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'FILLED');
    expect(r.row(l.cid)).toMatchObject({ filled_quantity: '0.003', average_price: '49000' });
    expect(r.fillRows(l.cid).map((f) => [f.trade_id, f.price, f.quantity, f.fee, f.is_maker])).toEqual([[fill.tradeId, '49000', '0.003', '0.0294', 1]]);
  });
});

// ===================================================================== claim 2

describe('rounding at the filter boundaries, through the engine', () => {
  it('futures BTC (tick 0.1, step 0.001), ETH (tick 0.01), ALGO (tick 0.0001, step 0.1), AVAX (step 1): quantity truncated, limit price to the passive tick; the exchange received exactly that', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000', ETHUSDT: '3000', ALGOUSDT: '0.25', AVAXUSDT: '30' } });
    const cases: Array<OrderSpec & { want: [string, string | undefined]; status: OrderStatus }> = [
      { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.0039', price: '49999.99', want: ['0.003', '49999.9'], status: 'NEW' },
      { symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', quantity: '0.0039', price: '50000.01', want: ['0.003', '50000.1'], status: 'NEW' },
      // Rounded up to 47500 (the passive side for a sell), it sits exactly on the 0.95 band and passes; it crosses, so it fills as taker at the last price.
      { symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', quantity: '0.003', price: '47499.94', want: ['0.003', '47500'], status: 'FILLED' },
      { symbol: 'ETHUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.0109', price: '2999.999', want: ['0.01', '2999.99'], status: 'NEW' },
      { symbol: 'ETHUSDT', side: 'SELL', type: 'LIMIT', quantity: '0.0109', price: '3000.001', want: ['0.01', '3000.01'], status: 'NEW' },
      { symbol: 'ALGOUSDT', side: 'BUY', type: 'LIMIT', quantity: '123.45', price: '0.24999', want: ['123.4', '0.2499'], status: 'NEW' },
      { symbol: 'ALGOUSDT', side: 'SELL', type: 'LIMIT', quantity: '123.45', price: '0.25001', want: ['123.4', '0.2501'], status: 'NEW' },
      { symbol: 'AVAXUSDT', side: 'BUY', type: 'LIMIT', quantity: '7.9', price: '29.9999', want: ['7', '29.999'], status: 'NEW' },
      { symbol: 'AVAXUSDT', side: 'BUY', type: 'MARKET', quantity: '7.9', want: ['7', undefined], status: 'FILLED' },
    ];
    const sent = cases.map((c) => ({ c, cid: r.submit(c).cid }));
    await r.engine.idle();
    for (const { c, cid } of sent) {
      const what = `${c.type} ${c.side} ${c.quantity} ${c.symbol}${c.price ? ` @ ${c.price}` : ''}`;
      const row = r.row(cid)!;
      expect([row.quantity, row.price ?? undefined], `${what}: the row`).toEqual(c.want);
      const x = expectRowMatchesExchange(r, c.symbol, cid, c.status);
      expect([x.origQty.toFixed(), x.price.isZero() ? undefined : x.price.toFixed()], `${what}: what the exchange received`).toEqual(c.want);
    }
    expect(r.engine.stats).toMatchObject({ sent: cases.length, denied: 0, rejected: 0, retries: 0 });
  });

  it('spot BTC (tick 0.01, step 0.00001): a buy rounds down, a sell up, quantities truncated', async () => {
    const r = await Rig.start({ market: 'spot', prices: { BTCUSDT: '20000' } });
    const buy = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.0012999', price: '19999.999' });
    const mkt = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.0012999' });
    await r.fillOf(mkt.cid);
    await r.engine.idle();
    // Held now: 0.00129 - 0.1 % fee = 0.00128871 BTC, enough for 0.00128.
    const sell = r.submit({ symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', quantity: '0.0012899', price: '20000.001' });
    await r.engine.idle();
    for (const [cid, want, status] of [
      [buy.cid, ['0.00129', '19999.99'], 'NEW'],
      [mkt.cid, ['0.00129', undefined], 'FILLED'],
      [sell.cid, ['0.00128', '20000.01'], 'NEW'],
    ] as const) {
      const row = r.row(cid)!;
      expect([row.quantity, row.price ?? undefined]).toEqual(want);
      const x = expectRowMatchesExchange(r, 'BTCUSDT', cid, status);
      expect([x.origQty.toFixed(), x.price.isZero() ? undefined : x.price.toFixed()], 'what the exchange received').toEqual(want);
    }
  });

  it('futures: below min notional, rounds to zero, outside PERCENT_PRICE: denied locally with exact figures, nothing sent', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000', ETHUSDT: '3000', ALGOUSDT: '0.25', AVAXUSDT: '30' } });
    // Something on the exchange already, so "unchanged" is not "empty".
    const first = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.status(first.cid, 'NEW');
    await r.engine.idle();

    // 0.0029 -> 0.002 and 49999.99 -> 49999.9: 99.9998 < 100 (rounding up either would have passed).
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.0029', price: '49999.99' }, 'NOTIONAL_BELOW_MIN: notional=99.9998 min=100');
    // A market order's notional uses the reference price: 0.006 * 3000 = 18 < 20.
    await expectDenied(r, { symbol: 'ETHUSDT', side: 'BUY', type: 'MARKET', quantity: '0.0069' }, 'NOTIONAL_BELOW_MIN: notional=18 min=20');
    await expectDenied(r, { symbol: 'AVAXUSDT', side: 'BUY', type: 'MARKET', quantity: '0.9' }, 'QTY_ROUNDS_TO_ZERO: quantity=0.9 step=1');
    await expectDenied(r, { symbol: 'ALGOUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.09', price: '0.25' }, 'QTY_ROUNDS_TO_ZERO: quantity=0.09 step=0.1');
    // PERCENT_PRICE 0.95 .. 1.05 of the 50000 mark.
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', quantity: '0.01', price: '47499.9' }, 'PRICE_BELOW_PERCENT_BAND: price=47499.9 min=47500');
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.01', price: '52500.19' }, 'PRICE_ABOVE_PERCENT_BAND: price=52500.1 max=52500');
    expect(r.engine.stats).toMatchObject({ sent: 1, denied: 6 });
    expect(r.exchangeOpenOrders().map((o) => o.clientOrderId)).toEqual([first.cid]);
  });

  it('spot: below min notional (after truncation), rounds to zero, outside PERCENT_PRICE_BY_SIDE: denied locally, nothing sent', async () => {
    const r = await Rig.start({ market: 'spot', prices: { BTCUSDT: '20000' } });
    // 0.000249 -> 0.00024: 4.8 < 5 (0.00025 would have been exactly 5).
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.000249', price: '20000' }, 'NOTIONAL_BELOW_MIN: notional=4.8 min=5');
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.000249' }, 'NOTIONAL_BELOW_MIN: notional=4.8 min=5');
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.000009' }, 'QTY_ROUNDS_TO_ZERO: quantity=0.000009 step=0.00001');
    // Bid band 0.2 .. 5 of 20000; 3999.999 rounds down to 3999.99.
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.01', price: '3999.999' }, 'PRICE_BELOW_PERCENT_BAND: price=3999.99 min=4000');
    expect(r.exchangeOrderCount()).toBe(0);
  });
});

// ===================================================================== claim 3

describe('an order whose answer never came is one order', () => {
  it('black-holed (accepted, no response, client timeout): the lookup by client id adopts it; the exchange holds exactly one', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, venue: { timeoutMs: 1000 } });
    r.ex.faults.blackholeHoldMs = 3000;
    // No user-data stream: the lookup alone must find what the exchange took.
    r.ex.faults.stalled.add('*');

    r.ex.faults.blackholeOrders = 1;
    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.engine.idle();
    expect(r.ex.faults.blackholeOrders, 'the fault was used').toBe(0);
    const xl = expectRowMatchesExchange(r, 'BTCUSDT', l.cid, 'NEW');
    expect(r.exchangeOrders('BTCUSDT', l.cid), 'allOrders: one order under the client id').toHaveLength(1);
    expect(xl.origQty.toFixed()).toBe('0.003');
    expect(r.engine.stats, 'one placement, then a lookup instead of a second placement').toMatchObject({ sent: 1, lookups: 1, retries: 0, rejected: 0 });

    r.ex.faults.blackholeOrders = 1;
    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.engine.idle();
    expect(r.ex.faults.blackholeOrders).toBe(0);
    expectRowMatchesExchange(r, 'BTCUSDT', m.cid, 'FILLED');
    expect(r.exchangeOrders('BTCUSDT', m.cid)).toHaveLength(1);
    // The stream is stalled: the lookup's FILLED with no fill on record makes the poll fetch it.
    await r.engine.poll();
    await r.fillOf(m.cid);
    expect(r.fillRows(m.cid), 'its fill once').toHaveLength(1);
    expect(r.engine.stats).toMatchObject({ sent: 2, lookups: 2, retries: 0 });
  });

  it('black-holed, and the lookup fails too: the next try looks up again instead of placing a second order', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, venue: { timeoutMs: 1000 } });
    r.ex.faults.blackholeHoldMs = 3000;
    r.ex.faults.stalled.add('*');
    r.ex.faults.blackholeOrders = 1;
    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    // Once the placement is in (and held), the lookup that follows its timeout (GET /fapi/v1/order)
    // answers 503. Binance lets a filled order's client id be used again, so a second placement would
    // be a second fill.
    for (const deadline = Date.now() + 5000; r.ex.faults.blackholeOrders > 0 && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 5));
    r.ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: INTERNAL_ERROR, pathPrefix: '/fapi/v1/order' });
    await r.settle();
    expect([r.ex.faults.blackholeOrders, r.ex.faults.fails.length], 'both faults were used').toEqual([0, 0]);
    expect(r.exchangeOrders('BTCUSDT', m.cid), 'one order under the client id, not two').toHaveLength(1);
    expectRowMatchesExchange(r, 'BTCUSDT', m.cid, 'FILLED');
    await r.engine.poll();
    await r.fillOf(m.cid);
    expect(r.fillRows(m.cid), 'one fill').toHaveLength(1);
    expect(r.engine.stats, 'one placement; the retry was a second lookup').toMatchObject({ sent: 1, lookups: 2, retries: 0 });
  });

  it('a 503 the exchange never executed: looked up until its recvWindow has passed, then placed again under the same id: exactly one order', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });
    r.ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: INTERNAL_ERROR, pathPrefix: '/fapi/v1/order' });
    const t0 = r.clock.now();
    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.status(m.cid, 'UNKNOWN');
    await r.settle();
    expect(r.ex.faults.fails, 'the fault was used').toEqual([]);
    expectRowMatchesExchange(r, 'BTCUSDT', m.cid, 'FILLED');
    expect(r.exchangeOrders('BTCUSDT', m.cid)).toHaveLength(1);
    // recvWindow 5000 + 2000 margin: the re-send went no earlier than 7 s after the first request.
    const placed = r.exchangeOrder('BTCUSDT', m.cid);
    expect(placed.time - t0, 'sent again only once the first request could no longer execute').toBeGreaterThanOrEqual(7000);
    expect(r.engine.stats).toMatchObject({ sent: 2, retries: 1, rejected: 0 });
    expect(r.engine.stats.lookups, 'looked up with backoff meanwhile').toBeGreaterThanOrEqual(3);
    await r.fillOf(m.cid);
  });

  /**
   * The issue's run: an order answered 503 and executed 2 s later; the bot
   * looked it up once 100 ms after the 503, found nothing, and re-sent the
   * same client id 6-9 s later: two orders, position 0.004 for 0.002. The
   * local exchange's lateExecute fault answers with Binance's unknown-outcome
   * error (USD-M: 503 "Unknown error, please check your request or try again
   * later."; spot: -1007) and places the order delayMs later, unless Binance
   * would no longer forward it (serverTime - timestamp > recvWindow).
   */
  for (const [market, delayMs] of [
    ['futures', 0],
    ['futures', 2000],
    ['futures', 4900],
    ['futures', 5000],
    ['futures', 6000],
    ['futures', 30_000],
    ['spot', 2000],
    ['spot', 9000],
  ] as const) {
    it(`${market}: answered 503 and executed ${delayMs} ms later (recvWindow 5000): exactly one order and one fill`, async () => {
      const symbol = 'BTCUSDT';
      const qty = market === 'spot' ? '0.001' : '0.003';
      const r = await Rig.start({ market, prices: { [symbol]: '50000' } });
      r.ex.faults.lateExecute({ delayMs });
      const m = r.submit({ symbol, side: 'BUY', type: 'MARKET', quantity: qty });
      await r.status(m.cid, 'UNKNOWN');
      await r.settle();
      // Past every late placement's due time: the exchange has decided about it too.
      r.clock.advanceBy(delayMs + 1000);
      await r.settle();
      const inWindow = delayMs <= 5000;
      expect(r.ex.faults.lateOutcomes.map((o) => [o.clientOrderId, o.placed]), 'what the exchange did with the late request').toEqual([[m.cid, inWindow]]);
      expect(r.exchangeOrders(symbol, m.cid), 'one order under the client id, not two').toHaveLength(1);
      expectRowMatchesExchange(r, symbol, m.cid, 'FILLED');
      await r.fillOf(m.cid);
      expect(r.fillRows(m.cid), 'one fill').toHaveLength(1);
      const trades = r.ex.engine.trades(r.ex.accountOf(DEFAULT_ACCOUNT.apiKey), market, symbol);
      expect(trades.reduce((a, t) => a.plus(t.qty), d('0')).toFixed(), 'the account bought once').toBe(qty);
      // Inside the window the late order is adopted (never re-sent); beyond it the first request could
      // no longer execute, so the engine placed it again once the window had closed.
      expect(r.engine.stats.sent, inWindow ? 'adopted, never re-sent' : 're-sent once the window closed').toBe(inWindow ? 1 : 2);
    });
  }

  it('a fresh database on an account that holds an earlier database\'s orders: its ids differ, and a lookup after a 503 never adopts the stranger', async () => {
    const first = await Rig.start({ market: 'futures', prices: { BTCUSDT: '60000' } });
    const old = first.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await first.status(old.cid, 'FILLED');
    // Nine minutes later, a new database (a fresh install, a deleted file) on the same account.
    first.clock.advanceBy(9 * 60_000);
    first.ex.setPrice('futures', 'BTCUSDT', d('50000'));
    const fresh = await Rig.start({ market: 'futures', prices: {}, shareExchangeOf: first });
    const again = fresh.intent({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    expect(again.intent.seq, 'the same sequence number as the earlier database\'s first intent').toBe(old.intent.seq);
    expect(again.cid, 'but not the same client order id').not.toBe(old.cid);
    // The 503 the exchange never executed: the lookup finds nothing under the new id.
    fresh.ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: INTERNAL_ERROR, pathPrefix: '/fapi/v1/order' });
    fresh.bus.publish('order.submit', { kind: 'order.submit', ts: fresh.clock.now(), intent: again.intent });
    await fresh.settle();
    const row = fresh.row(again.cid)!;
    expect(row.status).toBe('FILLED');
    expect(row.average_price, 'filled now at 50000, not the earlier order\'s 60000').toBe('50000');
    expect(row.exchange_order_id).not.toBe(first.row(old.cid)!.exchange_order_id);
    expect(fresh.exchangeOrders('BTCUSDT', old.cid), 'the earlier order is untouched').toHaveLength(1);
  });
});

// ===================================================================== claim 4

describe('clock skew', () => {
  it('a 2 s skew either way: -1021, one resync, the order is sent again and fills', async () => {
    // recvWindow 1000 so that a server 2 s ahead is refused too (with the default 5000 only "ahead of the server" is).
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, venue: { recvWindowMs: 1000 } });
    expect(r.venue.clockOffsetMs).toBe(0);

    // The server 2 s behind: our timestamps are "1000ms ahead of the server's time".
    r.ex.faults.clockSkewMs = -2000;
    const a = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', a.cid, 'FILLED');
    expect(r.venue.clockOffsetMs, 'resynced to the server').toBe(-2000);
    expect(r.engine.stats).toMatchObject({ sent: 2, retries: 1, lookups: 0, rejected: 0 });
    await r.fillOf(a.cid);

    // The server 2 s ahead of our clock: our timestamps fall outside recvWindow.
    r.ex.faults.clockSkewMs = 2000;
    const b = r.submit({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: '0.003', reduceOnly: true });
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', b.cid, 'FILLED');
    expect(r.venue.clockOffsetMs).toBe(2000);
    expect(r.engine.stats).toMatchObject({ sent: 4, retries: 2, rejected: 0 });
    const fill = await r.fillOf(b.cid);
    expect([fill.quantity.toFixed(), fill.side]).toEqual(['0.003', 'SELL']);
  });
});

// ===================================================================== claim 5

describe('rate limits', () => {
  it('429: the order is denied and never sent later (its Retry-After holds new orders too); then 418: REJECTED naming the ban, stats.banned, and the next submit is denied locally', async () => {
    // 1 s before the minute: the exchange's Retry-After (to the end of its weight window) is 1 s.
    // Binance: "HTTP 429 return code is used when breaking a request rate limit" (rest-api.md, HTTP
    // Return Codes; USD-M general-info): the request was refused, not queued. A rate-limited order used
    // to be re-sent after Retry-After (27-29 s late in the issue's run), at a price its signal never saw.
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, t0: Date.UTC(2030, 0, 1, 0, 0, 59) });

    r.ex.faults.force429 = 1;
    const a = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const refused = await r.status(a.cid, 'REJECTED');
    expect(r.ex.faults.force429, 'the fault was used').toBe(0);
    expect(refused.reason).toMatch(/^RATE_LIMITED: /);
    // ...and a new order meanwhile is denied, not queued behind it.
    const late = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const denial = await r.denialOf(late.intent.intentId);
    expect([denial.reason, denial.source]).toEqual(['RATE_LIMITED: the venue answered 429; no new orders until 2030-01-01T00:01:00.000Z', 'execution']);
    expect(r.row(late.cid), 'a denied intent never becomes a row').toBeUndefined();
    r.clock.advanceBy(60_000);
    await r.settle();
    expect(r.exchangeOrders('BTCUSDT', a.cid), 'never sent later').toEqual([]);
    expect(r.exchangeOrders('BTCUSDT', late.cid)).toEqual([]);
    expect(r.engine.stats).toMatchObject({ sent: 1, retries: 0, rejected: 1, banned: false });
    // After the hold, orders go again.
    const c = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.status(c.cid, 'FILLED');
    await r.fillOf(c.cid);

    r.ex.faults.bannedUntil = r.ex.now() + 120_000;
    const b = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const rejected = await r.status(b.cid, 'REJECTED');
    await r.engine.idle();
    expect(rejected.reason).toMatch(/^BANNED: .*BANNED \(HTTP 418\): .*IP banned until \d+/);
    expect(r.row(b.cid)).toMatchObject({ status: 'REJECTED', error: rejected.reason, exchange_order_id: null });
    expect(r.exchangeOrders('BTCUSDT', b.cid), 'the 418 came before the engine: nothing placed').toEqual([]);
    expect(r.engine.stats, 'no retry into a ban').toMatchObject({ sent: 3, retries: 0, rejected: 2, banned: true });

    // Until the ban's end as the 418 stated it (2 min after 00:01:59, where the test left the clock).
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' }, 'IP_BANNED: the venue answered 418; no new orders until 2030-01-01T00:03:59.000Z');
  });
  it('over the order-count budget exchangeInfo publishes: the order is REJECTED unsent and never sent later; reads and the next window are not held', async () => {
    // USD-M publishes ORDERS limits per 10 s and per minute (exchangeInfo rateLimits; general-info "Limits").
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, orderLimits: { futures: [{ interval: 'SECOND', intervalNum: 10, limit: 2 }, { interval: 'MINUTE', intervalNum: 1, limit: 1200 }] } });
    const a = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const b = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const c = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.settle();
    expect([r.row(a.cid)?.status, r.row(b.cid)?.status]).toEqual(['FILLED', 'FILLED']);
    expect(r.row(c.cid)).toMatchObject({ status: 'REJECTED', exchange_order_id: null });
    expect(r.row(c.cid)?.error).toMatch(/^RATE_LIMITED: .*not sent: Binance's ORDERS limit of 2 per 10 SECOND/);
    expect(r.exchangeOrders('BTCUSDT', c.cid), 'never reached the exchange').toEqual([]);
    // Not a 429: nothing was refused by the exchange, so reads (the poll) are not held back.
    await r.engine.poll();
    expect(r.engine.stats.pollsHeldBack, 'the poll ran').toBe(0);
    r.clock.advanceBy(10_000);
    await r.settle();
    expect(r.exchangeOrders('BTCUSDT', c.cid), 'nor later').toEqual([]);
    const d = r.submit({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: '0.003' });
    await r.status(d.cid, 'FILLED');
  });
  it('the safety-net poll gives way above 80 % of the request weight exchangeInfo publishes', async () => {
    // USD-M publishes REQUEST_WEIGHT per minute in exchangeInfo rateLimits (general-info "Limits"); here 60.
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, t0: Date.UTC(2030, 0, 1, 0, 0, 1), weightLimit: { futures: 60 } });
    await r.engine.poll();
    expect(r.engine.stats.pollsHeldBack, 'below 80 % of 60: the poll runs').toBe(0);
    while ((r.venue.usage().usedWeight1m ?? 0) <= 48) await r.venue.openOrders('BTCUSDT');
    await r.engine.poll();
    expect(r.engine.stats.pollsHeldBack, 'above 48 of 60 this minute: held back').toBe(1);
  });
  it('a 429 that a read drew (a reconcile pass, the poll) denies new orders too, until its Retry-After ends', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, t0: Date.UTC(2030, 0, 1, 0, 0, 59) });
    r.ex.faults.force429 = 1;
    await expect(r.venue.openOrders('BTCUSDT'), 'the read met the 429').rejects.toMatchObject({ kind: 'RATE_LIMITED' });
    // No order met it: before, the engine wrote this row and queued it behind the venue's hold.
    await expectDenied(r, { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' }, 'RATE_LIMITED: the venue answered 429; no new orders until 2030-01-01T00:01:00.000Z');
    expect(r.engine.stats.sent, 'nothing was sent into the hold').toBe(0);
    r.clock.advanceBy(1000);
    const a = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.status(a.cid, 'FILLED');
    await r.engine.idle();
    expectRowMatchesExchange(r, 'BTCUSDT', a.cid, 'FILLED');
  });
});

// ===================================================================== claim 6

describe('each fill is recorded once, whichever path brings it first', () => {
  it('stream first, then the poll; and a fill the poll found first, then the stream delivered late: one row and one fill event per trade', async () => {
    // Half a step's volume per step: a resting order fills in two parts when the steps carry volume.
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, fillModel: { ...defaultFillModel(), maxParticipation: d('0.5') } });

    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const mFill = await r.fillOf(m.cid);
    await r.status(m.cid, 'FILLED');
    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.01', price: '49000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();

    // First half, on the stream: the order stays open (PARTIALLY_FILLED), so the poll looks at it.
    r.ex.setPrice('futures', 'BTCUSDT', d('48900'), d('0.01'));
    const l1 = await r.fillOf(l.cid, 1);
    await r.status(l.cid, 'PARTIALLY_FILLED');
    expect(l1.quantity.toFixed()).toBe('0.005');
    expect(r.engine.stats.duplicateFills).toBe(0);

    // Second half while the client's socket is not read: the exchange sent it, the engine has not heard.
    const socket = r.userSocket();
    socket.pause();
    r.ex.setPrice('futures', 'BTCUSDT', d('48800'), d('0.01'));
    expect(r.exchangeOrder('BTCUSDT', l.cid).status).toBe('FILLED');
    expect(r.fillEvents(l.cid)).toHaveLength(1);

    await r.engine.poll();
    expect(r.row(l.cid), 'the poll finished the order').toMatchObject({ status: 'FILLED', filled_quantity: '0.01' });
    const l2 = r.fillEvents(l.cid)[1];
    expect(l2, 'the poll recorded the fill the stream has not delivered').toBeDefined();
    expect([l2!.quantity.toFixed(), l2!.price.toFixed(), l2!.isMaker]).toEqual(['0.005', '49000', true]);
    expect(r.fillRows(l.cid).map((f) => [f.trade_id, f.quantity])).toEqual([
      [l1.tradeId, '0.005'],
      [l2!.tradeId, '0.005'],
    ]);
    // The poll re-read the symbol's trade list: the market fill and the first half came back and changed nothing.
    expect(r.engine.stats.duplicateFills, 'trades the stream had delivered, seen again by the poll').toBe(2);
    expect(r.fillEvents(m.cid).map((f) => f.tradeId)).toEqual([mFill.tradeId]);
    expect(r.fillRows(m.cid)).toHaveLength(1);

    // The stream's copy of the second half arrives after all.
    socket.resume();
    await r.until('the late stream delivery of the second fill', () => r.venueEvents.find((e) => e.type === 'order' && e.fill?.tradeId === l2!.tradeId));
    expect(r.engine.stats.duplicateFills, 'the late stream copy is a duplicate').toBe(3);
    expect(r.fillEvents(l.cid).map((f) => f.tradeId), 'no second fill event').toEqual([l1.tradeId, l2!.tradeId]);
    expect(r.fillRows(l.cid)).toHaveLength(2);
    expect(r.row(l.cid), 'late events do not move the row back').toMatchObject({ status: 'FILLED', filled_quantity: '0.01' });
    expect(r.engine.stats.fills).toBe(3);
  });

  it('stream stalled: a limit that fills meanwhile is recorded by poll() alone', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });
    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();

    r.ex.faults.stalled.add('*');
    r.ex.setPrice('futures', 'BTCUSDT', d('48900'));
    expect(r.exchangeOrder('BTCUSDT', l.cid).status).toBe('FILLED');
    expect(r.row(l.cid)?.status, 'the stream said nothing').toBe('NEW');

    await r.engine.poll();
    expect(r.row(l.cid)).toMatchObject({ status: 'FILLED', filled_quantity: '0.003', average_price: '49000' });
    const fills = r.fillEvents(l.cid);
    expect(fills.map((f) => [f.price.toFixed(), f.quantity.toFixed(), f.fee.toFixed(), f.isMaker])).toEqual([['49000', '0.003', '0.0294', true]]);
    expect(r.fillRows(l.cid).map((f) => f.trade_id)).toEqual([fills[0]!.tradeId]);
    r.ex.faults.stalled.clear();
    await r.engine.poll();
    expect(r.fillEvents(l.cid), 'a second poll adds nothing').toHaveLength(1);
  });

  it('stream dropped: the reconnect triggers a poll that records the fill missed while down', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });
    const l = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    await r.status(l.cid, 'NEW');
    await r.engine.idle();

    const streamEvent = (status: string) => () => r.venueEvents.find((e) => e.type === 'stream' && e.status === status);
    r.ex.hub.dropAll();
    await r.until('stream disconnected', streamEvent('disconnected'));
    r.ex.setPrice('futures', 'BTCUSDT', d('48900'));
    expect(r.exchangeOrder('BTCUSDT', l.cid).status).toBe('FILLED');
    // The reconnect backoff (500 ms) runs on the test clock.
    r.clock.advanceBy(500);
    await r.until('stream reconnected', streamEvent('reconnected'));
    const fill = await r.fillOf(l.cid);
    await r.status(l.cid, 'FILLED');
    expect([fill.price.toFixed(), fill.quantity.toFixed()]).toEqual(['49000', '0.003']);
    expect(r.fillRows(l.cid)).toHaveLength(1);
  });

  // A place response said FILLED while the stream was down: the fill gap is polled for.
  it('a MARKET order filled while the stream is stalled gets its fill recorded by the poll', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' } });
    r.ex.faults.stalled.add('*');
    const m = r.submit({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    await r.engine.idle();
    expect(r.row(m.cid)?.status).toBe('FILLED');
    await r.engine.poll();
    expect(r.fillRows(m.cid), 'the fill of a FILLED order the stream never reported').toHaveLength(1);
  });
});

// ===================================================================== claim 7

describe('restart safety', () => {
  it('PENDING rows left by a dead process: poll() adopts what the exchange has, and rejects with NO_ACK what it lacks once ackTimeoutMs passed', async () => {
    const r = await Rig.start({ market: 'futures', prices: { BTCUSDT: '50000' }, engine: { ackTimeoutMs: 30_000 } });
    // The process dies: rows written, some sends reached the exchange, none of the answers were heard.
    await r.engine.stop();
    const open = r.insertPending({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '49000' });
    const filled = r.insertPending({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003' });
    const lost = r.insertPending({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.003', price: '48000' });
    await r.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.003'), price: d('49000'), timeInForce: 'GTC', clientOrderId: open });
    await r.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.003'), clientOrderId: filled });
    const trade = r.ex.engine.trades(r.ex.accountOf(DEFAULT_ACCOUNT.apiKey), 'futures', 'BTCUSDT').find((t) => t.clientOrderId === filled)!;

    // Restart: a new engine over the same database.
    r.engine = r.newEngine();
    r.engine.start();
    await r.engine.poll();
    expectRowMatchesExchange(r, 'BTCUSDT', open, 'NEW');
    expect(r.row(filled)?.status, 'not open on the exchange and younger than ackTimeoutMs: may still be in flight, left alone').toBe('PENDING');
    expect(r.row(lost)?.status).toBe('PENDING');

    r.clock.advanceBy(31_000);
    await r.engine.poll();
    expectRowMatchesExchange(r, 'BTCUSDT', filled, 'FILLED');
    expect(r.row(filled)).toMatchObject({ filled_quantity: '0.003', average_price: '50000' });
    expect(r.fillRows(filled).map((f) => [f.trade_id, f.price, f.quantity, f.fee]), 'its fill, from the trade list').toEqual([[String(trade.tradeId), '50000', '0.003', '0.075']]);
    expect(r.fillEvents(filled)).toHaveLength(1);

    const reason = `NO_ACK: the venue has no order ${lost} 31 s after its request left, and it can no longer execute`;
    expect(r.row(lost)).toMatchObject({ status: 'REJECTED', error: reason, exchange_order_id: null });
    expect((await r.status(lost, 'REJECTED')).reason).toBe(reason);
    expect(r.exchangeOrders('BTCUSDT', lost), 'nothing was sent for it on the way').toEqual([]);
    expect(r.exchangeOrders('BTCUSDT', open)).toHaveLength(1);
    expect(r.engine.stats.sent, 'the restarted engine resolved by lookup, never by sending').toBe(0);
    expect(r.engine.openOrders().map((o) => o.client_order_id)).toEqual([open]);
  });
});
