/**
 * The gate every Binance REST call passes through: the order budget, the
 * 429 / 418 hold, the circuit breaker, and the classification of failures into VenueErrors
 * (errors.ts). The ccxt client's hooks tag each error with the response it
 * came from (tag()), so concurrent calls never mix up statuses or codes.
 */
import { CircuitOpenError, type BreakerView, type CircuitBreaker } from '../../core/circuit-breaker.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/logger.ts';
import { VenueError } from '../venue.ts';
import { classify, ORDER_BUDGET_CODE, type Op, type ResponseTag } from './errors.ts';
import { intervalMs, type Cost, type RateBudget, type Ticket } from './rate-budget.ts';

export interface RestGateDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * Timeouts, 5xx and network failures in a row open it, and calls then fail
   * at once, unsent. Answers (a rejection, an unknown order, a 429) are not
   * outages and do not count.
   */
  readonly breaker?: CircuitBreaker;
  /** The exchange's clock (a 418 names the ban's end in server time). */
  readonly serverNow: () => number;
  /** Binance's published limits: an order that would exceed them is refused here, unsent (see call()). */
  readonly budget?: RateBudget;
}

export interface SendingHold {
  readonly until: number;
  readonly kind: 'RATE_LIMITED' | 'BANNED' | 'CIRCUIT_OPEN';
}

export class RestGate {
  private readonly tags = new WeakMap<object, ResponseTag>();
  /** After a 429 or 418, nothing is sent until Retry-After (or the ban's end) passes: see call(). */
  private hold: { until: number; kind: 'RATE_LIMITED' | 'BANNED'; code?: number | string; reason: string } | undefined;

  constructor(private readonly d: RestGateDeps) {}

  /** Attaches the response an error came from (the client's hooks call this). */
  tag(e: unknown, tag: ResponseTag, overwrite = true): void {
    if (typeof e !== 'object' || e === null) return;
    if (!overwrite && this.tags.has(e)) return;
    this.tags.set(e, tag);
  }

  /**
   * The hold a 429 or 418 put on every call (see call()), while it runs: whoever's call
   * drew it (a reconcile read, a poll, a lookup), the execution engine denies new orders
   * until it ends rather than writing rows that could only wait behind it.
   */
  sendingHeld(): SendingHold | undefined {
    const h = this.hold;
    if (h && h.until > this.d.clock.now()) return { until: h.until, kind: h.kind };
    const b = this.d.breaker?.view();
    return b?.state === 'OPEN' && b.retryAt ? { until: Date.parse(b.retryAt), kind: 'CIRCUIT_OPEN' } : undefined;
  }

  /** The REST circuit breaker's state (for /health and the heartbeat); undefined without one. */
  breakerView(): BreakerView | undefined {
    return this.d.breaker?.view();
  }

  /**
   * Runs one ccxt call; any failure comes out as a VenueError.
   *
   * After a 429 or a 418 every call (reads and cancels too, whoever makes
   * them: reconcile passes, lookups, a kill switch) fails here without being
   * sent until Retry-After, or the ban's stated end, has passed. Binance bans
   * an IP that keeps calling while limited, and a ban (minutes to days) is
   * far worse than the wait; the error says when sending resumes.
   *
   * `orders` (order placements): the order count and weight they take from
   * the budget. When the budget cannot take them the call fails at once with
   * RATE_LIMITED (code ORDER_BUDGET) and nothing is sent, then or later: an
   * order held back until the window ends would act on a signal that is
   * stale by then. Other requests wait for weight in the client (client.ts).
   */
  async call<T>(op: Op, what: string, fn: () => Promise<T>, orders?: Cost): Promise<T> {
    const { clock, log, breaker, budget } = this.d;
    const h = this.hold;
    if (h) {
      const left = h.until - clock.now();
      if (left > 0) {
        throw new VenueError(h.kind, `${what}: not sent: ${h.kind === 'BANNED' ? 'the IP is banned' : 'rate limited'} until ${new Date(h.until).toISOString()} (${h.reason})`, { ...(h.code !== undefined ? { code: h.code } : {}), retryAfterMs: left });
      }
      this.hold = undefined;
    }
    let ticket: Ticket | undefined;
    if (orders && budget) {
      const a = budget.admit(orders);
      if (a.kind !== 'go') {
        const l = a.limit;
        const ms = a.kind === 'refuse' ? a.retryAfterMs : a.ms;
        throw new VenueError('RATE_LIMITED', `${what}: not sent: Binance's ${l.rateLimitType} limit of ${l.limit} per ${l.intervalNum} ${l.interval} is used (${a.used}); the window ends in ${ms} ms (${intervalMs(l)} ms windows)`, { code: ORDER_BUDGET_CODE, retryAfterMs: ms });
      }
      ticket = a.ticket;
    }
    if (breaker) {
      try {
        breaker.acquire();
      } catch (e) {
        ticket?.done();
        if (!(e instanceof CircuitOpenError)) throw e;
        // Not sent, so a write needs no lookup: RETRYABLE says exactly that.
        throw new VenueError('RETRYABLE', `${what}: not sent: ${e.message}`, { retryAfterMs: Math.max(0, e.retryAt - clock.now()) });
      }
    }
    try {
      const out = await fn();
      ticket?.done();
      breaker?.success();
      return out;
    } catch (e) {
      ticket?.done();
      const ve = classify(e, typeof e === 'object' && e !== null ? this.tags.get(e) : undefined, op, what, this.d.serverNow);
      if (breaker) {
        if (ve.kind === 'RETRYABLE' || ve.kind === 'AMBIGUOUS') breaker.failure(ve);
        else breaker.success();
      }
      log.debug({ kind: ve.kind, code: ve.details.code, what }, ve.message);
      if ((ve.kind === 'RATE_LIMITED' || ve.kind === 'BANNED') && ve.details.retryAfterMs !== undefined) {
        const until = clock.now() + ve.details.retryAfterMs;
        if (!this.hold || until > this.hold.until) {
          this.hold = { until, kind: ve.kind, ...(ve.details.code !== undefined ? { code: ve.details.code } : {}), reason: `${what} answered ${ve.kind === 'BANNED' ? '418' : '429'}` };
          log.warn({ until: new Date(until).toISOString(), kind: ve.kind, what }, `${ve.kind === 'BANNED' ? 'IP banned' : 'rate limited'} by binance: nothing is sent until ${new Date(until).toISOString()}`);
        }
      }
      throw ve;
    }
  }
}
