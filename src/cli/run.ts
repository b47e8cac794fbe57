/**
 * `trader run` (and `npm start`): load settings, start the kernel, stop it
 * cleanly on SIGINT / SIGTERM. Exit codes follow BSD sysexits (core/errors).
 */
import { isAbsolute, relative } from 'node:path';
import { LiveClock } from '../core/clock.ts';
import { ConfigError, describeError, EXIT, exitCodeFor, TraderError } from '../core/errors.ts';
import { newRunId } from '../core/ids.ts';
import { createLogger, LogTap } from '../core/logger.ts';
import { VERSION } from '../core/version.ts';
import { Kernel } from '../kernel/kernel.ts';
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

  // Signal handlers go in before the kernel starts, so a SIGTERM during
  // start-up (a fast `docker stop`) is a clean stop right after it, not a kill.
  const stopRequested = new Promise<{ why: string; code: number }>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        // A second Ctrl-C means "now": skip the graceful path.
        logger.warn(`second ${sig}: exiting without a clean stop`);
        log.flush();
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      }
      signalled = true;
      resolve({ why: `received ${sig}`, code: EXIT.OK });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Handler errors are contained by the bus; anything reaching here is a bug.
    // Stop cleanly (a supervisor restarts us) rather than run in an unknown state.
    process.on('uncaughtException', (err) => {
      logger.fatal({ err }, `uncaught exception: ${err.message}`);
      resolve({ why: 'uncaught exception', code: EXIT.SOFTWARE });
    });
    process.on('unhandledRejection', (err) => {
      logger.fatal({ err }, `unhandled promise rejection: ${describeError(err).message}`);
      resolve({ why: 'unhandled promise rejection', code: EXIT.SOFTWARE });
    });
  });

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
    });
  } catch (err) {
    const e = describeError(err);
    logger.fatal({ err, code: e.code }, `refusing to start: ${e.message}`);
    if (!(err instanceof TraderError) || err.code !== 'INSTANCE_LOCKED') process.stderr.write(`trader: refusing to start: ${e.message}\n`);
    else process.stderr.write(`trader: ${e.message}\n`);
    log.close();
    return exitCodeFor(err);
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

  const deadline = setTimeout(() => {
    logger.fatal(`graceful stop took longer than ${STOP_DEADLINE_MS} ms; exiting`);
    log.close();
    process.exit(EXIT.SOFTWARE);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  try {
    await kernel.stop(reason.why);
  } catch (err) {
    logger.fatal({ err }, `error while stopping: ${describeError(err).message}`);
    log.close();
    return EXIT.SOFTWARE;
  } finally {
    clearTimeout(deadline);
  }
  log.close();
  return reason.code;
}
