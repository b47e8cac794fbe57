/**
 * The account-wide intent sequence. Each order intent takes the next number,
 * committed to SQLite before the intent is published, so a number is never
 * handed out twice, even across a crash; the client order id is derived from
 * (strategy, symbol, number) and therefore never reused either.
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

const KEY = 'intent.seq';

export class IntentSequence {
  private last: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    const saved = readKv(store, KEY, z.number().int().nonnegative());
    if (!saved.ok) throw new Error(`cannot read the intent sequence: ${saved.error}`);
    this.last = saved.value ?? 0;
  }

  next(): number {
    this.last++;
    writeKv(this.store, KEY, this.last, this.clock.now());
    return this.last;
  }
}
