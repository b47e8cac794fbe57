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
import { dirname } from 'node:path';
import { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { HeartbeatWriter } from '../health/heartbeat-writer.ts';
import type { Settings } from '../settings/settings.ts';
import { InstanceLock } from '../store/instance-lock.ts';
import { Journal, recordJournal } from '../store/journal.ts';
import { ensureWritableDir, Store } from '../store/store.ts';

export interface KernelDeps {
  settings: Settings;
  clock: Clock;
  logger: Logger;
  version: string;
  runId: string;
}

export class Kernel {
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

      // 6. [venue connect -> reconcile -> portfolio -> strategies] go here.

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
