/**
 * Request-weight accounting as Binance does it: a budget per minute (per
 * IP), reported on every response in X-MBX-USED-WEIGHT-1M; past the budget
 * 429 with Retry-After; a client that keeps calling while limited (before
 * the Retry-After it was given has passed) is banned with 418 (2 minutes,
 * doubling for repeat offences, as Binance scales bans). A client that waits
 * each 429 out is never banned.
 */
import type { Market } from '../model/market.ts';
import { err, type BinanceError } from './binance-errors.ts';

export interface WeightVerdict {
  used: number;
  /** Set when the call must be refused. */
  refuse?: { status: 429 | 418; retryAfterSec: number; until: number };
}

export class WeightLimiter {
  private windowStart = 0;
  private used = 0;
  private strikes = 0;
  private bannedUntil = 0;
  private banMs = 120_000;
  /** End of the Retry-After of the last 429: calls before it are strikes. */
  private limitedUntil = 0;

  constructor(readonly limitPerMinute: number) {}

  /** Charges a call; returns the weight used in this minute and whether to refuse. */
  charge(now: number, weight: number, forced: { force429: boolean; bannedUntil: number }): WeightVerdict {
    const minute = Math.floor(now / 60_000) * 60_000;
    if (minute !== this.windowStart) {
      this.windowStart = minute;
      this.used = 0;
    }
    const banUntil = Math.max(this.bannedUntil, forced.bannedUntil);
    if (now < banUntil) return { used: this.used, refuse: { status: 418, retryAfterSec: Math.ceil((banUntil - now) / 1000), until: banUntil } };
    const retryAfterSec = Math.ceil((minute + 60_000 - now) / 1000);
    if (now >= this.limitedUntil) this.strikes = 0;
    if (forced.force429 || this.used + weight > this.limitPerMinute) {
      // Calling on while limited is what gets an IP banned.
      this.strikes++;
      this.limitedUntil = minute + 60_000;
      if (this.strikes > 3) {
        this.bannedUntil = now + this.banMs;
        this.banMs = Math.min(this.banMs * 2, 3 * 86_400_000);
        this.strikes = 0;
        return { used: this.used, refuse: { status: 418, retryAfterSec: Math.ceil((this.bannedUntil - now) / 1000), until: this.bannedUntil } };
      }
      return { used: this.used, refuse: { status: 429, retryAfterSec, until: minute + 60_000 } };
    }
    this.strikes = 0;
    this.used += weight;
    return { used: this.used };
  }
}

/** An ORDERS entry of exchangeInfo `rateLimits`: at most `limit` new orders per window. */
export interface OrderLimit {
  readonly interval: 'SECOND' | 'MINUTE' | 'DAY';
  readonly intervalNum: number;
  readonly limit: number;
}

/**
 * Binance's order limits per account. Spot: 100 per 10 s and 200,000 a day
 * (https://github.com/binance/binance-spot-api-docs/blob/master/faqs/order_count_decrement.md);
 * USD-M: 1,200 a minute and 300 per 10 s
 * (https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3).
 */
export const DEFAULT_ORDER_LIMITS: Readonly<Record<Market, readonly OrderLimit[]>> = {
  spot: [
    { interval: 'SECOND', intervalNum: 10, limit: 100 },
    { interval: 'DAY', intervalNum: 1, limit: 200_000 },
  ],
  futures: [
    { interval: 'MINUTE', intervalNum: 1, limit: 1200 },
    { interval: 'SECOND', intervalNum: 10, limit: 300 },
  ],
};

const UNIT_MS = { SECOND: 1000, MINUTE: 60_000, DAY: 86_400_000 } as const;

/**
 * New orders per account, counted in fixed windows of server time as
 * Binance counts them ("10 SECOND intervals reset at 00, 10, 20... seconds
 * of each minute", 1 DAY at 00:00 UTC) and reported in
 * X-MBX-ORDER-COUNT-(n)(letter). An order placed while a window is full is
 * refused with 429 and -1015 "Too many new orders; current limit is %s
 * orders per %s." (errors.md). Spot's count of *unfilled* orders (a fill
 * takes an order off) is not modelled: every order counts, which is what a
 * spot account whose orders never fill sees.
 */
export class OrderCounter {
  private readonly stamps: number[] = [];

  constructor(readonly limits: readonly OrderLimit[] = []) {}

  record(now: number): void {
    this.stamps.push(now);
    const dayAgo = now - 86_400_000;
    while (this.stamps.length > 0 && this.stamps[0]! < dayAgo) this.stamps.shift();
  }

  countSince(since: number): number {
    let n = 0;
    for (let i = this.stamps.length - 1; i >= 0 && this.stamps[i]! >= since; i--) n++;
    return n;
  }

  /** Orders in the window of `l` that holds `now`. */
  count(now: number, l: OrderLimit): number {
    const ms = UNIT_MS[l.interval] * l.intervalNum;
    return this.countSince(Math.floor(now / ms) * ms);
  }

  /** The refusal for an order placed now, when a window is already full; Retry-After runs to that window's end. */
  refusal(now: number): { error: BinanceError; retryAfterSec: number } | undefined {
    for (const l of this.limits) {
      if (this.count(now, l) < l.limit) continue;
      const ms = UNIT_MS[l.interval] * l.intervalNum;
      const end = Math.floor(now / ms) * ms + ms;
      return { error: err(429, -1015, `Too many new orders; current limit is ${l.limit} orders per ${l.intervalNum} ${l.interval}.`), retryAfterSec: Math.max(1, Math.ceil((end - now) / 1000)) };
    }
    return undefined;
  }

  /** X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter) for every limit. */
  headers(now: number): Record<string, string> {
    return Object.fromEntries(this.limits.map((l) => [`X-MBX-ORDER-COUNT-${l.intervalNum}${l.interval[0]}`, String(this.count(now, l))]));
  }
}
