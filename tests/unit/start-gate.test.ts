/**
 * The start gate on a test clock: which failures are retried (the venue's
 * own classification), how long it waits (exponential, jittered, capped,
 * at least a stated Retry-After), and that a stop request ends a wait or a
 * call in flight at once.
 */
import { describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { ConfigError, EXIT } from '../../src/core/errors.ts';
import { START_BACKOFF, StartCancelled, StartGate, startExitCode, startRetryDelay, transientFailure } from '../../src/kernel/start-gate.ts';
import { VenueError } from '../../src/venues/venue.ts';

/** Lets promise callbacks run (the gate's awaits) without moving the clock. */
const ticks = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe('start gate', () => {
  it('classifies by VenueError kind: 5xx / timeouts / 429 / 418 / clock skew are waited out; refused keys and rejections are not', () => {
    for (const kind of ['RETRYABLE', 'AMBIGUOUS', 'RATE_LIMITED', 'BANNED', 'CLOCK_SKEW'] as const) expect(transientFailure(new VenueError(kind, 'x')), kind).toBeDefined();
    for (const kind of ['AUTH', 'REJECTED', 'UNKNOWN_ORDER', 'DUPLICATE'] as const) expect(transientFailure(new VenueError(kind, 'x')), kind).toBeUndefined();
    expect(transientFailure(new Error('a bug')), 'anything unclassified ends the start').toBeUndefined();
    expect(transientFailure(new VenueError('RATE_LIMITED', 'x', { retryAfterMs: 7000 }))).toEqual({ retryAfterMs: 7000 });
    expect(startExitCode(new VenueError('AUTH', 'x', { code: -2015 })), 'keys are configuration').toBe(EXIT.CONFIG);
    expect(startExitCode(new ConfigError([{ source: 'environment', field: 'X', message: 'y' }]))).toBe(EXIT.CONFIG);
    expect(startExitCode(new StartCancelled('received SIGINT'))).toBe(EXIT.OK);
    expect(startExitCode(new VenueError('REJECTED', 'x'))).toBe(EXIT.SOFTWARE);
  });

  it('waits 1 s, then doubles with jitter up to 30 s; never under 1 s; a stated Retry-After is honoured up to 15 min', () => {
    const low = (n: number): number => startRetryDelay(n, () => 0);
    const high = (n: number): number => startRetryDelay(n, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6, 7, 10].map(low)).toEqual([1000, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    expect([1, 2, 3, 4, 5, 6, 7, 10].map(high)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(startRetryDelay(1, () => 0.5, 12_000), 'Retry-After 12 s').toBe(12_000);
    expect(startRetryDelay(1, () => 0.5, 3_600_000), 'a ban of an hour: looked at again after 15 min').toBe(START_BACKOFF.statedCapMs);
  });

  it('retries a transient failure after the backoff, reporting each retry, and returns the result', async () => {
    const clock = new TestClock(0);
    const retries: Array<[string, number, number]> = [];
    const gate = new StartGate({ clock, random: () => 0, onRetry: (what, n, _err, ms) => retries.push([what, n, ms]) });
    let calls = 0;
    const p = gate.run('account', async () => {
      calls++;
      if (calls <= 2) throw new VenueError('RETRYABLE', 'account: RETRYABLE (HTTP 503)');
      return 'balances';
    });
    await ticks();
    expect(calls).toBe(1);
    clock.advanceTo(999);
    await ticks();
    expect(calls, 'not before the wait is over').toBe(1);
    clock.advanceTo(1000);
    await ticks();
    expect(calls).toBe(2);
    clock.advanceTo(2000);
    await expect(p).resolves.toBe('balances');
    expect(retries).toEqual([
      ['account', 1, 1000],
      ['account', 2, 1000],
    ]);
  });

  it('a permanent failure is thrown at once, without a retry', async () => {
    const gate = new StartGate({ clock: new TestClock(0), onRetry: () => expect.fail('no retry') });
    await expect(gate.run('exchange connection', () => Promise.reject(new VenueError('AUTH', 'refused', { code: -2015 })))).rejects.toMatchObject({ kind: 'AUTH' });
  });

  it('a stop request ends a backoff wait, and a call in flight, at once', async () => {
    const clock = new TestClock(0);
    const stop = new AbortController();
    const gate = new StartGate({ clock, signal: stop.signal, random: () => 0 });
    const waiting = gate.run('exchange info', () => Promise.reject(new VenueError('RETRYABLE', '503')));
    await ticks();
    stop.abort('received SIGINT');
    await expect(waiting, 'in the wait, with no clock move').rejects.toBeInstanceOf(StartCancelled);

    const stop2 = new AbortController();
    const gate2 = new StartGate({ clock, signal: stop2.signal });
    let release!: () => void;
    const hanging = new Promise<void>((r) => (release = r));
    const inCall = gate2.run('account', () => hanging);
    await ticks();
    stop2.abort('received SIGTERM');
    await expect(inCall).rejects.toThrow('start-up cancelled: received SIGTERM');
    // The teardown waits for the abandoned call to settle (bounded by the clock).
    const settled = gate2.settled(2000);
    release();
    await expect(settled).resolves.toBeUndefined();
  });
});
