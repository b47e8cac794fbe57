/**
 * The append-only journal: the audit trail of every signal, order request,
 * denial, order update, fill and trading-state change. The database refuses
 * UPDATE and DELETE on it (triggers in the initial migration).
 *
 * Rows are written in one transaction 5 ms after the first of them, not one
 * each: with synchronous=FULL every commit is an fsync, and an order crosses
 * four journaled channels before it is sent. Why 5 ms and not the next
 * event-loop turn: the order's HTTP request is written to the socket a turn
 * or two after it is built, and a flush landing in between delayed it by the
 * fsync (the tick-to-order bench showed ccxt fetch -> socket write fall from
 * about 1 ms to 0.45 ms at p50 with the timer). The journal records;
 * it is not what the bot relies on after a crash (the orders and fills rows
 * are, and those are committed before anything depends on them), so a crash
 * can lose at most the rows of the turn it happened in.
 */
import type { Bus } from '../bus/bus.ts';
import { ALL_SIGNALS } from '../bus/bus.ts';
import type { Channel, Channels } from '../model/events.ts';
import type { Store } from './store.ts';

export interface JournalRow {
  seq: number;
  ts: number;
  event_ts: number | null;
  channel: string;
  kind: string;
  run_id: string;
  payload: string;
}

export class Journal {
  private pending: Array<() => void> = [];
  private scheduled: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly runId: string,
  ) {}

  /** Queues one event for the next flush. */
  append(channel: string, payload: { kind: string; ts: number; eventTs?: number }): void {
    // Serialized now: the payload is what the event was at this moment (Dec as its exact string).
    const row = { ts: payload.ts, event_ts: payload.eventTs ?? null, channel, kind: payload.kind, run_id: this.runId, payload: JSON.stringify(payload) };
    this.later(() => this.store.run(this.store.db.insertInto('journal').values(row)));
  }

  /** Queues any other audit write (e.g. the signals table) into the same transaction (within 5 ms). */
  later(write: () => void): void {
    this.pending.push(write);
    this.scheduled ??= setTimeout(() => this.flush(), 5);
  }

  /** Writes everything queued, in one transaction. Safe to call at any time, and after close (no-op). */
  flush(): void {
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0 || !this.store.isOpen) return;
    const batch = this.pending;
    this.pending = [];
    this.store.transaction(() => {
      for (const w of batch) w();
    });
  }

  /** Rows after a sequence number, oldest first (for tools and tests). */
  since(seq = 0, limit = 1000): JournalRow[] {
    this.flush();
    return this.store.all<JournalRow>(this.store.db.selectFrom('journal').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit));
  }
}

/** The channels the audit trail records. */
export const JOURNALED_CHANNELS = [
  'order.request',
  'order.submit',
  'order.cancel',
  'order.denied',
  'order.update',
  'fill',
  'risk.state',
  'risk.halt',
  'reconcile.done',
  'system.shutdown',
] as const satisfies readonly Channel[];

/**
 * Subscribes the journal to the bus. It observes commands too (without
 * handling them), so the trail shows each request as the risk engine saw it.
 */
export function recordJournal(bus: Bus, journal: Journal): () => void {
  const offs = JOURNALED_CHANNELS.map((ch) => bus.observe(ch, (p: Channels[typeof ch]) => journal.append(ch, p), 'journal'));
  offs.push(bus.observe(ALL_SIGNALS, (p) => journal.append(`signal.${p.strategy}`, p), 'journal'));
  return () => {
    offs.forEach((off) => off());
    journal.flush();
  };
}
