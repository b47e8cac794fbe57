/**
 * Client order ids: unique per account AND per database.
 *
 * Why a namespace: the id used to be derived from (strategy, symbol, intent
 * sequence) only, so a fresh database restarted the sequence and reused the
 * first ids of the previous one. After a 503 the lookup by client id then
 * found the earlier database's 9-minute-old order and adopted it as the new
 * intent's (reported FILLED though nothing had executed). Binance accepts a
 * client id again once the first order with it is final, so the exchange
 * cannot catch that. Every database now gets a random namespace when it is
 * created (migration 0006), kept in it, and part of every id it hands out.
 *
 * Layout, within Binance's ^[.A-Z:/a-z0-9_-]{1,36}$ (spot "New order" and
 * USD-M "New Order" both document newClientOrderId with that pattern):
 *
 *   tr-<namespace: 8 base32>-<owner: 5 base32>-<sequence: base36>
 *
 * e.g. "tr-k3j9x2ab-q7fzm-2s". At most 3+8+1+5+1+11 = 29 characters, so the
 * OCO suffixes "-s" and "-l" still fit. The owner code is a hash of the
 * strategy name: the id names who owns the order without a table, which
 * lets a start-up rebuild order rows a lost WAL tail dropped (the exchange
 * is the journal) with their owner. The sequence is the account-wide intent
 * number, so an id found on the exchange also tells the sequence to skip
 * past it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';

export const NAMESPACE_KEY = 'orders.namespace';
const NAMESPACE = /^[a-z2-7]{8}$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A fresh random namespace: 8 base32 characters, 40 bits. */
export function newNamespace(): string {
  return base32(randomBytes(5)).slice(0, 8);
}

const CODES = new Map<string, string>();

/** The owner's 5-character code (25 bits of SHA-256 of the strategy name); a hash per order is not free, so it is kept. */
export function ownerCode(strategy: string): string {
  let code = CODES.get(strategy);
  if (code === undefined) {
    code = base32(createHash('sha256').update(strategy).digest()).slice(0, 5);
    CODES.set(strategy, code);
  }
  return code;
}

export interface ParsedClientOrderId {
  readonly namespace: string;
  readonly ownerCode: string;
  readonly seq: number;
  /** "-s" (an OCO's stop leg) or "-l" (the list id), when present. */
  readonly suffix?: 's' | 'l';
}

const LAYOUT = /^tr-([a-z2-7]{8})-([a-z2-7]{5})-([0-9a-z]{1,11})(?:-(s|l))?$/;

/** Reads an id in the layout above; undefined for anything else (older ids, other bots, orders placed by hand). */
export function parseClientOrderId(cid: string): ParsedClientOrderId | undefined {
  const m = LAYOUT.exec(cid);
  if (!m) return undefined;
  const seq = parseInt(m[3]!, 36);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { namespace: m[1]!, ownerCode: m[2]!, seq, ...(m[4] ? { suffix: m[4] as 's' | 'l' } : {}) };
}

export class ClientOrderIds {
  constructor(readonly namespace: string) {
    if (!NAMESPACE.test(namespace)) throw new RangeError(`client order id namespace must be 8 base32 characters, got ${JSON.stringify(namespace)}`);
  }

  /**
   * The namespace this database was created with. A database from before
   * migration 0006 gets one now; an unreadable value is an error, never
   * silently replaced (a new namespace would orphan the open orders' ids).
   */
  static of(store: Store, now: number): ClientOrderIds {
    const saved = readKv(store, NAMESPACE_KEY, z.string().regex(NAMESPACE));
    if (!saved.ok) throw new Error(`cannot read the client order id namespace: ${saved.error}`);
    if (saved.value) return new ClientOrderIds(saved.value);
    const ns = newNamespace();
    writeKv(store, NAMESPACE_KEY, ns, now);
    return new ClientOrderIds(ns);
  }

  /** The id of one intent: the same (owner, sequence) always gives the same id in this database. */
  forIntent(strategy: string, seq: number): string {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`intent sequence must be a non-negative integer, got ${seq}`);
    return `tr-${this.namespace}-${ownerCode(strategy)}-${seq.toString(36)}`;
  }

  /** Whether an id was handed out by this database (an OCO leg's or list's id included). */
  owns(cid: string): boolean {
    return parseClientOrderId(cid)?.namespace === this.namespace;
  }
}

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
