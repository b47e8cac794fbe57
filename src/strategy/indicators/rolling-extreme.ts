/**
 * Highest (or lowest) of the last `period` values, by a monotonic deque:
 * each value enters once and leaves once, so push() is amortized O(1) and a
 * window of any length costs the same. Values live in preallocated
 * Float64Array rings; nothing is allocated per push.
 *
 * The deque holds the window's candidates in arrival order with strictly
 * decreasing (max) or increasing (min) values; its front is the extreme.
 */
export class RollingExtreme {
  private readonly values: Float64Array;
  /** Arrival number of each held value (a float so it never wraps). */
  private readonly seqs: Float64Array;
  private head = 0;
  private size = 0;
  private seq = 0;

  constructor(
    readonly period: number,
    private readonly isMax: boolean,
  ) {
    this.values = new Float64Array(period);
    this.seqs = new Float64Array(period);
  }

  /** Adds a value; returns the extreme of the last `period` values (fewer while filling). */
  push(x: number): number {
    const cap = this.period;
    const values = this.values;
    const seq = ++this.seq;
    // Expire first: the front is the oldest held value, and at most one leaves per push.
    if (this.size > 0 && this.seqs[this.head]! <= seq - cap) {
      this.head = this.head + 1 === cap ? 0 : this.head + 1;
      this.size--;
    }
    // Drop candidates the new value dominates (ties too: the newer one lives longer).
    while (this.size > 0) {
      let back = this.head + this.size - 1;
      if (back >= cap) back -= cap;
      const v = values[back]!;
      if (this.isMax ? v > x : v < x) break;
      this.size--;
    }
    let at = this.head + this.size;
    if (at >= cap) at -= cap;
    values[at] = x;
    this.seqs[at] = seq;
    this.size++;
    return values[this.head]!;
  }

  reset(): void {
    this.head = 0;
    this.size = 0;
    this.seq = 0;
  }
}
