/**
 * The one composition root. It builds every component with its
 * dependencies, starts them in a fixed order and stops them in reverse:
 *
 *   paths -> instance lock -> store (+ migrations) -> bus -> journal
 *   -> heartbeat -> candle writer -> [market data, built]
 *   -> trading core (venue connect -> instruments -> portfolio -> execution
 *      -> risk -> planner; see trading-core.ts) -> equity snapshots
 *   -> control API (+ /health, /metrics) -> notifications
 *   -> strategies -> market data started
 *
 * The steps that talk to the exchange go through a start gate
 * (start-gate.ts): transient failures are retried with backoff while the
 * heartbeat says `starting`, `waiting for <what> (attempt N)`; a permanent
 * one, or a stop request (deps.signal), ends the start, and everything that
 * had started is stopped on the same path as a normal stop, ending with the
 * heartbeat `stopped` and why.
 * Nothing else in src/ constructs components, except the CLI's short-lived
 * trading core for `trader trade` when the bot is not running.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { HeartbeatWriter } from '../health/heartbeat-writer.ts';
import type { Settings } from '../settings/settings.ts';
import { InstanceLock } from '../store/instance-lock.ts';
import { Journal, recordJournal } from '../store/journal.ts';
import { ensureWritableDir, Store } from '../store/store.ts';
import { CandleRepository, CandleWriter } from '../store/candle-repository.ts';
import { ALL_SIGNALS } from '../bus/bus.ts';
import { StrategyHost, type RiskEventRecord } from '../strategy/host.ts';
import type { IndicatorFactory } from '../strategy/indicators/types.ts';
import type { InstanceSpec } from '../strategy/loader.ts';
import { StrategyReloader } from '../strategy/reloader.ts';
import { Reoptimizer } from '../backtest/reoptimizer.ts';
import { gitCommit } from '../backtest/run-store.ts';
import { KlineReplay, replaySources } from '../market-data/replay.ts';
import { MarketFeed } from '../market-data/market-feed.ts';
import { ConfigError } from '../core/errors.ts';
import { ControlServer } from '../control/control-server.ts';
import { tradeRoutes } from '../control/trade-controls.ts';
import { orderRoutes } from '../control/order-controls.ts';
import type { Venue } from '../venues/venue.ts';
import type { ExecutionOptions } from '../execution/execution-engine.ts';
import { TradingCore } from './trading-core.ts';
import { Metrics } from '../health/metrics.ts';
import { statusRoutes } from '../control/status-controls.ts';
import { portfolioRoutes } from '../control/portfolio-controls.ts';
import { chatCommands } from '../control/chat-commands.ts';
import { Notifications } from '../notify/notifications.ts';
import { daySummary } from '../portfolio/history.ts';
import { EquitySnapshots } from '../portfolio/snapshots.ts';
import type { LogTap } from '../core/logger.ts';
import { ValueScrubber } from '../core/redact.ts';
import { secretValues } from '../settings/settings.ts';
import { describeStartFailure, StartCancelled, StartGate } from './start-gate.ts';

export interface KernelDeps {
  settings: Settings;
  clock: Clock;
  logger: Logger;
  version: string;
  runId: string;
  /** Strategy instances, already loaded and validated (see strategy/loader.ts). */
  specs: readonly InstanceSpec[];
  indicators: () => IndicatorFactory;
  /** For hot reload: re-reads settings from disk (throws ConfigError). Absent: no hot reload. */
  reloadSettings?: () => Settings;
  paramOverrides?: ReadonlyMap<string, Record<string, unknown>>;
  /** Tests: a venue built by the caller instead of the one MODE implies. */
  venue?: Venue;
  execution?: Partial<ExecutionOptions>;
  /** ERROR log lines, for metrics and notifications (the logger is made before the kernel). */
  logTap?: LogTap;
  /** Aborted to stop a start in progress (the first SIGINT / SIGTERM); its reason names why. Kernel.start then throws StartCancelled. */
  signal?: AbortSignal;
  /** Jitter for the start-up retries (tests); Math.random by default. */
  random?: () => number;
}

export class Kernel {
  host: StrategyHost | undefined;
  candleWriter: CandleWriter | undefined;
  reloader: StrategyReloader | undefined;
  reoptimizer: Reoptimizer | undefined;
  trading: TradingCore | undefined;
  control: ControlServer | undefined;
  readonly metrics: Metrics;
  notifications: Notifications | undefined;
  /** The settings in force (hot reload replaces them). */
  settings: Settings;
  private stopping: Promise<void> | undefined;
  private readonly cleanups: Array<() => void> = [];
  /** Async stops, run in this order after the synchronous cleanups. */
  private readonly asyncCleanups: Array<() => Promise<void>> = [];

  private constructor(
    private readonly deps: KernelDeps,
    readonly bus: Bus,
    readonly store: Store,
    readonly journal: Journal,
    readonly heartbeat: HeartbeatWriter,
    private readonly lock: InstanceLock,
    metrics: Metrics,
  ) {
    this.settings = deps.settings;
    this.metrics = metrics;
  }

  /**
   * Starts the bot. On failure (or a stop request) everything already started
   * is stopped (timers, the venue, the lock released, the DB closed, the
   * heartbeat left at `stopped` with the reason) before the error propagates.
   */
  static async start(deps: KernelDeps): Promise<Kernel> {
    const { settings, clock, logger } = deps;
    // What to undo before the kernel exists; from then on a failure goes through its stop path.
    const undo: Array<() => void> = [];
    let kernel: Kernel | undefined;
    let heartbeatRef: HeartbeatWriter | undefined;
    const writeHeartbeat = (): void => {
      try {
        heartbeatRef?.write();
      } catch {
        // The timed writes report a failing disk; a start-up step must not fail on it.
      }
    };
    const gate = new StartGate({
      clock,
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(deps.random ? { random: deps.random } : {}),
      onStep: (what) => {
        heartbeatRef?.setState('starting', `waiting for ${what}`);
        heartbeatRef?.setStartProblem(undefined);
        writeHeartbeat();
      },
      onRetry: (what, retry, err, delayMs) => {
        const detail = `waiting for ${what} (attempt ${retry})`;
        const reason = describeStartFailure(err);
        const wait = `${(delayMs / 1000).toFixed(1)} s`;
        heartbeatRef?.setState('starting', detail);
        heartbeatRef?.setStartProblem(`start-up: ${what} failed: ${reason}; retry ${retry} in ${wait}`);
        writeHeartbeat();
        logger.warn({ step: what, attempt: retry, delayMs, ...(err instanceof Error ? { error: reason } : {}) }, `start-up: ${detail}: ${reason}; next try in ${wait}`);
      },
    });
    try {
      // 1. Paths we write to must be writable, named if not.
      ensureWritableDir(dirname(settings.paths.heartbeatFile), 'status folder');

      // 2. One bot per database.
      const lock = InstanceLock.acquire(settings.paths.dbFile, clock.now());
      undo.push(() => lock.release(clock.now()));
      if (lock.tookOverFrom) {
        const prev = lock.tookOverFrom;
        logger.warn({ previousPid: prev.pid, previousHost: prev.host }, `took over the instance lock left by pid ${prev.pid} on ${prev.host}, which did not stop cleanly`);
      }

      // 3. Store, with migrations applied.
      const store = Store.open(settings.paths.dbFile);
      undo.push(() => store.close());
      const migrated = await store.migrate();
      if (migrated.applied.length > 0) logger.info({ applied: migrated.applied }, `database migrated to ${migrated.current}`);
      gate.check();

      // 4. Metrics (the bus reports its dispatch times to them), the bus and the audit trail.
      const metrics = new Metrics();
      undo.push(() => metrics.close());
      const bus = new Bus({ logger: logger.child({ component: 'bus' }), clock, onDispatched: metrics.observeEvent });
      const scrubber = new ValueScrubber(secretValues(settings));
      const journal = new Journal(store, deps.runId);

      // 5. Heartbeat.
      const heartbeat = new HeartbeatWriter({
        clock,
        bus,
        file: settings.paths.heartbeatFile,
        intervalMs: settings.heartbeatIntervalMs,
        identity: {
          pid: process.pid,
          version: deps.version,
          runId: deps.runId,
          mode: settings.mode,
          market: settings.market,
          symbols: settings.symbols,
          strategies: settings.activeStrategies,
        },
        onWriteError: (err) => logger.error({ err, file: settings.paths.heartbeatFile }, `cannot write the heartbeat to ${settings.paths.heartbeatFile}; it will go stale until this is fixed`),
        scrub: (t) => scrubber.scrub(t),
      });
      heartbeat.setBlock('db', { status: 'ok', detail: `${settings.paths.dbFile} (schema ${migrated.current})` });
      heartbeat.setBlock('userStream', { status: 'n/a', detail: settings.mode === 'sim' ? 'sim venue' : 'not connected in this build' });
      heartbeat.setBlock('risk', { status: 'n/a', detail: 'risk engine not in this build' });

      kernel = new Kernel(deps, bus, store, journal, heartbeat, lock, metrics);
      undo.length = 0;
      heartbeatRef = heartbeat;
      const k = kernel;
      k.cleanups.push(recordJournal(bus, journal));
      k.cleanups.push(metrics.attach(bus));
      if (deps.logTap) k.cleanups.push(deps.logTap.subscribe((e) => metrics.countError(e.component ?? 'bot', 'log')));
      heartbeat.start();

      // 5b. Every closed 1m candle is stored, one transaction a second, off the hot path
      //     (warm-up after a restart, backtests and `trader data list` read them).
      const candleRepo = new CandleRepository(store);
      const candleWriter = new CandleWriter({
        repository: candleRepo,
        clock,
        onError: (err, queued) => logger.error({ err, queued }, `cannot write candles (${queued} queued, retrying each second): ${(err as Error).message}`),
      });
      k.cleanups.push(
        bus.on('candle.closed', (c) => {
          if (c.timeframe === '1m') candleWriter.enqueue(c.market, c.symbol, '1m', c);
        }, 'candle-writer'),
      );
      k.candleWriter = candleWriter;

      // 6. Market data is built here and started last (below), once every consumer has
      //    subscribed: a candle published before the host listens would be lost to it.
      const marketData = prepareMarketData(deps, bus, heartbeat, candleRepo);
      k.cleanups.push(marketData.stop);

      // 7. Trading: venue, instruments, portfolio, execution, risk, planner.
      let host: StrategyHost | undefined;
      const trading = await TradingCore.start({
        settings: () => k.settings,
        store,
        bus,
        clock,
        logger,
        ...(deps.venue ? { venue: deps.venue } : {}),
        ...(deps.execution ? { execution: deps.execution } : {}),
        gate,
        // Binance's exchangeInfo is the list of what can trade; the sim venue's offline catalog is not.
        ...(settings.mode === 'sim' ? {} : { requireListed: settings.market === 'futures' ? [...new Set([...settings.symbols, ...Object.keys(settings.bot.symbols)])] : settings.symbols }),
        timeframeOf: (strategy, symbol) => host?.timeframeOf(strategy, symbol),
      });
      k.trading = trading;
      k.asyncCleanups.push(() => trading.stop());
      k.cleanups.push(logTrading(bus, logger.child({ component: 'trading' })));
      const sim = trading.simVenue;
      if (sim) {
        // The sim market moves on our own candles (after the portfolio and risk saw the close).
        k.cleanups.push(bus.on('candle.closed', (c) => c.timeframe === '1m' && c.market === settings.market && sim.onCandle(c.symbol, c), 'sim-venue'));
      }
      heartbeat.setBlockProvider('reconcile', () => {
        const r = trading.reconciler.last;
        if (!r) return { status: 'starting', detail: 'not run yet' };
        return { status: r.halted.length > 0 ? 'degraded' : 'ok', detail: `last pass ${r.at}: ${r.discrepancies} symbol(s) differed${r.halted.length ? `; HALTED ${r.halted.join(', ')}` : ''}`, ...r };
      });
      heartbeat.setBlockProvider('userStream', () => ({ ...userStreamBlock(trading.venue, settings.mode), execution: { ...trading.execution.stats }, usage: trading.venue.usage?.() ?? null }));
      metrics.setSources({
        equity: () => trading.portfolio.equity().toNumber(),
        unrealizedBySymbol: () => trading.portfolio.positions().map((p) => ({ symbol: p.symbol, unrealized: p.unrealizedPnl.toNumber() })),
        rateLimitWeight: () => trading.venue.usage?.().usedWeight1m,
        reconnections: () => marketData.reconnects() + (trading.venue.userStreamStatus?.().reconnects ?? 0),
      });
      heartbeat.setExtras(() => {
        const exchange = trading.venue.breakerView?.();
        const channels = k.notifications?.view().channels ?? [];
        return {
          breakers: [...(exchange ? [{ ...exchange, critical: true }] : []), ...channels.map((c) => c.breaker)],
          notifiers: channels.map((c) => ({ ...c })),
        };
      });
      heartbeat.setBlockProvider('risk', () => {
        const v = trading.riskView();
        const states = v.states as Array<{ scope: string; key: string; state: string }>;
        const account = states.find((x) => x.scope === 'account')?.state ?? 'ACTIVE';
        heartbeat.setTradingState(account);
        return { status: account === 'HALTED' ? 'degraded' : 'ok', detail: `account ${account}; ${states.length} scopes restricted; ${trading.risk.denials} denials, ${trading.risk.approvals} approvals`, ...v };
      });

      heartbeat.setBlockProvider('protection', () => {
        const v = trading.protection.view();
        if (v.owners.length === 0 && v.unprotected.length === 0) return { status: 'n/a', detail: 'no position with a stop, target or trailing stop' };
        const emulated = v.owners.flatMap((o) => o.emulated.map((leg) => `${o.strategy} ${o.symbol} ${leg}`));
        const detail = v.unprotected.length
          ? `UNPROTECTED: ${v.unprotected.map((u) => `${u.strategy} ${u.symbol} (${u.reason})`).join('; ')}`
          : `${v.owners.length} position(s) protected${emulated.length ? `; emulated from the mark: ${emulated.join(', ')}` : '; every leg on the exchange'}`;
        return { status: v.unprotected.length ? 'down' : 'ok', detail, owners: v.owners, unprotected: v.unprotected };
      });

      // 7a. Equity snapshots: one a minute (thinned to hourly as they age) for `trader portfolio history`.
      const snapshots = new EquitySnapshots({ store, clock, portfolio: trading.portfolio, logger: logger.child({ component: 'equity-snapshots' }) });
      snapshots.start();
      k.cleanups.push(() => snapshots.stop());

      // 7b. The control API (trader trade ... while the bot runs).
      const status = statusRoutes({
        heartbeat,
        metrics,
        ...(deps.reloadSettings && existsSync(settings.paths.strategiesDir) ? { reload: () => k.reloader!.reload() } : {}),
      });
      const control = new ControlServer({
        host: settings.env.CONTROL_HOST,
        port: settings.env.CONTROL_PORT,
        dataDir: dirname(settings.paths.dbFile),
        ...(settings.secrets.controlToken ? { token: settings.secrets.controlToken } : {}),
        logger: logger.child({ component: 'control' }),
        scrub: (t) => scrubber.scrub(t),
        publicRoutes: status.publicRoutes,
        routes: {
          ...status.routes,
          ...tradeRoutes(trading),
          ...orderRoutes(trading),
          ...portfolioRoutes(trading),
          'POST /v1/reconcile': async (body) => ({ status: 200, body: await trading.reconciler.run({ dryRun: (body as { dryRun?: unknown }).dryRun === true }) }),
        },
      });
      const info = await control.start();
      k.control = control;
      k.asyncCleanups.unshift(() => control.stop());
      logger.info({ host: info.host, port: info.port }, `control API on http://${info.host}:${info.port}`);

      // 7c. Telegram and Slack, when configured: events out, Telegram commands in.
      const { telegramBotToken, slackWebhookUrl } = settings.secrets;
      const chatId = settings.env.TELEGRAM_CHAT_ID;
      if (telegramBotToken && !chatId) logger.warn('TELEGRAM_BOT_TOKEN is set without TELEGRAM_CHAT_ID: Telegram stays off');
      const notifications = new Notifications({
        bus,
        clock,
        logger: logger.child({ component: 'notifications' }),
        config: settings.bot.notifications,
        breaker: settings.bot.circuitBreaker,
        telegram: telegramBotToken && chatId ? { apiUrl: settings.env.TELEGRAM_API_URL, token: telegramBotToken, chatId } : undefined,
        slack: slackWebhookUrl ? { webhookUrl: slackWebhookUrl } : undefined,
        commands: chatCommands(trading, heartbeat),
        summary: (dayStart) => daySummary(store, trading.portfolio, dayStart),
        scrub: (t) => scrubber.scrub(t),
        title: `trader ${settings.mode} ${settings.market}`,
      });
      if (deps.logTap) k.cleanups.push(deps.logTap.subscribe((e) => notifications.onErrorLog(e)));
      notifications.start();
      k.notifications = notifications;
      k.asyncCleanups.unshift(() => notifications.stop());
      if (notifications.view().enabled) logger.info({ channels: notifications.view().channels.map((c) => c.channel) }, `notifications on: ${notifications.view().channels.map((c) => c.channel).join(', ')}`);

      // The last step that could wait is behind us: a stop requested meanwhile is honoured before trading starts.
      gate.check();

      // 8. Strategies: warmed from stored candles, then live; signals recorded.
      host = new StrategyHost({
        bus,
        clock,
        logger: logger.child({ component: 'strategy-host' }),
        indicators: deps.indicators,
        history: candleRepo,
        recordRiskEvent: (e) => recordRiskEvent(store, clock.now(), e),
        initialPositions: () => trading.portfolio.ledger.lots(),
        onTiming: metrics.observeStrategy,
      });
      k.cleanups.push(recordSignals(bus, store, journal));
      host.start(deps.specs);
      k.cleanups.push(() => host!.stop());
      // Volatility sizing reads an ATR the planner keeps from the feed: start it now so it is warm.
      const trackAtrs = () => {
        for (const i of host!.status()) {
          const sizing = k.settings.strategies.find((e) => e.strategy === i.strategy && e.symbol === i.symbol)?.config.sizing;
          if (sizing?.type === 'volatility') trading.planner.trackAtr(i.symbol, i.timeframe as never, sizing.atrPeriod);
        }
      };
      trackAtrs();
      let reloader: StrategyReloader | undefined;
      if (deps.reloadSettings && existsSync(settings.paths.strategiesDir)) {
        reloader = new StrategyReloader({
          loadSettings: deps.reloadSettings,
          host,
          logger: logger.child({ component: 'strategy-reload' }),
          clock,
          ...(deps.paramOverrides ? { overrides: deps.paramOverrides } : {}),
          // A YAML for a new symbol needs its market data before its instance can warm.
          onApplied: (s) => {
            k.settings = s;
            marketData.addSymbols(s.symbols);
            trackAtrs();
          },
        });
        reloader.start(settings.paths.strategiesDir);
        k.cleanups.push(() => reloader!.stop());
      }
      if (settings.bot.reoptimize.length > 0) {
        const reoptimizer = new Reoptimizer(settings.bot.reoptimize, { settings: () => k.settings, store, clock, logger: logger.child({ component: 'reoptimize' }), commit: gitCommit(settings.paths.cwd) });
        reoptimizer.start();
        k.reoptimizer = reoptimizer;
        k.cleanups.push(() => reoptimizer.stop());
      }
      heartbeat.setStrategies(() => ({ instances: host.status(), configErrors: reloader?.errors ?? [] }));
      marketData.start();
      k.host = host;
      k.reloader = reloader;

      heartbeat.setState('running');
      heartbeat.write();
      return k;
    } catch (err) {
      if (kernel) {
        // The same path as a normal stop, so no timer, handler or call outlives the store.
        const why = err instanceof StartCancelled ? `${err.reason} during start-up` : `refusing to start: ${describeStartFailure(err)}`;
        await kernel.teardown(why, err instanceof StartCancelled ? `stopping during start-up: ${err.reason}` : 'start-up failed; stopping what had started');
        throw err;
      }
      for (const fn of undo.reverse()) {
        try {
          fn();
        } catch (cleanupErr) {
          logger.error({ err: cleanupErr }, 'cleanup after failed start also failed');
        }
      }
      throw err;
    }
  }

  /**
   * Graceful stop: announce, stop components in reverse start order, drain
   * the bus, close the store (flushing the WAL), release the lock, and write
   * the final "stopped" heartbeat. Safe to call more than once.
   */
  stop(reason: string): Promise<void> {
    return this.teardown(reason, `stopping: ${reason}`);
  }

  /** The one way down, for a stop and for a start that failed or was cancelled; `reason` ends up in the final heartbeat. */
  private teardown(reason: string, logLine: string): Promise<void> {
    this.stopping ??= this.doStop(reason, logLine);
    return this.stopping;
  }

  private async doStop(reason: string, logLine: string): Promise<void> {
    const { clock, logger } = this.deps;
    logger.info({ reason }, logLine);
    this.heartbeat.setState('stopping', reason);
    this.metrics.markStopping();
    this.writeHeartbeat();
    this.bus.publish('system.shutdown', { kind: 'system.shutdown', ts: clock.now(), reason });
    // Reverse start order; one that throws (half made by a failed start) does not keep the others running.
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch (err) {
        logger.error({ err }, `stopping a component failed: ${(err as Error).message}`);
      }
    }
    // Control API first (no new commands), then the trading core: sends in progress finish or are cut short.
    for (const fn of this.asyncCleanups.splice(0)) {
      try {
        await fn();
      } catch (err) {
        logger.error({ err }, `stopping a component failed: ${(err as Error).message}`);
      }
    }
    this.bus.close();
    this.journal.flush();
    // Candles still queued land before the database closes.
    this.candleWriter?.close();
    this.heartbeat.stop();
    this.metrics.close();
    this.store.close();
    this.heartbeat.setBlock('db', { status: 'n/a', detail: 'closed' });
    this.lock.release(clock.now());
    this.heartbeat.setState('stopped', reason);
    this.writeHeartbeat();
    logger.info('stopped');
  }

  /** A heartbeat write on the way down: a failing disk must not keep the store open or the lock held. */
  private writeHeartbeat(): void {
    try {
      this.heartbeat.write();
    } catch (err) {
      this.deps.logger.error({ err }, `cannot write the heartbeat: ${(err as Error).message}`);
    }
  }
}

/**
 * One log line per thing a trader wants to see go by: signals, orders as
 * they change, fills, positions, denials. The journal holds the full record.
 */
function logTrading(bus: Bus, logger: Logger): () => void {
  const offs = [
    bus.on(ALL_SIGNALS, (s) => logger.info({ strategy: s.strategy, symbol: s.symbol, action: s.action, reason: s.reason }, `signal ${s.strategy} ${s.symbol} ${s.action}: ${s.reason}`), 'trade-log'),
    bus.on('order.update', (u) => {
      if (u.status === 'PENDING') return;
      logger.info({ clientOrderId: u.clientOrderId, strategy: u.strategy, symbol: u.symbol, side: u.side, status: u.status, filled: u.filledQuantity.toFixed(), ...(u.reason ? { reason: u.reason } : {}) }, `order ${u.symbol} ${u.side ?? ''} ${u.status}${u.filledQuantity.isZero() ? '' : ` filled ${u.filledQuantity.toFixed()}`}${u.averagePrice ? ` @ ${u.averagePrice.toFixed()}` : ''}${u.reason ? ` (${u.reason})` : ''} [${u.strategy ?? '?'}]`);
    }, 'trade-log'),
    bus.on('fill', (f) => logger.info({ symbol: f.symbol, side: f.side, price: f.price.toFixed(), quantity: f.quantity.toFixed(), fee: f.fee.toFixed(), feeAsset: f.feeAsset, strategy: f.strategy, tradeId: f.tradeId }, `fill ${f.symbol} ${f.side} ${f.quantity.toFixed()} @ ${f.price.toFixed()} fee ${f.fee.toFixed()} ${f.feeAsset} [${f.strategy}]`), 'trade-log'),
    bus.on('position.changed', (p) => logger.info({ strategy: p.strategy, symbol: p.symbol, side: p.positionSide, quantity: p.quantity.toFixed(), flat: p.flat, net: p.netQuantity.toFixed(), entryPrice: p.entryPrice.toFixed(), realizedPnl: p.realizedPnl.toFixed(), ...(p.closedTrade ? { tradePnl: p.closedTrade.pnl.toFixed() } : {}) }, `position ${p.symbol}${p.positionSide === 'BOTH' ? '' : ` ${p.positionSide}`} [${p.strategy}] ${p.quantity.toFixed()} @ ${p.entryPrice.toFixed()}${p.flat && !p.quantity.isZero() ? ' (dust: flat)' : ''}${p.closedTrade ? `; trade closed, PnL ${p.closedTrade.pnl.toFixed(4)}` : ''}; realized ${p.realizedPnl.toFixed(4)}; symbol net ${p.netQuantity.toFixed()}`), 'trade-log'),
    bus.on('order.denied', (d) => logger.warn({ symbol: d.intent.symbol, strategy: d.intent.strategy, side: d.intent.side, source: d.source, reason: d.reason }, `denied ${d.intent.strategy} ${d.intent.symbol} ${d.intent.side}: ${d.reason}`), 'trade-log'),
  ];
  return () => offs.forEach((o) => o());
}

/** The heartbeat's userStream block from whatever the venue can say about its stream. */
function userStreamBlock(venue: Venue, mode: string): { status: 'ok' | 'degraded' | 'down' | 'n/a' | 'starting'; detail: string } & Record<string, unknown> {
  if (!venue.userStreamStatus) return { status: 'ok', detail: mode === 'sim' ? 'sim venue: in process (the paper account is kept in the database across restarts)' : `${venue.name} venue` };
  const s = venue.userStreamStatus();
  if (!s.enabled) return { status: 'n/a', detail: 'user-data stream off' };
  return { status: s.connected ? 'ok' : 'down', detail: `${venue.name} user-data stream ${s.connected ? 'connected' : 'disconnected'}; ${s.reconnects} reconnects`, ...s };
}

/** Writes a risk event row (the audit trail of why trading changed). */
function recordRiskEvent(store: Store, now: number, e: RiskEventRecord): void {
  store.run(store.db.insertInto('risk_events').values({ ts: now, scope: e.scope, scope_key: e.key, kind: e.kind, reason: e.reason, state_from: null, state_to: null, source: 'strategy-host', details: JSON.stringify(e.details) }));
}

/** Every signal also lands in the signals table (for reports), written with the journal's batch. */
function recordSignals(bus: Bus, store: Store, journal: Journal): () => void {
  return bus.observe(
    ALL_SIGNALS,
    (s) => {
      const row = { ts: s.ts, strategy: s.strategy, symbol: s.symbol, action: s.action, reason: s.reason, strength: s.strength ?? null, payload: JSON.stringify(s) };
      journal.later(() => store.run(store.db.insertInto('signals').values(row)));
    },
    'signal-recorder',
  );
}

/**
 * Builds the market data the settings ask for and reports it in the
 * heartbeat: the live Binance feed, an in-process replay of kline files
 * (FEED=replay), or nothing.
 */
function prepareMarketData(deps: KernelDeps, bus: Bus, heartbeat: HeartbeatWriter, candles: CandleRepository): { start: () => void; stop: () => void; addSymbols: (symbols: readonly string[]) => void; reconnects: () => number } {
  const idle = { start: () => undefined, stop: () => undefined, addSymbols: () => undefined, reconnects: () => 0 };
  const { settings, clock, logger } = deps;
  const env = settings.env;
  if (env.FEED === 'none') {
    heartbeat.setBlock('feed', { status: 'n/a', detail: 'FEED=none: no market data' });
    return idle;
  }
  if (env.FEED === 'replay') {
    const sources = replaySources((env.REPLAY_FILES ?? '').split(',').map((f) => f.trim()).filter(Boolean), settings.market);
    if (!Array.isArray(sources)) throw new ConfigError([{ source: 'environment', field: 'REPLAY_FILES', message: sources.error }]);
    const replay = new KlineReplay(sources, env.REPLAY_SPEED, {
      onKline: (market, symbol, k, closed) => {
        if (!closed) return;
        // The replay is the venue here, and it sends each candle now (the local exchange's replay stamps
        // E with its clock too): the strategy host trades only candles final after it went live.
        bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), eventTs: clock.now(), market, symbol, timeframe: '1m', openTime: k.openTime, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close), volume: Number(k.volume) });
      },
    });
    heartbeat.setBlockProvider('feed', () => ({ status: 'ok', detail: `replaying ${sources.map((s) => s.symbol).join(', ')} at ${env.REPLAY_SPEED === 'max' ? 'full speed' : `${env.REPLAY_SPEED}x`}: ${replay.candles} candles so far` }));
    void replay.done.then(({ candles }) => logger.info({ candles }, `replay finished: ${candles} candles`));
    return { start: () => replay.start(), stop: () => replay.stop(), addSymbols: () => undefined, reconnects: () => 0 };
  }
  const futures = settings.market === 'futures';
  const feed = new MarketFeed({
    market: settings.market,
    symbols: settings.symbols,
    wsBase: futures ? settings.endpoints.futuresWs : settings.endpoints.spotWs,
    restBase: futures ? settings.endpoints.futuresRest : settings.endpoints.spotRest,
    bus,
    clock,
    logger: logger.child({ component: 'feed' }),
    maxBackoffMs: env.WS_MAX_BACKOFF_SEC * 1000,
    ...(env.FEED_STALL_SEC ? { stallMs: env.FEED_STALL_SEC * 1000 } : {}),
    // Resume each symbol after the last candle stored (minutes missed while down, or lost to a kill -9).
    ...(env.FEED_RESUME_HOURS > 0 ? { resumeFrom: (s: string) => candles.lastOpenTime(settings.market, s, '1m'), resumeMaxMs: env.FEED_RESUME_HOURS * 3_600_000 } : {}),
  });
  heartbeat.setBlockProvider('feed', () => {
    const v = feed.view();
    if (v.connections.length === 0) return { status: 'n/a', detail: 'no enabled strategy: nothing to stream yet' };
    const live = v.connections.filter((c) => c.status === 'live').length;
    const anyEver = v.connections.some((c) => c.status !== 'connecting' && c.status !== 'down');
    const status = live === v.connections.length ? 'ok' : live > 0 || anyEver ? 'degraded' : v.connections.every((c) => c.status === 'down') ? 'down' : 'starting';
    return {
      status,
      detail: `${live}/${v.connections.length} connections live, ${v.staleSymbols.length} of ${v.symbols} symbols stale`,
      connections: v.connections,
      staleSymbols: v.staleSymbols.slice(0, 50),
      lastClosed: Object.fromEntries(Object.entries(v.lastClosed).map(([s, t]) => [s, new Date(t).toISOString()])),
      malformed: v.malformed,
      gaps: v.gaps,
      backfilled: v.backfilled,
      duplicatesDropped: v.duplicates,
    };
  });
  return { start: () => feed.start(), stop: () => feed.stop(), addSymbols: (symbols) => feed.addSymbols(symbols), reconnects: () => feed.view().connections.reduce((n, c) => n + c.reconnects, 0) };
}
