/**
 * MODE=sim across a restart, through the real kernel on a database file
 * (issue 17, "the paper account forgets"). The bot's books are rebuilt from
 * the stored fills at start; the paper account must continue where it
 * stopped, so the two still agree and a new fill is booked, not dropped as a
 * duplicate of an earlier run's trade id.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { createVenue } from '../../src/kernel/trading-core.ts';
import type { Market } from '../../src/model/market.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { Store } from '../../src/store/store.ts';
import type { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import type { Venue } from '../../src/venues/venue.ts';
import { nextEvent, startKernel } from '../support/trading.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

let kernel: Kernel | undefined;
let ws: Workspace | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  ws?.cleanup();
  kernel = ws = undefined;
});

/** One closed 1m candle on the bot's bus (the test is the feed; FEED=none). */
function bar(k: Kernel, clock: TestClock, market: Market, symbol: string, o: { close: string; low?: string; high?: string }): void {
  const close = Number(o.close);
  const openTime = clock.now() - (clock.now() % 60_000);
  k.bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market, symbol, timeframe: '1m', openTime, open: close, high: Number(o.high ?? o.close), low: Number(o.low ?? o.close), close, volume: 1 });
}

/** What the paper exchange says about the account, as plain strings. */
async function venueView(v: Venue): Promise<unknown> {
  const account = await v.account();
  return {
    balances: account.balances.map((b) => ({ asset: b.asset, free: b.free.toFixed(), locked: b.locked.toFixed() })),
    walletBalance: account.walletBalance?.toFixed(),
    positions: (await v.positions(['BTCUSDT', 'ETHUSDT'])).map((p) => ({ symbol: p.symbol, quantity: p.quantity.toFixed(), entryPrice: p.entryPrice?.toFixed() })),
    open: (await v.openOrders()).map((o) => ({ symbol: o.symbol, clientOrderId: o.clientOrderId, exchangeOrderId: o.exchangeOrderId, side: o.side, type: o.type, status: o.status, quantity: o.quantity.toFixed(), price: o.price?.toFixed() })),
  };
}

function storedFills(file: string): Array<{ symbol: string; trade_id: string; side: string; quantity: string }> {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT symbol, trade_id, side, quantity FROM fills ORDER BY id').all() as Array<{ symbol: string; trade_id: string; side: string; quantity: string }>;
  } finally {
    db.close();
  }
}

describe('MODE=sim restart on the same database', () => {
  it("the sim venue the kernel builds continues its trade ids (they restarted at 1 and collided with the stored fills' unique key)", async () => {
    ws = makeWorkspace();
    const settings = loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
    const clock = new TestClock(Date.UTC(2026, 0, 5));
    const ids: string[] = [];
    for (const run of [1, 2]) {
      const store = Store.open(ws.dbFile);
      await store.migrate();
      const v = createVenue(settings, clock, silentLogger(), store) as SimVenue;
      await v.start();
      v.onCandle('BTCUSDT', { open: 60000, high: 60000, low: 60000, close: 60000, volume: 1 });
      const off = v.onEvent((e) => void (e.type === 'order' && e.fill && ids.push(e.fill.tradeId)));
      await v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec('0.01'), clientOrderId: `c-${run}` });
      off();
      await v.stop();
      store.close();
    }
    expect(ids, 'one trade per run; the second continues the ids').toEqual(['1', '2']);
  });

  for (const market of ['spot', 'futures'] as const) {
    it(`${market}: the paper account continues where it stopped; a new fill is booked, not dropped as a duplicate`, async () => {
      ws = makeWorkspace();
      ws.write('config/bot.yaml', `market: ${market}\n`);
      const t0 = Date.UTC(2026, 0, 5, 10, 0, 0);
      const clock = new TestClock(t0);
      kernel = await startKernel(ws, clock);
      let t = kernel.trading!;

      // Run 1: a market buy, and a resting limit below the market (within the risk engine's 1% price band).
      bar(kernel, clock, market, 'BTCUSDT', { close: '60000' });
      const bought = nextEvent(kernel.bus, 'fill');
      t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.01'), source: 'manual', strategy: 'manual', reason: 'run 1' });
      const first = await bought;
      const resting = nextEvent(kernel.bus, 'order.update', (u) => u.status === 'NEW' && u.symbol === 'BTCUSDT');
      t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.01'), price: dec('59500'), source: 'manual', strategy: 'manual', reason: 'run 1 rest' });
      await resting;
      const before = await venueView(t.venue);
      const positionBefore = t.portfolio.position('BTCUSDT').quantity.toFixed();
      await kernel.stop('deploy');
      kernel = undefined;

      // Run 2: a new process on the same file, five minutes later.
      const clock2 = new TestClock(t0 + 5 * 60_000);
      kernel = await startKernel(ws, clock2);
      t = kernel.trading!;
      expect(await venueView(t.venue), 'balances, positions and open orders exactly as the last run left them').toEqual(before);
      expect(t.reconciler.last?.discrepancies, 'the venue agrees with the books rebuilt from the stored fills: nothing to halt').toBe(0);
      expect(t.portfolio.position('BTCUSDT').quantity.toFixed()).toBe(positionBefore);

      // The limit left by run 1 still fills, at its price.
      const limitFill = nextEvent(kernel.bus, 'fill');
      bar(kernel, clock2, market, 'BTCUSDT', { close: '59600', low: '59400' });
      const second = await limitFill;
      expect([second.price.toFixed(), second.quantity.toFixed()], "run 1's limit, filled at its price").toEqual(['59500', '0.01']);
      expect(second.tradeId, 'a trade id the earlier run never used').not.toBe(first.tradeId);

      // A new order of this run is booked too.
      clock2.advanceBy(60_000);
      bar(kernel, clock2, market, 'BTCUSDT', { close: '60100' });
      const again = nextEvent(kernel.bus, 'fill');
      t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.01'), source: 'manual', strategy: 'manual', reason: 'run 2' });
      const third = await again;
      expect(third.price.toFixed()).toBe('60100');

      const fills = storedFills(ws.dbFile);
      expect(fills.map((f) => f.trade_id), 'three fills, each booked once under its own trade id').toEqual(['1', '2', '3']);
      expect((await t.venue.openOrders()).length, 'nothing left working').toBe(0);
      const held = (await t.venue.positions(['BTCUSDT']))[0]?.quantity.toFixed();
      expect(t.portfolio.position('BTCUSDT').quantity.toFixed(), "the books equal the paper exchange's position").toBe(held);
    });
  }
});
