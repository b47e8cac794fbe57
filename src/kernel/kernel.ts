/**
 * The one composition root. It builds every component with its
 * dependencies, starts them in a fixed order and stops them in reverse:
 *
 *   paths -> instance lock -> store (+ migrations) -> bus -> journal
 *   -> heartbeat -> [venue connect -> reconcile -> portfolio -> strategies]
 *
 * The bracketed stages arrive with later issues; reconciliation must succeed
 * before any strategy may trade. Nothing else in src/ constructs components.
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
import { CandleRepository } from '../store/candle-repository.ts';
import { ALL_SIGNALS } from '../bus/bus.ts';
import { StrategyHost, type RiskEventRecord } from '../strategy/host.ts';
import type { IndicatorFactory } from '../strategy/indicators/types.ts';
import type { InstanceSpec } from '../strategy/loader.ts';
import { StrategyReloader } from '../strategy/reloader.ts';

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
}

export class Kernel {
  host: StrategyHost | undefined;
  reloader: StrategyReloader | undefined;
  private stopping: Promise<void> | undefined;
  private readonly cleanups: Array<() => void> = [];

  private constructor(
    private readonly deps: KernelDeps,
    readonly bus: Bus,
    readonly store: Store,
    readonly journal: Journal,
    readonly heartbeat: HeartbeatWriter,
    private readonly lock: InstanceLock,
  ) {}

  /**
   * Starts the bot. On failure everything already started is undone (lock
   * released, DB closed) before the error propagates.
   */
  static async start(deps: KernelDeps): Promise<Kernel> {
    const { settings, clock, logger } = deps;
    const undo: Array<() => void> = [];
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

      // 4. Bus and the audit trail.
      const bus = new Bus({ logger: logger.child({ component: 'bus' }), clock });
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
      });
      heartbeat.setBlock('db', { status: 'ok', detail: `${settings.paths.dbFile} (schema ${migrated.current})` });
      heartbeat.setBlock('feed', { status: 'n/a', detail: 'no market-data feed in this build' });
      heartbeat.setBlock('userStream', { status: 'n/a', detail: settings.mode === 'sim' ? 'sim venue' : 'not connected in this build' });
      heartbeat.setBlock('reconcile', { status: 'n/a', detail: 'nothing to reconcile in this build' });
      heartbeat.setBlock('risk', { status: 'n/a', detail: 'risk engine not in this build' });

      const kernel = new Kernel(deps, bus, store, journal, heartbeat, lock);
      kernel.cleanups.push(recordJournal(bus, journal));
      heartbeat.start();

      // 6. [venue connect -> reconcile -> portfolio] go here, before strategies may trade.

      // 7. Strategies: warmed from stored candles, then live; signals recorded.
      const host = new StrategyHost({
        bus,
        clock,
        logger: logger.child({ component: 'strategy-host' }),
        indicators: deps.indicators,
        history: new CandleRepository(store),
        recordRiskEvent: (e) => recordRiskEvent(store, clock.now(), e),
      });
      kernel.cleanups.push(recordSignals(bus, store));
      host.start(deps.specs);
      kernel.cleanups.push(() => host.stop());
      let reloader: StrategyReloader | undefined;
      if (deps.reloadSettings && existsSync(settings.paths.strategiesDir)) {
        reloader = new StrategyReloader({ loadSettings: deps.reloadSettings, host, logger: logger.child({ component: 'strategy-reload' }), clock, ...(deps.paramOverrides ? { overrides: deps.paramOverrides } : {}) });
        reloader.start(settings.paths.strategiesDir);
        kernel.cleanups.push(() => reloader!.stop());
      }
      heartbeat.setStrategies(() => ({ instances: host.status(), configErrors: reloader?.errors ?? [] }));
      kernel.host = host;
      kernel.reloader = reloader;

      heartbeat.setState('running');
      heartbeat.write();
      return kernel;
    } catch (err) {
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
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { clock, logger } = this.deps;
    logger.info({ reason }, `stopping: ${reason}`);
    this.heartbeat.setState('stopping');
    this.heartbeat.write();
    this.bus.publish('system.shutdown', { kind: 'system.shutdown', ts: clock.now(), reason });
    // Later issues stop strategies, portfolio, execution and the feed here,
    // each awaiting its own queue, in reverse start order.
    for (const fn of this.cleanups.reverse()) fn();
    this.bus.close();
    this.heartbeat.stop();
    this.store.close();
    this.heartbeat.setBlock('db', { status: 'n/a', detail: 'closed' });
    this.lock.release(clock.now());
    this.heartbeat.setState('stopped');
    this.heartbeat.write();
    logger.info('stopped');
  }
}

/** Writes a risk event row (the audit trail of why trading changed). */
function recordRiskEvent(store: Store, now: number, e: RiskEventRecord): void {
  store.run(store.db.insertInto('risk_events').values({ ts: now, scope: e.scope, scope_key: e.key, kind: e.kind, reason: e.reason, state_from: null, state_to: null, source: 'strategy-host', details: JSON.stringify(e.details) }));
}

/** Every signal also lands in the signals table, for reports and the Kelly sizing later. */
function recordSignals(bus: Bus, store: Store): () => void {
  return bus.observe(
    ALL_SIGNALS,
    (s) =>
      store.run(
        store.db.insertInto('signals').values({ ts: s.ts, strategy: s.strategy, symbol: s.symbol, action: s.action, reason: s.reason, strength: s.strength ?? null, payload: JSON.stringify(s) }),
      ),
    'signal-recorder',
  );
}
