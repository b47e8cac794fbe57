/**
 * The account-wide intent sequence. Each order intent takes the next number,
 * and no number is ever handed out twice, even across a crash: the client
 * order id is derived from (strategy, symbol, number) and so is never reused.
 *
 * Numbers are reserved in blocks of BLOCK: the stored value is the end of the
 * reserved block, committed durably (fsync, even though the database runs
 * synchronous=NORMAL) before any number in it is used, so an order costs no
 * extra fsync before it is sent. After a restart the next block starts past
 * the stored end; the unused rest of the old block is skipped (gaps are harmless).
 * The start-up recovery also skips past every number it finds on the exchange.
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

const KEY = 'intent.seq';
const BLOCK = 1000;

export class IntentSequence {
  private last: number;
  private reserved: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    const saved = readKv(store, KEY, z.number().int().nonnegative());
    if (!saved.ok) throw new Error(`cannot read the intent sequence: ${saved.error}`);
    this.last = saved.value ?? 0;
    this.reserved = this.last;
  }

  next(): number {
    if (this.last >= this.reserved) {
      this.reserved = this.last + BLOCK;
      this.store.durably(() => writeKv(this.store, KEY, this.reserved, this.clock.now()));
    }
    this.last++;
    return this.last;
  }

  /** Never hands out n or anything below it again (numbers an earlier run used, found on the exchange). */
  skipPast(n: number): void {
    if (n <= this.last) return;
    this.last = n;
    if (this.last >= this.reserved) {
      this.reserved = this.last + BLOCK;
      this.store.durably(() => writeKv(this.store, KEY, this.reserved, this.clock.now()));
    }
  }
}
