/**
 * The clean-stop mark decides whether a start rebuilds lost order rows from
 * the exchange (order-recovery.ts), and from when: the start of the first
 * run whose orders were never recovered. A start that fails before its
 * recovery must not move that time forward (its predecessor's orders would
 * fall outside the scan), and a clean stop ends the need.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markCleanStop, markRecovered, takeCleanStop } from '../../src/execution/order-recovery.ts';
import { Store } from '../../src/store/store.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function store(): Promise<Store> {
  dir = mkdtempSync(join(tmpdir(), 'clean-stop-'));
  const s = Store.open(join(dir, 'trader.db'));
  await s.migrate();
  return s;
}

describe('the clean-stop mark', () => {
  it('a fresh database is clean; a crash is remembered from the first unrecovered start, through failed starts, until the recovery runs; a clean stop clears it', async () => {
    const s = await store();
    expect(takeCleanStop(s, 1_000), 'a fresh database has nothing to lose').toEqual({ clean: true });
    // Killed: the next start sees the run that began at 1000 did not stop cleanly.
    expect(takeCleanStop(s, 5_000)).toEqual({ clean: false, unrecoveredSince: 1_000 });
    // That start failed before its recovery (the exchange was down): the next one still scans from 1000.
    expect(takeCleanStop(s, 9_000)).toEqual({ clean: false, unrecoveredSince: 1_000 });
    // This one recovered, then crashed: only its own orders (from 9000 on) can be lost now.
    markRecovered(s, 9_000);
    expect(takeCleanStop(s, 12_000)).toEqual({ clean: false, unrecoveredSince: 9_000 });
    markRecovered(s, 12_000);
    markCleanStop(s, 15_000);
    expect(takeCleanStop(s, 20_000), 'a clean stop: nothing to rebuild').toEqual({ clean: true });
    s.close();
  });

  it('a database from before the mark that holds orders is treated as unclean (the scan is cheap, a lost row is not)', async () => {
    const s = await store();
    s.sqlite.prepare("INSERT INTO orders (client_order_id, intent_id, strategy, market, symbol, side, type, quantity, reduce_only, status, filled_quantity, created_at, updated_at, source, position_side) VALUES ('x', 'i', 'a', 'futures', 'BTCUSDT', 'BUY', 'MARKET', '1', 0, 'FILLED', '1', 1, 1, 'strategy', 'BOTH')").run();
    expect(takeCleanStop(s, 2_000).clean).toBe(false);
    s.close();
  });
});
