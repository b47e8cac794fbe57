/**
 * The risk engine wired as in production: a real SQLite store (migrated; in
 * memory, or a temp file for the restart tests), a real bus, a TestClock, a
 * real Portfolio (instruments from the sim catalog) and a real
 * OrderPlanner (intents with persisted sequence numbers). A stand-in for the
 * execution engine handles `order.submit`: it records what was approved and,
 * when the test says so, publishes `order.update` PENDING / FILLED and the
 * `fill`, so the portfolio and the engine's order tracker see positions and
 * working orders exactly as they would in the bot.
 *
 * Figures are worked by hand in the comment above each assertion; reasons are
 * compared as whole strings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec, type Dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { IntentSequence } from '../../src/execution/intent-sequence.ts';
import type { Channel, Channels, OrderDenied, OrderIntent, OrderSource, RiskHalt, RiskStateChanged } from '../../src/model/events.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import type { Market } from '../../src/model/market.ts';
import { Portfolio } from '../../src/portfolio/portfolio.ts';
import { OrderPlanner } from '../../src/risk/order-planner.ts';
import { RiskEngine } from '../../src/risk/risk-engine.ts';
import { botConfigSchema, type RiskConfig } from '../../src/settings/bot-config.ts';
import { strategyConfigSchema, type StrategyConfig } from '../../src/settings/strategy-config.ts';
import { writeKv } from '../../src/store/kv.ts';
import { Store } from '../../src/store/store.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const MIN = 60_000;
const logger = silentLogger();

// ------------------------------------------------------------------ harness

let ws: Workspace | undefined;
const cleanups: Array<() => void> = [];
const rigs: Rig[] = [];
afterEach(() => {
  const faults = rigs.splice(0).flatMap((r) => r.events('component.fault'));
  for (const c of cleanups.splice(0).reverse()) c();
  ws?.cleanup();
  ws = undefined;
  expect(faults.map((f) => `${f.component} on ${f.channel}: ${f.error.message}`), 'no bus handler threw during the test').toEqual([]);
});

type ExecMode = 'fill' | 'pending' | 'hold';

interface RigOpts {
  market?: Market;
  /** The bot.yaml `risk:` section, through botConfigSchema (defaults for the rest). */
  risk?: Record<string, unknown>;
  /** strategy -> symbol -> strategy YAML, through strategyConfigSchema. */
  strategies?: Record<string, Record<string, Record<string, unknown>>>;
  /** Start time of the clock (a restart continues the old run's time). */
  start?: number;
  /** Runs on the migrated store before anything reads it (e.g. to plant a corrupt kv row). */
  prepare?: (store: Store) => void;
  /** Quote cash in the opening account.updated SNAPSHOT; none when null. */
  cash?: string | null;
  /** Keep the database in the test's temp file (restarts); otherwise in memory, which is faster. */
  persist?: boolean;
}

interface OrderOpts {
  symbol?: string;
  strategy?: string;
  side: 'BUY' | 'SELL';
  quantity: string;
  price?: string;
  reduceOnly?: boolean;
  source?: OrderSource;
}

type Logged = { [C in Channel]: { channel: C; payload: Channels[C] } }[Channel];

const WATCHED = ['order.request', 'order.submit', 'order.denied', 'order.update', 'fill', 'risk.state', 'risk.halt', 'component.fault'] as const;

class Rig {
  readonly log: Logged[] = [];
  /** Approved intents, in the order the stand-in execution engine received them. */
  readonly submitted: OrderIntent[] = [];
  /** What the stand-in execution engine does with the next approved orders. */
  execMode: ExecMode = 'fill';
  /** Fill price for the next fills (else the limit price, else the mark). */
  fillPrice: string | undefined;
  private tradeSeq = 0;
  private riskCfg: RiskConfig;

  private constructor(
    readonly store: Store,
    readonly bus: Bus,
    readonly clock: TestClock,
    readonly portfolio: Portfolio,
    readonly engine: RiskEngine,
    readonly planner: OrderPlanner,
    riskCfg: RiskConfig,
  ) {
    this.riskCfg = riskCfg;
  }

  static async open(opts: RigOpts = {}): Promise<Rig> {
    if (opts.persist) ws ??= makeWorkspace();
    const market = opts.market ?? 'spot';
    const store = Store.open(opts.persist ? ws!.dbFile : ':memory:');
    await store.migrate();
    cleanups.push(() => store.close());
    opts.prepare?.(store);
    const clock = new TestClock(opts.start ?? T0);
    const bus = new Bus({ logger, clock });
    const insts = new Map<string, Instrument>(catalog(market).map((i) => [i.symbol, i]));
    const instrument = (s: string): Instrument | undefined => insts.get(s);
    const portfolio = new Portfolio({
      bus,
      store,
      clock,
      logger,
      market,
      quoteAsset: 'USDT',
      instrument: (s) => insts.get(s),
    });
    const strategies = new Map<string, StrategyConfig>();
    for (const [name, bySymbol] of Object.entries(opts.strategies ?? {})) {
      for (const [symbol, yaml] of Object.entries(bySymbol)) strategies.set(`${name}/${symbol}`, strategyConfigSchema.parse(yaml));
    }
    const riskCfg = botConfigSchema.parse({ market, risk: opts.risk ?? {} }).risk;
    let rig: Rig | undefined;
    const engine = new RiskEngine({
      bus,
      store,
      clock,
      logger,
      market,
      portfolio,
      ledger: portfolio.ledger,
      instrument,
      config: {
        // Read on every request, as the kernel's settings() view is (hot reload).
        risk: () => rig!.riskCfg,
        strategy: (strategy, symbol) => strategies.get(`${strategy}/${symbol}`),
        leverage: () => (market === 'futures' ? 5 : 1),
      },
    });
    const planner = new OrderPlanner({
      bus,
      clock,
      logger,
      market,
      portfolio,
      ledger: portfolio.ledger,
      instrument,
      strategy: () => undefined,
      sequence: new IntentSequence(store, clock),
    });
    rig = new Rig(store, bus, clock, portfolio, engine, planner, riskCfg);
    rigs.push(rig);
    for (const ch of WATCHED) bus.observe(ch, (p) => rig.log.push({ channel: ch, payload: p } as Logged), 'test-log');
    bus.handle('order.submit', (s) => rig.execute(s.intent), 'test-execution');
    // The kernel's start order: portfolio, SNAPSHOT, risk, planner.
    portfolio.start();
    if (opts.cash !== null) rig.snapshot(opts.cash ?? '10000');
    engine.start();
    planner.start();
    cleanups.push(() => {
      planner.stop();
      engine.stop();
      portfolio.stop();
    });
    return rig;
  }

  /** A restart: everything stopped and the store closed; the caller opens a new rig on the same file. */
  shutdown(): void {
    this.planner.stop();
    this.engine.stop();
    this.portfolio.stop();
    this.store.close();
  }

  get market(): Market {
    return this.portfolio.market;
  }

  /** Swaps the bot.yaml risk section (the engine reads it per request). */
  setRisk(risk: Record<string, unknown>): void {
    this.riskCfg = botConfigSchema.parse({ market: this.market, risk }).risk;
  }

  snapshot(usdt: string): void {
    this.bus.publish('account.updated', {
      kind: 'account.updated',
      ts: this.clock.now(),
      balances: [{ asset: 'USDT', free: dec(usdt), locked: dec(0) }],
      ...(this.market === 'futures' ? { walletBalance: dec(usdt) } : {}),
      reason: 'SNAPSHOT',
    });
  }

  /** A closed 1m candle at the current clock: the mark (spot), last price, lastDataAt and prev candle. */
  candle(symbol: string, close: number, range?: { high: number; low: number }): void {
    const now = this.clock.now();
    this.bus.publish('candle.closed', { kind: 'candle.closed', ts: now, market: this.market, symbol, timeframe: '1m', openTime: now - MIN, open: close, high: range?.high ?? close, low: range?.low ?? close, close, volume: 1 });
  }

  /** An order request built by the real OrderPlanner (persisted sequence, intent id `<strategy>/<symbol>/<seq>`). */
  order(o: OrderOpts): OrderIntent {
    return this.planner.submit({
      strategy: o.strategy ?? 'rsi',
      symbol: o.symbol ?? 'BTCUSDT',
      side: o.side,
      quantity: dec(o.quantity),
      ...(o.price ? { price: dec(o.price) } : {}),
      ...(o.reduceOnly ? { reduceOnly: true } : {}),
      source: o.source ?? 'strategy',
      reason: 'test',
    });
  }

  /** Fills an order the stand-in left working (mode 'pending' or 'hold'). */
  fill(i: OrderIntent, price?: string): void {
    this.doFill(i, price);
  }

  events<C extends Channel>(channel: C): Array<Channels[C]> {
    return this.log.filter((l) => l.channel === channel).map((l) => l.payload as Channels[C]);
  }

  deniedRows() {
    return this.store.all(this.store.db.selectFrom('risk_events').selectAll().where('kind', '=', 'denied').orderBy('id'));
  }

  stateRows() {
    return this.store.all(this.store.db.selectFrom('risk_events').selectAll().where('kind', '=', 'state').orderBy('id'));
  }

  private cid(i: OrderIntent): string {
    return `c-${i.seq}`;
  }

  private execute(i: OrderIntent): void {
    this.submitted.push(i);
    if (this.execMode === 'hold') return;
    this.bus.publish('order.update', { kind: 'order.update', ts: this.clock.now(), clientOrderId: this.cid(i), intentId: i.intentId, strategy: i.strategy, market: i.market, side: i.side, reduceOnly: i.reduceOnly ?? false, symbol: i.symbol, status: 'PENDING', filledQuantity: dec(0) });
    if (this.execMode === 'fill') this.doFill(i, this.fillPrice);
  }

  private doFill(i: OrderIntent, price?: string): void {
    const px = price !== undefined ? dec(price) : (i.price ?? this.portfolio.mark(i.symbol));
    if (!px) throw new Error(`no fill price for ${i.intentId}`);
    const now = this.clock.now();
    this.bus.publish('fill', { kind: 'fill', ts: now, tradeId: `t${++this.tradeSeq}-${i.seq}`, clientOrderId: this.cid(i), strategy: i.strategy, market: i.market, symbol: i.symbol, side: i.side, price: px, quantity: i.quantity, fee: dec(0), feeAsset: 'USDT', isMaker: false });
    this.bus.publish('order.update', { kind: 'order.update', ts: now, clientOrderId: this.cid(i), intentId: i.intentId, strategy: i.strategy, market: i.market, side: i.side, reduceOnly: i.reduceOnly ?? false, symbol: i.symbol, status: 'FILLED', filledQuantity: i.quantity, averagePrice: px });
  }
}

const s = (d: Dec | undefined): string | undefined => d?.toFixed();

/**
 * The request was approved: exactly one order.submit carrying the very same
 * intent object, no order.denied and no risk_events row for it.
 */
function expectApproved(r: Rig, i: OrderIntent, why: string): void {
  const denied = r.events('order.denied').filter((d) => d.intent.intentId === i.intentId);
  expect(denied.map((d) => d.reason), `${why}: not denied`).toEqual([]);
  const subs = r.events('order.submit').filter((x) => x.intent.intentId === i.intentId);
  expect(subs.length, `${why}: exactly one order.submit`).toBe(1);
  expect(subs[0]!.intent, `${why}: order.submit carries the requested intent unchanged`).toBe(i);
  expect(r.deniedRows().filter((row) => JSON.parse(row.details ?? '{}').intentId === i.intentId), `${why}: no risk_events row`).toEqual([]);
}

/**
 * The request was denied with exactly `reason`: one order.denied (source
 * 'risk', the same intent), no order.submit, and one risk_events row (kind
 * 'denied', scope 'symbol', scope_key the symbol, the same reason, details
 * naming the intent).
 */
function expectDenied(r: Rig, i: OrderIntent, reason: string, why: string): OrderDenied {
  const denied = r.events('order.denied').filter((d) => d.intent.intentId === i.intentId);
  expect(denied.map((d) => d.reason), `${why}: one order.denied with the exact reason`).toEqual([reason]);
  const d = denied[0]!;
  expect(d.source, `${why}: denied by risk`).toBe('risk');
  expect(d.intent, `${why}: the denial carries the requested intent`).toBe(i);
  expect(d.ts, `${why}: stamped with the clock`).toBe(r.clock.now());
  expect(r.events('order.submit').filter((x) => x.intent.intentId === i.intentId), `${why}: never reaches execution`).toEqual([]);
  const rows = r.deniedRows().filter((row) => JSON.parse(row.details ?? '{}').intentId === i.intentId);
  expect(rows.length, `${why}: one risk_events row`).toBe(1);
  const row = rows[0]!;
  expect({ ts: row.ts, scope: row.scope, scope_key: row.scope_key, kind: row.kind, reason: row.reason, source: row.source, state_from: row.state_from, state_to: row.state_to }, `${why}: the risk_events row`).toEqual({
    ts: r.clock.now(),
    scope: 'symbol',
    scope_key: i.symbol,
    kind: 'denied',
    reason,
    source: 'risk',
    state_from: null,
    state_to: null,
  });
  expect(JSON.parse(row.details!), `${why}: details name the intent, strategy, side and quantity`).toEqual({
    intentId: i.intentId,
    strategy: i.strategy,
    side: i.side,
    type: i.type,
    quantity: i.quantity.toFixed(),
    ...(i.price ? { price: i.price.toFixed() } : {}),
    source: i.source,
  });
  return d;
}

/** Buys then sells `qty` at the given prices (one closed round trip), each filled at once. */
function roundTrip(r: Rig, buyAt: string, sellAt: string, qty = '1', strategy = 'rsi', symbol = 'BTCUSDT'): void {
  r.execMode = 'fill';
  r.fillPrice = buyAt;
  expectApproved(r, r.order({ strategy, symbol, side: 'BUY', quantity: qty }), `round trip entry at ${buyAt}`);
  r.fillPrice = sellAt;
  expectApproved(r, r.order({ strategy, symbol, side: 'SELL', quantity: qty }), `round trip exit at ${sellAt}`);
  r.fillPrice = undefined;
}

// ------------------------------------------------------------- 1. denials

describe('every denial is an order.denied from risk and a risk_events row', () => {
  it('STALE_MARKET_DATA: no candle for longer than staleDataSec (exactly staleDataSec old still allows)', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    // Never any data for ETHUSDT: lastDataAt is 0, so the age is the clock itself.
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), `STALE_MARKET_DATA: symbol=ETHUSDT ageMs=${T0} maxMs=180000`, 'never any data');
    r.clock.advanceBy(180_000);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'exactly staleDataSec (180 s) old');
    r.clock.advanceBy(1);
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=180001 maxMs=180000', '1 ms past staleDataSec');
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'a fresh candle clears it');
  });

  it('ORDER_RATE_SYMBOL: the (max+1)th order on a symbol inside a minute, exits included; other symbols unaffected', async () => {
    const r = await Rig.open({ risk: { maxOrdersPerSymbolPerMinute: 3 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    for (let n = 1; n <= 3; n++) expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), `order ${n} of 3`);
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=3 max=3', 'the 4th entry in the minute');
    expectDenied(r, r.order({ side: 'SELL', quantity: '1' }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=3 max=3', 'the throttle applies to exits too (denials are not counted)');
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'another symbol has its own count');
    r.clock.advanceBy(MIN - 1);
    expectDenied(r, r.order({ side: 'SELL', quantity: '1' }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=3 max=3', '1 ms before the window ends');
    r.clock.advanceBy(1);
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'a minute after: the window has rolled');
  });

  it('ORDER_RATE_GLOBAL: the (max+1)th order account-wide inside a second', async () => {
    const r = await Rig.open({ risk: { maxOrdersPerSecond: 2 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'first order');
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'second order, other symbol');
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'SELL', quantity: '1' }), 'ORDER_RATE_GLOBAL: count=2 max=2', 'third order in the same second');
    r.clock.advanceBy(999);
    expectDenied(r, r.order({ side: 'SELL', quantity: '1' }), 'ORDER_RATE_GLOBAL: count=2 max=2', '999 ms later, still inside the second');
    r.clock.advanceBy(1);
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'a second later');
  });

  it('price protection: a limit price far from the mark (entries and exits), and an abnormal candle (entries)', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    // |110 - 100| / 100 * 10000 = 1000 bps > 100.
    expectDenied(r, r.order({ side: 'BUY', quantity: '1', price: '110' }), 'PRICE_DEVIATION: price=110.00 mark=100.00 bps=1000.00 max=100.00', 'limit 10 % above the mark');
    // 101: exactly 100 bps, allowed at the limit.
    r.execMode = 'hold';
    expectApproved(r, r.order({ side: 'BUY', quantity: '1', price: '101' }), 'limit exactly maxPriceDeviationBps away');
    r.fill(r.submitted.at(-1)!);
    expect(s(r.portfolio.position('BTCUSDT').quantity), 'long 1').toBe('1');
    // A fat-fingered exit is as harmful: |90 - 100| / 100 = 1000 bps.
    expectDenied(r, r.order({ side: 'SELL', quantity: '1', price: '90' }), 'PRICE_DEVIATION: price=90.00 mark=100.00 bps=1000.00 max=100.00', 'an exit limit 10 % below the mark');
    // A candle whose range is (112 - 100) / 100 = 12 % > maxCandleRangePct 10.
    r.clock.advanceBy(MIN);
    r.candle('BTCUSDT', 100, { high: 112, low: 100 });
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'ABNORMAL_CANDLE: rangePct=12.00 max=10.00', 'entry after an abnormal candle');
    r.execMode = 'fill';
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'an exit passes the candle rule');
  });

  it('MAX_POSITION: percent of equity (at the limit allows) and a per-symbol quantity cap', async () => {
    const r = await Rig.open({ risk: { maxPositionQty: { ETHUSDT: '2' } } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    // Default maxPositionPct 25: 30 * 100 = 3000 of 10000 equity = 30 %.
    expectDenied(r, r.order({ side: 'BUY', quantity: '30' }), 'POSITION_SIZE_PCT_LIMIT: pct=30.00 max=25.00 notional=3000.00', '30 % of equity');
    expectApproved(r, r.order({ side: 'BUY', quantity: '25' }), '25 * 100 = 2500: exactly 25 %');
    // Spot equity after the fill: 7500 cash + 25 * 100 = 10000; 25.01 * 100 = 2501 = 25.01 %.
    expect(s(r.portfolio.equity()), 'equity unchanged by a fill at the mark').toBe('10000');
    expectDenied(r, r.order({ side: 'BUY', quantity: '0.01' }), 'POSITION_SIZE_PCT_LIMIT: pct=25.01 max=25.00 notional=2501.00', 'adding to the position counts the position');
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '2.5' }), 'POSITION_SIZE_LIMIT: qty=2.5 max=2', 'maxPositionQty ETHUSDT 2');
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '2' }), 'exactly the quantity cap');
  });

  it('DUPLICATE_ENTRY: a second entry on the same symbol and side while the first is in flight', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    // Approved, before the execution engine says anything (same tick).
    r.execMode = 'hold';
    const first = r.order({ side: 'BUY', quantity: '1' });
    expectApproved(r, first, 'first entry');
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'DUPLICATE_ENTRY: symbol=BTCUSDT side=BUY open=1', 'approved, no order.update yet');
    r.fill(first);
    // Working on the venue: PENDING seen, not filled.
    r.execMode = 'pending';
    const second = r.order({ side: 'BUY', quantity: '1' });
    expectApproved(r, second, 'the first filled: a new entry may go');
    expect(r.events('order.update').at(-1)?.status, 'the stand-in reported it PENDING').toBe('PENDING');
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'DUPLICATE_ENTRY: symbol=BTCUSDT side=BUY open=1', 'PENDING on the venue');
    r.fill(second);
    r.execMode = 'fill';
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'FILLED: nothing in flight');
    expect(s(r.portfolio.position('BTCUSDT').quantity), 'three entries filled').toBe('3');
  });

  it('INSUFFICIENT_BALANCE: notional plus fee above the free cash, less what working entries reserve', async () => {
    const r = await Rig.open({ risk: { maxPositionPct: 100 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 100);
    // 100 * 100 = 10000 notional + 0.1 % fee 10 = 10010 > 10000 cash.
    expectDenied(r, r.order({ side: 'BUY', quantity: '100' }), 'INSUFFICIENT_BALANCE: required=10010.00 available=10000.00 fee=10.00', 'fee pushes it over');
    r.execMode = 'hold';
    expectApproved(r, r.order({ side: 'BUY', quantity: '50' }), '5000 + 5 fee of 10000');
    // The BTC entry in flight reserves 50 * 100 = 5000: 5000 + 5 > 5000 available.
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '50' }), 'INSUFFICIENT_BALANCE: required=5005.00 available=5000.00 fee=5.00', 'a working entry reserves its notional');
    // 49.9 * 100 = 4990 + 4.99 = 4994.99 <= 5000.
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '49.9' }), 'fits what is left');
  });

  it('MAX_OPEN_POSITIONS: an entry that would open one more position than maxOpenPositions', async () => {
    const r = await Rig.open({ risk: { maxOpenPositions: 1 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'first position');
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'MAX_OPEN_POSITIONS: open=1 max=1', 'a second symbol');
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'adding to the open position is not a new one');
    expectApproved(r, r.order({ side: 'SELL', quantity: '2' }), 'closing it');
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'flat again: room for one');
  });

  it('MAX_OPEN_POSITIONS counts entries in flight: two symbols signalling in the same tick cannot both open', async () => {
    const r = await Rig.open({ risk: { maxOpenPositions: 1 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    r.execMode = 'hold';
    const btc = r.order({ side: 'BUY', quantity: '1' });
    expectApproved(r, btc, 'first entry, not filled yet');
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'MAX_OPEN_POSITIONS: open=1 max=1', 'the BTCUSDT entry in flight will be a position');
    r.fill(btc);
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'MAX_OPEN_POSITIONS: open=1 max=1', 'and once filled');
  });

  it('CONSECUTIVE_LOSSES: three losing round trips pause the strategy on the symbol for the cooldown', async () => {
    const r = await Rig.open({ risk: { lossCooldownMinutes: 30 } });
    r.candle('BTCUSDT', 100);
    roundTrip(r, '100', '99');
    roundTrip(r, '100', '99');
    expect(r.portfolio.trips('rsi', 'BTCUSDT').consecutiveLosses, 'two losses: below maxConsecutiveLosses 3').toBe(2);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'entry after two losses');
    r.fillPrice = '99';
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'third losing exit');
    r.fillPrice = undefined;
    const lossAt = r.clock.now();
    expect(r.portfolio.trips('rsi', 'BTCUSDT'), 'three losses in a row, the last now').toMatchObject({ consecutiveLosses: 3, lastLossAt: lossAt });
    const until = new Date(lossAt + 30 * MIN).toISOString();
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), `CONSECUTIVE_LOSSES: strategy=rsi symbol=BTCUSDT losses=3 max=3 until=${until}`, 'entry right after the third loss');
    expectApproved(r, r.order({ strategy: 'macd', side: 'BUY', quantity: '1' }), 'another strategy on the symbol is not paused');
    r.clock.advanceTo(lossAt + 30 * MIN - 1);
    r.candle('BTCUSDT', 100);
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), `CONSECUTIVE_LOSSES: strategy=rsi symbol=BTCUSDT losses=3 max=3 until=${until}`, '1 ms before the cooldown ends');
    r.clock.advanceTo(lossAt + 30 * MIN);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'at the end of the cooldown');
  });

  it('CONSECUTIVE_LOSSES: the strategy YAML cooldownMinutes overrides lossCooldownMinutes', async () => {
    const r = await Rig.open({ risk: { lossCooldownMinutes: 30, maxConsecutiveLosses: 1 }, strategies: { rsi: { BTCUSDT: { risk: { cooldownMinutes: 5 } } } } });
    r.candle('BTCUSDT', 100);
    roundTrip(r, '100', '99');
    const lossAt = r.clock.now();
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), `CONSECUTIVE_LOSSES: strategy=rsi symbol=BTCUSDT losses=1 max=1 until=${new Date(lossAt + 5 * MIN).toISOString()}`, 'the YAML cooldown (5 min)');
    r.clock.advanceBy(5 * MIN);
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), '5 minutes later');
  });

  it('STRATEGY_DAILY_LOSS_LIMIT: the strategy YAML risk.maxDailyLoss over all its symbols', async () => {
    const r = await Rig.open({ strategies: { rsi: { BTCUSDT: { risk: { maxDailyLoss: '3' } }, ETHUSDT: { risk: { maxDailyLoss: '3' } } } } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 50);
    // Loss 2 on BTCUSDT (1 * (100 - 98)): below the limit 3.
    roundTrip(r, '100', '98');
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'loss 2 < 3');
    r.fillPrice = '99';
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'second losing exit (loss 1)');
    r.fillPrice = undefined;
    expect(s(r.portfolio.strategyRealizedToday('rsi')), 'realized today -2 - 1').toBe('-3');
    expectDenied(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'STRATEGY_DAILY_LOSS_LIMIT: strategy=rsi loss=3.00 limit=3.00', 'a loss on BTCUSDT stops the strategy on ETHUSDT too');
    expectApproved(r, r.order({ strategy: 'macd', symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'another strategy trades on');
  });
});

// --------------------------------------------------------- 2. approvals

describe('approved orders', () => {
  it('become exactly one order.submit with the same intent, and nothing else', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    r.execMode = 'hold';
    const before = r.log.length;
    const rowsBefore = r.store.all(r.store.db.selectFrom('risk_events').selectAll()).length;
    const i = r.order({ side: 'BUY', quantity: '1', price: '100.5' });
    expect(r.log.slice(before).map((l) => l.channel), 'the request, then its submit').toEqual(['order.request', 'order.submit']);
    const submit = r.events('order.submit').at(-1)!;
    expect(submit, 'order.submit payload').toEqual({ kind: 'order.submit', ts: T0, intent: i });
    expect(submit.intent, 'the very intent object that was requested').toBe(i);
    expect(r.submitted, 'the execution stand-in received it once').toEqual([i]);
    expect(r.store.all(r.store.db.selectFrom('risk_events').selectAll()).length, 'no risk_events row for an approval').toBe(rowsBefore);
    expect({ approvals: r.engine.approvals, denials: r.engine.denials, tripped: r.engine.tripped.size }, 'counters').toEqual({ approvals: 1, denials: 0, tripped: 0 });
  });
});

// ---------------------------------------------------- 3. configured guards

describe('config decides which guards run and in what order', () => {
  it('with guards [balance] only, stale data is allowed', async () => {
    const r = await Rig.open({ risk: { guards: ['balance'] } });
    r.candle('BTCUSDT', 100);
    r.clock.advanceBy(10 * MIN);
    expectApproved(r, r.order({ side: 'BUY', quantity: '1' }), 'stale-data is not configured');
    // 200 * 100 + 20 fee > 10000 - 100 spent: the one configured guard still runs.
    expectDenied(r, r.order({ side: 'BUY', quantity: '200' }), 'INSUFFICIENT_BALANCE: required=20020.00 available=9900.00 fee=20.00', 'balance is configured');
  });

  it('with two failing guards the first listed wins; swapping them swaps the reason (read per request)', async () => {
    const r = await Rig.open({ risk: { guards: ['stale-data', 'price-protection'] } });
    r.candle('BTCUSDT', 100);
    r.clock.advanceBy(10 * MIN);
    // Stale (600 s > 180 s) and a limit 1000 bps from the mark.
    expectDenied(r, r.order({ side: 'BUY', quantity: '1', price: '110' }), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=600000 maxMs=180000', 'stale-data listed first');
    r.setRisk({ guards: ['price-protection', 'stale-data'] });
    expectDenied(r, r.order({ side: 'BUY', quantity: '1', price: '110' }), 'PRICE_DEVIATION: price=110.00 mark=100.00 bps=1000.00 max=100.00', 'price-protection listed first');
    r.setRisk({ guards: [] });
    expectApproved(r, r.order({ side: 'BUY', quantity: '1', price: '110' }), 'no guards at all: only the state gate');
  });
});

// ----------------------------------------------------- 4. exits and states

describe('exits', () => {
  it('pass the entry-only guards (stale data, max position); an opposite order larger than the position is an entry', async () => {
    const r = await Rig.open({ risk: { maxPositionPct: 50 } });
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '40' }), '40 % of equity');
    r.setRisk({ maxPositionPct: 25 });
    r.clock.advanceBy(10 * MIN);
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=600000 maxMs=180000', 'an entry on stale data');
    expectApproved(r, r.order({ side: 'SELL', quantity: '5' }), 'a plain opposite-side exit on stale data, position above the limit');
    expectApproved(r, r.order({ side: 'SELL', quantity: '5', reduceOnly: true }), 'a reduce-only exit');
    expectDenied(r, r.order({ side: 'SELL', quantity: '31' }), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=600000 maxMs=180000', 'selling 31 of 30 flips: an entry');
    r.candle('BTCUSDT', 100);
    // Long 30 * 100 = 3000 = 30 % of 10000 > 25: an add is denied, an exit is not.
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'POSITION_SIZE_PCT_LIMIT: pct=31.00 max=25.00 notional=3100.00', 'an add above maxPositionPct');
    expectApproved(r, r.order({ side: 'SELL', quantity: '10' }), 'an exit of a position above maxPositionPct');
    expect(s(r.portfolio.position('BTCUSDT').quantity), '40 - 5 - 5 - 10').toBe('20');
  });

  it('futures: a reduce-only BUY closing a short passes stale data; a SELL adding to it does not', async () => {
    const r = await Rig.open({ market: 'futures' });
    r.candle('BTCUSDT', 100_000);
    expectApproved(r, r.order({ side: 'SELL', quantity: '0.01' }), 'open a short of 0.01 (1000 notional)');
    expect(s(r.portfolio.position('BTCUSDT').quantity), 'short').toBe('-0.01');
    r.clock.advanceBy(10 * MIN);
    expectDenied(r, r.order({ side: 'SELL', quantity: '0.01' }), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=600000 maxMs=180000', 'adding to the short');
    expectApproved(r, r.order({ side: 'BUY', quantity: '0.01', reduceOnly: true }), 'reduce-only close of the short');
    expect(s(r.portfolio.position('BTCUSDT').quantity), 'flat').toBe('0');
  });

  it('under REDUCING an exit passes and an entry is denied with the state, scope and cause', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '2' }), 'long 2 while ACTIVE');
    r.engine.setState('account', r.engine.accountKey(), 'REDUCING', 'manual pause', 'operator');
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=REDUCING scope=account because="manual pause"', 'entry under account REDUCING');
    expectApproved(r, r.order({ side: 'SELL', quantity: '1' }), 'a partial exit under REDUCING');
    r.engine.setState('account', r.engine.accountKey(), 'ACTIVE', 'resume', 'operator');
    r.engine.setState('symbol', 'BTCUSDT', 'REDUCING', 'symbol pause', 'operator');
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=REDUCING scope=symbol key=BTCUSDT because="symbol pause"', 'entry under symbol REDUCING');
    expectApproved(r, r.order({ side: 'SELL', quantity: '1', reduceOnly: true }), 'reduce-only exit under symbol REDUCING');
  });

  it('under HALTED a full close passes and a partial exit is denied', async () => {
    const r = await Rig.open();
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '2' }), 'long 2');
    r.engine.setState('account', r.engine.accountKey(), 'HALTED', 'stop-all', 'operator');
    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=HALTED scope=account because="stop-all"', 'entry under HALTED');
    expectDenied(r, r.order({ side: 'SELL', quantity: '1' }), 'TRADING_STATE: state=HALTED scope=account because="stop-all"', 'partial exit under HALTED');
    expectDenied(r, r.order({ side: 'SELL', quantity: '1', reduceOnly: true, source: 'protective' }), 'TRADING_STATE: state=HALTED scope=account because="stop-all"', 'a partial protective exit too');
    expectApproved(r, r.order({ side: 'SELL', quantity: '2' }), 'the full close');
    expect(r.portfolio.positions(), 'flat').toEqual([]);
  });
});

// ------------------------------------------------------------ 5. escalations

describe('escalations', () => {
  it('a drawdown past reduceDrawdownPct goes REDUCING and past maxDrawdownPct HALTED, on the candle', async () => {
    const r = await Rig.open({ risk: { reduceDrawdownPct: 5, maxDrawdownPct: 10, maxDailyLossPct: 50 } });
    const key = r.engine.accountKey();
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '20' }), 'long 20 at 100 (2000 of 10000)');

    // Equity: 8000 cash + 20 * 70 = 9400; drawdown (10000 - 9400) / 10000 = 6 %.
    r.clock.advanceBy(MIN);
    r.candle('BTCUSDT', 70);
    const reduceReason = 'DRAWDOWN_REDUCE: drawdown=6.00 limit=5.00';
    expect(r.engine.states.get('account', key), 'REDUCING on the candle').toBe('REDUCING');
    expect(r.events('risk.state'), 'risk.state ACTIVE -> REDUCING').toEqual([{ kind: 'risk.state', ts: T0 + MIN, scope: 'account', key, from: 'ACTIVE', to: 'REDUCING', reason: reduceReason, source: 'guard:DRAWDOWN_REDUCE' }]);
    expect(r.events('risk.halt'), 'no halt for REDUCING').toEqual([]);

    expectDenied(r, r.order({ side: 'BUY', quantity: '1' }), `TRADING_STATE: state=REDUCING scope=account because=${JSON.stringify(reduceReason)}`, 'entry under REDUCING');
    expectApproved(r, r.order({ side: 'SELL', quantity: '5' }), 'an exit under REDUCING (fills at 70)');
    const afterExit = r.events('order.request').length;

    // Cash 8000 + 5 * 70 = 8350; equity 8350 + 15 * 40 = 8950; drawdown 10.5 %.
    r.clock.advanceBy(MIN);
    r.candle('BTCUSDT', 40);
    const haltReason = 'DRAWDOWN_HALT: drawdown=10.50 limit=10.00';
    expect(r.events('order.request').length, 'no order was asked for in between').toBe(afterExit);
    expect(r.engine.states.get('account', key), 'HALTED on the candle').toBe('HALTED');
    expect(r.events('risk.state').at(-1), 'risk.state REDUCING -> HALTED').toEqual({ kind: 'risk.state', ts: T0 + 2 * MIN, scope: 'account', key, from: 'REDUCING', to: 'HALTED', reason: haltReason, source: 'guard:DRAWDOWN_HALT' });
    expect(r.events('risk.halt'), 'risk.halt for HALTED').toEqual([{ kind: 'risk.halt', ts: T0 + 2 * MIN, scope: 'account', key, reason: haltReason }]);
    expect(
      r.stateRows().map((x) => ({ ts: x.ts, scope: x.scope, scope_key: x.scope_key, reason: x.reason, state_from: x.state_from, state_to: x.state_to, source: x.source, details: x.details })),
      'each change is a risk_events row of kind state',
    ).toEqual([
      { ts: T0 + MIN, scope: 'account', scope_key: key, reason: reduceReason, state_from: 'ACTIVE', state_to: 'REDUCING', source: 'guard:DRAWDOWN_REDUCE', details: null },
      { ts: T0 + 2 * MIN, scope: 'account', scope_key: key, reason: haltReason, state_from: 'REDUCING', state_to: 'HALTED', source: 'guard:DRAWDOWN_HALT', details: null },
    ]);
    expectDenied(r, r.order({ side: 'SELL', quantity: '5' }), `TRADING_STATE: state=HALTED scope=account because=${JSON.stringify(haltReason)}`, 'a partial exit under HALTED');
    expectApproved(r, r.order({ side: 'SELL', quantity: '15' }), 'the full close under HALTED');
  });

  // Account checks are throttled to one a second of clock time; a check inside that second is
  // deferred to its end, never dropped (several symbols' candles close in the same second).
  it('the halt lands within a second of the candle that moved equity, even when another symbol was checked first in that second', async () => {
    const r = await Rig.open({ risk: { reduceDrawdownPct: 5, maxDrawdownPct: 10, maxDailyLossPct: 50 } });
    r.candle('BTCUSDT', 100);
    r.candle('ETHUSDT', 100);
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '20' }), 'long 20 ETH at 100');
    // The next minute's candles close together: BTCUSDT (flat) first, then ETHUSDT crashes.
    // Equity 8000 + 20 * 40 = 8800: a 12 % drawdown.
    r.clock.advanceBy(MIN);
    r.candle('BTCUSDT', 100);
    r.clock.advanceBy(5);
    r.candle('ETHUSDT', 40);
    // No further event: the throttle allows the check to wait out its second, not to skip it.
    r.clock.advanceBy(1000);
    expect(r.engine.states.get('account', r.engine.accountKey()), 'HALTED by the ETHUSDT candle, not a minute later').toBe('HALTED');
  });

  it('the daily loss limit halts the account until 00:00 UTC, then it lapses by itself', async () => {
    const r = await Rig.open({ risk: { maxDailyLossPct: 3, maxDrawdownPct: 50 } });
    const key = r.engine.accountKey();
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '20' }), 'long 20 at 100');
    // Unrealized 20 * (84 - 100) = -320: 3.2 % of 10000 day-start equity.
    r.clock.advanceBy(MIN);
    r.candle('BTCUSDT', 84);
    const reason = 'DAILY_LOSS_PCT_LIMIT: pct=3.20 limit=3.00 loss=320.00';
    const nextDay = Date.UTC(2026, 0, 16);
    expect(r.events('risk.state'), 'HALTED until the next UTC day').toEqual([{ kind: 'risk.state', ts: T0 + MIN, scope: 'account', key, from: 'ACTIVE', to: 'HALTED', reason, source: 'guard:DAILY_LOSS_PCT_LIMIT' }]);
    expect(r.engine.states.entry('account', key)?.until, 'until 00:00 UTC').toBe(nextDay);
    expect(JSON.parse(r.stateRows().at(-1)!.details!), 'the row says until when').toEqual({ until: new Date(nextDay).toISOString() });
    expectApproved(r, r.order({ side: 'SELL', quantity: '20' }), 'the full close still passes');
    r.clock.advanceTo(nextDay);
    expect(r.events('risk.state').at(-1), 'lapses at midnight').toEqual({ kind: 'risk.state', ts: nextDay, scope: 'account', key, from: 'HALTED', to: 'ACTIVE', reason: `EXPIRED: ${reason}`, source: 'expiry' });
  });
});

// ------------------------------------------------------------ 6. persistence

describe('trading states survive a restart', () => {
  it('symbol REDUCING, strategy HALTED and account HALTED with an until are restored and enforced; the until lapses', async () => {
    const until = T0 + 10 * MIN;
    const a = await Rig.open({ persist: true });
    a.engine.setState('symbol', 'BTCUSDT', 'REDUCING', 'symbol pause', 'operator');
    a.engine.setState('strategy', 'macd', 'HALTED', 'macd broken', 'operator');
    a.engine.setState('account', a.engine.accountKey(), 'HALTED', 'cool off', 'operator', until);
    expect(JSON.parse(a.stateRows().at(-1)!.details!), 'the state row records the until').toEqual({ until: new Date(until).toISOString() });
    a.shutdown();

    const b = await Rig.open({ persist: true, start: T0 + MIN });
    const key = b.engine.accountKey();
    expect(
      { symbol: b.engine.states.get('symbol', 'BTCUSDT'), strategy: b.engine.states.get('strategy', 'macd'), account: b.engine.states.get('account', key) },
      'every state restored',
    ).toEqual({ symbol: 'REDUCING', strategy: 'HALTED', account: 'HALTED' });
    expect(b.engine.states.entry('account', key), 'the account entry with its until').toEqual({ state: 'HALTED', reason: 'cool off', source: 'operator', since: T0, until });
    expect(b.events('risk.state'), 'a restore is not a change: nothing published').toEqual([]);
    b.candle('BTCUSDT', 100);
    b.candle('ETHUSDT', 50);
    expectDenied(b, b.order({ side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=HALTED scope=account because="cool off"', 'account HALTED after restart');

    b.clock.advanceTo(until);
    expect(b.events('risk.state'), 'the until lapses on the timer').toEqual([{ kind: 'risk.state', ts: until, scope: 'account', key, from: 'HALTED', to: 'ACTIVE', reason: 'EXPIRED: cool off', source: 'expiry' }]);
    expect(b.engine.states.get('account', key), 'account ACTIVE').toBe('ACTIVE');
    expect(b.stateRows().at(-1), 'recorded').toMatchObject({ ts: until, scope: 'account', state_from: 'HALTED', state_to: 'ACTIVE', source: 'expiry' });
    b.candle('BTCUSDT', 100);
    b.candle('ETHUSDT', 50);
    expectDenied(b, b.order({ side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=REDUCING scope=symbol key=BTCUSDT because="symbol pause"', 'symbol REDUCING remains');
    expectDenied(b, b.order({ strategy: 'macd', symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'TRADING_STATE: state=HALTED scope=strategy key=macd because="macd broken"', 'strategy HALTED remains');
    expectApproved(b, b.order({ symbol: 'ETHUSDT', side: 'BUY', quantity: '1' }), 'rsi on ETHUSDT is free');
    b.shutdown();

    // The expiry was persisted too: a third run has only the two states without an until.
    const c = await Rig.open({ persist: true, start: until + MIN });
    expect(c.engine.stateList().map((x) => `${x.scope} ${x.key} ${x.state}`), 'what a third run restores').toEqual(['symbol BTCUSDT REDUCING', 'strategy macd HALTED']);
  });

  it('an until that passed while the bot was down lapses at start', async () => {
    const a = await Rig.open({ persist: true });
    a.engine.setState('account', a.engine.accountKey(), 'HALTED', 'daily loss', 'guard:DAILY_LOSS_LIMIT', T0 + MIN);
    a.shutdown();
    const b = await Rig.open({ persist: true, start: T0 + 2 * MIN });
    expect(b.events('risk.state'), 'expired at start').toEqual([{ kind: 'risk.state', ts: T0 + 2 * MIN, scope: 'account', key: b.engine.accountKey(), from: 'HALTED', to: 'ACTIVE', reason: 'EXPIRED: daily loss', source: 'expiry' }]);
    expect(b.engine.stateList(), 'nothing left').toEqual([]);
  });

  it('a corrupt risk.states row (not JSON) starts the account HALTED with STATES_UNREADABLE, and that halt persists', async () => {
    const a = await Rig.open({
      persist: true,
      prepare: (store) => {
        store.sqlite.prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)').run('risk.states', 'not json', 0);
      },
    });
    const key = a.engine.accountKey();
    const e = a.engine.states.entry('account', key);
    expect(e?.state, 'HALTED at start').toBe('HALTED');
    expect(e?.reason, 'says why').toMatch(/^STATES_UNREADABLE: kv risk\.states: not JSON \(.+\)$/);
    expect(e?.source, 'set at startup').toBe('startup');
    expect(a.events('risk.state'), 'published').toEqual([{ kind: 'risk.state', ts: T0, scope: 'account', key, from: 'ACTIVE', to: 'HALTED', reason: e!.reason, source: 'startup' }]);
    expect(a.events('risk.halt'), 'a halt').toEqual([{ kind: 'risk.halt', ts: T0, scope: 'account', key, reason: e!.reason }]);
    expect(a.stateRows().map((x) => [x.scope, x.state_from, x.state_to, x.reason]), 'recorded').toEqual([['account', 'ACTIVE', 'HALTED', e!.reason]]);
    a.candle('BTCUSDT', 100);
    expectDenied(a, a.order({ side: 'BUY', quantity: '1' }), `TRADING_STATE: state=HALTED scope=account because=${JSON.stringify(e!.reason)}`, 'no entries');
    a.shutdown();

    const b = await Rig.open({ persist: true, start: T0 + MIN });
    expect(b.engine.states.entry('account', key), 'the next run keeps the halt (the row was rewritten readable)').toEqual({ state: 'HALTED', reason: e!.reason, source: 'startup', since: T0 });
  });

  it('a risk.states row of the wrong shape (JSON, written by writeKv) also starts HALTED', async () => {
    const a = await Rig.open({ prepare: (store) => writeKv(store, 'risk.states', 'not json', 0) });
    const e = a.engine.states.entry('account', a.engine.accountKey());
    expect(e?.state, 'HALTED at start').toBe('HALTED');
    expect(e?.reason, 'names the kv row and the schema problem').toMatch(/^STATES_UNREADABLE: kv risk\.states: \(root\): .+/);
  });
});

// ------------------------------------------------------------ 7. kill switch

describe('kill-switch intents', () => {
  it('reduce-only kill-switch orders pass HALTED and skip the guards; without reduce-only they are judged', async () => {
    const r = await Rig.open({ risk: { maxOrdersPerSymbolPerMinute: 1 } });
    r.candle('BTCUSDT', 100);
    expectApproved(r, r.order({ side: 'BUY', quantity: '2' }), 'long 2: the symbol has used its one order a minute');
    expectDenied(r, r.order({ side: 'SELL', quantity: '1', reduceOnly: true, source: 'manual' }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=1 max=1', 'a manual reduce-only exit is throttled');
    expectApproved(r, r.order({ side: 'SELL', quantity: '0.5', reduceOnly: true, source: 'kill-switch' }), 'the kill switch skips the throttle');

    r.engine.setState('account', r.engine.accountKey(), 'HALTED', 'stop-all', 'operator');
    r.clock.advanceBy(10 * MIN);
    expectApproved(r, r.order({ side: 'SELL', quantity: '0.5', reduceOnly: true, source: 'kill-switch' }), 'a partial kill-switch close under HALTED, stale data and throttle notwithstanding');
    // A position the portfolio does not know (opened by hand on the venue); left working here.
    r.execMode = 'hold';
    expectApproved(r, r.order({ symbol: 'ETHUSDT', side: 'SELL', quantity: '3', reduceOnly: true, source: 'kill-switch' }), 'closing what the venue holds');
    r.execMode = 'fill';
    expectDenied(r, r.order({ side: 'SELL', quantity: '0.5', source: 'kill-switch' }), 'TRADING_STATE: state=HALTED scope=account because="stop-all"', 'not reduce-only: the state gate judges it');
    expectApproved(r, r.order({ side: 'SELL', quantity: '1', reduceOnly: true, source: 'kill-switch' }), 'the rest');
    expect(r.portfolio.positions(), 'flat').toEqual([]);
    expect(r.engine.denials, 'two denials in all').toBe(2);
  });
});
