/**
 * The daily loss limit, end to end on the local exchange through the real
 * ccxt and ws clients: a losing streak of round trips on spot BTCUSDT
 * (tick 0.01, step 0.00001, 0.1 % fee in the received asset) trips the
 * limit, the account goes HALTED, entries are denied and the open position
 * can still be closed in full (but not in part); at 00:00 UTC on the test
 * clock the account is ACTIVE again and entries fill.
 *
 * One round trip, by hand: buy 0.01 at 50000 -> 0.00999 BTC held (fee
 * 0.00001 BTC, worth 0.50 USDT); sell 0.00999 at 49000 -> -9.99 PnL and a
 * 0.48951 USDT fee. Trip PnL = -9.99 - 0.50 - 0.48951 = -10.97951.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { candle, nextEvent, startKernel, tradingWorkspace } from '../support/trading.ts';
import type { Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let kernel: Kernel | undefined;
let ws: Workspace | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  await ex?.close();
  ws?.cleanup();
  kernel = ex = ws = undefined;
});

const SYMBOL = 'BTCUSDT';
const T0 = Date.UTC(2026, 10, 20, 22, 0, 0);
const MIDNIGHT = Date.UTC(2026, 10, 21);

describe('risk: daily loss limit on the local exchange', () => {
  it('a losing streak HALTS the account: entries denied, a full close still fills, a partial one does not; ACTIVE again at 00:00 UTC', async () => {
    ex = await LocalExchange.start();
    ws = tradingWorkspace(ex, ['market: spot', 'risk:', '  maxDailyLoss: 30', ''].join('\n'), { HEARTBEAT_INTERVAL_MS: '60000' });
    const clock = new TestClock(T0);
    kernel = await startKernel(ws, clock);
    const k = kernel;
    const t = k.trading!;
    const minute = () => clock.advanceBy(60_000);

    const buy = async (qty: string) => {
      const fill = nextEvent(k.bus, 'fill', (f) => f.side === 'BUY');
      const intent = t.planner.submit({ symbol: SYMBOL, side: 'BUY', quantity: dec(qty), source: 'manual', strategy: 'manual', reason: 'test entry' });
      return { intent, fill: await fill };
    };
    const sellAll = async () => {
      const fill = nextEvent(k.bus, 'fill', (f) => f.side === 'SELL');
      t.planner.submit({ symbol: SYMBOL, side: 'SELL', quantity: t.portfolio.position(SYMBOL).quantity, reduceOnly: true, source: 'manual', strategy: 'manual', reason: 'test exit' });
      return fill;
    };

    // Two losing round trips: -21.95902, below the 30 USDT limit.
    for (let trip = 1; trip <= 2; trip++) {
      candle(k, ex, clock, 'spot', SYMBOL, '50000');
      const { fill } = await buy('0.01');
      expect(fill.price.toFixed(), 'market buy at the last price').toBe('50000');
      minute();
      candle(k, ex, clock, 'spot', SYMBOL, '49000');
      await sellAll();
      minute();
      expect(t.portfolio.realizedToday().toFixed(), `after trip ${trip}`).toBe(dec('-10.97951').times(trip).toFixed());
      expect(t.risk.states.get('account', 'main'), 'still under the limit').toBe('ACTIVE');
    }

    // Trip 3: the entry fills, then the price drop alone (unrealized) crosses the limit.
    candle(k, ex, clock, 'spot', SYMBOL, '50000');
    await buy('0.01');
    minute();
    const halted = nextEvent(k.bus, 'risk.state', (e) => e.to === 'HALTED');
    candle(k, ex, clock, 'spot', SYMBOL, '49000');
    const h = await halted;
    // loss = 21.95902 realized + 0.5 (the buy's fee) + 9.99 unrealized = 32.44902
    expect(h.reason, 'the reason names the figures').toBe('DAILY_LOSS_LIMIT: loss=32.45 limit=30.00');
    expect(h.scope).toBe('account');

    // Entries are denied, with the state and its cause in the reason.
    const denied = nextEvent(k.bus, 'order.denied');
    t.planner.submit({ symbol: SYMBOL, side: 'BUY', quantity: dec('0.001'), source: 'manual', strategy: 'manual', reason: 'entry while halted' });
    const d = await denied;
    expect(d.source).toBe('risk');
    expect(d.reason).toBe('TRADING_STATE: state=HALTED scope=account because="DAILY_LOSS_LIMIT: loss=32.45 limit=30.00"');

    // A partial exit is not a close: denied too.
    const partial = nextEvent(k.bus, 'order.denied');
    t.planner.submit({ symbol: SYMBOL, side: 'SELL', quantity: dec('0.005'), reduceOnly: true, source: 'manual', strategy: 'manual', reason: 'scale out' });
    expect((await partial).reason, 'HALTED admits only full closes').toMatch(/^TRADING_STATE: state=HALTED/);

    // The full close goes through and fills.
    const exit = await sellAll();
    expect(exit.quantity.toFixed(), 'the whole position').toBe('0.00999');
    expect(t.portfolio.position(SYMBOL).quantity.toFixed(), 'flat').toBe('0');
    expect(t.portfolio.realizedToday().toFixed()).toBe(dec('-10.97951').times(3).toFixed());

    // Next UTC day: the halt lapses on its own.
    const active = nextEvent(k.bus, 'risk.state', (e) => e.to === 'ACTIVE');
    clock.advanceTo(MIDNIGHT + 1000);
    const a = await active;
    expect(a.source, 'lapsed at its expiry, not by hand').toBe('expiry');
    expect(t.risk.states.get('account', 'main')).toBe('ACTIVE');
    expect(t.portfolio.realizedToday().toFixed(), "a new day's PnL").toBe('0');
    candle(k, ex, clock, 'spot', SYMBOL, '50000');
    const { fill: again } = await buy('0.01');
    expect(again.quantity.toFixed(), 'entries fill again').toBe('0.01');

    // The audit trail: the state changes and every denial, with reasons.
    const db = new Database(ws.dbFile, { readonly: true });
    try {
      const states = db.prepare("SELECT state_from, state_to, reason, source FROM risk_events WHERE kind = 'state' ORDER BY id").all();
      expect(states).toEqual([
        { state_from: 'ACTIVE', state_to: 'HALTED', reason: 'DAILY_LOSS_LIMIT: loss=32.45 limit=30.00', source: 'guard:DAILY_LOSS_LIMIT' },
        { state_from: 'HALTED', state_to: 'ACTIVE', reason: 'EXPIRED: DAILY_LOSS_LIMIT: loss=32.45 limit=30.00', source: 'expiry' },
      ]);
      const denials = db.prepare("SELECT reason, source FROM risk_events WHERE kind = 'denied' ORDER BY id").all() as Array<{ reason: string; source: string }>;
      expect(denials.map((r) => r.source)).toEqual(['risk', 'risk']);
      expect(denials.every((r) => r.reason.startsWith('TRADING_STATE: state=HALTED'))).toBe(true);
      const orders = db.prepare('SELECT side, status, filled_quantity FROM orders ORDER BY created_at, rowid').all();
      expect(orders, 'denied intents never became orders').toEqual([
        { side: 'BUY', status: 'FILLED', filled_quantity: '0.01' },
        { side: 'SELL', status: 'FILLED', filled_quantity: '0.00999' },
        { side: 'BUY', status: 'FILLED', filled_quantity: '0.01' },
        { side: 'SELL', status: 'FILLED', filled_quantity: '0.00999' },
        { side: 'BUY', status: 'FILLED', filled_quantity: '0.01' },
        { side: 'SELL', status: 'FILLED', filled_quantity: '0.00999' },
        { side: 'BUY', status: 'FILLED', filled_quantity: '0.01' },
      ]);
    } finally {
      db.close();
    }
  });
});
