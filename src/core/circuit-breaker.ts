/**
 * A circuit breaker around one outside dependency (the exchange's REST API,
 * a notifier's HTTP endpoint).
 *
 *   CLOSED     calls go through; `failureThreshold` failures in a row open it.
 *   OPEN       calls fail at once with CircuitOpenError, without being made,
 *              until `openMs` has passed since it opened.
 *   HALF_OPEN  one trial call goes through (others still fail fast): its
 *              success closes the breaker, its failure opens it again.
 *
 * Why: a dependency that is down answers slowly (timeouts) or not at all;
 * calling it anyway ties up the caller, and for Binance adds weight to an
 * account that may already be limited. Failing fast is also a clear signal
 * for /health and the heartbeat.
 *
 * What counts as a failure is the caller's call (`isFailure`): an exchange
 * saying "insufficient balance" is an answer, not an outage.
 */
import type { Clock } from './clock.ts';
import { TraderError } from './errors.ts';

export const BREAKER_STATES = ['CLOSED', 'OPEN', 'HALF_OPEN'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface BreakerOptions {
  /** Names the dependency in errors, /health and the heartbeat (e.g. "exchange-rest", "telegram"). */
  name: string;
  clock: Clock;
  /** Failures in a row that open the breaker (>= 1). */
  failureThreshold: number;
  /** How long it stays OPEN before a trial call is let through (ms). */
  openMs: number;
  /** Called on every state change (logging, metrics). */
  onChange?: (change: { name: string; from: BreakerState; to: BreakerState; reason: string }) => void;
}

export interface BreakerView {
  readonly name: string;
  readonly state: BreakerState;
  readonly consecutiveFailures: number;
  /** How many times it has opened since start. */
  readonly opened: number;
  /** ISO time of the next trial call while OPEN. */
  readonly retryAt?: string;
  readonly lastError?: string;
}

export class CircuitOpenError extends TraderError {
  constructor(
    readonly breaker: string,
    readonly retryAt: number,
  ) {
    super('CIRCUIT_OPEN', `${breaker}: circuit OPEN after repeated failures; not called (next try after ${new Date(retryAt).toISOString()})`, { retryable: true });
  }
}

export class CircuitBreaker {
  private current: BreakerState = 'CLOSED';
  private failures = 0;
  private openedAt = 0;
  private opens = 0;
  private probing = false;
  private lastError: string | undefined;

  constructor(private readonly o: BreakerOptions) {
    if (!(o.failureThreshold >= 1) || !(o.openMs > 0)) throw new RangeError(`breaker ${o.name}: failureThreshold >= 1 and openMs > 0 needed`);
  }

  get name(): string {
    return this.o.name;
  }

  /** The state now (OPEN turns HALF_OPEN by itself once openMs has passed). */
  state(): BreakerState {
    if (this.current === 'OPEN' && this.o.clock.now() - this.openedAt >= this.o.openMs) this.move('HALF_OPEN', `${this.o.openMs} ms passed`);
    return this.current;
  }

  /**
   * Asks to make one call. Throws CircuitOpenError when it may not; otherwise
   * the caller must report the outcome with success() or failure().
   */
  acquire(): void {
    const s = this.state();
    if (s === 'CLOSED') return;
    if (s === 'HALF_OPEN' && !this.probing) {
      this.probing = true;
      return;
    }
    throw new CircuitOpenError(this.o.name, s === 'OPEN' ? this.openedAt + this.o.openMs : this.o.clock.now() + this.o.openMs);
  }

  success(): void {
    this.probing = false;
    this.failures = 0;
    if (this.current !== 'CLOSED') this.move('CLOSED', 'a call succeeded');
  }

  failure(error: unknown): void {
    this.probing = false;
    this.failures++;
    this.lastError = error instanceof Error ? error.message : String(error);
    if (this.current === 'HALF_OPEN' || (this.current === 'CLOSED' && this.failures >= this.o.failureThreshold)) {
      this.openedAt = this.o.clock.now();
      this.opens++;
      this.move('OPEN', `${this.failures} failure(s) in a row; last: ${this.lastError}`);
    }
  }

  /**
   * Runs fn through the breaker. A thrown error counts as a failure unless
   * isFailure says it is an answer (the dependency worked and said no).
   */
  async run<T>(fn: () => Promise<T>, isFailure: (err: unknown) => boolean = () => true): Promise<T> {
    this.acquire();
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (isFailure(err)) this.failure(err);
      else this.success();
      throw err;
    }
    this.success();
    return result;
  }

  view(): BreakerView {
    const state = this.state();
    return {
      name: this.o.name,
      state,
      consecutiveFailures: this.failures,
      opened: this.opens,
      ...(state === 'OPEN' ? { retryAt: new Date(this.openedAt + this.o.openMs).toISOString() } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private move(to: BreakerState, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.o.onChange?.({ name: this.o.name, from, to, reason });
  }
}
