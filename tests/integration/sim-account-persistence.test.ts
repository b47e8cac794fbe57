/**
 * The MODE=sim paper account on the bot's database (issue 17): the venue the
 * kernel builds (createVenue with the store), stopped and built again on the
 * same file as a restarted process would. Real SQLite files, a test clock.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { createLogger, type Logger } from '../../src/core/logger.ts';
import { createVenue } from '../../src/kernel/trading-core.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { Store } from '../../src/store/store.ts';
import type { SimAccountPersistence } from '../../src/venues/sim/account-store.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import { SqliteSimAccountStore } from '../../src/venues/sim/sqlite-account-store.ts';
import type { Venue, VenueFill } from '../../src/venues/venue.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

let ws: Workspace | undefined;
const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
  ws?.cleanup();
  ws = undefined;
});

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

function logs(): { logger: Logger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  const { logger } = createLogger({ level: 'info', format: 'json', stdout: { write: (l: string) => lines.push(JSON.parse(l) as { level: string; msg: string }) } });
  return { logger, lines };
}

async function openStore(file: string): Promise<Store> {
  const s = Store.open(file);
  open.push(s);
  await s.migrate();
  return s;
}

/** One process's venue: settings from the workspace, its own store connection, started. */
async function boot(w: Workspace, clock: TestClock, logger: Logger = logs().logger): Promise<{ venue: SimVenue; store: Store }> {
  const settings = loadSettings({ cwd: w.dir, env: w.env, envFile: false });
  const store = await openStore(w.dbFile);
  const venue = createVenue(settings, clock, logger, store) as SimVenue;
  await venue.start();
  return { venue, store };
}

async function shutdown(b: { venue: Venue; store: Store }): Promise<void> {
  await b.venue.stop();
  b.store.close();
}

function candle(v: SimVenue, price: string, low = price, high = price): void {
  v.onCandle('BTCUSDT', { open: Number(price), high: Number(high), low: Number(low), close: Number(price), volume: 1 });
}

/** Everything a restart must keep, as plain strings. */
async function view(v: Venue): Promise<unknown> {
  const a = await v.account();
  return {
    balances: a.balances.map((b) => [b.asset, b.free.toFixed(), b.locked.toFixed()]),
    wallet: a.walletBalance?.toFixed(),
    available: a.availableBalance?.toFixed(),
    positions: (await v.positions()).map((p) => [p.symbol, p.quantity.toFixed(), p.entryPrice?.toFixed(), p.leverage]),
    open: (await v.openOrders()).map((o) => [o.clientOrderId, o.exchangeOrderId, o.side, o.type, o.status, o.quantity.toFixed(), o.filledQuantity.toFixed(), o.price?.toFixed(), o.stopPrice?.toFixed()]),
    fills: (await v.fills('BTCUSDT', 0)).map((f) => [f.tradeId, f.exchangeOrderId, f.price.toFixed(), f.quantity.toFixed(), f.fee.toFixed()]),
  };
}

/** A fill pushed by the venue for a market order. */
async function buyAtMarket(v: Venue, clientOrderId: string, qty: string): Promise<VenueFill> {
  const fills: VenueFill[] = [];
  const off = v.onEvent((e) => e.type === 'order' && e.fill && fills.push(e.fill));
  await v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec(qty), clientOrderId });
  off();
  expect(fills, 'a market order fills at once in the sim').toHaveLength(1);
  return fills[0]!;
}

function simTables(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const t of ['sim_accounts', 'sim_balances', 'sim_orders', 'sim_trades']) out[t] = Number(db.prepare(`SELECT COUNT(*) FROM ${t}`).pluck().get());
    return out;
  } finally {
    db.close();
  }
}

describe('the sim paper account on the database', () => {
  it('spot: a restarted venue continues the account: same balances, the same working limit (its funds still locked), trade and order ids that never repeat', async () => {
    ws = makeWorkspace();
    const clock = new TestClock(T0);
    const run1 = await boot(ws, clock);
    candle(run1.venue, '60000');
    const first = await buyAtMarket(run1.venue, 'c-1', '0.01');
    await run1.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: dec('0.02'), price: dec('59000'), clientOrderId: 'c-2', timeInForce: 'GTC' });
    const before = await view(run1.venue);
    await shutdown(run1);

    clock.advanceTo(T0 + 10 * 60_000);
    const run2 = await boot(ws, clock);
    expect(await view(run2.venue), 'the account exactly as it was, fills included').toEqual(before);
    candle(run2.venue, '60100');
    const second = await buyAtMarket(run2.venue, 'c-3', '0.01');
    expect([first.tradeId, second.tradeId], 'the second run continues the trade ids (it used to start again at 1)').toEqual(['1', '2']);
    expect(second.exchangeOrderId, 'and the order ids: c-1 was 1, c-2 was 2').toBe('3');

    // The limit left by run 1 fills in run 2 at its price; its locked quote is spent, nothing more.
    candle(run2.venue, '59500', '58900');
    const a = await run2.venue.account();
    const usdt = a.balances.find((b) => b.asset === 'USDT')!;
    const btc = a.balances.find((b) => b.asset === 'BTC')!;
    // 10000 - 600 (c-1) - 601 (c-3) - 1180 (c-2 at 59000); fees in BTC at 0.1%.
    expect([usdt.free.toFixed(), usdt.locked.toFixed()], 'quote: exact, nothing left locked').toEqual(['7619', '0']);
    expect(btc.free.toFixed(), 'base: 0.04 bought minus 0.1% fees').toBe('0.03996');
    await shutdown(run2);
  });

  it('spot: cancelling a restored order releases exactly what it locked', async () => {
    ws = makeWorkspace();
    const clock = new TestClock(T0);
    const run1 = await boot(ws, clock);
    candle(run1.venue, '60000');
    await run1.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: dec('0.03'), price: dec('59123.45'), clientOrderId: 'rest', timeInForce: 'GTC' });
    await shutdown(run1);
    const run2 = await boot(ws, clock);
    const cancelled = await run2.venue.cancel('BTCUSDT', 'rest');
    expect(cancelled.status).toBe('CANCELED');
    expect((await run2.venue.account()).balances.map((b) => [b.asset, b.free.toFixed(), b.locked.toFixed()]), 'all 10000 free again').toEqual([['USDT', '10000', '0']]);
    await shutdown(run2);
    const run3 = await boot(ws, clock);
    expect(await run3.venue.openOrders(), 'the cancel was kept too').toEqual([]);
    expect((await run3.venue.fetchOrder('BTCUSDT', 'rest'))?.status, 'a final order can still be looked up after a restart').toBe('CANCELED');
    await shutdown(run3);
  });

  it('spot OCO: both legs and their list continue; the take-profit filling after the restart expires the stop, the coins locked once', async () => {
    ws = makeWorkspace();
    const clock = new TestClock(T0);
    const run1 = await boot(ws, clock);
    candle(run1.venue, '60000');
    await buyAtMarket(run1.venue, 'entry', '0.01');
    await run1.venue.placeOco({ symbol: 'BTCUSDT', side: 'SELL', quantity: dec('0.00999'), listClientOrderId: 'exit', limit: { clientOrderId: 'tp', price: dec('61000') }, stop: { clientOrderId: 'sl', stopPrice: dec('59000'), price: dec('58900') } });
    const before = await view(run1.venue);
    await shutdown(run1);

    const run2 = await boot(ws, clock);
    expect(await view(run2.venue), 'both legs, the coins locked once').toEqual(before);
    expect(run2.venue.engine.openOrderLists('sim').map((l) => [l.listClientOrderId, l.listStatusType]), 'the list itself').toEqual([['exit', 'EXEC_STARTED']]);
    run2.venue.onCandle('BTCUSDT', { open: 60500, high: 61100, low: 60400, close: 61000, volume: 1 });
    expect([(await run2.venue.fetchOrder('BTCUSDT', 'tp'))?.status, (await run2.venue.fetchOrder('BTCUSDT', 'sl'))?.status], 'one leg filled, the other expired').toEqual(['FILLED', 'EXPIRED']);
    // 10000 - 600 + 0.00999 * 61000 - 0.1% fee in quote; nothing left locked, no coin sold twice.
    expect((await run2.venue.account()).balances.map((b) => [b.asset, b.free.toFixed(), b.locked.toFixed()])).toEqual([
      ['BTC', '0', '0'],
      ['USDT', '10008.78061', '0'],
    ]);
    await shutdown(run2);
  });

  it('futures: wallet, position and entry, leverage and a working stop continue; the stop still fires', async () => {
    ws = makeWorkspace();
    ws.write('config/bot.yaml', 'market: futures\n');
    const clock = new TestClock(T0);
    const run1 = await boot(ws, clock);
    await run1.venue.configureFutures({ positionMode: 'ONEWAY', symbols: [{ symbol: 'BTCUSDT', leverage: 3, marginType: 'isolated' }] });
    candle(run1.venue, '60000');
    await buyAtMarket(run1.venue, 'long', '0.05');
    candle(run1.venue, '60500');
    await run1.venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_MARKET', quantity: dec('0.05'), stopPrice: dec('59000'), reduceOnly: true, clientOrderId: 'stop' });
    const before = await view(run1.venue);
    await shutdown(run1);

    // Prices are the feed's and are not stored: the isolated margin here makes the available
    // balance independent of the mark (a cross position's depends on it until the first candle).
    const run2 = await boot(ws, clock);
    expect(await view(run2.venue), 'wallet, available margin, position, leverage, the stop').toEqual(before);
    expect(run2.venue.engine.leverageOf('sim', 'BTCUSDT'), 'settings kept').toEqual({ leverage: 3, marginType: 'isolated' });
    run2.venue.onCandle('BTCUSDT', { open: 59500, high: 59600, low: 58800, close: 58900, volume: 1 });
    expect(await run2.venue.positions(), 'the stop closed the position').toEqual([]);
    expect((await run2.venue.fetchOrder('BTCUSDT', 'stop'))?.status).toBe('FILLED');
    const fills = await run2.venue.fills('BTCUSDT', 0);
    expect(fills.map((f) => f.tradeId), 'the stop fill continues the ids').toEqual(['1', '2']);
    // 10000 - 1.5 (0.05% taker fee on 3000) + (59000 - 60000) * 0.05 - 1.475 (fee on 2950)
    expect((await run2.venue.account()).walletBalance?.toFixed(), 'the wallet, exact').toBe('9947.025');
    await shutdown(run2);
  });

  it('the stored account wins over sim.balance, and the log says which account this run trades', async () => {
    ws = makeWorkspace();
    const clock = new TestClock(T0);
    const l1 = logs();
    const run1 = await boot(ws, clock, l1.logger);
    expect(l1.lines.map((l) => l.msg)).toContain('sim account: a new paper account with sim.balance 10000 USDT (bot.yaml)');
    candle(run1.venue, '60000');
    await buyAtMarket(run1.venue, 'c-1', '0.01');
    await shutdown(run1);

    ws.write('config/bot.yaml', 'market: spot\nsim:\n  balance: 500\n');
    const l2 = logs();
    const run2 = await boot(ws, clock, l2.logger);
    expect((await run2.venue.account()).balances.map((b) => [b.asset, b.free.toFixed()]), 'the stored balances, not 500').toEqual([
      ['BTC', '0.00999'],
      ['USDT', '9400'],
    ]);
    expect(l2.lines.map((l) => l.msg)).toContain(
      'sim account: the stored paper account continues (created 2026-01-05T10:00:00.000Z with 10000 USDT, seeded; 0 open orders, 1 trades); sim.balance 500 in bot.yaml applies to a new account only',
    );
    await shutdown(run2);
  });

  it('a database from the version that kept the account in memory (fills, no stored account): balances rebuilt from the fills, ids continue past the stored ones, and the log says so', async () => {
    ws = makeWorkspace();
    const store = await openStore(ws.dbFile);
    // What the old version left: orders 1..7 on the venue (some cancelled, no fill), three fills and a reconcile adjustment.
    const order = store.sqlite.prepare(
      "INSERT INTO orders (client_order_id, intent_id, strategy, market, symbol, side, type, quantity, status, exchange_order_id, filled_quantity, created_at, updated_at) VALUES (?, ?, 'rsi', 'spot', 'BTCUSDT', ?, 'MARKET', ?, ?, ?, ?, ?, ?)",
    );
    const fill = store.sqlite.prepare("INSERT INTO fills (market, symbol, trade_id, client_order_id, exchange_order_id, side, price, quantity, fee, fee_asset, is_maker, ts) VALUES ('spot', 'BTCUSDT', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)");
    order.run('o-1', 'i-1', 'BUY', '0.02', 'FILLED', '1', '0.02', T0, T0);
    order.run('o-7', 'i-7', 'SELL', '0.01', 'FILLED', '7', '0.01', T0 + 2000, T0 + 2000);
    order.run('o-5', 'i-5', 'BUY', '0.01', 'CANCELED', '5', '0', T0 + 1000, T0 + 1000);
    fill.run('1', 'o-1', '1', 'BUY', '60000', '0.015', '0.000015', 'BTC', T0);
    fill.run('2', 'o-1', '1', 'BUY', '60010', '0.005', '0.000005', 'BTC', T0);
    fill.run('3', 'o-7', '7', 'SELL', '61000', '0.01', '0.61', 'USDT', T0 + 2000);
    fill.run('reconcile-1767607203000', null, null, 'SELL', '61000', '0.00001', '0', 'USDT', T0 + 3000);
    store.close();

    const clock = new TestClock(T0 + 60_000);
    const l = logs();
    const run = await boot(ws, clock, l.logger);
    const a = await run.venue.account();
    // USDT: 10000 - 900 - 300.05 + 610 - 0.61 + 0.61; BTC: 0.02 - 0.00002 - 0.01 - 0.00001.
    expect(a.balances.map((b) => [b.asset, b.free.toFixed(), b.locked.toFixed()]), 'sim.balance plus every stored fill, exact').toEqual([
      ['BTC', '0.00997', '0'],
      ['USDT', '9409.95', '0'],
    ]);
    const warn = l.lines.find((x) => x.level === 'warn')?.msg;
    expect(warn, 'says what happened and why').toBe(
      'sim account: none stored, but the database holds 4 spot fills (written by a version that kept the paper account in memory): the paper balances are rebuilt as sim.balance 10000 USDT plus those fills (0.00997 BTC, 9409.95 USDT); open orders of those runs are gone',
    );
    expect(l.lines.map((x) => x.msg)).toContain('sim account: order and trade ids continue after the ones stored for BTCUSDT');
    candle(run.venue, '61000');
    const f = await buyAtMarket(run.venue, 'o-8', '0.001');
    expect([f.tradeId, f.exchangeOrderId], 'after trade 3 and order 7, never one of them again').toEqual(['4', '8']);
    await shutdown(run);

    // The rebuilt account is stored now: the next start continues it instead of rebuilding.
    const l2 = logs();
    const again = await boot(ws, clock, l2.logger);
    expect(l2.lines.map((x) => x.msg)).toContain('sim account: the stored paper account continues (created 2026-01-05T10:01:00.000Z with 10000 USDT, rebuilt; 0 open orders, 1 trades)');
    expect((await again.venue.account()).balances.map((b) => [b.asset, b.free.toFixed()])).toEqual([
      ['BTC', '0.010969'],
      ['USDT', '9348.95'],
    ]);
    await shutdown(again);
  });

  it('a fill is in the sim tables before the bot hears of it (the exchange commits, then reports)', async () => {
    ws = makeWorkspace();
    const clock = new TestClock(T0);
    const run = await boot(ws, clock);
    candle(run.venue, '60000');
    const seen: Array<{ tradeId: string; stored: number }> = [];
    run.venue.onEvent((e) => {
      if (e.type !== 'order' || !e.fill) return;
      seen.push({ tradeId: e.fill.tradeId, stored: Number(run.store.sqlite.prepare('SELECT COUNT(*) FROM sim_trades WHERE trade_id = ?').pluck().get(Number(e.fill.tradeId))) });
    });
    await run.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec('0.01'), clientOrderId: 'c-1' });
    expect(seen, 'stored when the event arrived').toEqual([{ tradeId: '1', stored: 1 }]);
    await shutdown(run);
  });

  it('a failed save is logged, trading goes on, and the next save writes everything it missed', async () => {
    ws = makeWorkspace();
    const settings = loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
    const clock = new TestClock(T0);
    const store = await openStore(ws.dbFile);
    const real = new SqliteSimAccountStore(store);
    let failNext = false;
    const flaky: SimAccountPersistence = {
      load: (m) => real.load(m),
      recordedFills: (m) => real.recordedFills(m),
      usedIds: (m) => real.usedIds(m),
      save: (m, s) => {
        if (failNext) {
          failNext = false;
          throw new Error('SQLITE_FULL: database or disk is full');
        }
        real.save(m, s);
      },
    };
    const l = logs();
    const make = () => new SimVenue({ market: 'spot', clock, instruments: catalog('spot'), quoteAsset: 'USDT', balance: settings.bot.sim.balance, persistence: flaky, logger: l.logger });
    const v1 = make();
    await v1.start();
    v1.onCandle('BTCUSDT', { open: 60000, high: 60000, low: 60000, close: 60000, volume: 1 });
    failNext = true;
    const f1 = await buyAtMarket(v1, 'c-1', '0.01');
    expect(l.lines.find((x) => x.level === 'error')?.msg).toBe('sim account: cannot save the paper account (SQLITE_FULL: database or disk is full); kept in memory, retried at the next change');
    const f2 = await buyAtMarket(v1, 'c-2', '0.01');
    const before = await view(v1);
    await v1.stop();
    const v2 = make();
    await v2.start();
    expect(await view(v2), 'both fills and their balances were written by the second save').toEqual(before);
    expect([f1.tradeId, f2.tradeId]).toEqual(['1', '2']);
  });

  it('order fields without a column (a trailing stop, an order list) survive a save and a load, decimals exact', async () => {
    ws = makeWorkspace();
    const store = await openStore(ws.dbFile);
    const clock = new TestClock(T0);
    const v = new SimVenue({ market: 'futures', clock, instruments: catalog('futures'), quoteAsset: 'USDT', balance: dec('10000') });
    v.onCandle('BTCUSDT', { open: 60000, high: 60000, low: 60000, close: 60000, volume: 1 });
    await v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: dec('0.01'), price: dec('59000'), clientOrderId: 'rest', timeInForce: 'GTC' });
    const rec = v.engine.orderRecord('futures', 'BTCUSDT', 1)!;
    const later = { priceRate: dec('0.3'), activatePrice: dec('61000.1'), trailExtreme: dec('60123.456789'), trailActivated: true, orderListId: 7 };
    const sqlite = new SqliteSimAccountStore(store);
    sqlite.save('futures', { now: T0, quoteAsset: 'USDT', seed: dec('10000'), origin: 'seeded', account: v.engine.accountState('sim'), counters: v.engine.idCounters(), orders: [{ ...rec, ...later }], trades: [], orderLists: [] });
    const back = sqlite.load('futures')!.orders[0] as unknown as Record<string, unknown>;
    const plain = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, x !== null && typeof x === 'object' && 'toFixed' in x ? (x as { toFixed(): string }).toFixed() : x]));
    expect(plain(back), 'every field, the ones without a column included').toEqual(plain({ ...rec, ...later }));
  });

  it('without a store (the backtester) the account lives in memory and nothing is written', async () => {
    ws = makeWorkspace();
    const settings = loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
    const store = await openStore(ws.dbFile);
    const clock = new TestClock(T0);
    const v = createVenue(settings, clock, logs().logger) as SimVenue;
    await v.start();
    candle(v, '60000');
    await buyAtMarket(v, 'c-1', '0.01');
    expect(simTables(ws.dbFile), 'no sim rows').toEqual({ sim_accounts: 0, sim_balances: 0, sim_orders: 0, sim_trades: 0 });
    expect((await v.account()).balances.find((b) => b.asset === 'USDT')!.free.toFixed()).toBe('9400');
    store.close();
  });
});
