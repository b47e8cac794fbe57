import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { InstanceLockedError, PathError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { InstanceLock } from '../../src/store/instance-lock.ts';
import { Journal, recordJournal } from '../../src/store/journal.ts';
import { Store } from '../../src/store/store.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

const TABLES = ['backtest_runs', 'candle_series', 'candles', 'equity_snapshots', 'fills', 'instruments', 'journal', 'kv', 'optimize_results', 'optimize_runs', 'orders', 'positions', 'reoptimize_decisions', 'risk_events', 'signals', 'sim_accounts', 'sim_balances', 'sim_orders', 'sim_positions', 'sim_symbols', 'sim_trades'];

let ws: Workspace;
const toClose: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of toClose.splice(0)) c.close();
  ws?.cleanup();
});

function open(): Store {
  const s = Store.open(ws.dbFile);
  toClose.push(s);
  return s;
}

function tables(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

describe('store: migrations', () => {
  it('creates every table on an empty database, with WAL, NORMAL sync (FULL inside durably()) and foreign keys', async () => {
    ws = makeWorkspace();
    expect(existsSync(ws.dbFile)).toBe(false);
    const store = open();
    const r = await store.migrate();
    expect(r.applied).toEqual(['0001_initial', '0002_candle_series', '0003_backtests', '0004_ledger', '0005_sim_account', '0006_order_namespace']);
    expect(r.current).toBe('0006_order_namespace');
    expect(tables(ws.dbFile)).toEqual(TABLES);
    expect(store.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.sqlite.pragma('synchronous', { simple: true }), 'NORMAL = 1').toBe(1);
    expect(store.durably(() => store.sqlite.pragma('synchronous', { simple: true })), 'FULL = 2 inside durably()').toBe(2);
    expect(store.sqlite.pragma('synchronous', { simple: true }), 'NORMAL again after it').toBe(1);
    expect(store.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(store.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('re-running is idempotent: nothing applied, nothing changed', async () => {
    ws = makeWorkspace();
    const first = open();
    await first.migrate();
    first.run(first.db.insertInto('kv').values({ key: 'trading_state', value: '"ACTIVE"', updated_at: 1 }));
    first.close();
    const schemaBefore = new Database(ws.dbFile, { readonly: true });
    const before = schemaBefore.prepare('SELECT sql FROM sqlite_master ORDER BY name').all();
    schemaBefore.close();

    const second = open();
    const r = await second.migrate();
    expect(r.applied).toEqual([]);
    expect(r.current).toBe('0006_order_namespace');
    second.close();
    const after = new Database(ws.dbFile, { readonly: true });
    expect(after.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(before);
    expect(after.prepare('SELECT value FROM kv WHERE key = ?').get('trading_state'), 'data survives').toEqual({ value: '"ACTIVE"' });
    after.close();
  });

  it('refuses a database a newer version migrated, naming the unknown migration, and changes nothing', async () => {
    ws = makeWorkspace();
    const first = open();
    await first.migrate();
    first.sqlite.prepare("INSERT INTO kysely_migration (name, timestamp) VALUES ('0099_from_the_future', '2030-01-01T00:00:00.000Z')").run();
    first.close();
    const before = tables(ws.dbFile);
    await expect(open().migrate()).rejects.toThrow(`${ws.dbFile} was migrated by a newer version of trader (migration 0099_from_the_future, unknown to this one)`);
    expect(tables(ws.dbFile), 'nothing dropped or added').toEqual(before);
  });

  it('names the path when the database folder cannot be created', () => {
    ws = makeWorkspace();
    ws.write('blocker', 'a file where a folder should be');
    expect(() => Store.open(join(ws.dir, 'blocker', 'trader.db'))).toThrow(PathError);
    expect(() => Store.open(join(ws.dir, 'blocker', 'trader.db'))).toThrow(`database folder ${join(ws.dir, 'blocker')} is not writable`);
  });
});

describe('store: integrity rules in the schema', () => {
  it('fills are unique per (market, symbol, trade id): a fill seen twice is stored once', async () => {
    ws = makeWorkspace();
    const store = open();
    await store.migrate();
    const fill = { market: 'spot', symbol: 'BTCUSDT', trade_id: '12345', client_order_id: null, exchange_order_id: '9', side: 'BUY', price: '65000.01', quantity: '0.001', fee: '0.065', fee_asset: 'USDT', realized_pnl: null, is_maker: 0, ts: 1 };
    store.run(store.db.insertInto('fills').values(fill));
    expect(() => store.run(store.db.insertInto('fills').values(fill))).toThrow(/UNIQUE/);
    store.run(store.db.insertInto('fills').values(fill).onConflict((oc) => oc.doNothing()));
    expect(store.all<{ n: number }>(store.db.selectFrom('fills').select((eb) => eb.fn.countAll<number>().as('n')))[0]!.n).toBe(1);
  });

  it('the journal is append-only, and records bus events with exact decimals', async () => {
    ws = makeWorkspace();
    const store = open();
    await store.migrate();
    const clock = new TestClock(1_700_000_000_000);
    const bus = new Bus({ logger: silentLogger(), clock });
    const journal = new Journal(store, 'run-1');
    recordJournal(bus, journal);
    const intent = { intentId: 'i-1', seq: 1, source: 'strategy' as const, strategy: 'rsi', market: 'spot' as const, symbol: 'BTCUSDT', side: 'BUY' as const, type: 'MARKET' as const, quantity: dec('0.00012345') };
    bus.handle('order.request', () => undefined, 'risk');
    bus.publish('signal.rsi', { kind: 'signal', ts: 1, strategy: 'rsi', symbol: 'BTCUSDT', action: 'enterLong', reason: 'rsi<30' });
    bus.publish('order.request', { kind: 'order.request', ts: 2, intent });
    bus.publish('order.denied', { kind: 'order.denied', ts: 3, intent, reason: 'NOTIONAL_BELOW_MIN: notional=4.1 min=5', source: 'execution' });
    bus.publish('candle.closed', { kind: 'candle.closed', ts: 4, market: 'spot', symbol: 'BTCUSDT', timeframe: '1m', openTime: 0, open: 1, high: 1, low: 1, close: 1, volume: 1 });
    const rows = journal.since();
    expect(rows.map((r) => r.channel), 'candles are market data, not audit trail').toEqual(['signal.rsi', 'order.request', 'order.denied']);
    expect(JSON.parse(rows[1]!.payload).intent.quantity, 'Dec keeps every digit').toBe('0.00012345');
    expect(rows.every((r) => r.run_id === 'run-1')).toBe(true);
    expect(() => store.sqlite.prepare('UPDATE journal SET kind = ? WHERE seq = 1').run('x')).toThrow(/append-only/);
    expect(() => store.sqlite.prepare('DELETE FROM journal').run()).toThrow(/append-only/);
    expect(journal.since()).toHaveLength(3);
  });

  it('orders are unique per intent (one order row per intent)', async () => {
    ws = makeWorkspace();
    const store = open();
    await store.migrate();
    const row = { client_order_id: 'tr-a', intent_id: 'i-1', strategy: 'rsi', market: 'spot', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', time_in_force: null, quantity: '1', price: null, stop_price: null, reduce_only: 0, status: 'PENDING', exchange_order_id: null, filled_quantity: '0', average_price: null, error: null, created_at: 1, updated_at: 1, source: 'strategy', position_side: 'BOTH' };
    store.run(store.db.insertInto('orders').values(row));
    expect(() => store.run(store.db.insertInto('orders').values({ ...row, client_order_id: 'tr-b' }))).toThrow(/UNIQUE/);
  });
});

describe('instance lock (in process)', () => {
  it('a second holder is refused with the first holder\'s pid; after release it is free again', () => {
    ws = makeWorkspace();
    const a = InstanceLock.acquire(ws.dbFile, 1000);
    expect(a.tookOverFrom).toBeUndefined();
    let err: unknown;
    try {
      InstanceLock.acquire(ws.dbFile, 2000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InstanceLockedError);
    expect((err as InstanceLockedError).holderPid).toBe(process.pid);
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    a.release(3000);
    const b = InstanceLock.acquire(ws.dbFile, 4000);
    expect(b.tookOverFrom, 'a released lock is not stale').toBeUndefined();
    b.release(5000);
  });
});
