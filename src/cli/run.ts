/**
 * `trader run` (and `npm start`): load settings, start the kernel, stop it
 * cleanly on SIGINT / SIGTERM. Exit codes follow BSD sysexits (core/errors):
 * 0 after a signal (in any state, start-up included), 78 for invalid
 * settings or keys the exchange refuses, 73 for a path that cannot be
 * written, 75 when another bot holds the database, 70 for anything else
 * that ends a start (transient failures are retried, never an exit).
 */
import { isAbsolute, relative } from 'node:path';
import { LiveClock } from '../core/clock.ts';
import { ConfigError, describeError, EXIT, exitCodeFor, TraderError } from '../core/errors.ts';
import { newRunId } from '../core/ids.ts';
import { createLogger, LogTap } from '../core/logger.ts';
import { ValueScrubber } from '../core/redact.ts';
import { VERSION } from '../core/version.ts';
import { Kernel } from '../kernel/kernel.ts';
import { describeStartFailure, StartCancelled, startExitCode } from '../kernel/start-gate.ts';
import { VenueError } from '../venues/venue.ts';
import { loadSettings } from '../settings/load-settings.ts';
import { secretValues, type Settings } from '../settings/settings.ts';
import { ensureWritableDir } from '../store/store.ts';
import { createIndicatorFactory } from '../strategy/indicators/index.ts';
import { loadStrategyModules, parseParamOverrides, resolveInstances, type InstanceSpec } from '../strategy/loader.ts';

/** How long a graceful stop may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 5000;

export function printConfigError(err: ConfigError): void {
  process.stderr.write(`trader: refusing to start: ${err.message}\n`);
}

/** Loads settings, printing every problem and returning undefined when invalid. */
export function loadSettingsOrReport(): Settings | undefined {
  try {
    return loadSettings();
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err);
      return undefined;
    }
    throw err;
  }
}

/**
 * Loads every strategy module and checks every YAML's params against its
 * schema (and CLI --param overrides the same way). Prints every problem and
 * returns undefined when anything is wrong.
 */
export async function loadStrategiesOrReport(settings: Settings, params: readonly string[] = []): Promise<{ specs: InstanceSpec[]; overrides: Map<string, Record<string, unknown>> } | undefined> {
  const loaded = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, settings.paths.cwd);
  const o = parseParamOverrides(params, settings.activeStrategies);
  const resolved = resolveInstances(settings, settings.strategies, loaded.modules, o.overrides);
  const issues = [...loaded.issues, ...o.issues, ...resolved.issues];
  if (issues.length > 0) {
    printConfigError(new ConfigError(issues));
    return undefined;
  }
  return { specs: resolved.specs, overrides: o.overrides };
}

export async function runBot(opts: { params?: string[] } = {}): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const strategies = await loadStrategiesOrReport(settings, opts.params);
  if (!strategies) return EXIT.CONFIG;

  try {
    ensureWritableDir(settings.paths.logDir, 'log folder');
  } catch (err) {
    process.stderr.write(`trader: refusing to start: ${(err as Error).message}\n`);
    return exitCodeFor(err);
  }

  const clock = new LiveClock();
  const runId = newRunId();
  const logTap = new LogTap();
  const log = createLogger({
    level: settings.env.LOG_LEVEL,
    format: settings.env.LOG_FORMAT,
    dir: settings.paths.logDir,
    retentionDays: settings.env.LOG_RETENTION_DAYS,
    secrets: secretValues(settings),
    base: { runId },
    tap: logTap,
  });
  const logger = log.logger;

  // Signal handlers go in before the kernel starts: the first SIGINT / SIGTERM stops the bot in every
  // state. During start-up it cancels the start (a retry's wait or a call in flight) and the bot stops
  // on the same path as a normal stop; a fast `docker stop` is a clean stop, not a kill.
  const cancelStart = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  let onSignal: (sig: NodeJS.Signals) => void = () => undefined;
  const onUncaught = (err: Error): void => {
    logger.fatal({ err }, `uncaught exception: ${err.message}`);
    request('uncaught exception', EXIT.SOFTWARE);
  };
  const onRejection = (err: unknown): void => {
    logger.fatal({ err }, `unhandled promise rejection: ${describeError(err).message}`);
    request('unhandled promise rejection', EXIT.SOFTWARE);
  };
  let request: (why: string, code: number) => void = () => undefined;
  const stopRequested = new Promise<{ why: string; code: number }>((resolve) => {
    let requested = false;
    request = (why, code) => {
      if (requested) return;
      requested = true;
      // Whatever the stop meets (a call that hangs, a component that does not return), the process ends.
      deadline = setTimeout(() => {
        logger.fatal(`graceful stop took longer than ${STOP_DEADLINE_MS} ms; exiting`);
        log.close();
        process.exit(EXIT.SOFTWARE);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      cancelStart.abort(why);
      resolve({ why, code });
    };
    let signalled = false;
    onSignal = (sig) => {
      if (signalled) {
        // A second Ctrl-C means "now": skip the graceful path.
        logger.warn(`second ${sig}: exiting without a clean stop`);
        log.flush();
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      }
      signalled = true;
      request(`received ${sig}`, EXIT.OK);
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Handler errors are contained by the bus; anything reaching here is a bug.
  // Stop cleanly (a supervisor restarts us) rather than run in an unknown state.
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  const done = (code: number): number => {
    clearTimeout(deadline);
    log.close();
    // Nothing of the bot is left to listen: a later signal gets Node's default (the process ends).
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    exitIfHeld(code);
    return code;
  };

  let kernel: Kernel;
  try {
    kernel = await Kernel.start({
      settings,
      clock,
      logger,
      version: VERSION,
      runId,
      specs: strategies.specs,
      indicators: createIndicatorFactory,
      reloadSettings: () => loadSettings(),
      logTap,
      paramOverrides: strategies.overrides,
      signal: cancelStart.signal,
    });
  } catch (err) {
    // A stop requested during start-up: the start was cancelled and everything it had started is stopped.
    if (err instanceof StartCancelled || cancelStart.signal.aborted) return done((await stopRequested).code);
    // A permanent failure (transient ones are retried inside the start): one line with the reason, then exit.
    // The exchange's message goes to stderr as it is, so known secret values are cut out first (the log does that itself).
    const reason = new ValueScrubber(secretValues(settings)).scrub(describeStartFailure(err));
    logger.fatal({ err, code: err instanceof TraderError ? err.code : err instanceof VenueError ? err.kind : 'UNEXPECTED' }, `refusing to start: ${reason}`);
    if (!(err instanceof TraderError) || err.code !== 'INSTANCE_LOCKED') process.stderr.write(`trader: refusing to start: ${reason}\n`);
    else process.stderr.write(`trader: ${reason}\n`);
    return done(startExitCode(err));
  }

  // Paths inside the working directory print relative, others absolute.
  const rel = (p: string): string => {
    const r = relative(settings.paths.cwd, p);
    return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
  };
  logger.info(
    { mode: settings.mode, market: settings.market, symbols: settings.symbols, strategies: settings.activeStrategies, db: settings.paths.dbFile, heartbeat: settings.paths.heartbeatFile, version: VERSION },
    `trader ${VERSION} running: mode=${settings.mode} market=${settings.market} symbols=${settings.symbols.join(',') || 'none'} ` +
      `strategies=${settings.activeStrategies.join(',') || 'none'} db=${rel(settings.paths.dbFile)} ` +
      `heartbeat=${rel(settings.paths.heartbeatFile)} (every ${settings.heartbeatIntervalMs / 1000} s) pid=${process.pid}`,
  );

  const reason = await stopRequested;
  try {
    await kernel.stop(reason.why);
  } catch (err) {
    logger.fatal({ err }, `error while stopping: ${describeError(err).message}`);
    return done(EXIT.SOFTWARE);
  }
  return done(reason.code);
}

/** How long the process may linger after the bot has stopped before it is ended anyway. */
const LINGER_MS = 2000;

/**
 * The bot has stopped and its code is set: the process ends when nothing
 * holds the event loop. Should something still hold it (a timer or socket
 * a component failed to release, a bug), it is ended anyway, so a
 * supervisor sees the exit and restarts it. The timer itself holds nothing.
 */
function exitIfHeld(code: number): void {
  setTimeout(() => {
    process.stderr.write(`trader: still running ${LINGER_MS} ms after the bot stopped (a timer or socket left open); exiting with ${code}\n`);
    process.exit(code);
  }, LINGER_MS).unref();
}
