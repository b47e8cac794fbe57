/**
 * Request-weight accounting as Binance does it: a budget per minute (per
 * IP), reported on every response in X-MBX-USED-WEIGHT-1M; past the budget
 * 429 with Retry-After; a client that keeps calling while limited (before
 * the Retry-After it was given has passed) is banned with 418 (2 minutes,
 * doubling for repeat offences, as Binance scales bans). A client that waits
 * each 429 out is never banned.
 */
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

/** Order-rate counters reported in X-MBX-ORDER-COUNT-* headers. */
export class OrderCounter {
  private readonly stamps: number[] = [];

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
}
