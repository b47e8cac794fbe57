/**
 * Every accepted key has an effect (issue 17): a key a trader can set and
 * that changes nothing is worse than a missing one, because whoever set it
 * believes they are protected (`risk.trailingPct` used to give the same 21
 * backtest trades with and without it).
 *
 * The keys are ENUMERATED FROM THE ZOD SCHEMAS (bot.yaml `risk` and
 * `symbols`, strategy YAML `risk`, `sizing` (every type's keys and the
 * type itself) and `order` (every type's keys and the type itself)); a key
 * added to one of those later fails here with "no scenario for key X" until
 * a scenario shows what it does. Every other top-level section is listed
 * below as out of scope, with the reason, so a new section has to be
 * classified too. A signal's protective options (stopLoss, takeProfit,
 * trailing) are a TypeScript interface, not a schema: they are listed by hand.
 *
 * For each key a scenario runs twice, with two values of the key (absent is
 * a value), and returns what could be observed: a risk denial with its
 * reason, the quantity or type of the order the planner asked for, the
 * protective orders placed after the entry filled, a position closed by an
 * emulated exit, the trading state, the leverage and margin type set on the
 * venue. Both outcomes are compared with the expected ones (worked out in
 * the comment beside each) and must differ.
 *
 * The wiring is the production one for everything between a signal and the
 * venue: a real bus, TestClock, migrated in-memory SQLite, Portfolio (and
 * its Ledger), OrderPlanner, RiskEngine and ProtectionManager; a stand-in
 * for the execution engine fills market orders at the mark (or a set
 * price), leaves limit and protective orders working, and answers cancels
 * (as tests/unit/risk-engine.test.ts does). The keys that only the
 * kernel's composition reads (`risk.maxLeverage`, `symbols.*.leverage`,
 * `symbols.*.marginType`) and the one the execution engine acts on
 * (`order(limit).ttlSec`) run through TradingCore with the in-process sim
 * venue, as the backtester does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { IntentSequence } from '../../src/execution/intent-sequence.ts';
import { ProtectionManager } from '../../src/execution/protection.ts';
import { TradingCore } from '../../src/kernel/trading-core.ts';
import type { Channel, Channels, OrderIntent, OrderUpdate, SignalAction } from '../../src/model/events.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import type { Market } from '../../src/model/market.ts';
import { Portfolio } from '../../src/portfolio/portfolio.ts';
import { OrderPlanner } from '../../src/risk/order-planner.ts';
import { RiskEngine } from '../../src/risk/risk-engine.ts';
import { botConfigSchema, type RiskConfig } from '../../src/settings/bot-config.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { strategyConfigSchema, type StrategyConfig } from '../../src/settings/strategy-config.ts';
import { Store } from '../../src/store/store.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import type { FuturesSetup } from '../../src/venues/venue.ts';
import { makeWorkspace } from '../support/workspace.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const MIN = 60_000;
const DAY = 86_400_000;
const logger = silentLogger();
/** The strategy every scenario trades as. */
const S = 'alpha';

// ------------------------------------------------------------ the schema walk

type AnySchema = z.core.$ZodType;

/**
 * The leaf keys under a schema, as dotted paths: objects are walked, a
 * record of objects is walked as `*`, a discriminated union gives its
 * discriminator once and each option's other keys as `<path>(<value>).<key>`;
 * anything else (numbers, decimals, enums, lists, records of values) is a key.
 */
function leafKeys(schema: AnySchema, path: string): string[] {
  const def = schema._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema; shape?: Record<string, AnySchema>; valueType?: AnySchema; options?: AnySchema[]; discriminator?: string };
  const at = (k: string): string => (path ? `${path}.${k}` : k);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return leafKeys(def.innerType!, path);
    case 'pipe':
      // An object behind a transform is still an object; a decimal (union -> transform) is a leaf.
      return (def.in!._zod.def as { type: string }).type === 'object' ? leafKeys(def.in!, path) : [path];
    case 'object':
      return Object.entries(def.shape!).flatMap(([k, s]) => leafKeys(s, at(k)));
    case 'record': {
      const inner = unwrap(def.valueType!);
      return (inner._zod.def as { type: string }).type === 'object' ? leafKeys(inner, at('*')) : [path];
    }
    case 'union': {
      if (!def.discriminator) return [path];
      const d = def.discriminator;
      const out = [at(d)];
      for (const o of def.options!) {
        const shape = (o._zod.def as unknown as { shape: Record<string, AnySchema> }).shape;
        const value = (shape[d]!._zod.def as unknown as { values: unknown[] }).values[0];
        for (const [k, s] of Object.entries(shape)) if (k !== d) out.push(...leafKeys(s, `${path}(${String(value)}).${k}`));
      }
      return out;
    }
    default:
      return [path];
  }
}

function unwrap(s: AnySchema): AnySchema {
  const def = s._zod.def as { type: string; innerType?: AnySchema };
  return ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(def.type) ? unwrap(def.innerType!) : s;
}

/** Top-level sections: walked, or out of scope with the reason. */
const BOT_SECTIONS = {
  walked: ['risk', 'symbols'],
  outOfScope: {
    market: 'which market, not a limit',
    quoteAsset: 'the unit of account',
    reconcile: 'reconciliation (tests/integration/reconcile.test.ts)',
    notifications: 'messages',
    circuitBreaker: 'REST and notifier breakers',
    sim: 'the paper account balance',
    reoptimize: 'scheduled re-optimization (tests/integration/reoptimize.test.ts)',
  },
} as const;
const STRATEGY_SECTIONS = {
  walked: ['risk', 'sizing', 'order'],
  outOfScope: {
    enabled: 'whether the instance runs',
    timeframe: 'candle timeframe',
    params: "the strategy's own schema",
    regime: 'an entry filter (tests/unit/strategy-host.test.ts)',
    onDisable: 'what disabling does (tests/unit/strategy-host.test.ts)',
  },
} as const;
/** A signal's protective options (src/model/events.ts Signal; no schema to walk). */
const SIGNAL_OPTIONS = ['signal.stopLoss', 'signal.takeProfit', 'signal.trailing'];

function topLevel(schema: AnySchema): string[] {
  return Object.keys((unwrap(schema)._zod.def as unknown as { shape: Record<string, AnySchema> }).shape);
}

function enumerated(): string[] {
  const bot = leafKeys(botConfigSchema, '').filter((k) => BOT_SECTIONS.walked.some((s) => k === s || k.startsWith(`${s}.`)));
  const strat = leafKeys(strategyConfigSchema, '').filter((k) => STRATEGY_SECTIONS.walked.some((s) => k === s || k.startsWith(`${s}.`) || k.startsWith(`${s}(`)));
  return [...bot.map((k) => `bot.${k}`), ...strat.map((k) => `strategy.${k}`), ...SIGNAL_OPTIONS];
}

// ------------------------------------------------------------------ harness

const cleanups: Array<() => void | Promise<void>> = [];
/** Bus handlers that threw (the bus catches them): a scenario must not pass on a swallowed error. */
const faults: string[] = [];
const watchFaults = (bus: Bus): void => void bus.on('component.fault', (f) => void faults.push(`${f.component} on ${f.channel}: ${f.error.message}`), 'test-faults');
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Logged = { [C in Channel]: { channel: C; payload: Channels[C] } }[Channel];
const WATCHED = ['order.request', 'order.submit', 'order.denied', 'order.update', 'fill', 'risk.state', 'component.fault'] as const;

interface RigOpts {
  market?: Market;
  /** bot.yaml `risk:`, through botConfigSchema. */
  risk?: Record<string, unknown>;
  /** symbol -> strategy YAML of strategy S, through strategyConfigSchema. */
  yaml?: Record<string, Record<string, unknown>>;
  /** Runs on the migrated store before anything reads it. */
  prepare?: (store: Store) => void;
}

/**
 * Portfolio, planner, risk engine and protection on one bus; a stand-in
 * execution engine: market orders fill at once (at `fillPrice`, else the
 * mark), limit and protective orders stay working (NEW), cancels are
 * answered CANCELED.
 */
class Rig {
  readonly log: Logged[] = [];
  fillPrice: string | undefined;
  private readonly byCid = new Map<string, OrderIntent>();
  private trade = 0;

  private constructor(
    readonly store: Store,
    readonly bus: Bus,
    readonly clock: TestClock,
    readonly market: Market,
    readonly portfolio: Portfolio,
    readonly risk: RiskEngine,
    readonly planner: OrderPlanner,
    readonly protection: ProtectionManager,
  ) {}

  static async open(o: RigOpts = {}): Promise<Rig> {
    const market = o.market ?? 'spot';
    const store = Store.open(':memory:');
    await store.migrate();
    cleanups.push(() => store.close());
    o.prepare?.(store);
    const clock = new TestClock(T0);
    const bus = new Bus({ logger, clock });
    const insts = new Map<string, Instrument>(catalog(market).map((i) => [i.symbol, i]));
    const instrument = (s: string): Instrument | undefined => insts.get(s);
    const portfolio = new Portfolio({ bus, store, clock, logger, market, quoteAsset: 'USDT', instrument });
    const riskCfg: RiskConfig = botConfigSchema.parse({ market, risk: o.risk ?? {} }).risk;
    const yamls = new Map<string, StrategyConfig>(Object.entries(o.yaml ?? {}).map(([symbol, y]) => [symbol, strategyConfigSchema.parse(y)]));
    const risk = new RiskEngine({
      bus,
      store,
      clock,
      logger,
      market,
      portfolio,
      ledger: portfolio.ledger,
      instrument,
      config: { risk: () => riskCfg, strategy: (st, sym) => (st === S ? yamls.get(sym) : undefined), strategyFiles: (st) => (st === S ? [...yamls.values()] : []), leverage: () => (market === 'futures' ? 5 : 1) },
    });
    const planner = new OrderPlanner({
      bus,
      clock,
      logger,
      market,
      portfolio,
      ledger: portfolio.ledger,
      instrument,
      strategy: (st, sym) => {
        const config = st === S ? yamls.get(sym) : undefined;
        return config ? { config, timeframe: '1m' } : undefined;
      },
      sequence: new IntentSequence(store, clock),
    });
    const protection = new ProtectionManager({ bus, store, clock, logger, market, portfolio, ledger: portfolio.ledger, instrument, planner });
    const rig = new Rig(store, bus, clock, market, portfolio, risk, planner, protection);
    watchFaults(bus);
    for (const ch of WATCHED) bus.observe(ch, (p) => rig.log.push({ channel: ch, payload: p } as Logged), 'test-log');
    bus.handle('order.submit', (c) => rig.execute(c.intent), 'test-execution');
    bus.handle('order.cancel', (c) => rig.cancel(c.clientOrderId), 'test-execution');
    // The kernel's order: portfolio, SNAPSHOT, risk, planner, protection.
    portfolio.start();
    bus.publish('account.updated', { kind: 'account.updated', ts: T0, balances: [{ asset: 'USDT', free: dec(10_000), locked: dec(0) }], ...(market === 'futures' ? { walletBalance: dec(10_000) } : {}), reason: 'SNAPSHOT' });
    risk.start();
    planner.start();
    protection.start();
    for (const [symbol, cfg] of yamls) if (cfg.sizing?.type === 'volatility') planner.trackAtr(symbol, '1m', cfg.sizing.atrPeriod);
    cleanups.push(() => {
      protection.stop();
      planner.stop();
      risk.stop();
      portfolio.stop();
    });
    return rig;
  }

  events<C extends Channel>(channel: C): Array<Channels[C]> {
    return this.log.filter((l) => l.channel === channel).map((l) => l.payload as Channels[C]);
  }

  /** A closed 1m candle one minute on (the mark on spot; futures also gets a mark.price). */
  candle(symbol: string, close: number, range?: { high: number; low: number }): void {
    this.clock.advanceBy(MIN);
    const now = this.clock.now();
    this.bus.publish('candle.closed', { kind: 'candle.closed', ts: now, market: this.market, symbol, timeframe: '1m', openTime: now - MIN, open: close, high: range?.high ?? close, low: range?.low ?? close, close, volume: 1 });
    if (this.market === 'futures') this.bus.publish('mark.price', { kind: 'mark.price', ts: now, symbol, markPrice: new Dec(close) });
  }

  signal(action: SignalAction, symbol = 'BTCUSDT', extra: { stopLoss?: string; takeProfit?: string; trailing?: string } = {}): void {
    this.bus.publish(`signal.${S}`, {
      kind: 'signal',
      ts: this.clock.now(),
      strategy: S,
      symbol,
      action,
      reason: 'test',
      ...(extra.stopLoss ? { stopLoss: dec(extra.stopLoss) } : {}),
      ...(extra.takeProfit ? { takeProfit: dec(extra.takeProfit) } : {}),
      ...(extra.trailing ? { trailing: dec(extra.trailing) } : {}),
    });
  }

  /** A plain order through the planner (sequence, intent id) and risk. */
  order(side: 'BUY' | 'SELL', quantity: string, o: { symbol?: string; price?: string; strategy?: string } = {}): OrderIntent {
    return this.planner.submit({ strategy: o.strategy ?? S, symbol: o.symbol ?? 'BTCUSDT', side, quantity: dec(quantity), ...(o.price ? { price: dec(o.price) } : {}), source: 'strategy', reason: 'test' });
  }

  /** Buy then sell `qty` at the given prices: one closed round trip of strategy S. */
  roundTrip(buyAt: string, sellAt: string, qty = '1', symbol = 'BTCUSDT'): void {
    this.fillPrice = buyAt;
    this.order('BUY', qty, { symbol });
    this.fillPrice = sellAt;
    this.order('SELL', qty, { symbol });
    this.fillPrice = undefined;
    const denied = this.events('order.denied');
    if (denied.length) throw new Error(`round trip denied: ${denied.map((d) => d.reason).join('; ')}`);
  }

  /** What became of an intent: approved (reached execution) or the denial's reason. */
  verdict(i: OrderIntent): string {
    const d = this.events('order.denied').find((x) => x.intent.intentId === i.intentId);
    if (d) return `denied ${d.reason}`;
    return this.events('order.submit').some((x) => x.intent.intentId === i.intentId) ? 'approved' : 'nothing';
  }

  /** The order requests a strategy signal produced (not protective ones), as text. */
  entries(): string[] {
    return this.events('order.request')
      .map((r) => r.intent)
      .filter((i) => i.source === 'strategy')
      .map((i) => describeIntent(i));
  }

  /** Protective orders that reached execution, as text. */
  protective(): string[] {
    return this.events('order.submit')
      .map((r) => r.intent)
      .filter((i) => i.source === 'protective')
      .map((i) => describeIntent(i));
  }

  position(symbol = 'BTCUSDT'): string {
    return this.portfolio.ledger.lot(S, symbol).quantity.toFixed();
  }

  private cid(i: OrderIntent): string {
    return `c-${i.seq}`;
  }

  private update(i: OrderIntent, status: OrderUpdate['status'], filled: Dec, extra: { averagePrice?: Dec; reason?: string } = {}): void {
    this.bus.publish('order.update', {
      kind: 'order.update',
      ts: this.clock.now(),
      clientOrderId: this.cid(i),
      intentId: i.intentId,
      strategy: i.strategy,
      market: i.market,
      side: i.side,
      reduceOnly: i.reduceOnly ?? false,
      source: i.source,
      symbol: i.symbol,
      quantity: i.quantity,
      status,
      filledQuantity: filled,
      ...extra,
    });
  }

  private execute(i: OrderIntent): void {
    this.byCid.set(this.cid(i), i);
    this.update(i, 'PENDING', dec(0));
    this.update(i, 'NEW', dec(0));
    if (i.type !== 'MARKET') return;
    const px = this.fillPrice !== undefined ? dec(this.fillPrice) : this.portfolio.mark(i.symbol);
    if (!px) throw new Error(`no fill price for ${i.intentId}`);
    this.bus.publish('fill', { kind: 'fill', ts: this.clock.now(), tradeId: `t${++this.trade}`, clientOrderId: this.cid(i), strategy: i.strategy, market: i.market, symbol: i.symbol, side: i.side, price: px, quantity: i.quantity, fee: dec(0), feeAsset: 'USDT', isMaker: false });
    this.update(i, 'FILLED', i.quantity, { averagePrice: px });
  }

  private cancel(cid: string): void {
    const i = this.byCid.get(cid);
    if (i) this.update(i, 'CANCELED', dec(0));
  }

  /** The execution engine's TTL cancel of a working limit order, `filled` of it filled. */
  ttlExpired(i: OrderIntent, filled: string): void {
    this.update(i, 'CANCELED', dec(filled), { reason: 'TTL_EXPIRED' });
  }
}

function describeIntent(i: OrderIntent): string {
  return [
    i.type,
    i.side,
    i.quantity.toFixed(),
    ...(i.price ? [`price=${i.price.toFixed()}`] : []),
    ...(i.stopPrice ? [`stop=${i.stopPrice.toFixed()}`] : []),
    ...(i.callbackRate ? [`callbackRate=${i.callbackRate.toFixed()}`] : []),
    ...(i.stopLoss ? [`stopLoss=${i.stopLoss.toFixed()}`] : []),
    ...(i.takeProfit ? [`takeProfit=${i.takeProfit.toFixed()}`] : []),
    ...(i.ttlMs !== undefined ? [`ttlMs=${i.ttlMs}`] : []),
    ...(i.onExpiry ? [`onExpiry=${i.onExpiry}`] : []),
  ].join(' ');
}

/** `{ key: v }`, or `{}` when v is undefined (the key left out). */
const opt = (key: string, v: unknown): Record<string, unknown> => (v === undefined ? {} : { [key]: v });

// ---------------------------------------------------- scenario building blocks

/** One entry order of `qty` BTCUSDT at 100 (spot) after a candle; its verdict. */
async function entryVerdict(risk: Record<string, unknown>, qty: string, o: { price?: string; range?: { high: number; low: number } } = {}): Promise<string> {
  const r = await Rig.open({ risk });
  r.candle('BTCUSDT', 100, o.range);
  return r.verdict(r.order('BUY', qty, o.price ? { price: o.price } : {}));
}

/**
 * Protection of one long entry (sizing fixed 1 on spot at 100, 0.01 on
 * futures at 50000): the protective orders placed once it filled, and on
 * spot, whether the mark path 110 -> 107 -> 95 closed it (emulated exits).
 */
async function protectionOutcome(market: Market, yamlRisk: Record<string, unknown>, signalExtra: { stopLoss?: string; takeProfit?: string; trailing?: string } = {}): Promise<string> {
  const spot = market === 'spot';
  const r = await Rig.open({ market, yaml: { BTCUSDT: { sizing: { type: 'fixed', quantity: spot ? 1 : 0.01 }, risk: yamlRisk } } });
  const p0 = spot ? 100 : 50_000;
  r.candle('BTCUSDT', p0);
  r.signal('enterLong', 'BTCUSDT', signalExtra);
  const placed = r.protective();
  if (!spot) return `${market}: placed [${placed.join('; ')}]`;
  const closes: string[] = [];
  for (const px of [110, 107, 95]) {
    const before = r.events('fill').length;
    r.candle('BTCUSDT', px);
    for (const f of r.events('fill').slice(before)) closes.push(`${f.side} ${f.quantity.toFixed()} at ${f.price.toFixed()}`);
  }
  return `${market}: placed [${placed.join('; ')}]; mark 110, 107, 95 -> ${closes.length ? `closed ${closes.join(', ')}` : 'still open'} (position ${r.position()})`;
}

/** The entry the planner asks for on one enterLong signal at 100 (spot), after `before` ran on the rig. */
async function sizedEntry(yaml: Record<string, unknown>, before?: (r: Rig) => void): Promise<string> {
  // No guards: the outcome is what the planner asks for, not whether risk lets it through.
  const r = await Rig.open({ risk: { guards: [] }, yaml: { BTCUSDT: yaml } });
  r.candle('BTCUSDT', 100);
  before?.(r);
  const n = r.entries().length;
  r.signal('enterLong');
  const asked = r.entries().slice(n);
  if (asked.length) return asked.join('; ');
  const d = r.events('order.denied').at(-1);
  return d ? `none: ${d.reason}` : 'none';
}

/** Two wins of 10 and a loss of 5 on 1 BTCUSDT: p = 2/3, b = (20 / 2) / (5 / 1) = 2, Kelly f = p - (1 - p) / b = 0.5; equity 10015. */
function kellyHistory(r: Rig): void {
  r.roundTrip('100', '110');
  r.roundTrip('100', '110');
  r.roundTrip('100', '95');
}

/** Equity 10000 (peak), long 20 BTCUSDT at 100, then the mark at `to`: the account's trading state. */
async function drawdownState(risk: Record<string, unknown>, to: number): Promise<string> {
  const r = await Rig.open({ risk: { maxDailyLossPct: 50, ...risk } });
  r.candle('BTCUSDT', 100);
  r.order('BUY', '20');
  r.candle('BTCUSDT', to);
  const e = r.risk.states.entry('account', r.risk.accountKey());
  return e ? `${e.state} (${e.reason})` : 'ACTIVE';
}

/** A realized loss (buy `qty` at 100, sell it at `sellAt`), then the account state and the next entry. */
async function afterLoss(risk: Record<string, unknown>, qty: string, sellAt: string): Promise<string> {
  const r = await Rig.open({ risk });
  r.candle('BTCUSDT', 100);
  r.roundTrip('100', sellAt, qty);
  const state = r.risk.states.get('account', r.risk.accountKey());
  return `${state}; next entry ${r.verdict(r.order('BUY', '1'))}`;
}

/** One losing round trip at T0+1m, then an entry `wait` later. */
async function afterLosingTrip(risk: Record<string, unknown>, yaml: Record<string, unknown> | undefined, wait: number): Promise<string> {
  const r = await Rig.open({ risk, ...(yaml ? { yaml: { BTCUSDT: yaml } } : {}) });
  r.candle('BTCUSDT', 100);
  r.roundTrip('100', '99');
  r.clock.advanceBy(wait - MIN);
  r.candle('BTCUSDT', 100);
  return r.verdict(r.order('BUY', '1'));
}

/** Futures BTCUSDT at 50000 (leverage 5 in this rig), one entry of 0.01: its verdict and the symbol's state. */
async function futuresEntry(risk: Record<string, unknown>, funding?: number): Promise<string> {
  const r = await Rig.open({ market: 'futures', risk });
  r.candle('BTCUSDT', 50_000);
  if (funding !== undefined) r.bus.publish('mark.price', { kind: 'mark.price', ts: r.clock.now(), symbol: 'BTCUSDT', markPrice: dec(50_000), nextFundingTime: r.clock.now() + funding });
  const v = r.verdict(r.order('BUY', '0.01'));
  return `${v}; symbol ${r.risk.states.get('symbol', 'BTCUSDT')}`;
}

/**
 * Daily equity rows for the VaR guard: 30 planted days plus the row the
 * portfolio writes for today at start (equity 10000) give 30 returns: 27 of
 * +0.1 %, one of -6 %, one of -20 % and the step up to today's 10000.
 * q95 = the 2nd worst (ceil(0.05 * 30) = 2) = -6 %, q99 = the worst = -20 %.
 */
function plantReturns(): (store: Store) => void {
  return (store) => {
    const rets = [...Array<number>(27).fill(0.001), -0.06, -0.2];
    let eq = 10_000;
    const ins = store.sqlite.prepare('INSERT INTO equity_snapshots VALUES (?, ?, ?, ?, ?)');
    for (let d = 0; d < 30; d++) {
      if (d > 0) eq *= 1 + rets[d - 1]!;
      const e = eq.toFixed(2);
      ins.run('1d', T0 - (30 - d) * DAY, e, e, '0');
    }
  };
}

/** An entry of 20 BTCUSDT at 100 (exposure 2000: VaR95 = 0.06 * 2000 = 120, VaR99 = 0.2 * 2000 = 400) with the return history planted. */
async function varVerdict(risk: Record<string, unknown>): Promise<string> {
  const r = await Rig.open({ risk, prepare: plantReturns() });
  r.candle('BTCUSDT', 100);
  if (r.portfolio.dailyReturns().length !== 30) throw new Error(`expected 30 daily returns, got ${r.portfolio.dailyReturns().length}`);
  return r.verdict(r.order('BUY', '20'));
}

/**
 * TradingCore (the kernel's trading half: instruments, portfolio, execution,
 * risk, planner, protection) with the in-process sim venue, as the
 * backtester runs it, on a test clock. `yaml` is strategy S's YAML per symbol.
 */
async function openCore(market: Market, botYaml: string, yaml: Record<string, Record<string, unknown>> = {}) {
  const ws = makeWorkspace();
  cleanups.push(() => ws.cleanup());
  ws.write('config/bot.yaml', botYaml);
  const loaded = loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
  const strategies = Object.entries(yaml).map(([symbol, y]) => ({ strategy: S, symbol, file: `strategies/${S}/${symbol}.yaml`, config: strategyConfigSchema.parse(y) }));
  const settings = { ...loaded, symbols: ['BTCUSDT'], strategies, activeStrategies: strategies.length ? [S] : [] };
  const clock = new TestClock(T0);
  const bus = new Bus({ logger, clock });
  watchFaults(bus);
  const store = Store.open(':memory:');
  await store.migrate();
  const venue = new SimVenue({ market, clock, instruments: catalog(market), quoteAsset: 'USDT', balance: dec(10_000) });
  const setups: FuturesSetup[] = [];
  const configure = venue.configureFutures.bind(venue);
  venue.configureFutures = (x) => {
    setups.push(x);
    return configure(x);
  };
  const denied: string[] = [];
  const updates: OrderUpdate[] = [];
  bus.on('order.denied', (d) => void denied.push(d.reason), 'test');
  bus.on('order.update', (u) => void updates.push(u), 'test');
  const core = await TradingCore.start({ settings: () => settings, store, bus, clock, logger, venue, reconcile: false, execution: { retryDelayMs: 0, pollMs: DAY }, instrumentRefreshMs: 0 });
  cleanups.push(async () => {
    await core.stop();
    store.close();
  });
  /** One minute on: the venue trades at `price` and the bus hears the closed candle (and a mark on futures). */
  const candle = async (price: number): Promise<void> => {
    clock.advanceBy(MIN);
    const openTime = clock.now() - MIN;
    venue.onCandle('BTCUSDT', { open: price, high: price, low: price, close: price, volume: 1, openTime });
    bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market, symbol: 'BTCUSDT', timeframe: '1m', openTime, open: price, high: price, low: price, close: price, volume: 1 });
    if (market === 'futures') bus.publish('mark.price', { kind: 'mark.price', ts: clock.now(), symbol: 'BTCUSDT', markPrice: dec(price) });
    await core.execution.idle();
  };
  return { core, venue, bus, clock, setups, denied, updates, candle };
}

/**
 * Futures through TradingCore: what it told the venue at start for BTCUSDT,
 * and what became of an entry of 0.01 at 50000 (the leverage and margin type
 * of the venue's position).
 */
async function coreFutures(botYaml: string): Promise<string> {
  const c = await openCore('futures', botYaml);
  await c.candle(50_000);
  c.core.planner.submit({ strategy: S, symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.01'), source: 'strategy', reason: 'test' });
  await c.core.execution.idle();
  const sent = c.setups.flatMap((x) => x.symbols.filter((y) => y.symbol === 'BTCUSDT')).map((y) => `leverage ${y.leverage} marginType ${y.marginType ?? '(unchanged)'}`);
  const pos = c.venue.engine.positions('sim').find((p) => p.symbol === 'BTCUSDT' && !p.positionAmt.isZero());
  const entry = c.denied.length ? `denied ${c.denied.join('; ')}` : pos ? `position ${pos.positionAmt.toFixed()} at leverage ${pos.leverage} ${pos.marginType}` : 'no position';
  return `configured [${sent.join('; ')}]; entry ${entry}`;
}

/** Spot through TradingCore: a limit entry signalled at 100 (1 BTC, 50 bps below), then the clock `after` on with no fill: the order's last status. */
async function coreLimitTtl(order: Record<string, unknown>, after: number): Promise<string> {
  const c = await openCore('spot', 'market: spot\n', { BTCUSDT: { sizing: { type: 'fixed', quantity: 1 }, order } });
  await c.candle(100);
  c.bus.publish(`signal.${S}`, { kind: 'signal', ts: c.clock.now(), strategy: S, symbol: 'BTCUSDT', action: 'enterLong', reason: 'test' });
  await c.core.execution.idle();
  const sentAt = c.clock.now();
  c.clock.advanceBy(after);
  await c.core.execution.idle();
  const last = c.updates.filter((u) => u.source === 'strategy').at(-1);
  return `${c.denied.length ? `denied ${c.denied.join('; ')}; ` : ''}${(c.clock.now() - sentAt) / 1000} s after the limit: ${last ? `${last.status}${last.reason ? ` (${last.reason})` : ''}` : 'no order'}`;
}

// ---------------------------------------------------------------- scenarios

interface Scenario {
  /** The two values of the key (undefined: left out). */
  readonly values: readonly [unknown, unknown];
  /** What could be observed with each value. */
  readonly expected: readonly [string, string];
  run(value: unknown): Promise<string>;
}

const SCENARIOS: Record<string, Scenario> = {
  // ================================================ bot.yaml risk
  'bot.risk.guards': {
    // 30 * 100 = 3000 = 30 % of equity > maxPositionPct 25, unless max-position-size is left out.
    values: [undefined, ['stale-data', 'balance']],
    expected: ['denied POSITION_SIZE_PCT_LIMIT: pct=30.00 max=25.00 notional=3000.00', 'approved'],
    run: (v) => entryVerdict({ ...opt('guards', v) }, '30'),
  },
  'bot.risk.maxDailyLossPct': {
    // Realized -400 (20 * (100 - 80)) = 4 % of 10000: above 3, below 10.
    values: [3, 10],
    expected: ['HALTED; next entry denied TRADING_STATE: state=HALTED scope=account because="DAILY_LOSS_PCT_LIMIT: pct=4.00 limit=3.00 loss=400.00"', 'ACTIVE; next entry approved'],
    run: (v) => afterLoss({ maxDailyLossPct: v }, '20', '80'),
  },
  'bot.risk.maxDailyLoss': {
    // Realized -200 (20 * 10) = 2 % (under the 3 % default), above 150.
    values: [undefined, '150'],
    expected: ['ACTIVE; next entry approved', 'HALTED; next entry denied TRADING_STATE: state=HALTED scope=account because="DAILY_LOSS_LIMIT: loss=200.00 limit=150.00"'],
    run: (v) => afterLoss({ ...opt('maxDailyLoss', v) }, '20', '90'),
  },
  'bot.risk.maxDrawdownPct': {
    // 8000 cash + 20 * 40 = 8800: 12 % below the 10000 peak; REDUCING from 5 %, HALTED from the key.
    values: [20, 10],
    expected: ['REDUCING (DRAWDOWN_REDUCE: drawdown=12.00 limit=5.00)', 'HALTED (DRAWDOWN_HALT: drawdown=12.00 limit=10.00)'],
    run: (v) => drawdownState({ reduceDrawdownPct: 5, maxDrawdownPct: v }, 40),
  },
  'bot.risk.reduceDrawdownPct': {
    // 8000 + 20 * 70 = 9400: 6 %; default REDUCING from half of maxDrawdownPct 20 = 10.
    values: [undefined, 5],
    expected: ['ACTIVE', 'REDUCING (DRAWDOWN_REDUCE: drawdown=6.00 limit=5.00)'],
    run: (v) => drawdownState({ ...opt('reduceDrawdownPct', v) }, 70),
  },
  'bot.risk.maxOpenPositions': {
    values: [5, 1],
    expected: ['approved', 'denied MAX_OPEN_POSITIONS: open=1 max=1'],
    run: async (v) => {
      const r = await Rig.open({ risk: { maxOpenPositions: v } });
      r.candle('BTCUSDT', 100);
      r.candle('ETHUSDT', 50);
      r.order('BUY', '1');
      // Another strategy's position counts for the account cap.
      return r.verdict(r.order('BUY', '1', { symbol: 'ETHUSDT', strategy: 'beta' }));
    },
  },
  'bot.risk.maxLeverage': {
    // The default leverage of every symbol: set on the venue, and the risk engine's liquidation projection.
    // At 20x: liquidation 50000 * (1 - 1/20 + 0.004) = 47700, 4.6 % from the mark (<= liquidationReducePct 5).
    values: [5, 20],
    expected: [
      'configured [leverage 5 marginType (unchanged)]; entry position 0.01 at leverage 5 cross',
      'configured [leverage 20 marginType (unchanged)]; entry denied LIQUIDATION_REDUCE: symbol=BTCUSDT distancePct=4.60 limit=5.00',
    ],
    run: (v) => coreFutures(`market: futures\nrisk:\n  maxLeverage: ${String(v)}\n`),
  },
  'bot.risk.maxPositionPct': {
    values: [25, 50],
    expected: ['denied POSITION_SIZE_PCT_LIMIT: pct=30.00 max=25.00 notional=3000.00', 'approved'],
    run: (v) => entryVerdict({ maxPositionPct: v }, '30'),
  },
  'bot.risk.maxPositionQty': {
    values: [undefined, { BTCUSDT: 2 }],
    expected: ['approved', 'denied POSITION_SIZE_LIMIT: qty=2.5 max=2'],
    run: (v) => entryVerdict({ ...opt('maxPositionQty', v) }, '2.5'),
  },
  'bot.risk.maxExposure': {
    // 15 * 100 = 1500 notional (15 % of equity).
    values: [undefined, 1000],
    expected: ['approved', 'denied SYMBOL_EXPOSURE_LIMIT: symbol=BTCUSDT exposure=1500.00 max=1000.00'],
    run: (v) => entryVerdict({ ...opt('maxExposure', v) }, '15'),
  },
  'bot.risk.maxExposureBySymbol': {
    // Overrides maxExposure 1000 for BTCUSDT.
    values: [undefined, { BTCUSDT: 2000 }],
    expected: ['denied SYMBOL_EXPOSURE_LIMIT: symbol=BTCUSDT exposure=1500.00 max=1000.00', 'approved'],
    run: (v) => entryVerdict({ maxExposure: 1000, ...opt('maxExposureBySymbol', v) }, '15'),
  },
  'bot.risk.maxDailyQty': {
    values: [undefined, { BTCUSDT: 1 }],
    expected: ['approved', 'denied DAILY_QUANTITY_LIMIT: symbol=BTCUSDT qty=1.5 max=1'],
    run: async (v) => {
      const r = await Rig.open({ risk: { ...opt('maxDailyQty', v) } });
      r.candle('BTCUSDT', 100);
      r.order('BUY', '1');
      return r.verdict(r.order('BUY', '0.5'));
    },
  },
  'bot.risk.maxPriceDeviationBps': {
    // A limit at 110 against a mark of 100: 1000 bps.
    values: [100, 2000],
    expected: ['denied PRICE_DEVIATION: price=110.00 mark=100.00 bps=1000.00 max=100.00', 'approved'],
    run: (v) => entryVerdict({ maxPriceDeviationBps: v, maxPositionPct: 50 }, '1', { price: '110' }),
  },
  'bot.risk.maxCandleRangePct': {
    // (112 - 100) / 100 = 12 %.
    values: [10, 20],
    expected: ['denied ABNORMAL_CANDLE: rangePct=12.00 max=10.00', 'approved'],
    run: (v) => entryVerdict({ maxCandleRangePct: v }, '1', { range: { high: 112, low: 100 } }),
  },
  'bot.risk.maxConsecutiveLosses': {
    values: [3, 1],
    expected: ['approved', `denied CONSECUTIVE_LOSSES: strategy=${S} symbol=BTCUSDT losses=1 max=1 until=${new Date(T0 + MIN + 60 * MIN).toISOString()}`],
    run: (v) => afterLosingTrip({ maxConsecutiveLosses: v }, undefined, MIN),
  },
  'bot.risk.lossCooldownMinutes': {
    // Entry 10 minutes after the loss.
    values: [60, 5],
    expected: [`denied CONSECUTIVE_LOSSES: strategy=${S} symbol=BTCUSDT losses=1 max=1 until=${new Date(T0 + MIN + 60 * MIN).toISOString()}`, 'approved'],
    run: (v) => afterLosingTrip({ maxConsecutiveLosses: 1, lossCooldownMinutes: v }, undefined, 10 * MIN),
  },
  'bot.risk.fundingWindowMinutes': {
    // Funding 10 minutes away.
    values: [2, 15],
    expected: ['approved; symbol ACTIVE', 'denied FUNDING_WINDOW: symbol=BTCUSDT minutes=10.00 window=15; symbol ACTIVE'],
    run: (v) => futuresEntry({ fundingWindowMinutes: v }, 10 * MIN),
  },
  'bot.risk.maxOrdersPerSymbolPerMinute': {
    values: [20, 2],
    expected: ['approved', 'denied ORDER_RATE_SYMBOL: symbol=BTCUSDT count=2 max=2'],
    run: async (v) => {
      const r = await Rig.open({ risk: { maxOrdersPerSymbolPerMinute: v } });
      r.candle('BTCUSDT', 100);
      r.order('BUY', '1');
      r.clock.advanceBy(2000);
      r.order('BUY', '1');
      r.clock.advanceBy(2000);
      return r.verdict(r.order('BUY', '1'));
    },
  },
  'bot.risk.maxOrdersPerSecond': {
    values: [10, 2],
    expected: ['approved', 'denied ORDER_RATE_GLOBAL: count=2 max=2'],
    run: async (v) => {
      const r = await Rig.open({ risk: { maxOrdersPerSecond: v } });
      r.candle('BTCUSDT', 100);
      r.candle('ETHUSDT', 50);
      r.order('BUY', '1');
      r.order('BUY', '1', { symbol: 'ETHUSDT' });
      return r.verdict(r.order('SELL', '1'));
    },
  },
  'bot.risk.staleDataSec': {
    // The last candle 300 s before the order.
    values: [180, 600],
    expected: ['denied STALE_MARKET_DATA: symbol=BTCUSDT ageMs=300000 maxMs=180000', 'approved'],
    run: async (v) => {
      const r = await Rig.open({ risk: { staleDataSec: v } });
      r.candle('BTCUSDT', 100);
      r.clock.advanceBy(300_000);
      return r.verdict(r.order('BUY', '1'));
    },
  },
  'bot.risk.liquidationDenyPct': {
    // 5x: liquidation 50000 * (1 - 0.2 + 0.004) = 40200, 19.6 % from the mark.
    values: [10, 20],
    expected: ['approved; symbol ACTIVE', 'denied LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=19.60 limit=20.00; symbol ACTIVE'],
    run: (v) => futuresEntry({ liquidationDenyPct: v }),
  },
  'bot.risk.liquidationReducePct': {
    values: [5, 20],
    expected: ['denied LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=19.60 limit=25.00; symbol ACTIVE', 'denied LIQUIDATION_REDUCE: symbol=BTCUSDT distancePct=19.60 limit=20.00; symbol REDUCING'],
    run: (v) => futuresEntry({ liquidationDenyPct: 25, liquidationReducePct: v }),
  },
  'bot.risk.var95Pct': {
    // VaR95 120 vs 5 % (500) or 1 % (100) of equity 10000.
    values: [5, 1],
    expected: ['approved', 'denied VAR_LIMIT_95: var=120.00 limit=100.00 exposure=2000.00'],
    run: (v) => varVerdict({ var95Pct: v }),
  },
  'bot.risk.var99Pct': {
    // VaR99 400 vs 10 % (1000) or 3 % (300).
    values: [10, 3],
    expected: ['approved', 'denied VAR_LIMIT_99: var=400.00 limit=300.00 exposure=2000.00'],
    run: (v) => varVerdict({ var99Pct: v }),
  },
  'bot.risk.varMinSamples': {
    // 30 returns: enough for 30, too few for 31 (the guard then cannot judge and allows).
    values: [30, 31],
    expected: ['denied VAR_LIMIT_95: var=120.00 limit=100.00 exposure=2000.00', 'approved'],
    run: (v) => varVerdict({ var95Pct: 1, varMinSamples: v }),
  },

  // ================================================ bot.yaml symbols
  'bot.symbols.*.leverage': {
    // risk.maxLeverage 20 allows both; the symbol's own leverage wins over it.
    values: [5, 20],
    expected: [
      'configured [leverage 5 marginType (unchanged)]; entry position 0.01 at leverage 5 cross',
      'configured [leverage 20 marginType (unchanged)]; entry denied LIQUIDATION_REDUCE: symbol=BTCUSDT distancePct=4.60 limit=5.00',
    ],
    run: (v) => coreFutures(`market: futures\nrisk:\n  maxLeverage: 20\nsymbols:\n  BTCUSDT:\n    leverage: ${String(v)}\n`),
  },
  'bot.symbols.*.marginType': {
    values: [undefined, 'isolated'],
    expected: ['configured [leverage 5 marginType (unchanged)]; entry position 0.01 at leverage 5 cross', 'configured [leverage 5 marginType isolated]; entry position 0.01 at leverage 5 isolated'],
    run: (v) => coreFutures(`market: futures\nsymbols:\n  BTCUSDT:\n    leverage: 5\n${v === undefined ? '' : `    marginType: ${String(v)}\n`}`),
  },

  // ================================================ strategy YAML risk
  'strategy.risk.maxDailyLossPct': {
    // Realized -100 (10 * (100 - 90)) = 1 % of day-start equity 10000.
    values: [undefined, 1],
    expected: ['approved', `denied STRATEGY_DAILY_LOSS_LIMIT: strategy=${S} loss=100.00 limit=100.00`],
    run: async (v) => {
      const r = await Rig.open({ yaml: { BTCUSDT: { risk: { ...opt('maxDailyLossPct', v) } }, ETHUSDT: { risk: { ...opt('maxDailyLossPct', v) } } } });
      r.candle('BTCUSDT', 100);
      r.candle('ETHUSDT', 50);
      r.roundTrip('100', '90', '10');
      // The loss on BTCUSDT stops the strategy on ETHUSDT too.
      return r.verdict(r.order('BUY', '1', { symbol: 'ETHUSDT' }));
    },
  },
  'strategy.risk.maxDailyLoss': {
    values: [undefined, '50'],
    expected: ['approved', `denied STRATEGY_DAILY_LOSS_LIMIT: strategy=${S} loss=100.00 limit=50.00`],
    run: async (v) => {
      const r = await Rig.open({ yaml: { BTCUSDT: { risk: { ...opt('maxDailyLoss', v) } } } });
      r.candle('BTCUSDT', 100);
      r.roundTrip('100', '90', '10');
      return r.verdict(r.order('BUY', '1'));
    },
  },
  'strategy.risk.stopLossPct': {
    // Spot: a STOP_LOSS_LIMIT at 98 (limit 0.5 % below); futures: STOP_MARKET at 49000. Spot: 95 trips the venue's stop (not this rig's stand-in), so the position stays.
    values: [undefined, 2],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed []',
      'spot: placed [STOP_LOSS_LIMIT SELL 1 price=97.51 stop=98]; mark 110, 107, 95 -> still open (position 1) | futures: placed [STOP_MARKET SELL 0.01 stop=49000]',
    ],
    run: async (v) => `${await protectionOutcome('spot', { ...opt('stopLossPct', v) })} | ${await protectionOutcome('futures', { ...opt('stopLossPct', v) })}`,
  },
  'strategy.risk.takeProfitPct': {
    // Target 108 on spot (emulated: the mark reaching it closes at market), 54000 on futures (on the venue).
    values: [undefined, 8],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed []',
      'spot: placed []; mark 110, 107, 95 -> closed SELL 1 at 110 (position 0) | futures: placed [TAKE_PROFIT_MARKET SELL 0.01 stop=54000]',
    ],
    run: async (v) => `${await protectionOutcome('spot', { ...opt('takeProfitPct', v) })} | ${await protectionOutcome('futures', { ...opt('takeProfitPct', v) })}`,
  },
  'strategy.risk.trailingPct': {
    // Spot: emulated from the best mark, 110 * 0.98 = 107.8 >= 107 closes; futures: TRAILING_STOP_MARKET with callbackRate 2.
    values: [undefined, 2],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed []',
      'spot: placed []; mark 110, 107, 95 -> closed SELL 1 at 107 (position 0) | futures: placed [TRAILING_STOP_MARKET SELL 0.01 callbackRate=2]',
    ],
    run: async (v) => `${await protectionOutcome('spot', { ...opt('trailingPct', v) })} | ${await protectionOutcome('futures', { ...opt('trailingPct', v) })}`,
  },
  'strategy.risk.maxOpenPositions': {
    // A per-strategy cap across its symbols; positions of other strategies do not count.
    values: [undefined, 1],
    expected: ['approved', `denied STRATEGY_MAX_OPEN_POSITIONS: strategy=${S} open=1 max=1`],
    run: async (v) => {
      // The cap is written in BTCUSDT.yaml only: it still holds for the strategy's ETHUSDT entry (the strictest file wins).
      const y = { sizing: { type: 'fixed', quantity: 1 }, risk: { ...opt('maxOpenPositions', v) } };
      const r = await Rig.open({ yaml: { BTCUSDT: y, ETHUSDT: { sizing: { type: 'fixed', quantity: 1 } } } });
      r.candle('BTCUSDT', 100);
      r.candle('ETHUSDT', 50);
      r.order('BUY', '1', { symbol: 'ETHUSDT', strategy: 'beta' });
      r.signal('enterLong', 'BTCUSDT');
      const n = r.events('order.request').length;
      r.signal('enterLong', 'ETHUSDT');
      const i = r.events('order.request').slice(n)[0]!.intent;
      return r.verdict(i);
    },
  },
  'strategy.risk.cooldownMinutes': {
    // After one loss (maxConsecutiveLosses 1), an entry 10 minutes later: the bot's 60 minutes, or the strategy's 0 (no pause:
    // an explicit 0 used to fall back to the bot's 60).
    values: [undefined, 0],
    expected: [`denied CONSECUTIVE_LOSSES: strategy=${S} symbol=BTCUSDT losses=1 max=1 until=${new Date(T0 + MIN + 60 * MIN).toISOString()}`, 'approved'],
    run: (v) => afterLosingTrip({ maxConsecutiveLosses: 1, lossCooldownMinutes: 60 }, { risk: { ...opt('cooldownMinutes', v) } }, 10 * MIN),
  },

  // ================================================ strategy YAML sizing
  'strategy.sizing.type': {
    // Same percent 2, stop 5 % below 100: 2 % of 10000 / 100 = 2, or 2 % of 10000 / 5 = 40.
    values: ['percent-equity', 'risk'],
    expected: ['MARKET BUY 2 stopLoss=95', 'MARKET BUY 40 stopLoss=95'],
    run: (v) => sizedEntry({ sizing: { type: v, percent: 2 }, risk: { stopLossPct: 5 } }),
  },
  'strategy.sizing(fixed).quantity': {
    values: [0.5, 1.25],
    expected: ['MARKET BUY 0.5', 'MARKET BUY 1.25'],
    run: (v) => sizedEntry({ sizing: { type: 'fixed', quantity: v } }),
  },
  'strategy.sizing(quote).amount': {
    // amount / 100.
    values: [500, 1234],
    expected: ['MARKET BUY 5', 'MARKET BUY 12.34'],
    run: (v) => sizedEntry({ sizing: { type: 'quote', amount: v } }),
  },
  'strategy.sizing(percent-equity).percent': {
    // 10000 * percent / 100 / 100.
    values: [1, 3],
    expected: ['MARKET BUY 1', 'MARKET BUY 3'],
    run: (v) => sizedEntry({ sizing: { type: 'percent-equity', percent: v } }),
  },
  'strategy.sizing(risk).percent': {
    // 10000 * percent / 100 / (100 - 95).
    values: [1, 2],
    expected: ['MARKET BUY 20 stopLoss=95', 'MARKET BUY 40 stopLoss=95'],
    run: (v) => sizedEntry({ sizing: { type: 'risk', percent: v }, risk: { stopLossPct: 5 } }),
  },
  'strategy.sizing(kelly).fraction': {
    // f = 0.5 * fraction: 5 % or 2.5 % of 10015 at 100.
    values: [0.1, 0.05],
    expected: ['MARKET BUY 5.0075', 'MARKET BUY 2.50375'],
    run: (v) => sizedEntry({ sizing: { type: 'kelly', fraction: v, minTrades: 3 } }, kellyHistory),
  },
  'strategy.sizing(kelly).maxPercent': {
    // f = 0.5 * 1, capped at maxPercent: 10 % or 20 % of 10015 at 100.
    values: [10, 20],
    expected: ['MARKET BUY 10.015', 'MARKET BUY 20.03'],
    run: (v) => sizedEntry({ sizing: { type: 'kelly', fraction: 1, minTrades: 3, maxPercent: v } }, kellyHistory),
  },
  'strategy.sizing(kelly).minTrades': {
    // 3 trades: Kelly (0.5 * 0.1 = 5 %), or under 4 the fallback 1 % of 10015.
    values: [3, 4],
    expected: ['MARKET BUY 5.0075', 'MARKET BUY 1.0015'],
    run: (v) => sizedEntry({ sizing: { type: 'kelly', fraction: 0.1, minTrades: v } }, kellyHistory),
  },
  'strategy.sizing(kelly).fallbackPercent': {
    // No trades yet: fallbackPercent of 10000 at 100.
    values: [1, 2.5],
    expected: ['MARKET BUY 1', 'MARKET BUY 2.5'],
    run: (v) => sizedEntry({ sizing: { type: 'kelly', fraction: 0.5, fallbackPercent: v } }),
  },
  'strategy.sizing(volatility).targetPercent': {
    // True ranges 0 (the first candle), 1, 2, 4: Wilder ATR(2) = (0 + 1) / 2 = 0.5, (0.5 + 2) / 2 = 1.25,
    // (1.25 + 4) / 2 = 2.625; 10000 * t / 100 / 2.625, rounded down to the step 0.00001.
    values: [0.5, 1],
    expected: ['MARKET BUY 19.04761', 'MARKET BUY 38.09523'],
    run: (v) => sizedEntry({ sizing: { type: 'volatility', targetPercent: v, atrPeriod: 2 } }, volatilityCandles),
  },
  'strategy.sizing(volatility).atrPeriod': {
    // ATR(2) = 2.625; ATR(3) = (0 + 1 + 2) / 3 = 1, then (1 * 2 + 4) / 3 = 2; 50 / ATR.
    values: [2, 3],
    expected: ['MARKET BUY 19.04761', 'MARKET BUY 25'],
    run: (v) => sizedEntry({ sizing: { type: 'volatility', targetPercent: 0.5, atrPeriod: v } }, volatilityCandles),
  },

  // ================================================ strategy YAML order
  'strategy.order.type': {
    values: ['market', 'limit'],
    expected: ['MARKET BUY 1', 'LIMIT BUY 1 price=100 ttlMs=60000 onExpiry=cancel'],
    run: (v) => sizedEntry({ sizing: { type: 'fixed', quantity: 1 }, order: { type: v } }),
  },
  'strategy.order(limit).offsetBps': {
    // 100 * (10000 - 50) / 10000.
    values: [0, 50],
    expected: ['LIMIT BUY 1 price=100 ttlMs=60000 onExpiry=cancel', 'LIMIT BUY 1 price=99.5 ttlMs=60000 onExpiry=cancel'],
    run: (v) => sizedEntry({ sizing: { type: 'fixed', quantity: 1 }, order: { type: 'limit', offsetBps: v } }),
  },
  'strategy.order(limit).ttlSec': {
    // Through the real execution engine: a limit at 99.5 that never fills, two minutes on.
    values: [60, 300],
    expected: ['120 s after the limit: CANCELED (TTL_EXPIRED)', '120 s after the limit: NEW'],
    run: (v) => coreLimitTtl({ type: 'limit', offsetBps: 50, ttlSec: v }, 2 * MIN),
  },
  'strategy.order(limit).onExpiry': {
    // The TTL cancelled the limit with 0.4 of 1 filled: nothing more, or the rest (0.6) at market.
    values: ['cancel', 'market'],
    expected: ['after TTL: nothing', 'after TTL: MARKET BUY 0.6'],
    run: async (v) => {
      const r = await Rig.open({ yaml: { BTCUSDT: { sizing: { type: 'fixed', quantity: 1 }, order: { type: 'limit', onExpiry: v } } } });
      r.candle('BTCUSDT', 100);
      r.signal('enterLong');
      const limit = r.events('order.submit').at(-1)!.intent;
      const n = r.events('order.request').length;
      r.ttlExpired(limit, '0.4');
      const next = r.events('order.request').slice(n).map((x) => describeIntent(x.intent));
      return `after TTL: ${next.length ? next.join('; ') : 'nothing'}`;
    },
  },

  // ================================================ a signal's protective options
  'signal.stopLoss': {
    values: [undefined, '97'],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed []',
      'spot: placed [STOP_LOSS_LIMIT SELL 1 price=96.515 stop=97]; mark 110, 107, 95 -> still open (position 1) | futures: placed [STOP_MARKET SELL 0.01 stop=48500]',
    ],
    run: async (v) => `${await protectionOutcome('spot', {}, { ...opt('stopLoss', v) })} | ${await protectionOutcome('futures', {}, { ...opt('stopLoss', v === undefined ? undefined : '48500') })}`,
  },
  'signal.takeProfit': {
    values: [undefined, '109'],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed []',
      'spot: placed []; mark 110, 107, 95 -> closed SELL 1 at 110 (position 0) | futures: placed [TAKE_PROFIT_MARKET SELL 0.01 stop=54500]',
    ],
    run: async (v) => `${await protectionOutcome('spot', {}, { ...opt('takeProfit', v) })} | ${await protectionOutcome('futures', {}, { ...opt('takeProfit', v === undefined ? undefined : '54500') })}`,
  },
  'signal.trailing': {
    // Percent (events.ts Signal.trailing), overriding the YAML's trailingPct 20 (which alone would never fire on this path).
    values: [undefined, '2'],
    expected: [
      'spot: placed []; mark 110, 107, 95 -> still open (position 1) | futures: placed [TRAILING_STOP_MARKET SELL 0.01 callbackRate=5]',
      'spot: placed []; mark 110, 107, 95 -> closed SELL 1 at 107 (position 0) | futures: placed [TRAILING_STOP_MARKET SELL 0.01 callbackRate=2]',
    ],
    run: async (v) => `${await protectionOutcome('spot', { trailingPct: 20 }, { ...opt('trailing', v) })} | ${await protectionOutcome('futures', { trailingPct: 20 }, { ...opt('trailing', v) })}`,
  },
};

/** After the first candle (range 0), 1m candles closing at 100 with ranges 1, 2 and 4 (true range = range: no gaps). */
function volatilityCandles(r: Rig): void {
  for (const w of [1, 2, 4]) r.candle('BTCUSDT', 100, { high: 100 + w / 2, low: 100 - w / 2 });
}

// -------------------------------------------------------------------- tests

describe('every accepted risk, sizing and protection key has an effect', () => {
  const keys = enumerated();

  it('the schemas are walked as expected, and every top-level section is either walked or named out of scope', () => {
    for (const [schema, sections, name] of [
      [botConfigSchema, BOT_SECTIONS, 'config/bot.yaml'],
      [strategyConfigSchema, STRATEGY_SECTIONS, 'strategy YAML'],
    ] as const) {
      const all = topLevel(schema);
      const classified = [...sections.walked, ...Object.keys(sections.outOfScope)];
      expect(all.filter((k) => !classified.includes(k)), `${name}: top-level keys neither walked nor named out of scope`).toEqual([]);
      expect(classified.filter((k) => !all.includes(k)), `${name}: classified keys the schema no longer has`).toEqual([]);
    }
    // The walk reaches into every sizing and order type (a sample; the next test checks all against the scenarios).
    expect(keys, 'walked keys').toEqual(expect.arrayContaining(['strategy.risk.trailingPct', 'strategy.sizing(kelly).minTrades', 'strategy.order(limit).onExpiry', 'bot.symbols.*.leverage', 'bot.risk.guards']));
    expect(keys.length, 'keys enumerated').toBeGreaterThan(40);
  });

  it('a scenario exists for exactly the enumerated keys', () => {
    expect(keys.filter((k) => !(k in SCENARIOS)).map((k) => `no scenario for key ${k}`), 'keys without a scenario').toEqual([]);
    expect(Object.keys(SCENARIOS).filter((k) => !keys.includes(k)).map((k) => `scenario for ${k}, which the schemas do not accept`), 'stale scenarios').toEqual([]);
  });

  for (const key of keys) {
    it(`${key}: the outcome changes with the key`, async () => {
      const sc = SCENARIOS[key];
      if (!sc) throw new Error(`no scenario for key ${key}`);
      const got: string[] = [];
      faults.length = 0;
      for (const v of sc.values) {
        got.push(await sc.run(v));
        for (const c of cleanups.splice(0).reverse()) await c();
      }
      expect(got, `${key} = ${JSON.stringify(sc.values[0])} / ${JSON.stringify(sc.values[1])}`).toEqual([...sc.expected]);
      expect(got[0], `${key}: the two values must be told apart`).not.toBe(got[1]);
      expect(faults, `${key}: no bus handler threw`).toEqual([]);
    });
  }
});
