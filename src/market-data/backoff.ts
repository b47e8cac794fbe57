/**
 * Reconnect delays: exponential with full jitter (a random delay between 0
 * and min(cap, base * 2^attempt)), the AWS-recommended form that keeps many
 * clients from reconnecting in lockstep after an outage.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Injected for tests; Math.random in production. */
  random: () => number;
}

export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const ceiling = Math.min(o.capMs, o.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(o.random() * ceiling);
}
