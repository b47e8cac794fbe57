/**
 * The trading half of the composition root: venue, instruments, portfolio,
 * execution, risk, planner and kill switch, wired onto a bus and a store
 * the caller owns. The kernel builds one for the running bot; `trader trade
 * stop-all` builds a short-lived one on the same database when the bot is
 * not running, so both act through the same order path.
 *
 * Start order: venue (connect, user stream) -> instruments -> futures
 * account settings -> portfolio (rebuilt from stored fills, then the venue's
 * balances) -> execution (and one poll that settles orders left working by
 * the last run) -> risk -> planner -> reconciliation. Strategies come after,
 * in the kernel. A start that fails stops whatever it had started, so no
 * timer outlives it (the kernel closes the store next).
 */
import { CircuitBreaker } from '../core/circuit-breaker.ts';
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { ExecutionEngine, type ExecutionOptions } from '../execution/execution-engine.ts';
import { InstrumentBook } from '../execution/instrument-book.ts';
import { IntentSequence } from '../execution/intent-sequence.ts';
import { ProtectionManager } from '../execution/protection.ts';
import type { Timeframe } from '../model/market.ts';
import { Portfolio } from '../portfolio/portfolio.ts';
import { KillSwitch } from '../risk/kill-switch.ts';
import { Reconciler } from '../reconcile/reconciler.ts';
import { OrderPlanner } from '../risk/order-planner.ts';
import { RiskEngine } from '../risk/risk-engine.ts';
import type { Settings } from '../settings/settings.ts';
import type { StrategyConfig } from '../settings/strategy-config.ts';
import type { Store } from '../store/store.ts';
import { BinanceVenue } from '../venues/binance/binance-venue.ts';
import { createFuturesClient, createSpotClient } from '../venues/binance/ccxt-clients.ts';
import { instrumentFromBinance } from '../venues/binance/exchange-info.ts';
import type { Instrument } from '../model/instrument.ts';
import { catalog } from '../venues/sim/catalog.ts';
import { SimVenue } from '../venues/sim/sim-venue.ts';
import { SqliteSimAccountStore } from '../venues/sim/sqlite-account-store.ts';
import { VenueError, type Venue } from '../venues/venue.ts';
import { ConfigError } from '../core/errors.ts';
import type { StartGate } from './start-gate.ts';

export interface TradingCoreDeps {
  /** Current settings (hot reload replaces what this returns). */
  settings: () => Settings;
  store: Store;
  bus: Bus;
  clock: Clock;
  logger: Logger;
  /** A venue built by the caller (tests); default: from the settings' MODE. */
  venue?: Venue;
  execution?: Partial<ExecutionOptions>;
  /** Strategy timeframe lookup for volatility sizing (the host knows it). */
  timeframeOf?: (strategy: string, symbol: string) => Timeframe | undefined;
  /**
   * Reconcile at start and then periodically (the bot). A one-shot command
   * passes false and runs the reconciler itself (e.g. a dry run).
   */
  reconcile?: boolean;
  /**
   * Change nothing on the exchange or in the books at start (`trader reconcile
   * --dry-run`): no account setup, no settling poll, no protective orders.
   */
  readOnly?: boolean;
  /** exchangeInfo reload interval (default hourly; 0 = never, for a venue whose list cannot change: the backtester). */
  instrumentRefreshMs?: number;
  /**
   * The bot's start-up gate: each step that talks to the venue is retried
   * while it fails transiently and cut short by a stop request. Absent (the
   * CLI's short-lived cores): one try each, a 429 / 418 at connect waited out.
   */
  gate?: StartGate;
  /** Symbols the venue must list (the configured ones): one it does not is a configuration error, not a retry. */
  requireListed?: readonly string[];
}

/**
 * The venue the settings ask for: the sim engine in MODE=sim, Binance (or any URL override) otherwise.
 * With a store, MODE=sim keeps its paper account in it across restarts (issue 17).
 */
export function createVenue(settings: Settings, clock: Clock, logger: Logger, store?: Store): Venue {
  const market = settings.market;
  if (settings.mode === 'sim') {
    const live = settings.env.FEED === 'live';
    return new SimVenue({
      market,
      clock,
      instruments: catalog(market),
      // With a live feed any listed symbol can be paper traded: its filters come from Binance's
      // public exchangeInfo (no keys); offline (replay, none) the shipped catalog serves.
      ...(live ? { loadInstruments: () => publicInstruments(settings), onLoadError: (err: unknown) => logger.warn({ err }, `cannot load exchangeInfo for the sim venue (${(err as Error).message}); paper trading the shipped catalog only`) } : {}),
      quoteAsset: settings.bot.quoteAsset,
      balance: settings.bot.sim.balance,
      // -- sim account persistence (issue 17): begin
      ...(store ? { persistence: new SqliteSimAccountStore(store), logger: logger.child({ component: 'sim-venue' }) } : {}),
      // -- sim account persistence: end
    });
  }
  const { binanceApiKey, binanceApiSecret } = settings.secrets;
  if (!binanceApiKey || !binanceApiSecret) throw new Error(`MODE=${settings.mode} needs BINANCE_API_KEY and BINANCE_API_SECRET`);
  const e = settings.endpoints;
  return new BinanceVenue({
    market,
    spotBase: e.spotRest,
    futuresBase: e.futuresRest,
    wsBase: market === 'futures' ? e.futuresWs : e.spotWsApi,
    apiKey: binanceApiKey,
    secret: binanceApiSecret,
    clock,
    logger: logger.child({ component: 'venue' }),
    recvWindowMs: settings.env.RECV_WINDOW_MS,
    breaker: new CircuitBreaker({
      name: 'exchange-rest',
      clock,
      failureThreshold: settings.bot.circuitBreaker.failures,
      openMs: settings.bot.circuitBreaker.openSec * 1000,
      onChange: (c) => (c.to === 'OPEN' ? logger.error : logger.warn).call(logger, { breaker: c.name, from: c.from, to: c.to }, `circuit ${c.name}: ${c.from} -> ${c.to} (${c.reason})`),
    }),
  });
}

/** Every instrument of the market from the endpoint's public exchangeInfo (no keys needed). */
async function publicInstruments(settings: Settings): Promise<Instrument[]> {
  const e = settings.endpoints;
  const opts = { spotBase: e.spotRest, futuresBase: e.futuresRest, timeoutMs: 15_000 };
  const client = settings.market === 'futures' ? createFuturesClient(opts) : createSpotClient(opts);
  const markets = await client.loadMarkets();
  const out: Instrument[] = [];
  for (const m of Object.values(markets)) {
    if (!m || (settings.market === 'spot' ? !m.spot : !(m.swap && m.linear))) continue;
    try {
      out.push(instrumentFromBinance(m.info, settings.market));
    } catch {
      // A listing that does not parse (often delisted) is simply not paper-tradable.
    }
  }
  return out;
}

/**
 * Connects the venue. A 429 or 418 at start is waited out (Retry-After, or the
 * ban's stated end) instead of failing: a bot that exits and is restarted at
 * once by its supervisor keeps asking, and Binance turns a 429 into a ban.
 */
async function startVenue(venue: Venue, clock: Clock, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await venue.start();
      return;
    } catch (err) {
      if (!(err instanceof VenueError) || (err.kind !== 'RATE_LIMITED' && err.kind !== 'BANNED') || attempt >= 20) throw err;
      const wait = Math.min(err.details.retryAfterMs ?? 60_000, 15 * 60_000);
      logger.warn({ kind: err.kind, waitMs: wait, attempt }, `the exchange said ${err.kind === 'BANNED' ? '418 (IP banned)' : '429 (too many requests)'} at start: waiting ${Math.round(wait / 1000)} s before trying again`);
      await new Promise<void>((resolve) => clock.after(wait, resolve));
    }
  }
}

export class TradingCore {
  private constructor(
    readonly venue: Venue,
    readonly instruments: InstrumentBook,
    readonly portfolio: Portfolio,
    readonly execution: ExecutionEngine,
    readonly risk: RiskEngine,
    readonly planner: OrderPlanner,
    readonly killSwitch: KillSwitch,
    readonly protection: ProtectionManager,
    readonly reconciler: Reconciler,
    private readonly deps: TradingCoreDeps,
  ) {}

  static async start(deps: TradingCoreDeps): Promise<TradingCore> {
    const { store, bus, clock, logger } = deps;
    const s0 = deps.settings();
    const market = s0.market;
    const venue = deps.venue ?? createVenue(s0, clock, logger, store);
    const gate = deps.gate;
    // A venue read at start: through the gate (retried, cancellable) when there is one; after a
    // clock-skew answer the offset is measured again first, or the retry would be refused the same way.
    const step = <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      if (!gate) return fn();
      return gate.run(what, async () => {
        try {
          return await fn();
        } catch (err) {
          if (err instanceof VenueError && err.kind === 'CLOCK_SKEW') await venue.resyncClock?.().catch(() => undefined);
          throw err;
        }
      });
    };
    // What started so far, stopped in reverse if the start fails.
    const undo: Array<() => void | Promise<void>> = [];
    try {
      if (gate) await step('exchange connection', () => venue.start());
      else await startVenue(venue, clock, logger);
      const instruments = new InstrumentBook({ venue, store, clock, logger: logger.child({ component: 'instruments' }), market, ...(deps.instrumentRefreshMs !== undefined ? { refreshMs: deps.instrumentRefreshMs } : {}) });
      undo.push(() => instruments.stop());
      await step('exchange info', () => instruments.load());
      const inst = (symbol: string) => instruments.get(symbol);
      const unlisted = (deps.requireListed ?? []).filter((sym) => !inst(sym));
      if (unlisted.length > 0) {
        // Named where it was configured: the strategy YAML(s) for the symbol, else config/bot.yaml's symbols.
        const where = (sym: string): string[] => {
          const files = s0.strategies.filter((e) => e.symbol === sym).map((e) => e.file);
          return files.length > 0 ? files : ['config/bot.yaml'];
        };
        throw new ConfigError(unlisted.flatMap((sym) => where(sym).map((source) => ({ source, field: '', message: `${sym} is not listed on ${venue.name} ${market} (not in its exchangeInfo): a typo in the file name, or a symbol of the other market?` }))));
      }
      if (market === 'futures' && venue.configureFutures && !deps.readOnly) {
        // Leverage and margin type per traded symbol, before anything is sent.
        const bot = s0.bot;
        const symbols = [...new Set([...s0.symbols, ...Object.keys(bot.symbols)])].sort();
        const configure = venue.configureFutures.bind(venue);
        const report = await step('futures account settings', () => configure({ positionMode: s0.env.POSITION_MODE, symbols: symbols.map((symbol) => ({ symbol, leverage: bot.symbols[symbol]?.leverage ?? bot.risk.maxLeverage, ...(bot.symbols[symbol]?.marginType ? { marginType: bot.symbols[symbol]!.marginType! } : {}) })) }));
        logger.info({ positionMode: report.positionMode, symbols: report.symbols }, `futures account: ${s0.env.POSITION_MODE === 'HEDGE' ? 'hedge' : 'one-way'} mode (${report.positionMode}); leverage set on ${report.symbols.length} symbols`);
      }

      const portfolio = new Portfolio({
        bus,
        store,
        clock,
        logger: logger.child({ component: 'portfolio' }),
        market,
        quoteAsset: s0.bot.quoteAsset,
        instrument: inst,
        hedge: market === 'futures' && s0.env.POSITION_MODE === 'HEDGE',
      });
      portfolio.start();
      undo.push(() => portfolio.stop());
      Reconciler.restore(store, portfolio.ledger, market);
      const account = await step('account', () => venue.account());
      bus.publish('account.updated', { kind: 'account.updated', ts: clock.now(), balances: account.balances, ...(account.walletBalance ? { walletBalance: account.walletBalance } : {}), reason: 'SNAPSHOT' });

      const execution = new ExecutionEngine({
        bus,
        store,
        clock,
        logger: logger.child({ component: 'execution' }),
        venue,
        market,
        instruments,
        referencePrice: (symbol) => portfolio.mark(symbol),
        ledger: portfolio.ledger,
        // The unknown-outcome window follows the recvWindow the venue signs with.
        options: { pollMs: deps.readOnly ? 86_400_000 : s0.env.ORDER_POLL_SEC * 1000, unknownOutcome: { recvWindowMs: s0.env.RECV_WINDOW_MS }, ...deps.execution },
      });
      execution.start();
      undo.push(() => execution.stop());
      // One sequence for the planner and the recovery: ids found on the exchange are never handed out again.
      const sequence = new IntentSequence(store, clock);
      if (!deps.readOnly) {
        // After an unclean stop, the exchange is the journal: rows (and fills) a lost log tail dropped come back.
        const dbSymbols = store.all(store.db.selectFrom('orders').select('symbol').distinct().where('market', '=', market)).map((r) => r.symbol);
        await step('order recovery', () => execution.recover({ sequence, symbols: () => [...new Set([...deps.settings().symbols, ...dbSymbols])].sort(), owners: () => deps.settings().strategies.map((e) => e.strategy) }));
      }
      // Orders the last run left working are settled by the reconciliation below (or here, without it).
      if (!deps.readOnly && deps.reconcile === false) await execution.poll();

      // Looked up per order (planner, risk): indexed once per settings object (a hot reload makes a new one).
      const strategyIndex = new WeakMap<object, { one: Map<string, StrategyConfig>; files: Map<string, StrategyConfig[]> }>();
      const indexOf = (): { one: Map<string, StrategyConfig>; files: Map<string, StrategyConfig[]> } => {
        const s = deps.settings();
        let ix = strategyIndex.get(s);
        if (!ix) {
          ix = { one: new Map(), files: new Map() };
          for (const e of s.strategies) {
            if (!e.config.enabled) continue;
            const key = `${e.strategy}\u0000${e.symbol}`;
            if (!ix.one.has(key)) ix.one.set(key, e.config);
            ix.files.set(e.strategy, [...(ix.files.get(e.strategy) ?? []), e.config]);
          }
          strategyIndex.set(s, ix);
        }
        return ix;
      };
      const strategyOf = (strategy: string, symbol: string): StrategyConfig | undefined => indexOf().one.get(`${strategy}\u0000${symbol}`);
      const risk = new RiskEngine({
        bus,
        store,
        clock,
        logger: logger.child({ component: 'risk' }),
        market,
        portfolio,
        ledger: portfolio.ledger,
        instrument: inst,
        config: {
          risk: () => deps.settings().bot.risk,
          strategy: strategyOf,
          strategyFiles: (strategy) => indexOf().files.get(strategy) ?? [],
          leverage: (symbol) => (market === 'futures' ? (deps.settings().bot.symbols[symbol]?.leverage ?? deps.settings().bot.risk.maxLeverage) : 1),
        },
      });
      risk.start();
      undo.push(() => risk.stop());

      const planner = new OrderPlanner({
        bus,
        clock,
        logger: logger.child({ component: 'planner' }),
        market,
        portfolio,
        ledger: portfolio.ledger,
        instrument: inst,
        strategy: (strategy, symbol) => {
          const config = strategyOf(strategy, symbol);
          return config ? { config, timeframe: config.timeframe ?? deps.timeframeOf?.(strategy, symbol) ?? '1m' } : undefined;
        },
        sequence,
      });
      planner.start();
      undo.push(() => planner.stop());

      const protection = new ProtectionManager({
        bus,
        store,
        clock,
        logger: logger.child({ component: 'protection' }),
        market,
        portfolio,
        ledger: portfolio.ledger,
        instrument: inst,
        planner,
        // OCO lists on spot, where the venue offers them (Binance, and the sim venue, whose paper account
        // keeps its order lists across restarts).
        oco: market === 'spot' && venue.placeOco !== undefined,
      });
      if (!deps.readOnly) {
        protection.start();
        undo.push(() => protection.stop());
      }

      const symbolsTraded = (): string[] => {
        const fromDb = store.all(store.db.selectFrom('orders').select('symbol').distinct().where('market', '=', market)).map((r) => r.symbol);
        return [...new Set([...deps.settings().symbols, ...fromDb, ...portfolio.positions().map((p) => p.symbol)])].sort();
      };
      const reconciler = new Reconciler({
        bus,
        store,
        clock,
        logger: logger.child({ component: 'reconcile' }),
        venue,
        market,
        execution,
        portfolio,
        risk,
        instruments,
        symbols: symbolsTraded,
        external: () => deps.settings().bot.reconcile.external,
        adoptOwner: () => deps.settings().bot.reconcile.adoptOwner,
        ledger: portfolio.ledger,
      });
      const timers: TimerHandle[] = [];
      const unsubs: Array<() => void> = [];
      if (deps.reconcile !== false && !deps.readOnly) {
        // Before any strategy may trade: the start waits for a pass that completes, and a permanent failure stops it.
        await step('reconciliation', () => reconciler.run());
        const again = () => reconciler.runInBackground();
        timers.push(clock.every(s0.bot.reconcile.intervalSec * 1000, again));
        unsubs.push(venue.onEvent((e) => e.type === 'stream' && e.status === 'reconnected' && again()));
      }

      const killSwitch = new KillSwitch({
        bus,
        venue,
        risk,
        planner,
        execution,
        instruments,
        logger: logger.child({ component: 'kill-switch' }),
        symbols: () => (market === 'futures' ? undefined : symbolsTraded()),
        ledger: portfolio.ledger,
        market,
      });
      const core = new TradingCore(venue, instruments, portfolio, execution, risk, planner, killSwitch, protection, reconciler, deps);
      core.stopTimers = () => {
        for (const t of timers) t.cancel();
        for (const u of unsubs) u();
      };
      return core;
    } catch (err) {
      // The venue first: stopping it fails a call still in flight (one a stop request left running),
      // which is then let settle, so nothing it does afterwards meets stopped components or a closed store.
      await venue.stop().catch(() => undefined);
      await gate?.settled();
      for (const fn of undo.reverse()) {
        try {
          await fn();
        } catch (cleanupErr) {
          logger.error({ err: cleanupErr }, `cleanup after a failed start also failed: ${(cleanupErr as Error).message}`);
        }
      }
      throw err;
    }
  }

  get store(): Store {
    return this.deps.store;
  }

  get bus(): Bus {
    return this.deps.bus;
  }

  get clock(): Clock {
    return this.deps.clock;
  }

  /** The sim venue moves on the bot's own candles; Binance moves by itself. */
  get simVenue(): SimVenue | undefined {
    return this.venue instanceof SimVenue ? this.venue : undefined;
  }

  /** Stops in reverse start order; sends in progress finish or are cut short. */
  private stopTimers: () => void = () => undefined;

  async stop(): Promise<void> {
    this.stopTimers();
    this.protection.stop();
    this.planner.stop();
    this.risk.stop();
    await this.execution.stop();
    this.portfolio.stop();
    this.instruments.stop();
    await this.venue.stop();
  }

  /** Today's figures for `trader trade status` and the heartbeat's risk block. */
  riskView(): Record<string, unknown> {
    const p = this.portfolio;
    const r = this.deps.settings().bot.risk;
    const dayStart = p.dayStartEquity();
    const pctLimit = dayStart.times(r.maxDailyLossPct).div(100);
    const limit = r.maxDailyLoss ? Dec.min(r.maxDailyLoss, pctLimit) : pctLimit;
    return {
      states: this.risk.stateList().map((s) => ({ scope: s.scope, key: s.key, state: s.state, reason: s.reason, source: s.source, since: new Date(s.since).toISOString(), ...(s.until !== undefined ? { until: new Date(s.until).toISOString() } : {}) })),
      tripped: [...this.risk.tripped.values()].map((t) => ({ ...t, at: new Date(t.at).toISOString() })),
      approvals: this.risk.approvals,
      denials: this.risk.denials,
      equity: p.equity().toFixed(2),
      peakEquity: p.peakEquity().toFixed(2),
      dayStartEquity: dayStart.toFixed(2),
      realizedToday: p.realizedToday().toFixed(2),
      unrealized: p.unrealized().toFixed(2),
      dailyLossLimit: limit.toFixed(2),
      maxDrawdownPct: r.maxDrawdownPct,
      protection: this.protection.view(),
      positions: p.positions().map((x) => ({ symbol: x.symbol, quantity: x.quantity.toFixed(), entryPrice: x.entryPrice.toFixed(), unrealizedPnl: x.unrealizedPnl.toFixed(2), ...(x.owner ? { owner: x.owner } : {}) })),
    };
  }
}
