/**
 * The append-only journal: the audit trail of every signal, order request,
 * denial, order update, fill and trading-state change. The database refuses
 * UPDATE and DELETE on it (triggers in the initial migration).
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
  constructor(
    private readonly store: Store,
    private readonly runId: string,
  ) {}

  /** Appends one event; returns its sequence number. */
  append(channel: string, payload: { kind: string; ts: number; eventTs?: number }): number {
    const res = this.store.run(
      this.store.db.insertInto('journal').values({
        ts: payload.ts,
        event_ts: payload.eventTs ?? null,
        channel,
        kind: payload.kind,
        run_id: this.runId,
        // Dec serializes as its exact string through toJSON.
        payload: JSON.stringify(payload),
      }),
    );
    return Number(res.lastInsertRowid);
  }

  /** Rows after a sequence number, oldest first (for tools and tests). */
  since(seq = 0, limit = 1000): JournalRow[] {
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
  return () => offs.forEach((off) => off());
}
