/**
 * USD-M listen keys: one active key per account, valid 60 minutes after its
 * creation or last keepalive (Binance's rule). POST returns the active key
 * (extending it) rather than a second one.
 */
import { randomBytes } from 'node:crypto';

export const LISTEN_KEY_TTL_MS = 60 * 60 * 1000;

interface Entry {
  key: string;
  account: string;
  expiresAt: number;
}

export class ListenKeys {
  private readonly byAccount = new Map<string, Entry>();
  private readonly byKey = new Map<string, Entry>();

  create(account: string, now: number): string {
    const existing = this.byAccount.get(account);
    if (existing && existing.expiresAt > now) {
      existing.expiresAt = now + LISTEN_KEY_TTL_MS;
      return existing.key;
    }
    if (existing) this.byKey.delete(existing.key);
    const entry = { key: randomBytes(32).toString('base64url').slice(0, 64), account, expiresAt: now + LISTEN_KEY_TTL_MS };
    this.byAccount.set(account, entry);
    this.byKey.set(entry.key, entry);
    return entry.key;
  }

  keepAlive(account: string, now: number): string | undefined {
    const e = this.byAccount.get(account);
    if (!e || e.expiresAt <= now) return undefined;
    e.expiresAt = now + LISTEN_KEY_TTL_MS;
    return e.key;
  }

  remove(account: string): string | undefined {
    const e = this.byAccount.get(account);
    if (!e) return undefined;
    this.byAccount.delete(account);
    this.byKey.delete(e.key);
    return e.key;
  }

  /** The account of a valid key, or undefined. */
  accountOf(key: string, now: number): string | undefined {
    const e = this.byKey.get(key);
    return e && e.expiresAt > now ? e.account : undefined;
  }

  /** Keys that have expired by now (removed as they are returned). */
  takeExpired(now: number): Array<{ key: string; account: string }> {
    const out: Array<{ key: string; account: string }> = [];
    for (const e of this.byKey.values()) {
      if (e.expiresAt <= now) {
        out.push({ key: e.key, account: e.account });
        this.byKey.delete(e.key);
        if (this.byAccount.get(e.account) === e) this.byAccount.delete(e.account);
      }
    }
    return out;
  }

  /** Forces a key (or every key of an account) to expire now: the control API's "expire a listenKey". */
  expire(keyOrAccount: string | undefined, now: number): void {
    for (const e of this.byKey.values()) if (!keyOrAccount || e.key === keyOrAccount || e.account === keyOrAccount) e.expiresAt = now;
  }
}
