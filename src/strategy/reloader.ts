/**
 * Hot reload of strategies/: an edit to a <SYMBOL>.yaml (or an index.ts, or
 * a new folder) is re-validated as a whole and, when valid, applied to the
 * running host within about a second: changed instances are rebuilt and
 * re-warmed, removed or disabled ones stop, new ones start. An invalid edit
 * changes nothing: the precise errors go to the log and the heartbeat, and
 * the last good configuration keeps running.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ConfigError, formatConfigIssue, type ConfigIssue } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Settings } from '../settings/settings.ts';
import type { StrategyHost } from './host.ts';
import { loadStrategyModules, resolveInstances } from './loader.ts';

export interface ReloaderDeps {
  /** Reloads settings from disk (throws ConfigError when invalid). */
  loadSettings: () => Settings;
  host: StrategyHost;
  logger: Logger;
  clock: Clock;
  overrides?: ReadonlyMap<string, Record<string, unknown>>;
  /** Told the applied settings after each successful reload (e.g. the feed streams new symbols). */
  onApplied?: (settings: Settings) => void;
  /** Quiet time after the last file event before reloading (editors write in bursts). */
  debounceMs?: number;
}

/** What one reload did: applied (with the instances changed) or rejected (with every error). */
export interface ReloadResult {
  readonly applied: boolean;
  readonly changes?: Record<string, string[]>;
  readonly errors: string[];
}

export class StrategyReloader {
  private watcher: FSWatcher | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<ReloadResult> | undefined;
  private again = false;
  /** Errors of the last rejected reload; empty once a reload succeeds. */
  errors: string[] = [];
  reloads = 0;

  constructor(private readonly deps: ReloaderDeps) {}

  start(strategiesDir: string): void {
    this.watcher = watch(strategiesDir, { recursive: true }, () => this.schedule());
    this.watcher.on('error', (err) => this.deps.logger.error({ err }, `watching ${strategiesDir} failed; hot reload is off until restart`));
  }

  stop(): void {
    this.watcher?.close();
    this.timer?.cancel();
  }

  private schedule(): void {
    this.timer?.cancel();
    this.timer = this.deps.clock.after(this.deps.debounceMs ?? 200, () => void this.reload());
  }

  /** Re-reads everything and applies it, or rejects it whole. Serialized: one reload at a time. */
  reload(): Promise<ReloadResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.doReload().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.reload();
      }
    });
    return this.running;
  }

  private async doReload(): Promise<ReloadResult> {
    const { logger } = this.deps;
    let issues: ConfigIssue[] = [];
    try {
      const settings = this.deps.loadSettings();
      const loaded = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, settings.paths.cwd);
      issues = loaded.issues;
      const resolved = resolveInstances(settings, settings.strategies, loaded.modules, this.deps.overrides);
      issues.push(...resolved.issues);
      if (issues.length === 0) {
        this.deps.onApplied?.(settings);
        const changes = this.deps.host.apply(resolved.specs);
        this.errors = [];
        this.reloads++;
        const what = Object.entries(changes)
          .filter(([, v]) => v.length > 0)
          .map(([k, v]) => `${k} ${v.join(', ')}`)
          .join('; ');
        logger.info({ changes }, `strategies reloaded: ${what || 'nothing changed'}`);
        return { applied: true, changes: changes as Record<string, string[]>, errors: [] };
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues = [...err.issues];
    }
    this.errors = issues.map(formatConfigIssue);
    logger.error({ errors: this.errors }, `strategy change rejected, the last good configuration keeps running:\n  ${this.errors.join('\n  ')}`);
    return { applied: false, errors: this.errors };
  }
}
