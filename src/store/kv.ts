/**
 * Small durable settings the engines keep between runs (trading states, the
 * intent sequence, peak equity), one JSON value per key in the kv table.
 * Values are parsed with the caller's zod schema: a row written by an older
 * build that no longer parses is reported, never trusted.
 */
import type { z } from 'zod';
import type { Store } from './store.ts';

export function readKv<T>(store: Store, key: string, schema: z.ZodType<T>): { ok: true; value: T | undefined } | { ok: false; error: string } {
  const row = store.all(store.db.selectFrom('kv').select('value').where('key', '=', key))[0];
  if (!row) return { ok: true, value: undefined };
  let json: unknown;
  try {
    json = JSON.parse(row.value);
  } catch (err) {
    return { ok: false, error: `kv ${key}: not JSON (${(err as Error).message})` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, error: `kv ${key}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
  return { ok: true, value: parsed.data };
}

export function writeKv(store: Store, key: string, value: unknown, now: number): void {
  const text = JSON.stringify(value);
  store.run(
    store.db
      .insertInto('kv')
      .values({ key, value: text, updated_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: text, updated_at: now })),
  );
}
