/**
 * Client order ids carry this database's namespace (issue 18): a fresh
 * database restarted the intent sequence and reused the first ids of the
 * earlier one, and a lookup after a 503 adopted the earlier database's
 * order. Binance's pattern for newClientOrderId / listClientOrderId is
 * ^[.A-Z:/a-z0-9_-]{1,36}$ (binance-spot-api-docs rest-api.md "New order
 * (TRADE)"; USD-M "New Order (TRADE)":
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientOrderIds, NAMESPACE_KEY, ownerCode, parseClientOrderId } from '../../src/execution/client-order-ids.ts';
import { readKv, writeKv } from '../../src/store/kv.ts';
import { Store } from '../../src/store/store.ts';
import { z } from 'zod';

const BINANCE_ID = /^[.A-Z:/a-z0-9_-]{1,36}$/;

describe('client order ids', () => {
  it('are deterministic per (owner, sequence) within a database, distinct across intents, and Binance-valid with the OCO suffixes', () => {
    const ids = new ClientOrderIds('abcdefgh');
    const a = ids.forIntent('rsi', 7);
    expect(ids.forIntent('rsi', 7), 'same intent, same id (the lookup after a crash)').toBe(a);
    const seen = new Set<string>();
    for (const s of ['rsi', 'macd', 'a-very-long-strategy-name-with-many-characters']) for (let i = 0; i < 700; i++) seen.add(ids.forIntent(s, i));
    expect(seen.size).toBe(2100);
    for (const id of [...seen, ids.forIntent('x', Number.MAX_SAFE_INTEGER)]) {
      expect(id).toMatch(BINANCE_ID);
      expect(`${id}-s`).toMatch(BINANCE_ID);
      expect(`${id}-l`).toMatch(BINANCE_ID);
    }
    expect(() => ids.forIntent('rsi', -1)).toThrow(RangeError);
    expect(() => new ClientOrderIds('ABC')).toThrow(/8 base32/);
  });

  it('name their namespace, owner and sequence, and another namespace is not ours', () => {
    const mine = new ClientOrderIds('abcdefgh');
    const other = new ClientOrderIds('zzzzzzzz');
    const id = mine.forIntent('rsi', 1234);
    expect(parseClientOrderId(id)).toEqual({ namespace: 'abcdefgh', ownerCode: ownerCode('rsi'), seq: 1234 });
    expect(parseClientOrderId(`${id}-s`)).toMatchObject({ seq: 1234, suffix: 's' });
    expect(mine.owns(id)).toBe(true);
    expect(mine.owns(`${id}-l`)).toBe(true);
    expect(other.owns(id), 'the same intent of another database is a stranger').toBe(false);
    expect(other.forIntent('rsi', 1234)).not.toBe(id);
    for (const foreign of ['tr-4oz2u7qk3d5ejq2xtcv7m6gyqa', 'web_1a2b3c', 'autoclose-123', 'x-ABC']) expect(mine.owns(foreign)).toBe(false);
  });

  it('each database gets its own namespace when it is created, kept across opens; an unreadable one is an error, never replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cid-ns-'));
    try {
      const open = async (name: string): Promise<Store> => {
        const s = Store.open(join(dir, name));
        await s.migrate();
        return s;
      };
      const s1 = await open('a.db');
      const ns1 = ClientOrderIds.of(s1, 0).namespace;
      expect(readKv(s1, NAMESPACE_KEY, z.string()), 'made by the migration that created the database').toEqual({ ok: true, value: ns1 });
      s1.close();
      const again = await open('a.db');
      expect(ClientOrderIds.of(again, 0).namespace, 'kept in the database').toBe(ns1);
      writeKv(again, NAMESPACE_KEY, 'not a namespace', 0);
      expect(() => ClientOrderIds.of(again, 0)).toThrow(/cannot read the client order id namespace/);
      again.close();
      const s2 = await open('b.db');
      expect(ClientOrderIds.of(s2, 0).namespace, 'a fresh database, a fresh namespace').not.toBe(ns1);
      s2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
