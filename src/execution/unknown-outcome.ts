/**
 * Unknown means unknown.
 *
 * A placement answered with a timeout, a 5xx or one of Binance's "execution
 * status unknown" codes (-1000, -1001, -1006, -1007; binance-spot-api-docs
 * errors.md, and rest-api.md "General API Information": -1007 "does not
 * always mean that the request failed in the Matching Engine") may still
 * execute later. Binance checks recvWindow twice: on arrival, and again
 * right before it forwards the request to the matching engine
 * (rest-api.md "Timing security",
 * https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security;
 * USD-M: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
 * Our timestamp is our clock plus the measured server offset, which Binance
 * accepts only up to 1000 ms ahead of its own. So a request that left at
 * `sentAt` is forwarded no later than sentAt + recvWindow + 1000 ms of our
 * clock; the margin covers our offset's error and the matching engine's
 * own queue.
 *
 * Until then a lookup that finds nothing proves nothing: the order is
 * looked up again, with backoff, and never sent a second time (the bot once
 * found nothing 100 ms after a 503, re-sent the same client id 6-9 s later,
 * and the first request executed at 2 s: two orders, twice the position;
 * Binance accepts a client id again once the first order is final, so it
 * cannot catch that). Only a lookup sent after the window has closed may
 * say "not placed".
 */
import type { Clock } from '../core/clock.ts';
import type { Dec } from '../core/decimal.ts';
import type { OrderSide } from '../model/events.ts';
import type { Venue, VenueOrder } from '../venues/venue.ts';

export interface UnknownOutcomeOptions {
  /** The recvWindow every signed request carries (Binance's default 5000; RECV_WINDOW_MS). */
  recvWindowMs: number;
  /** Beyond recvWindow: Binance's 1000 ms "ahead" tolerance plus our offset's error (default 2000). */
  marginMs: number;
  /** First wait between lookups; doubles up to maxBackoffMs (defaults 250 and 2000). */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Lookups that keep failing (the exchange down) are given up this long after the window closed; the poll goes on. */
  giveUpAfterMs: number;
}

export const DEFAULT_UNKNOWN_OUTCOME: UnknownOutcomeOptions = { recvWindowMs: 5000, marginMs: 2000, minBackoffMs: 250, maxBackoffMs: 2000, giveUpAfterMs: 60_000 };

/** What the placement is expected to look like on the exchange: a stranger's order under our id is never adopted. */
export interface ExpectedOrder {
  readonly symbol: string;
  readonly clientOrderId: string;
  readonly side: OrderSide;
  readonly quantity: Dec;
}

export type Outcome =
  | { readonly kind: 'found'; readonly order: VenueOrder }
  /** An order under our id that is not this placement (another side or quantity): never adopted. */
  | { readonly kind: 'conflict'; readonly order: VenueOrder }
  /** The window closed and a lookup sent after it found nothing: the request was not placed and can no longer be. */
  | { readonly kind: 'not-placed' }
  /** Still unknown: lookups kept failing, or we are shutting down. The row stays UNKNOWN; the poll goes on. */
  | { readonly kind: 'unresolved'; readonly reason: string };

/** When a request that left at sentAt can no longer execute (our clock). */
export function executableUntil(sentAt: number, o: Pick<UnknownOutcomeOptions, 'recvWindowMs' | 'marginMs'>): number {
  return sentAt + o.recvWindowMs + o.marginMs;
}

/** Whether the venue's order is the placement we expect (same side and quantity; the symbol was the lookup's). */
export function matches(v: VenueOrder, e: ExpectedOrder): boolean {
  return v.symbol === e.symbol && v.side === e.side && v.quantity.eq(e.quantity);
}

export class UnknownOutcome {
  readonly opts: UnknownOutcomeOptions;

  constructor(
    private readonly venue: Pick<Venue, 'fetchOrder'>,
    private readonly clock: Pick<Clock, 'now' | 'after'>,
    opts: Partial<UnknownOutcomeOptions> = {},
  ) {
    this.opts = { ...DEFAULT_UNKNOWN_OUTCOME, ...opts };
  }

  until(sentAt: number): number {
    return executableUntil(sentAt, this.opts);
  }

  /** One lookup: the verdict it allows, or undefined while the outcome stays unknown. */
  async check(e: ExpectedOrder, sentAt: number): Promise<Exclude<Outcome, { kind: 'unresolved' }> | undefined> {
    // Taken before the request: "not found" counts only for a lookup that left after the window closed.
    const closed = this.clock.now() >= this.until(sentAt);
    let found: VenueOrder | undefined;
    try {
      found = await this.venue.fetchOrder(e.symbol, e.clientOrderId);
    } catch {
      return undefined;
    }
    if (found) return matches(found, e) ? { kind: 'found', order: found } : { kind: 'conflict', order: found };
    return closed ? { kind: 'not-placed' } : undefined;
  }

  /** Looks up with backoff until the outcome is known, the lookups have failed for too long, or `signal` aborts. */
  async resolve(e: ExpectedOrder, sentAt: number, signal: AbortSignal, onLookup?: () => void): Promise<Outcome> {
    let backoff = this.opts.minBackoffMs;
    const until = this.until(sentAt);
    for (;;) {
      if (signal.aborted) return { kind: 'unresolved', reason: 'shutting down' };
      onLookup?.();
      const verdict = await this.check(e, sentAt);
      if (verdict) return verdict;
      const now = this.clock.now();
      if (now >= until + this.opts.giveUpAfterMs) return { kind: 'unresolved', reason: `no lookup of ${e.clientOrderId} succeeded for ${Math.round((now - sentAt) / 1000)} s` };
      // Wake at the window's close if that comes sooner: that lookup is the one that can decide.
      const wait = now < until ? Math.min(backoff, Math.max(1, until - now)) : backoff;
      backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      await sleep(this.clock, wait, signal);
    }
  }
}

function sleep(clock: Pick<Clock, 'after'>, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = clock.after(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    const onAbort = (): void => {
      t.cancel();
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
