/**
 * DB_URL. Only SQLite is supported today; all SQL goes through kysely so a
 * PostgreSQL dialect can be added later without touching the repositories.
 */
export type DbTarget = { kind: 'sqlite'; file: string };

export const DB_URL_HELP = 'supported: sqlite:<path> (e.g. sqlite:data/trader.db, sqlite:/var/lib/trader/trader.db) or sqlite::memory:';

export function parseDbUrl(url: string): { ok: true; target: DbTarget } | { ok: false; message: string } {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(url);
  if (!m) return { ok: false, message: `expected a URL with a scheme, got ${JSON.stringify(url)}; ${DB_URL_HELP}` };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'sqlite') return { ok: false, message: `scheme "${scheme}" is not supported; ${DB_URL_HELP}` };
  // sqlite:path, sqlite://path (relative) and sqlite:///abs/path all work.
  let rest = m[2]!;
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') return { ok: false, message: `no file path in ${JSON.stringify(url)}; ${DB_URL_HELP}` };
  return { ok: true, target: { kind: 'sqlite', file: rest } };
}
