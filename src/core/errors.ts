/**
 * A small error tree. Every error the bot raises on purpose carries a stable
 * `code` (for logs, alerts and tests) and a `retryable` flag (for the retry
 * policy), so callers decide on data rather than on message text.
 *
 * Expected failures (an order denied by a filter, a guard saying no) are
 * values on the bus, not exceptions; these classes are for failures.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'PATH_NOT_WRITABLE'
  | 'DB_URL_UNSUPPORTED'
  | 'DB_MIGRATION_FAILED'
  | 'INSTANCE_LOCKED'
  | 'BUS_NO_HANDLER'
  | 'BUS_DUPLICATE_HANDLER'
  | 'BUS_CLOSED'
  | 'HEARTBEAT_UNREADABLE'
  | 'INVARIANT_BROKEN'
  | 'BACKTEST_NO_DATA'
  | 'RUN_NOT_FOUND'
  | 'USAGE'
  | 'CIRCUIT_OPEN'
  /** Work refused or cut short because the bot is stopping: not a failure. */
  | 'STOPPING';

export class TraderError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** One problem found in configuration: where it is and what is wrong. */
export interface ConfigIssue {
  /** File the value came from (relative to the working directory), or "environment". */
  source: string;
  /** 1-based line in that file, when known. */
  line?: number;
  /** Dotted field path, e.g. "params.period" or "HEARTBEAT_INTERVAL_MS". */
  field: string;
  /** What is wrong, naming what was expected and what was found. */
  message: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.source : `${issue.source}:${issue.line}`;
  return issue.field ? `${where} ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Configuration is invalid; carries every problem found, not just the first. */
export class ConfigError extends TraderError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super('CONFIG_INVALID', `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` + issues.map((i) => '  ' + formatConfigIssue(i)).join('\n'));
    this.issues = issues;
  }
}

export class PathError extends TraderError {
  readonly path: string;
  constructor(path: string, message: string, cause?: unknown) {
    super('PATH_NOT_WRITABLE', message, { cause });
    this.path = path;
  }
}

export class InstanceLockedError extends TraderError {
  readonly holderPid: number | undefined;
  constructor(message: string, holderPid: number | undefined) {
    super('INSTANCE_LOCKED', message);
    this.holderPid = holderPid;
  }
}

/** A broken invariant: a bug, never an expected condition. */
export class InvariantError extends TraderError {
  constructor(message: string) {
    super('INVARIANT_BROKEN', message);
  }
}

/**
 * Process exit codes, from BSD sysexits so supervisors and scripts can tell
 * "fix your config" from "try again later".
 */
export const EXIT = {
  OK: 0,
  UNHEALTHY: 1,
  NOT_AVAILABLE: 2,
  /** An expected refusal, not a fault: `trader order` denied by risk or the filters, or rejected by the exchange. */
  DENIED: 3,
  USAGE: 64,
  /** EX_NOINPUT: the data or stored run asked for does not exist. */
  NO_INPUT: 66,
  SOFTWARE: 70,
  CANT_CREATE: 73,
  TEMP_FAIL: 75,
  CONFIG: 78,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof TraderError) {
    switch (err.code) {
      case 'CONFIG_INVALID':
      case 'DB_URL_UNSUPPORTED':
        return EXIT.CONFIG;
      case 'PATH_NOT_WRITABLE':
        return EXIT.CANT_CREATE;
      case 'INSTANCE_LOCKED':
        return EXIT.TEMP_FAIL;
      case 'USAGE':
        return EXIT.USAGE;
      case 'BACKTEST_NO_DATA':
      case 'RUN_NOT_FOUND':
        return EXIT.NO_INPUT;
      default:
        return EXIT.SOFTWARE;
    }
  }
  return EXIT.SOFTWARE;
}

/** A plain, serializable view of any thrown value, for logs and fault events. */
export function describeError(err: unknown): { code: string; message: string; stack?: string } {
  if (err instanceof TraderError) return { code: err.code, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  if (err instanceof Error) return { code: 'UNEXPECTED', message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  return { code: 'UNEXPECTED', message: String(err) };
}
