/**
 * Protective exits and order TTL, in process on the local exchange (USD-M,
 * real ccxt + ws): a strategy entry with stopLossPct / takeProfitPct gets a
 * reduce-only STOP_MARKET and TAKE_PROFIT_MARKET held by the exchange; they
 * are replaced when the position grows, cancelled when it closes, and a
 * triggered stop leaves no orphan target. A limit entry whose TTL runs out is
 * cancelled and the rest sent at market, as the YAML says.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { SignalAction } from '../../src/model/events.ts';
import { createFuturesClient } from '../../src/venues/binance/ccxt-clients.ts';
import { candle, nextEvent, startKernel, tradingWorkspace } from '../support/trading.ts';
import { addStrategy, type Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let kernel: Kernel | undefined;
let ws: Workspace | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  await ex?.close();
  ws?.cleanup();
  kernel = ex = ws = undefined;
});

/** The exchange's own view of the conditional (algo) orders: "SIDE TYPE qty@stop reduceOnly". */
async function conditionals(x: LocalExchange, symbol: string): Promise<string[]> {
  const c = createFuturesClient({ spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
  await c.loadMarkets();
  const open = await c.fetchOpenOrders(symbol.replace('USDT', '/USDT:USDT'), undefined, undefined, { trigger: true });
  return open.map((o) => {
    const i = o.info as Record<string, string>;
    return `${i.side} ${i.orderType ?? i.type} ${new Dec(i.quantity ?? i.origQty ?? '0').toFixed()}@${new Dec(i.triggerPrice ?? i.stopPrice ?? '0').toFixed()}${String(i.reduceOnly) === 'true' ? ' reduceOnly' : ''}`;
  }).sort();
}

function signal(k: Kernel, clock: TestClock, strategy: string, symbol: string, action: SignalAction): void {
  k.bus.publish(`signal.${strategy}`, { kind: 'signal', ts: clock.now(), strategy, symbol, action, reason: `test ${action}` });
}

/** Waits until the bot has n protective orders working on the symbol (NEW on the exchange). */
async function protectiveWorking(k: Kernel, symbol: string, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const rows = k.trading!.execution.openOrders(symbol).filter((r) => r.source === 'protective' && r.status === 'NEW');
    if (rows.length === n && k.trading!.execution.openOrders(symbol).every((r) => r.source !== 'protective' || r.status === 'NEW')) return;
    await nextEvent(k.bus, 'order.update', () => true, 5000);
  }
  throw new Error(`protective orders on ${symbol} never settled at ${n}`);
}

describe('protective exits on the exchange', () => {
  it('placed with the entry, replaced when the position grows, cancelled when it closes; a triggered stop leaves no orphan', async () => {
    ex = await LocalExchange.start();
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'idle', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.002\nrisk:\n  stopLossPct: 2\n  takeProfitPct: 4\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock);
    const k = kernel;
    const t = k.trading!;

    candle(k, ex, clock, 'futures', 'BTCUSDT', '60000');
    const filled = nextEvent(k.bus, 'fill', (f) => f.strategy === 'idle');
    signal(k, clock, 'idle', 'BTCUSDT', 'enterLong');
    await filled;
    await protectiveWorking(k, 'BTCUSDT', 2);
    expect(await conditionals(ex, 'BTCUSDT'), 'stop 2 % below, target 4 % above, reduce-only, on the exchange').toEqual(['SELL STOP_MARKET 0.002@58800 reduceOnly', 'SELL TAKE_PROFIT_MARKET 0.002@62400 reduceOnly']);

    // Someone else buys on the same symbol (a manual order: another owner). The stop belongs to idle's
    // position, not to the symbol's net: it stays at idle's 0.002 (before the ledger it grew to 0.005, and
    // a triggered stop would have sold the other owner's coins too).
    const added = nextEvent(k.bus, 'fill', (f) => f.strategy === 'manual');
    t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.003'), source: 'manual', strategy: 'manual', reason: 'add' });
    await added;
    expect(t.portfolio.ledger.lot('idle', 'BTCUSDT').quantity.toFixed(), "idle's own line").toBe('0.002');
    expect(t.portfolio.position('BTCUSDT').quantity.toFixed(), 'the venue nets both owners').toBe('0.005');
    expect((await conditionals(ex, 'BTCUSDT')).map((c) => c.split(' ').slice(0, 3).join(' ')), "still idle's size").toEqual(['SELL STOP_MARKET 0.002@58800', 'SELL TAKE_PROFIT_MARKET 0.002@62400']);
    const back = nextEvent(k.bus, 'fill', (f) => f.strategy === 'manual' && f.side === 'SELL');
    t.planner.submit({ symbol: 'BTCUSDT', side: 'SELL', quantity: dec('0.003'), reduceOnly: true, source: 'manual', strategy: 'manual', reason: 'back' });
    await back;

    // The strategy exits: nothing protective is left behind.
    const exited = nextEvent(k.bus, 'position.changed', (p) => p.strategy === 'idle' && p.quantity.isZero());
    signal(k, clock, 'idle', 'BTCUSDT', 'exitLong');
    await exited;
    await protectiveWorking(k, 'BTCUSDT', 0);
    expect(await conditionals(ex, 'BTCUSDT'), 'no orphan stops').toEqual([]);

    // Enter again; the market falls through the stop: the exchange closes the position and the target goes too.
    candle(k, ex, clock, 'futures', 'BTCUSDT', '60000');
    const again = nextEvent(k.bus, 'fill', (f) => f.strategy === 'idle');
    signal(k, clock, 'idle', 'BTCUSDT', 'enterLong');
    await again;
    await protectiveWorking(k, 'BTCUSDT', 2);
    const stopped = nextEvent(k.bus, 'fill', (f) => f.strategy === 'idle' && f.side === 'SELL');
    candle(k, ex, clock, 'futures', 'BTCUSDT', '58000');
    const stopFill = await stopped;
    expect([stopFill.side, stopFill.quantity.toFixed()], 'the stop closed the whole position').toEqual(['SELL', '0.002']);
    await protectiveWorking(k, 'BTCUSDT', 0);
    expect(t.portfolio.position('BTCUSDT').quantity.toFixed()).toBe('0');
    expect(await conditionals(ex, 'BTCUSDT'), 'the target was cancelled with the position').toEqual([]);
    const trip = t.portfolio.trips('idle', 'BTCUSDT');
    // Both trips lost: the first closed at its entry price (fees only), the second at the stop.
    expect([trip.trades, trip.losses], 'round trips charged to the strategy that opened them').toEqual([2, 2]);
  });
});

describe('order TTL', () => {
  it('a limit entry not filled within its TTL is cancelled and the rest goes at market', async () => {
    ex = await LocalExchange.start();
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'idle', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.05\norder:\n  type: limit\n  offsetBps: 50\n  ttlSec: 30\n  onExpiry: market\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock);
    const k = kernel;

    candle(k, ex, clock, 'futures', 'ETHUSDT', '3000');
    const resting = nextEvent(k.bus, 'order.update', (u) => u.status === 'NEW' && u.strategy === 'idle');
    signal(k, clock, 'idle', 'ETHUSDT', 'enterLong');
    const limit = await resting;
    const row = k.trading!.execution.openOrders('ETHUSDT').find((r) => r.client_order_id === limit.clientOrderId)!;
    expect([row.type, row.price, row.quantity], '50 bps below the last price, rounded to the tick (down: a buy)').toEqual(['LIMIT', '2985', '0.05']);

    const expired = nextEvent(k.bus, 'order.update', (u) => u.clientOrderId === limit.clientOrderId && u.status === 'CANCELED');
    const atMarket = nextEvent(k.bus, 'fill', (f) => f.strategy === 'idle');
    clock.advanceBy(30_000);
    expect((await expired).reason, 'cancelled by its TTL').toBe('TTL_EXPIRED');
    const f = await atMarket;
    expect([f.side, f.quantity.toFixed(), f.price.toFixed()], 'the rest at market').toEqual(['BUY', '0.05', '3000']);
  });
});
