/**
 * Trailing stops, on the local exchange through the real ccxt and ws clients
 * (issue 17: `risk.trailingPct` and a signal's `trailing` were accepted and
 * did nothing: the same 21 trades with and without them).
 *
 *   USD-M: a TRAILING_STOP_MARKET held by the exchange (New Algo Order
 *          (TRADE): callbackRate in percent, 0.1..5, step 0.1), on the
 *          owner's leg, replaced when the position changes, gone with it;
 *   spot:  emulated from the mark (a resting sell would need the coins the
 *          stop-loss locks): the best mark since entry is tracked and the
 *          position is sold when the mark falls back by the trailing
 *          distance; the heartbeat names the leg as emulated.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Fill, SignalAction } from '../../src/model/events.ts';
import { createFuturesClient, createSpotClient } from '../../src/venues/binance/ccxt-clients.ts';
import { candle, settled, startKernel, tradingWorkspace } from '../support/trading.ts';
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

describe('USD-M: risk.trailingPct', () => {
  it('places a TRAILING_STOP_MARKET with callbackRate = trailingPct on the exchange, and it closes the position on a 1.5 % pull-back', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'BTCUSDT', new Dec('60000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'trend', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.002\nrisk:\n  trailingPct: 1.5\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const c = createFuturesClient({ spotBase: ex.url, futuresBase: ex.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
    const conditionals = async (): Promise<string[]> =>
      (await c.fetchOpenOrders('BTC/USDT:USDT', undefined, undefined, { trigger: true })).map((o) => {
        const i = o.info as Record<string, string>;
        return `${i.side} ${i.orderType ?? i.type} ${new Dec(i.quantity ?? i.origQty ?? '0').toFixed()} callbackRate=${i.callbackRate ?? i.priceRate}`;
      });
    const fills: Fill[] = [];
    k.bus.on('fill', (f) => void fills.push(f), 'test');
    const signal = (action: SignalAction) => k.bus.publish('signal.trend', { kind: 'signal', ts: clock.now(), strategy: 'trend', symbol: 'BTCUSDT', action, reason: 'test' });

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'BTCUSDT', '60000');
    signal('enterLong');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(await conditionals(), 'held by the exchange, not emulated').toEqual(['SELL TRAILING_STOP_MARKET 0.002 callbackRate=1.5']);
    expect(k.trading!.protection.view().owners.map((o) => [o.strategy, o.trail, o.onExchange, o.emulated])).toEqual([['trend', '1.5', ['trail'], []]]);

    // Up to 62000, then back 1.5 % from there (61070): the exchange closes the position.
    for (const p of ['61000', '62000', '61500', '61000']) {
      clock.advanceBy(60_000);
      candle(k, ex, clock, 'futures', 'BTCUSDT', p);
      await settled(k);
    }
    for (let i = 0; i < 4; i++) await settled(k);
    expect(fills.filter((f) => f.strategy === 'trend').map((f) => `${f.side} ${f.quantity.toFixed()}`), 'the trailing stop sold the position, as its owner').toEqual(['BUY 0.002', 'SELL 0.002']);
    expect(k.trading!.portfolio.ledger.lot('trend', 'BTCUSDT').flat).toBe(true);
    expect(await conditionals(), 'nothing left behind').toEqual([]);
  });
});

describe('spot: a signal with `trailing`', () => {
  it('trails from the mark (emulated, said so in the heartbeat) and sells when the mark falls back by 2 %', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    addStrategy(ws, 'swing', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const fills: Fill[] = [];
    k.bus.on('fill', (f) => void fills.push(f), 'test');

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3000');
    k.bus.publish('signal.swing', { kind: 'signal', ts: clock.now(), strategy: 'swing', symbol: 'ETHUSDT', action: 'enterLong', reason: 'test', trailing: new Dec(2) });
    for (let i = 0; i < 4; i++) await settled(k);
    const hbDetail = k.heartbeat.write().protection?.detail;

    // Best 3200; 3140 is -1.9 % (holds); 3130 is -2.2 % (sells).
    for (const p of ['3100', '3200', '3140']) {
      clock.advanceBy(60_000);
      candle(k, ex, clock, 'spot', 'ETHUSDT', p);
      await settled(k);
    }
    expect(fills.filter((f) => f.side === 'SELL'), 'still held at -1.9 %').toEqual([]);
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3130');
    for (let i = 0; i < 4; i++) await settled(k);
    // Bought 0.1, fee 0.0001 ETH: 0.0999 arrives and is sold.
    expect(fills.map((f) => `${f.strategy} ${f.side} ${f.quantity.toFixed()}`), 'closed at market by the emulated trailing stop').toEqual(['swing BUY 0.1', 'swing SELL 0.0999']);
    expect(k.trading!.portfolio.ledger.lot('swing', 'ETHUSDT').flat).toBe(true);
    expect(hbDetail, 'while it was held, the heartbeat said which leg is emulated').toMatch(/emulated from the mark: swing ETHUSDT trail/);
  });
});

describe('spot: stop-loss and take-profit as one OCO list', () => {
  it('both legs rest on the exchange sharing the coins; the take-profit fills and the stop expires; an exit releases the list first', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    addStrategy(ws, 'band', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\nrisk:\n  stopLossPct: 2\n  takeProfitPct: 3\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const t = k.trading!;
    const spot = createSpotClient({ spotBase: ex.url, futuresBase: ex.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
    const open = async (): Promise<string[]> =>
      (await spot.fetchOpenOrders('ETH/USDT')).map((o) => {
        const i = o.info as Record<string, string>;
        const stop = new Dec(i.stopPrice ?? '0');
        return `${i.side} ${i.type} ${new Dec(i.origQty ?? '0').toFixed()}@${new Dec(i.price ?? '0').toFixed()}${stop.isZero() ? '' : ` stop ${stop.toFixed()}`} list=${i.orderListId !== undefined && String(i.orderListId) !== '-1' ? 'yes' : 'no'}`;
      }).sort();
    const fills: Fill[] = [];
    const rejected: string[] = [];
    k.bus.on('fill', (f) => void fills.push(f), 'test');
    k.bus.on('order.update', (u) => u.status === 'REJECTED' && void rejected.push(`${u.clientOrderId} ${u.reason}`), 'test');
    const signal = (action: SignalAction) => k.bus.publish('signal.band', { kind: 'signal', ts: clock.now(), strategy: 'band', symbol: 'ETHUSDT', action, reason: 'test' });

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3000');
    signal('enterLong');
    for (let i = 0; i < 4; i++) await settled(k);
    // 0.1 bought, 0.0999 received (fee in ETH): both legs cover what arrived, in one list.
    expect(await open(), 'New Order list - OCO (TRADE): LIMIT_MAKER above, STOP_LOSS_LIMIT below, one list').toEqual(['SELL LIMIT_MAKER 0.0999@3090 list=yes', 'SELL STOP_LOSS_LIMIT 0.0999@2925.3 stop 2940 list=yes']);
    expect(t.protection.view().owners.map((o) => [o.onExchange.sort(), o.emulated]), 'both legs on the exchange, nothing emulated').toEqual([[['stop', 'target'], []]]);

    // The price reaches the take-profit: it fills, the exchange expires the stop (one cancels the other).
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3100');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(fills.map((f) => `${f.side} ${f.quantity.toFixed()}@${f.price.toFixed()}`), 'one sale, at the take-profit').toEqual(['BUY 0.1@3000', 'SELL 0.0999@3090']);
    expect(await open(), 'the stop leg expired with the list').toEqual([]);
    expect(t.portfolio.ledger.lot('band', 'ETHUSDT').flat).toBe(true);

    // Again, and this time the strategy exits first: the list is cancelled before the sale, which then has the coins.
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3000');
    signal('enterLong');
    for (let i = 0; i < 4; i++) await settled(k);
    expect((await open()).length, 'a new list for the new position').toBe(2);
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3010');
    signal('exitLong');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(fills.slice(2).map((f) => `${f.side} ${f.quantity.toFixed()}@${f.price.toFixed()}`)).toEqual(['BUY 0.1@3000', 'SELL 0.0999@3010']);
    expect(await open()).toEqual([]);
    expect(rejected, 'no leg or exit refused').toEqual([]);
  });
});

describe('spot: an emulated trailing stop across a restart', () => {
  it('keeps its best mark: after a restart, a 2.2 % fall from the best sells (not 2 % from the entry)', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    addStrategy(ws, 'swing', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\nrisk:\n  trailingPct: 2\n' });
    let clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    clock.advanceBy(60_000);
    candle(kernel, ex, clock, 'spot', 'ETHUSDT', '3000');
    kernel.bus.publish('signal.swing', { kind: 'signal', ts: clock.now(), strategy: 'swing', symbol: 'ETHUSDT', action: 'enterLong', reason: 'test' });
    for (let i = 0; i < 4; i++) await settled(kernel);
    for (const p of ['3100', '3200']) {
      clock.advanceBy(60_000);
      candle(kernel, ex, clock, 'spot', 'ETHUSDT', p);
      await settled(kernel);
    }
    await kernel.stop('deploy');

    clock = new TestClock(Date.now() + 10 * 60_000);
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const sells: string[] = [];
    k.bus.on('fill', (f) => f.side === 'SELL' && void sells.push(`${f.strategy} ${f.quantity.toFixed()}`), 'test');
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'spot', 'ETHUSDT', '3130');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(sells, '3130 is 2.2 % below the best (3200), kept across the restart').toEqual(['swing 0.0999']);
  });
});
