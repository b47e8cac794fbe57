/**
 * The start-up steps that talk to the exchange go through this gate, so a
 * start either comes up or goes down:
 *
 *  - a transient failure (5xx, timeout, network error, a 429 / 418 hold, an
 *    open circuit, a clock skew) is waited out and the step tried again,
 *    with exponential backoff and jitter (1 s doubling to 30 s; a stated
 *    Retry-After or ban end is honoured, up to 15 min), for as long as it
 *    takes: a bot that exits instead is restarted at once by its supervisor
 *    and keeps asking, which is how a 429 becomes a ban;
 *  - a permanent one (the keys refused, a request the exchange calls
 *    invalid, a bug) ends the start at once with the reason;
 *  - a stop request (the first SIGINT or SIGTERM) ends it at once too, in a
 *    wait or in the middle of a call: the call is left to the caller's
 *    teardown (stopping the venue cuts it short).
 *
 * The kind of a venue failure is the venue's own classification
 * (VenueError.kind, decided on Binance's codes and HTTP status), never text.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ConfigError, EXIT, exitCodeFor, formatConfigIssue, TraderError } from '../core/errors.ts';
import { VenueError, type VenueErrorKind } from '../venues/venue.ts';

export const START_BACKOFF = {
  firstMs: 1000,
  capMs: 30_000,
  /** The longest wait a stated Retry-After (or ban end) may ask for at start. */
  statedCapMs: 15 * 60_000,
} as const;

/** Kinds that say "the same request may work later". AMBIGUOUS too: every start-up call is a read. */
const TRANSIENT_KINDS: ReadonlySet<VenueErrorKind> = new Set(['RETRYABLE', 'AMBIGUOUS', 'RATE_LIMITED', 'BANNED', 'CLOCK_SKEW']);

/** Transient: how long the failure itself says to wait (undefined: no statement). Permanent: undefined. */
export function transientFailure(err: unknown): { retryAfterMs: number | undefined } | undefined {
  if (err instanceof VenueError) return TRANSIENT_KINDS.has(err.kind) ? { retryAfterMs: err.details.retryAfterMs } : undefined;
  if (err instanceof TraderError) return err.retryable ? { retryAfterMs: undefined } : undefined;
  return undefined;
}

/**
 * The wait before retry n (1-based): exponential from 1 s, capped at 30 s,
 * with jitter (between half and all of it, never under 1 s) so a fleet of
 * bots does not retry in lockstep after an outage; at least what the
 * failure stated (Retry-After), up to 15 min.
 */
export function startRetryDelay(retry: number, random: () => number, statedMs?: number): number {
  const ceiling = Math.min(START_BACKOFF.capMs, START_BACKOFF.firstMs * 2 ** Math.min(retry - 1, 20));
  const jittered = Math.max(START_BACKOFF.firstMs, Math.round(ceiling / 2 + (random() * ceiling) / 2));
  return statedMs === undefined ? jittered : Math.max(jittered, Math.min(statedMs, START_BACKOFF.statedCapMs));
}

/** The start was asked to stop (a signal) before it came up: not a failure. */
export class StartCancelled extends Error {
  constructor(readonly reason: string) {
    super(`start-up cancelled: ${reason}`);
    this.name = 'StartCancelled';
  }
}

/** One line for a person on why a start ended: the venue's kind and code included, since a message alone may not carry the code. */
export function describeStartFailure(err: unknown): string {
  if (err instanceof VenueError) {
    const code = err.details.code !== undefined ? ` (code ${err.details.code})` : '';
    if (err.kind === 'AUTH') return `the exchange refused the API key: ${err.message}${code}; check BINANCE_API_KEY / BINANCE_API_SECRET, the key's permissions and its IP whitelist`;
    return `${err.message}${code} [${err.kind}]`;
  }
  if (err instanceof ConfigError) return `invalid configuration: ${err.issues.map(formatConfigIssue).join('; ')}`;
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}

/** The exit code for a start that ended on err: refused keys are a configuration problem (78), like invalid settings. */
export function startExitCode(err: unknown): number {
  if (err instanceof StartCancelled) return EXIT.OK;
  if (err instanceof VenueError && err.kind === 'AUTH') return EXIT.CONFIG;
  if (err instanceof ConfigError) return EXIT.CONFIG;
  return exitCodeFor(err);
}

export interface StartGateDeps {
  clock: Clock;
  /** Aborted when a stop is requested; its reason (a string) names why. */
  signal?: AbortSignal;
  /** Injected for tests; Math.random in production. */
  random?: () => number;
  /** A step begins its first attempt. */
  onStep?: (what: string) => void;
  /** An attempt failed transiently: retry n follows after delayMs. */
  onRetry?: (what: string, retry: number, err: unknown, delayMs: number) => void;
}

export class StartGate {
  /** The call a cancellation left running (settles on its own; the caller's teardown cuts it short). */
  private inFlight: Promise<unknown> | undefined;

  constructor(private readonly deps: StartGateDeps) {}

  /** Throws StartCancelled when a stop was requested: called between steps that do not go through run(). */
  check(): void {
    const s = this.deps.signal;
    if (s?.aborted) throw new StartCancelled(typeof s.reason === 'string' ? s.reason : 'stop requested');
  }

  /** Runs one start-up step until it succeeds, fails permanently, or a stop is requested. */
  async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.deps.onStep?.(what);
    for (let retry = 1; ; retry++) {
      this.check();
      try {
        return await this.cancellable(fn());
      } catch (err) {
        if (err instanceof StartCancelled) throw err;
        this.check();
        const t = transientFailure(err);
        if (!t) throw err;
        const delay = startRetryDelay(retry, this.deps.random ?? Math.random, t.retryAfterMs);
        this.deps.onRetry?.(what, retry, err, delay);
        await this.wait(delay);
      }
    }
  }

  /**
   * Resolves when the call a cancellation left running has settled, or after
   * maxMs: a teardown stops the venue first (which fails that call), then
   * waits here so nothing it does lands on a closed store.
   */
  async settled(maxMs = 2000): Promise<void> {
    const p = this.inFlight;
    if (!p) return;
    let timer: TimerHandle | undefined;
    await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = this.deps.clock.after(maxMs, resolve)))]);
    timer?.cancel();
  }

  /** p, unless a stop is requested first. */
  private cancellable<T>(p: Promise<T>): Promise<T> {
    const signal = this.deps.signal;
    if (!signal) return p;
    this.inFlight = p;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        try {
          this.check();
        } catch (e) {
          reject(e);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          if (this.inFlight === p) this.inFlight = undefined;
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (this.inFlight === p) this.inFlight = undefined;
          reject(e);
        },
      );
    });
  }

  /** The backoff wait; a stop request ends it at once. */
  private wait(ms: number): Promise<void> {
    const signal = this.deps.signal;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        timer.cancel();
        try {
          this.check();
        } catch (e) {
          reject(e);
        }
      };
      const timer = this.deps.clock.after(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
