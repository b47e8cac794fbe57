import { createHash, randomUUID } from 'node:crypto';

/** A random id for a process run, used to tell runs apart in logs and the journal. */
export function newRunId(): string {
  return randomUUID();
}

/**
 * Deterministic client order id for one trading intent.
 *
 * Why deterministic: after a crash or a timeout the bot must be able to
 * recompute the id of the order it may already have sent and look it up,
 * instead of sending a second one. The same (strategy, symbol, sequence)
 * always gives the same id; any change gives a different one.
 *
 * Binance accepts ^[.A-Z:/a-z0-9_-]{1,36}$; we use "tr-" plus 26 base32
 * characters of SHA-256 (130 bits: collisions are not a practical concern).
 */
export function clientOrderId(strategy: string, symbol: string, intentSeq: number): string {
  if (!Number.isSafeInteger(intentSeq) || intentSeq < 0) throw new RangeError(`intent sequence must be a non-negative integer, got ${intentSeq}`);
  const digest = createHash('sha256').update(`${strategy}\u0000${symbol}\u0000${intentSeq}`).digest();
  return 'tr-' + base32(digest).slice(0, 26);
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}
