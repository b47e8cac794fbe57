/**
 * The clock is injected everywhere domain code needs the time, so a backtest
 * or a test can drive time with data instead of waiting for the wall clock.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch, UTC. */
  now(): number;
  /** Runs fn once after ms. */
  after(ms: number, fn: () => void): TimerHandle;
  /** Runs fn every ms until cancelled. */
  every(ms: number, fn: () => void): TimerHandle;
}

/** The wall clock, with real timers. */
export class LiveClock implements Clock {
  now(): number {
    return Date.now();
  }

  after(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  }

  every(ms: number, fn: () => void): TimerHandle {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  }
}

interface PendingTimer {
  id: number;
  due: number;
  interval: number | undefined;
  fn: () => void;
}

/**
 * A clock that only moves when told to (by a test or by replayed data).
 * Timers fire in due-time order, ties in creation order, and a timer that
 * fires sees now() equal to its due time, exactly as it would live.
 */
export class TestClock implements Clock {
  private current: number;
  private nextId = 1;
  private timers: PendingTimer[] = [];

  constructor(start = Date.UTC(2024, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  after(ms: number, fn: () => void): TimerHandle {
    return this.add(ms, undefined, fn);
  }

  every(ms: number, fn: () => void): TimerHandle {
    if (!(ms > 0)) throw new RangeError(`TestClock.every needs a positive interval, got ${ms}`);
    return this.add(ms, ms, fn);
  }

  /** Moves time forward to t, firing every timer due on the way. */
  advanceTo(t: number): void {
    if (t < this.current) throw new RangeError(`TestClock cannot go back: now=${this.current} target=${t}`);
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next.due > t) break;
      this.current = next.due;
      if (next.interval === undefined) this.remove(next.id);
      else next.due += next.interval;
      next.fn();
    }
    this.current = t;
  }

  advanceBy(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  /** Number of timers still pending (for tests that check nothing leaks). */
  pendingTimers(): number {
    return this.timers.length;
  }

  private add(ms: number, interval: number | undefined, fn: () => void): TimerHandle {
    const timer: PendingTimer = { id: this.nextId++, due: this.current + Math.max(0, ms), interval, fn };
    this.timers.push(timer);
    return { cancel: () => this.remove(timer.id) };
  }

  private nextDue(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.timers) {
      if (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    }
    return best;
  }

  private remove(id: number): void {
    this.timers = this.timers.filter((t) => t.id !== id);
  }
}

const DAY_MS = 86_400_000;

/** UTC calendar day of a timestamp, as YYYY-MM-DD. */
export function utcDay(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

/** Start of the UTC day containing ts. */
export function utcDayStart(ts: number): number {
  return Math.floor(ts / DAY_MS) * DAY_MS;
}
