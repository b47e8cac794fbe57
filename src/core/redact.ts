/**
 * Redaction for anything that leaves the process as text (logs, heartbeat,
 * notifications, API responses). Two layers, because either alone misses
 * something:
 *  - by key: a value stored under a key that names a secret (apiKey,
 *    secret, token, password, signature, listenKey, authorization, ...) is
 *    replaced, however deep in the object it sits;
 *  - by value: the actual secret strings we know (from settings) are cut out
 *    of any text, so a secret inside an error message or a URL is caught too.
 */
import { Secret } from './secret.ts';

export const REDACTED = '[REDACTED]';

const SECRET_KEY = /(api[-_]?key|secret|token|webhook|passw(or)?d|passphrase|signature|authorization|private[-_]?key|listen[-_]?key|cookie)/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

const MAX_DEPTH = 8;

/**
 * Returns a copy of value with secret-named keys redacted (deep). Errors are
 * turned into plain { type, message, stack, code } objects so their text can
 * be scrubbed by value later. Cycles and very deep objects are cut.
 */
export function redactKeys(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Secret) return REDACTED;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: value.message };
    if (value.stack) out.stack = value.stack;
    for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : redactKeys(v, depth + 1, seen);
    if (value.cause !== undefined) out.cause = redactKeys(value.cause, depth + 1, seen);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redactKeys(v, depth + 1, seen));
  // Leave values with their own JSON form (Decimal, Date) to it.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : redactKeys(v, depth + 1, seen);
  return out;
}

/**
 * Cuts known secret values out of text. Built once from the configured
 * secrets; also matches their JSON-escaped form, since log lines are JSON.
 */
export class ValueScrubber {
  private readonly needles: string[];

  constructor(secrets: Iterable<string>) {
    const set = new Set<string>();
    for (const s of secrets) {
      // Very short values would redact innocent text and are not real keys.
      if (s.length < 6) continue;
      set.add(s);
      set.add(JSON.stringify(s).slice(1, -1));
    }
    // Longest first so a secret that contains another is cut whole.
    this.needles = [...set].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.needles.length === 0;
  }

  scrub(text: string): string {
    let out = text;
    for (const n of this.needles) if (out.includes(n)) out = out.split(n).join(REDACTED);
    return out;
  }
}
