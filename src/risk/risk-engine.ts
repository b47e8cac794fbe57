/**
 * The risk engine: every order request passes here before it can reach the
 * execution engine.
 *
 *   order.request -> trading state gate -> the configured guards, in order
 *     -> allow: order.submit
 *     -> deny:  order.denied + a risk_events row (+ an escalation, when the
 *               guard asks for one: a trading state change, persisted,
 *               published on risk.state, recorded)
 *
 * Account-level limits (daily loss, drawdown) are also evaluated whenever
 * equity moves (fills, candles, marks), so a halt lands when the loss does,
 * not at the next order. States with an expiry (the daily-loss halt, until
 * 00:00 UTC) lapse on a timer set for the earliest expiry.
 *
 * Orders from the kill switch and protective exits skip the guards: they
 * only ever close, and the state gate admits a full close even when HALTED.
 *
 * The portfolio is read through its read-only view; nothing here calls
 * another engine.
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { LedgerView } from '../ledger/ledger.ts';
import type { OrderDenied, OrderIntent, OrderRequest, RiskScope } from '../model/events.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market, TradingState } from '../model/market.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { GuardName, RiskConfig } from '../settings/bot-config.ts';
import type { StrategyConfig } from '../settings/strategy-config.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';
import * as G from './guards/index.ts';
import { TradingStates, type StateChange, type StateEntry } from './trading-state.ts';
import type { Guard, OrderCheck, RiskSnapshot, StrategySymbolSnapshot, SymbolSnapshot, Verdict } from './types.ts';

const KV_STATES = 'risk.states';
const THROTTLE_WINDOW_MS = 60_000;
const HUNDRED = new Dec(100);

const entrySchema = z.object({ state: z.enum(['ACTIVE', 'REDUCING', 'HALTED']), reason: z.string(), source: z.string(), since: z.number(), until: z.number().optional() });
const statesSchema = z.object({ account: z.record(z.string(), entrySchema), symbol: z.record(z.string(), entrySchema), strategy: z.record(z.string(), entrySchema) });

export interface RiskConfigView {
  risk(): RiskConfig;
  /** The strategy's YAML for the symbol, if any. */
  strategy(strategy: string, symbol: string): StrategyConfig | undefined;
  /** Every enabled YAML of the strategy (its per-strategy caps hold across its symbols: the strictest file wins). */
  strategyFiles?(strategy: string): readonly StrategyConfig[];
  /** Futures leverage of the symbol (1 on spot). */
  leverage(symbol: string): number;
}

export interface RiskEngineDeps {
  bus: Bus;
  store: Store;
  clock: Clock;
  logger: Logger;
  market: Market;
  portfolio: PortfolioView;
  /** Positions per owner and working orders. */
  ledger: LedgerView;
  instrument: (symbol: string) => Instrument | undefined;
  config: RiskConfigView;
  /** Taker fee rate assumed by the balance guard (default: 0.1 % spot, 0.05 % futures). */
  feeRate?: Dec;
}

export interface TrippedGuard {
  readonly guard: string;
  readonly reason: string;
  readonly at: number;
  readonly count: number;
}

const SPOT_FEE = new Dec('0.001');
const FUTURES_FEE = new Dec('0.0005');

export class RiskEngine {
  private accountGuardsFor: { config: unknown; guards: Guard[] } | undefined;
  readonly states: TradingStates;
  private readonly sent = new Map<string, number[]>();
  private globalSent: number[] = [];
  private readonly unsubs: Array<() => void> = [];
  private expiryTimer: TimerHandle | undefined;
  private lastAccountCheck = -Infinity;
  private deferredCheck: TimerHandle | undefined;
  /** The latest denial per code, for `trader trade status` and the heartbeat. */
  readonly tripped = new Map<string, TrippedGuard>();
  denials = 0;
  approvals = 0;

  constructor(private readonly deps: RiskEngineDeps) {
    this.states = new TradingStates(deps.clock);
  }

  /** Restores persisted trading states (a restart keeps a halt), then takes order requests. */
  start(): void {
    const { bus } = this.deps;
    this.restore();
    this.unsubs.push(
      bus.handle('order.request', (r) => this.onRequest(r), 'risk'),
      bus.on('order.denied', (d) => this.recordDenial(d), 'risk-recorder'),
      bus.on('fill', () => this.checkAccount(true), 'risk'),
      bus.on('candle.closed', () => this.checkAccount(false), 'risk'),
      bus.on('mark.price', () => this.checkAccount(false), 'risk'),
    );
    this.expireDue();
    this.checkAccount(true);
  }

  stop(): void {
    for (const u of this.unsubs.splice(0)) u();
    this.expiryTimer?.cancel();
    this.deferredCheck?.cancel();
  }

  // ------------------------------------------------------ manual control

  /**
   * Sets a state by hand (pause, resume, stop-all) or from a component.
   * Returns the change, or undefined when the state was already that.
   */
  setState(scope: RiskScope, key: string, to: TradingState, reason: string, source: string, until?: number): StateChange | undefined {
    const change = this.states.set(scope, key, to, reason, source, until);
    if (change) this.applied([change]);
    return change;
  }

  accountKey(): string {
    return this.states.account;
  }

  /** Every non-ACTIVE state. */
  stateList(): Array<{ scope: RiskScope; key: string } & StateEntry> {
    const out: Array<{ scope: RiskScope; key: string } & StateEntry> = [];
    const dump = this.dump();
    for (const scope of ['account', 'symbol', 'strategy'] as const) for (const [key, e] of Object.entries(dump[scope])) out.push({ scope, key, ...e });
    return out;
  }

  // ---------------------------------------------------------- requests

  private readonly strictestCache = new WeakMap<readonly StrategyConfig[], { maxDailyLoss?: Dec; maxDailyLossPct?: number; maxOpenPositions?: number }>();

  private onRequest(r: OrderRequest): void {
    const i = r.intent;
    const check = this.orderCheck(i);
    const verdict = this.judge(i, check);
    if (!verdict.allow) {
      this.denials++;
      const tag = verdict.code;
      const prev = this.tripped.get(tag);
      this.tripped.set(tag, { guard: tag, reason: verdict.reason, at: this.deps.clock.now(), count: (prev?.count ?? 0) + 1 });
      if (verdict.escalate) this.escalate(verdict, i);
      this.deps.bus.publish('order.denied', { kind: 'order.denied', ts: this.deps.clock.now(), intent: i, reason: verdict.reason, source: 'risk' });
      return;
    }
    this.approvals++;
    const now = this.deps.clock.now();
    this.sent.set(i.symbol, [...(this.sent.get(i.symbol) ?? []).filter((t) => now - t < THROTTLE_WINDOW_MS), now]);
    this.globalSent = [...this.globalSent.filter((t) => now - t < 1000), now];
    this.deps.bus.publish('order.submit', { kind: 'order.submit', ts: now, intent: i });
  }

  /** Entry or exit, and whether it closes the position, from the position and what is already working. */
  orderCheck(i: OrderIntent): OrderCheck {
    // The owner's own position and working orders, without this intent (the planner counted it when it asked).
    const { ledger } = this.deps;
    const leg = i.positionSide ?? 'BOTH';
    const self = i.source !== 'protective' && ledger.isWorking(`intent:${i.intentId}`);
    const mine = i.side === 'BUY' ? i.quantity : i.quantity.neg();
    const pos = ledger.projected(i.strategy, i.symbol, leg).minus(self ? mine : ZERO);
    const signed = i.side === 'BUY' ? i.quantity : i.quantity.neg();
    const reduces = !pos.isZero() && pos.isPos() !== signed.isPos() && signed.abs().lte(pos.abs());
    const isEntry = !i.reduceOnly && !reduces;
    const step = this.deps.instrument(i.symbol)?.filters.lot.minQty ?? ZERO;
    const remaining = pos.plus(signed).abs();
    const closing = !isEntry && !pos.isZero() && (remaining.isZero() || remaining.lt(step));
    return { intentId: i.intentId, strategy: i.strategy, symbol: i.symbol, market: i.market, side: i.side, quantity: i.quantity, ...(i.price ? { price: i.price } : {}), reduceOnly: i.reduceOnly ?? false, isEntry, closing };
  }

  private judge(i: OrderIntent, check: OrderCheck): Verdict {
    // The kill switch closes what the venue says is held, which the portfolio may
    // not know (a position opened by hand): reduce-only, it passes even HALTED.
    if (i.source === 'kill-switch' && i.reduceOnly) return { allow: true };
    const gate = this.states.check(check);
    if (!gate.allow) {
      const which = this.stateScopeOf(check);
      return { ...gate, reason: `${gate.reason} scope=${which.scope}${which.scope === 'account' ? '' : ` key=${which.key}`}${which.entry ? ` because=${JSON.stringify(which.entry.reason)}` : ''}` };
    }
    if (i.source === 'kill-switch' || i.source === 'protective') return { allow: true };
    const snap = this.snapshot(i.symbol, check);
    for (const g of this.guards(i)) {
      const v = g.check(check, snap);
      if (!v.allow) return v;
    }
    // Without a price the guards valued a market entry at 0 (whichever of them run): never guess.
    if (check.isEntry && !i.price && !this.deps.portfolio.mark(i.symbol)) return { allow: false, code: 'NO_PRICE', reason: `NO_PRICE: symbol=${i.symbol} (no market data yet to value the order)` };
    return { allow: true };
  }

  private stateScopeOf(o: OrderCheck): { scope: RiskScope; key: string; entry?: StateEntry } {
    const cands: Array<{ scope: RiskScope; key: string }> = [
      { scope: 'account', key: this.states.account },
      { scope: 'symbol', key: o.symbol },
      { scope: 'strategy', key: o.strategy },
    ];
    const rank = { ACTIVE: 0, REDUCING: 1, HALTED: 2 } as const;
    let best = cands[0]!;
    for (const c of cands) if (rank[this.states.get(c.scope, c.key)] > rank[this.states.get(best.scope, best.key)]) best = c;
    const entry = this.states.entry(best.scope, best.key);
    return entry ? { ...best, entry } : best;
  }

  /** The configured guards, in the configured order, with this order's strategy limits. */
  /**
   * The strictest per-strategy limits its files set (the least of each), kept
   * per list of files: the config hands out the same list until a reload, and
   * a strategy on 200 symbols has 200 files to read per order otherwise.
   * (The least percentage gives the least amount, whatever the equity.)
   */
  private strictest(files: readonly StrategyConfig[]): { maxDailyLoss?: Dec; maxDailyLossPct?: number; maxOpenPositions?: number } {
    let c = this.strictestCache.get(files);
    if (!c) {
      const min = <T>(xs: Array<T | undefined>, lt: (a: T, b: T) => boolean): T | undefined => xs.reduce<T | undefined>((m, x) => (x === undefined ? m : m === undefined || lt(x, m) ? x : m), undefined);
      const maxDailyLoss = min(files.map((f) => f.risk.maxDailyLoss), (a, b) => a.lt(b));
      const maxDailyLossPct = min(files.map((f) => f.risk.maxDailyLossPct), (a, b) => a < b);
      const maxOpenPositions = min(files.map((f) => f.risk.maxOpenPositions), (a, b) => a < b);
      c = { ...(maxDailyLoss !== undefined ? { maxDailyLoss } : {}), ...(maxDailyLossPct !== undefined ? { maxDailyLossPct } : {}), ...(maxOpenPositions !== undefined ? { maxOpenPositions } : {}) };
      this.strictestCache.set(files, c);
    }
    return c;
  }

  private guards(i: OrderIntent): Guard[] {
    const r = this.deps.config.risk();
    const s = this.deps.config.strategy(i.strategy, i.symbol);
    const eq = this.deps.portfolio.dayStartEquity();
    const out: Guard[] = [];
    for (const name of r.guards as readonly GuardName[]) {
      switch (name) {
        case 'stale-data':
          out.push(G.staleData({ maxAgeMs: r.staleDataSec * 1000 }));
          break;
        case 'order-throttle':
          out.push(G.orderThrottle({ maxPerSymbol: r.maxOrdersPerSymbolPerMinute, maxGlobalPerSecond: r.maxOrdersPerSecond }));
          break;
        case 'price-protection':
          out.push(G.priceProtection({ maxDeviationBps: new Dec(r.maxPriceDeviationBps), maxCandleRangePct: new Dec(r.maxCandleRangePct) }));
          break;
        case 'daily-loss':
          out.push(G.dailyLoss({ maxLossPercent: new Dec(r.maxDailyLossPct), ...(r.maxDailyLoss ? { maxLoss: r.maxDailyLoss } : {}) }));
          break;
        case 'drawdown':
          out.push(G.drawdown({ haltAtPct: new Dec(r.maxDrawdownPct), reduceAtPct: new Dec(r.reduceDrawdownPct ?? r.maxDrawdownPct / 2) }));
          break;
        case 'strategy-daily-loss': {
          // The strategy's realized loss today across its symbols: the strictest limit any of its files sets.
          const caps = this.strictest(this.deps.config.strategyFiles?.(i.strategy) ?? (s ? [s] : []));
          const limits = [caps.maxDailyLoss, caps.maxDailyLossPct !== undefined ? eq.times(caps.maxDailyLossPct).div(HUNDRED) : undefined].filter((x): x is Dec => x !== undefined);
          if (limits.length > 0) out.push(G.strategyDailyLoss({ maxLoss: Dec.min(...limits) }));
          break;
        }
        case 'consecutive-losses':
          out.push(G.consecutiveLosses({ maxLosses: r.maxConsecutiveLosses, cooldownMs: (s?.risk.cooldownMinutes ?? r.lossCooldownMinutes) * 60_000 }));
          break;
        case 'duplicate-order':
          out.push(G.duplicateOrder());
          break;
        case 'max-open-positions':
          out.push(maxOpenPositions(r.maxOpenPositions, this.deps.ledger, `intent:${i.intentId}`));
          // The strategy YAML's cap: this strategy's positions across its symbols.
          {
            // A per-strategy cap: the strictest value any of the strategy's files sets (a cap written in
            // BTCUSDT.yaml alone used to let an ETHUSDT entry through while BTC was open).
            const cap = this.strictest(this.deps.config.strategyFiles?.(i.strategy) ?? (s ? [s] : [])).maxOpenPositions;
            if (cap !== undefined) out.push(maxOpenPositions(cap, this.deps.ledger, `intent:${i.intentId}`, i.strategy));
          }
          break;
        case 'max-position-size': {
          const q = r.maxPositionQty[i.symbol];
          out.push(G.maxPositionSize({ maxPercentOfEquity: new Dec(r.maxPositionPct), ...(q ? { maxQuantity: q } : {}) }));
          break;
        }
        case 'symbol-exposure': {
          const n = r.maxExposureBySymbol[i.symbol] ?? r.maxExposure;
          if (n) out.push(G.symbolExposure({ maxNotional: n }));
          break;
        }
        case 'daily-traded-quantity':
          if (Object.keys(r.maxDailyQty).length > 0) out.push(G.dailyTradedQuantity({ perSymbol: r.maxDailyQty }));
          break;
        case 'funding-window':
          if (this.deps.market === 'futures') out.push(G.fundingWindow({ windowMinutes: r.fundingWindowMinutes }));
          break;
        case 'liquidation-distance':
          if (this.deps.market === 'futures') out.push(G.liquidationDistance({ denyEntryWithinPct: new Dec(r.liquidationDenyPct), reduceWithinPct: new Dec(r.liquidationReducePct) }));
          break;
        case 'balance':
          out.push(G.balance({ leverage: new Dec(this.deps.config.leverage(i.symbol)) }));
          break;
        case 'portfolio-var':
          out.push(G.portfolioVar({ limits: [{ confidence: 0.95, maxPercentOfEquity: new Dec(r.var95Pct) }, { confidence: 0.99, maxPercentOfEquity: new Dec(r.var99Pct) }], minSamples: r.varMinSamples }));
          break;
      }
    }
    return out;
  }

  /** What the guards see: built fresh per request from the portfolio view and our own counters. */
  snapshot(symbol: string, o?: OrderCheck): RiskSnapshot {
    const p = this.deps.portfolio;
    const now = this.deps.clock.now();
    // Built on first use: most guards read the order's symbol only; VaR walks them all.
    const symbols = new LazySnapshots(symbol, () => [symbol, ...[...p.heldSymbols()].sort()], (s) => this.symbolSnapshot(s, now, s === symbol ? o : undefined));
    const strategies: StrategySymbolSnapshot[] = [];
    if (o) {
      const t = p.trips(o.strategy, symbol);
      strategies.push({ strategy: o.strategy, symbol, realizedToday: p.strategyRealizedToday(o.strategy), consecutiveLosses: t.consecutiveLosses, ...(t.lastLossAt !== undefined ? { lastLossAt: t.lastLossAt } : {}) });
    }
    // The available balance (a Decimal division per position) and the daily returns are read by a
    // few guards only; the per-candle account check (daily loss, drawdown) never reads them. Computed
    // on first read, once.
    let available: Dec | undefined;
    const availableBalance = (): Dec => {
      if (available) return available;
      const cash = p.cash();
      const reserved = this.deps.ledger.reservedQuote((s) => p.mark(s), o?.intentId ? `intent:${o.intentId}` : undefined);
      if (this.deps.market === 'spot') available = cash.minus(reserved);
      else {
        const margin = p.marginUsed((s) => this.deps.config.leverage(s));
        available = p.equity().minus(margin).minus(reserved.div(this.deps.config.leverage(symbol)));
      }
      return available;
    };
    let returns: ReturnType<typeof p.dailyReturns> | undefined;
    return {
      now,
      account: {
        equity: p.equity(),
        peakEquity: p.peakEquity(),
        dayStartEquity: p.dayStartEquity(),
        realizedToday: p.realizedToday(),
        unrealized: p.unrealized(),
        get availableBalance() {
          return availableBalance();
        },
        feeRate: this.deps.feeRate ?? (this.deps.market === 'spot' ? SPOT_FEE : FUTURES_FEE),
      },
      symbols,
      strategies,
      globalOrdersLastSecond: this.globalSent.filter((t) => now - t < 1000).length,
      get portfolioReturns() {
        return (returns ??= p.dailyReturns());
      },
    };
  }

  private symbolSnapshot(symbol: string, now: number, o?: OrderCheck): SymbolSnapshot {
    const p = this.deps.portfolio;
    const pos = p.position(symbol);
    const mark = p.mark(symbol) ?? o?.price ?? pos.entryPrice;
    const prev = p.prevCandle(symbol);
    const nextFunding = p.nextFundingTime(symbol);
    const liq = o && this.deps.market === 'futures' ? this.projectedLiquidation(symbol, pos.quantity, pos.entryPrice, o, mark) : undefined;
    return {
      position: pos.quantity,
      ...(pos.quantity.isZero() ? {} : { entryPrice: pos.entryPrice }),
      markPrice: mark,
      lastPrice: p.last(symbol) ?? mark,
      ...(prev ? { prevCandle: prev } : {}),
      openEntries: this.deps.ledger.openEntries(symbol, o?.strategy, o?.intentId ? `intent:${o.intentId}` : undefined),
      tradedQtyToday: p.tradedToday(symbol),
      recentOrders: (this.sent.get(symbol) ?? []).filter((t) => now - t < THROTTLE_WINDOW_MS).length,
      lastDataAt: p.lastDataAt(symbol),
      ...(liq ? { liquidationPrice: liq } : {}),
      ...(nextFunding !== undefined ? { nextFundingTime: nextFunding } : {}),
    };
  }

  /**
   * The liquidation price of the position after the order, as an isolated
   * position at the configured leverage: long entry * (1 - 1/L + mmr), short
   * entry * (1 + 1/L - mmr). Cross margin liquidates later than this, so the
   * guard errs on the safe side.
   */
  private projectedLiquidation(symbol: string, qty: Dec, entry: Dec, o: OrderCheck, mark: Dec): Dec | undefined {
    const signed = o.side === 'BUY' ? o.quantity : o.quantity.neg();
    const after = qty.plus(signed);
    if (after.isZero()) return undefined;
    const px = o.price ?? mark;
    const avg = qty.isZero() || qty.isPos() !== after.isPos() ? px : entry.times(qty.abs()).plus(px.times(o.quantity)).div(qty.abs().plus(o.quantity));
    const lev = new Dec(this.deps.config.leverage(symbol));
    const mmr = this.deps.instrument(symbol)?.maintMarginRate ?? new Dec('0.004');
    const one = new Dec(1);
    return after.isPos() ? avg.times(one.minus(one.div(lev)).plus(mmr)) : avg.times(one.plus(one.div(lev)).minus(mmr));
  }

  // ------------------------------------------------------ escalations

  private escalate(v: Verdict & { allow: false }, i: OrderIntent): void {
    const e = v.escalate!;
    const key = e.scope === 'account' ? this.states.account : e.scope === 'symbol' ? i.symbol : i.strategy;
    const change = this.states.escalate(e.scope, key, e.to, v.reason, `guard:${v.code}`, e.until);
    if (change) this.applied([change]);
  }

  /**
   * Runs the account-level guards (daily loss, drawdown) against a probe
   * entry, so the state changes when equity does. At most once a second of
   * clock time unless forced (after a fill).
   */
  private checkAccount(force: boolean): void {
    const now = this.deps.clock.now();
    if (!force && now - this.lastAccountCheck < 1000) {
      // Throttled, not skipped: one trailing check when the second is up, so a
      // crash in the tenth candle of a burst is seen within a second.
      this.deferredCheck ??= this.deps.clock.after(this.lastAccountCheck + 1000 - now, () => {
        this.deferredCheck = undefined;
        this.checkAccount(true);
      });
      return;
    }
    this.deferredCheck?.cancel();
    this.deferredCheck = undefined;
    this.lastAccountCheck = now;
    this.expireDue();
    const r = this.deps.config.risk();
    const probe: OrderCheck = { strategy: '*', symbol: '*', market: this.deps.market, side: 'BUY', quantity: ZERO, reduceOnly: false, isEntry: true };
    const snap = this.snapshot('*');
    for (const g of this.accountGuards(r)) {
      const v = g.check(probe, snap);
      if (!v.allow && v.escalate) {
        const change = this.states.escalate(v.escalate.scope, this.states.account, v.escalate.to, v.reason, `guard:${v.code}`, v.escalate.until);
        if (change) this.applied([change]);
      }
    }
  }

  /**
   * The account guards for this risk config, built once per config object (hot reload gives a new
   * one): this runs on every candle, and a backtest runs it hundreds of thousands of times.
   */
  private accountGuards(r: ReturnType<RiskEngineDeps['config']['risk']>): Guard[] {
    if (this.accountGuardsFor?.config === r) return this.accountGuardsFor.guards;
    const guards: Guard[] = [];
    if (r.guards.includes('daily-loss')) guards.push(G.dailyLoss({ maxLossPercent: new Dec(r.maxDailyLossPct), ...(r.maxDailyLoss ? { maxLoss: r.maxDailyLoss } : {}) }));
    if (r.guards.includes('drawdown')) guards.push(G.drawdown({ haltAtPct: new Dec(r.maxDrawdownPct), reduceAtPct: new Dec(r.reduceDrawdownPct ?? r.maxDrawdownPct / 2) }));
    this.accountGuardsFor = { config: r, guards };
    return guards;
  }

  private expireDue(): void {
    const changes = this.states.expire(this.deps.clock.now());
    if (changes.length > 0) this.applied(changes);
    else this.armExpiry();
  }

  /** One timer, at the earliest expiry. */
  private armExpiry(): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    const soonest = this.stateList().reduce<number | undefined>((m, e) => (e.until !== undefined && (m === undefined || e.until < m) ? e.until : m), undefined);
    if (soonest === undefined) return;
    this.expiryTimer = this.deps.clock.after(Math.max(0, soonest - this.deps.clock.now()), () => this.expireDue());
  }

  /** Persists, records and publishes state changes. */
  private applied(changes: StateChange[]): void {
    const { store, bus, clock, logger } = this.deps;
    store.transaction(() => {
      writeKv(store, KV_STATES, this.dump(), clock.now());
      for (const c of changes) {
        store.run(
          store.db.insertInto('risk_events').values({ ts: c.at, scope: c.scope, scope_key: c.key, kind: 'state', reason: c.reason, state_from: c.from, state_to: c.to, source: c.source, details: c.until !== undefined ? JSON.stringify({ until: new Date(c.until).toISOString() }) : null }),
        );
      }
    });
    for (const c of changes) {
      const log = c.to === 'ACTIVE' ? logger.info.bind(logger) : logger.warn.bind(logger);
      log({ scope: c.scope, key: c.key, from: c.from, to: c.to, reason: c.reason, source: c.source, ...(c.until !== undefined ? { until: new Date(c.until).toISOString() } : {}) }, `trading state ${c.scope}${c.scope === 'account' ? '' : ` ${c.key}`}: ${c.from} -> ${c.to} (${c.reason})`);
      bus.publish('risk.state', { kind: 'risk.state', ts: c.at, scope: c.scope, key: c.key, from: c.from, to: c.to, reason: c.reason, source: c.source });
      if (c.to === 'HALTED') bus.publish('risk.halt', { kind: 'risk.halt', ts: c.at, scope: c.scope, key: c.key, reason: c.reason });
    }
    this.armExpiry();
  }

  private dump(): z.infer<typeof statesSchema> {
    const out: z.infer<typeof statesSchema> = { account: {}, symbol: {}, strategy: {} };
    for (const scope of ['account', 'symbol', 'strategy'] as const) for (const [key, e] of this.states.entries(scope)) out[scope][key] = { ...e };
    return out;
  }

  private restore(): void {
    const saved = readKv(this.deps.store, KV_STATES, statesSchema);
    if (!saved.ok) {
      // Unreadable states are not "all ACTIVE": trading would resume after a halt. Halt and say why.
      this.deps.logger.error({ error: saved.error }, 'stored trading states are unreadable; the account starts HALTED until someone resumes it');
      this.setState('account', this.states.account, 'HALTED', `STATES_UNREADABLE: ${saved.error}`, 'startup');
      return;
    }
    if (!saved.value) return;
    for (const scope of ['account', 'symbol', 'strategy'] as const) {
      for (const [key, e] of Object.entries(saved.value[scope])) this.states.restore(scope, key, e);
    }
    const list = this.stateList();
    if (list.length > 0) this.deps.logger.warn({ states: list }, `trading states kept from the last run: ${list.map((s) => `${s.scope}${s.scope === 'account' ? '' : ` ${s.key}`} ${s.state} (${s.reason})`).join('; ')}`);
  }

  /** Records a denial (risk's and the execution engine's filters alike) as a risk_events row. */
  private recordDenial(d: OrderDenied): void {
    const { store } = this.deps;
    const i = d.intent;
    store.run(
      store.db.insertInto('risk_events').values({
        ts: d.ts,
        scope: 'symbol',
        scope_key: i.symbol,
        kind: 'denied',
        reason: d.reason,
        state_from: null,
        state_to: null,
        source: d.source,
        details: JSON.stringify({ intentId: i.intentId, strategy: i.strategy, side: i.side, type: i.type, quantity: i.quantity.toFixed(), ...(i.price ? { price: i.price.toFixed() } : {}), source: i.source }),
      }),
    );
  }
}

/** A ReadonlyMap whose entries are computed on first read (per request, so never stale). */
class LazySnapshots implements ReadonlyMap<string, SymbolSnapshot> {
  private readonly cache = new Map<string, SymbolSnapshot>();
  private names: string[] | undefined;

  constructor(
    private readonly primary: string,
    private readonly list: () => string[],
    private readonly make: (symbol: string) => SymbolSnapshot,
  ) {}

  private all(): string[] {
    this.names ??= [...new Set(this.list())];
    return this.names;
  }

  get(symbol: string): SymbolSnapshot | undefined {
    if (symbol !== this.primary && !this.all().includes(symbol)) return undefined;
    let v = this.cache.get(symbol);
    if (!v) {
      v = this.make(symbol);
      this.cache.set(symbol, v);
    }
    return v;
  }

  has(symbol: string): boolean {
    return this.all().includes(symbol);
  }

  get size(): number {
    return this.all().length;
  }

  *entries(): MapIterator<[string, SymbolSnapshot]> {
    for (const k of this.all()) yield [k, this.get(k)!];
  }

  *keys(): MapIterator<string> {
    yield* this.all();
  }

  *values(): MapIterator<SymbolSnapshot> {
    for (const k of this.all()) yield this.get(k)!;
  }

  [Symbol.iterator](): MapIterator<[string, SymbolSnapshot]> {
    return this.entries();
  }

  forEach(fn: (value: SymbolSnapshot, key: string, map: ReadonlyMap<string, SymbolSnapshot>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

/**
 * Account-wide cap on open positions (config risk.maxOpenPositions); entries that open a new one.
 * Entries approved but not filled yet count as positions: signals on several symbols in the same
 * tick (one candle close) would otherwise all pass before the first fill arrives.
 */
function maxOpenPositions(max: number, ledger: LedgerView, self: string, strategy?: string): Guard {
  return {
    name: 'max-open-positions',
    check(o) {
      if (!o.isEntry) return { allow: true };
      const open = ledger.openSymbols(strategy, self);
      if (open.has(o.symbol)) return { allow: true }; // adds to a position held or already on its way
      if (open.size >= max) {
        const code = strategy === undefined ? 'MAX_OPEN_POSITIONS' : 'STRATEGY_MAX_OPEN_POSITIONS';
        return { allow: false, code, reason: `${code}: ${strategy === undefined ? '' : `strategy=${strategy} `}open=${open.size} max=${max}` };
      }
      return { allow: true };
    },
  };
}
