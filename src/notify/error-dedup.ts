/**
 * Deduplication of ERROR log lines before they become notifications.
 *
 * A failure that repeats (the exchange down, a handler throwing on every
 * candle) would otherwise send the same message hundreds of times. The first
 * occurrence of a message goes out at once; repeats within the window are
 * only counted; at the end of the window the count goes out as one line
 * ("(repeated N times)") and a new window starts, so a persistent error
 * speaks at most once per window. A window with no repeat ends quietly.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { errorDedupKey, errorMessage } from './messages.ts';

export interface ErrorEntry {
  msg: string;
  component?: string | undefined;
  time?: string | undefined;
}

interface Slot {
  last: ErrorEntry;
  repeats: number;
  timer: TimerHandle;
}

export class ErrorDeduper {
  private readonly slots = new Map<string, Slot>();
  private suppressed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
    private readonly emit: (text: string) => void,
    /** Distinct messages tracked at once; the oldest is flushed to make room. */
    private readonly maxKeys = 200,
  ) {}

  add(entry: ErrorEntry): void {
    const key = errorDedupKey(entry);
    const slot = this.slots.get(key);
    if (slot) {
      slot.repeats++;
      slot.last = entry;
      this.suppressed++;
      return;
    }
    if (this.slots.size >= this.maxKeys) {
      const oldest = this.slots.keys().next().value;
      if (oldest !== undefined) this.flush(oldest, false);
    }
    this.emit(errorMessage(entry));
    this.slots.set(key, { last: entry, repeats: 0, timer: this.arm(key) });
  }

  /** Repeats merged into an earlier line since start (reported as counts, not one by one). */
  get suppressedTotal(): number {
    return this.suppressed;
  }

  stop(): void {
    for (const s of this.slots.values()) s.timer.cancel();
    this.slots.clear();
  }

  private arm(key: string): TimerHandle {
    return this.clock.after(this.windowMs, () => this.flush(key, true));
  }

  /** Ends a key's window: reports its repeats, and keeps watching (renew) only if there were any. */
  private flush(key: string, renew: boolean): void {
    const slot = this.slots.get(key);
    if (!slot) return;
    slot.timer.cancel();
    if (slot.repeats === 0) {
      this.slots.delete(key);
      return;
    }
    this.emit(errorMessage(slot.last, slot.repeats));
    if (renew) {
      slot.repeats = 0;
      slot.timer = this.arm(key);
      // Re-insert so Map order stays "oldest window first" for eviction.
      this.slots.delete(key);
      this.slots.set(key, slot);
    } else this.slots.delete(key);
  }
}
