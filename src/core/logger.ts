/**
 * The logger factory: pino, JSON lines to stdout and to one file per UTC day
 * under LOG_DIR (logs/trader-YYYY-MM-DD.log), old files pruned after
 * LOG_RETENTION_DAYS. LOG_FORMAT=pretty prints human lines on stdout; the
 * files stay JSON so they can always be parsed.
 *
 * Secrets are redacted twice over (see redact.ts): by key in every log
 * object, and by value in every line written, whatever its origin.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { utcDay } from './clock.ts';
import { redactKeys, ValueScrubber } from './redact.ts';

export type { Logger } from 'pino';
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Folder for daily files; undefined writes to stdout only (CLI one-shots, tests). */
  dir?: string | undefined;
  retentionDays?: number;
  /** Known secret values to cut out of every line. */
  secrets?: Iterable<string>;
  /** Wall clock for file rotation; injectable so tests can cross midnight. */
  now?: () => number;
  /** Where "stdout" goes; tests pass a collector. */
  stdout?: { write(line: string): unknown };
  /** Extra fields on every line (component, runId, ...). */
  base?: Record<string, unknown>;
  /** Receives every ERROR and FATAL line, already scrubbed of secrets (metrics, notifications). */
  tap?: LogTap;
}

/**
 * Where ERROR lines go besides the log: the logger is made before the
 * components that care (metrics, notifiers) exist, so they subscribe later.
 * A listener that throws is dropped from that line, never from logging.
 */
export class LogTap {
  private readonly listeners = new Set<(entry: LogEntry) => void>();

  subscribe(fn: (entry: LogEntry) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  write(line: string): void {
    if (this.listeners.size === 0) return;
    let entry: LogEntry;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      entry = { level: String(o.level ?? 'error'), msg: String(o.msg ?? ''), ...(typeof o.component === 'string' ? { component: o.component } : {}), ...(typeof o.time === 'string' ? { time: o.time } : {}) };
    } catch {
      entry = { level: 'error', msg: line.trim() };
    }
    for (const fn of this.listeners) {
      try {
        fn(entry);
      } catch {
        // A listener must never break logging (and logging its failure could loop).
      }
    }
  }
}

export interface LogEntry {
  level: string;
  msg: string;
  component?: string;
  time?: string;
}

export interface LoggerHandle {
  logger: Logger;
  /** Writes out anything buffered; call before exit. */
  flush(): void;
  close(): void;
}

interface LineSink {
  write(line: string): unknown;
}

/**
 * Appends lines to logs/trader-YYYY-MM-DD.log, switching file when the UTC
 * day changes. Writes are synchronous: a log line written before a crash is
 * on disk, which is what you want when reading why the bot died.
 */
export class DailyFileSink implements LineSink {
  private fd: number | undefined;
  private day = '';

  constructor(
    private readonly dir: string,
    private readonly retentionDays: number,
    private readonly now: () => number,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  write(line: string): void {
    const day = utcDay(this.now());
    if (day !== this.day) this.rotate(day);
    writeSync(this.fd!, line);
  }

  fileFor(day: string): string {
    return join(this.dir, `trader-${day}.log`);
  }

  flush(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.day = '';
  }

  private rotate(day: string): void {
    this.close();
    this.fd = openSync(this.fileFor(day), 'a', 0o640);
    this.day = day;
    this.prune(day);
  }

  /** Deletes daily files older than the retention window (by the date in the name). */
  private prune(today: string): void {
    const cutoff = Date.parse(today + 'T00:00:00Z') - this.retentionDays * 86_400_000;
    for (const name of readdirSync(this.dir)) {
      const m = /^trader-(\d{4}-\d{2}-\d{2})\.log$/.exec(name);
      if (!m) continue;
      const t = Date.parse(m[1] + 'T00:00:00Z');
      if (Number.isFinite(t) && t < cutoff) {
        try {
          unlinkSync(join(this.dir, name));
        } catch {
          // Another process may have pruned it first; nothing to do.
        }
      }
    }
  }
}

/** Scrubs known secret values out of each line before passing it on. */
class ScrubbingSink implements LineSink {
  constructor(
    private readonly scrubber: ValueScrubber,
    private readonly inner: LineSink,
  ) {}

  write(line: string): unknown {
    return this.inner.write(this.scrubber.empty ? line : this.scrubber.scrub(line));
  }
}

export function createLogger(opts: LoggerOptions): LoggerHandle {
  const now = opts.now ?? Date.now;
  const scrubber = new ValueScrubber(opts.secrets ?? []);
  const stdoutTarget: LineSink = opts.stdout ?? { write: (line: string) => writeSync(1, line) };
  let stdoutSink: LineSink = stdoutTarget;
  if (opts.format === 'pretty') {
    const pretty = prettyFactory({ colorize: !opts.stdout && process.stdout.isTTY === true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname,runId', singleLine: true });
    stdoutSink = { write: (line: string) => stdoutTarget.write(pretty(line)) };
  }
  const fileSink = opts.dir ? new DailyFileSink(opts.dir, opts.retentionDays ?? 14, now) : undefined;

  const streams: { stream: LineSink; level: LevelWithSilent }[] = [{ stream: new ScrubbingSink(scrubber, stdoutSink), level: opts.level }];
  if (fileSink) streams.push({ stream: new ScrubbingSink(scrubber, fileSink), level: opts.level });
  if (opts.tap) streams.push({ stream: new ScrubbingSink(scrubber, opts.tap), level: 'error' });

  const logger = pino(
    {
      level: opts.level,
      base: { pid: process.pid, ...opts.base },
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: {
        level: (label) => ({ level: label }),
        // Key-based redaction of every object logged, however deep.
        log: (obj) => redactKeys(obj) as Record<string, unknown>,
      },
      serializers: { err: (e: unknown) => redactKeys(e) },
    },
    pino.multistream(streams as never, { dedupe: false }),
  );

  return {
    logger,
    flush: () => fileSink?.flush(),
    close: () => {
      fileSink?.flush();
      fileSink?.close();
    },
  };
}

/** A logger that discards everything (for tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
