/**
 * Issue 17, on the local exchange through the real ccxt and ws clients: one
 * ledger, positions per owner, spot counted exactly.
 *
 *   - spot, an account that already holds 0.5 BTC the bot never bought: no
 *     strategy ever sells a unit of it, reconciliation files it as external
 *     (no HALT, no invented fill);
 *   - spot, fees in the base asset (Binance charges a buy's commission in the
 *     coin received: "Account Trade List" commissionAsset = BTC): the exit
 *     leaves dust below minQty, the strategy is flat and trades again;
 *   - spot, a stop-loss (STOP_LOSS_LIMIT) locks the coins: the strategy's exit
 *     releases it first instead of failing with insufficient balance;
 *   - futures one-way, three strategies on one symbol with opposite signals:
 *     each exit closes only its own quantity; the exchange's position is the
 *     ledger's sum;
 *   - futures, a reversal (exitLong and enterShort on one candle) gets its stop.
 *
 * Each of these failed before the ledger (see the commit that adds this file).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Fill, OrderUpdate, SignalAction } from '../../src/model/events.ts';
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

const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** A strategy that reads its own position: flat -> enterLong, long -> exitLong, every candle. */
function addFlipper(w: Workspace, name: string, yaml: string): void {
  w.write(
    `strategies/${name}/index.ts`,
    [
      `import { z } from '${REPO_ROOT}node_modules/zod/index.js';`,
      `import { defineStrategy } from '${REPO_ROOT}src/strategy/api.ts';`,
      `export default defineStrategy({ name: '${name}', description: 'enters when flat, exits when long', params: z.object({}).passthrough(), defaultTimeframe: '1m', warmup: () => 1,`,
      `  create(ctx) { return { onCandle() { if (ctx.position().side === 'flat') ctx.enterLong({ reason: 'flat' }); else ctx.exitLong({ reason: 'long' }); }, reset() {} }; } });`,
      '',
    ].join('\n'),
  );
  w.write(`strategies/${name}/BTCUSDT.yaml`, yaml);
}

function spotClient(x: LocalExchange): ReturnType<typeof createSpotClient> {
  return createSpotClient({ spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
}

function futuresClient(x: LocalExchange): ReturnType<typeof createFuturesClient> {
  return createFuturesClient({ spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
}

/** BTC the exchange holds for the account (free + locked). */
async function btcHeld(x: LocalExchange): Promise<Dec> {
  const b = await spotClient(x).fetchBalance();
  const info = (b.info as { balances: Array<{ asset: string; free: string; locked: string }> }).balances.find((a) => a.asset === 'BTC');
  return info ? new Dec(info.free).plus(info.locked) : new Dec(0);
}

describe('spot: holdings the bot did not buy, base-asset fees and dust, a stop that locks the coins', () => {
  it('never sells the 0.5 BTC it found; trades again after dust and sweeps it; every exit releases its stop first', async () => {
    ex = await LocalExchange.start({ accounts: [{ ...DEFAULT_ACCOUNT, spot: { USDT: '10000', BTC: '0.5' } }] });
    ex.setPrice('spot', 'BTCUSDT', new Dec('60000'));
    // Every trip loses its fees at a flat price: the loss-streak guard would stop the fourth entry.
    ws = tradingWorkspace(ex, 'market: spot\nrisk:\n  maxConsecutiveLosses: 20\n');
    // 0.0075 BTC: the 0.1 % fee in BTC is 0.0000075, so what arrives (0.0074925) sells as 0.00749 and leaves 0.0000025 of dust.
    addFlipper(ws, 'flipper', 'sizing:\n  type: fixed\n  quantity: 0.0075\nrisk:\n  stopLossPct: 2\n');
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000, strategies: true });
    const k = kernel;
    const t = k.trading!;

    const start = t.reconciler.last!;
    expect(start.halted, 'holdings found at start are not a reason to halt').toEqual([]);
    expect(start.symbols.map((s) => [s.symbol, s.position.status]), 'the 0.5 BTC is external').toEqual([['BTCUSDT', 'external']]);

    const fills: Fill[] = [];
    const rejected: OrderUpdate[] = [];
    k.bus.on('fill', (f) => void fills.push(f), 'test');
    k.bus.on('order.update', (u) => u.status === 'REJECTED' && void rejected.push(u), 'test');
    const denied: string[] = [];
    const signals: string[] = [];
    k.bus.on('order.denied', (d) => void denied.push(`${d.intent.side} ${d.reason}`), 'test');
    k.bus.on('signal.*', (x) => void signals.push(x.action), 'test');
    const lowest: Dec[] = [];
    for (let i = 0; i < 8; i++) {
      clock.advanceBy(60_000);
      candle(k, ex, clock, 'spot', 'BTCUSDT', '60000');
      await settled(k);
      lowest.push(await btcHeld(ex));
      // A reconciliation pass between trades, as the running bot makes every minute.
      await t.reconciler.run();
    }

    const own = fills.filter((f) => f.strategy === 'flipper');
    expect(denied, `nothing denied (signals: ${signals.join(', ')})`).toEqual([]);
    // Each buy of 0.0075 receives 0.0074925 (fee 0.0000075 BTC); a sell rounds down to the 0.00001 step, so
    // 0.0000025 of dust stays each time: 0.0000025, 0.000005, 0.0000075, and the fourth sell sweeps it (0.0075).
    expect(own.map((f) => `${f.side} ${f.quantity.toFixed()}`), 'four round trips: dust never froze the strategy, every exit sold').toEqual([
      'BUY 0.0075',
      'SELL 0.00749',
      'BUY 0.0075',
      'SELL 0.00749',
      'BUY 0.0075',
      'SELL 0.00749',
      'BUY 0.0075',
      'SELL 0.0075',
    ]);
    expect(rejected.map((u) => u.reason), 'no exit was refused for coins the stop locked').toEqual([]);
    expect(lowest.every((q) => q.gte('0.5')), `the account never held less than the user's 0.5 BTC: ${lowest.map((q) => q.toFixed()).join(', ')}`).toBe(true);
    expect(t.risk.states.get('symbol', 'BTCUSDT'), 'no HALT: the external holdings are accounted for').toBe('ACTIVE');
    const held = await btcHeld(ex);
    const lot = t.portfolio.ledger.lot('flipper', 'BTCUSDT');
    expect([lot.flat, lot.quantity.toFixed()], 'flat, the dust swept by the fourth sell').toEqual([true, '0']);
    expect(t.portfolio.ledger.external('BTCUSDT').toFixed(), 'the user\'s coins, on the external line').toBe('0.5');
    expect(held.toFixed(), "the exchange holds the ledger's sum: external + the strategy's line").toBe(t.portfolio.ledger.venueExpected('BTCUSDT').toFixed());
    expect(t.portfolio.trips('flipper', 'BTCUSDT').trades, 'four trips, from the ledger').toBe(4);
    const rows = t.store.sqlite.prepare("SELECT COUNT(*) AS n FROM fills WHERE trade_id LIKE 'reconcile-%'").get() as { n: number };
    expect(rows.n, 'reconciliation invented no fill').toBe(0);
  });
});

describe('futures one-way: three strategies on one symbol', () => {
  it('each exit closes only its own quantity; the exchange position is the ledger sum; PnL adds up', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'a', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\n' });
    addStrategy(ws, 'b', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.3\n' });
    addStrategy(ws, 'c', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.05\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const t = k.trading!;
    const venueQty = async (): Promise<string> => {
      const ps = await futuresClient(ex!).fetchPositions(['ETH/USDT:USDT']);
      const p = ps.find((x) => Number((x.info as { positionAmt: string }).positionAmt) !== 0);
      return p ? new Dec((p.info as { positionAmt: string }).positionAmt).toFixed() : '0';
    };
    const signal = (strategy: string, action: SignalAction) => k.bus.publish(`signal.${strategy}`, { kind: 'signal', ts: clock.now(), strategy, symbol: 'ETHUSDT', action, reason: `test ${action}` });
    const step = async (price: string, ...moves: Array<[string, SignalAction]>) => {
      clock.advanceBy(60_000);
      candle(k, ex!, clock, 'futures', 'ETHUSDT', price);
      for (const [s, a] of moves) signal(s, a);
      await settled(k);
    };
    const lines = () => ['a', 'b', 'c'].map((s) => `${s} ${t.portfolio.ledger.lot(s, 'ETHUSDT').quantity.toFixed()}`);
    const denied: string[] = [];
    const rejected: string[] = [];
    k.bus.on('order.denied', (d) => void denied.push(`${d.intent.strategy} ${d.reason}`), 'test');
    k.bus.on('order.update', (u) => u.status === 'REJECTED' && void rejected.push(`${u.strategy} ${u.reason}`), 'test');

    // The exchange's position first (what any version can be asked), then the owners' lines.
    await step('3000', ['a', 'enterLong'], ['b', 'enterShort'], ['c', 'enterLong']);
    expect(await venueQty(), 'the venue nets them').toBe('-0.15');
    expect(lines()).toEqual(['a 0.1', 'b -0.3', 'c 0.05']);

    // b takes profit on its short: it buys back its own 0.3, and a and c keep theirs (before the ledger,
    // b's exit bought back the symbol's net short of 0.15 and left the venue flat).
    await step('2900', ['b', 'exitShort']);
    expect(await venueQty(), "b's exit closed b only").toBe('0.15');
    expect(lines()).toEqual(['a 0.1', 'b 0', 'c 0.05']);
    // a exits while c still holds: only a's 0.1.
    await step('3100', ['a', 'exitLong']);
    expect(await venueQty()).toBe('0.05');
    expect(lines()).toEqual(['a 0', 'b 0', 'c 0.05']);
    // b goes short again while c is long, then c exits: the venue position goes through zero and the owners stay whole.
    await step('3050', ['b', 'enterShort']);
    await step('3000', ['c', 'exitLong']);
    expect(await venueQty()).toBe('-0.3');
    expect(lines()).toEqual(['a 0', 'b -0.3', 'c 0']);
    await step('3000', ['b', 'exitShort']);
    expect(await venueQty()).toBe('0');
    expect(lines()).toEqual(['a 0', 'b 0', 'c 0']);
    expect([...denied, ...rejected], 'nothing refused').toEqual([]);

    // Each strategy's PnL is its own, and they add up to the account's.
    const trips = Object.fromEntries(['a', 'b', 'c'].map((s) => [s, t.portfolio.trips(s, 'ETHUSDT').trades]));
    expect(trips, 'a one trip, b two, c one').toEqual({ a: 1, b: 2, c: 1 });
    const byOwner = ['a', 'b', 'c'].map((s) => t.portfolio.ledger.lot(s, 'ETHUSDT').realizedPnl).reduce((x, y) => x.plus(y), new Dec(0));
    expect(byOwner.toFixed(), 'the owners sum to the symbol').toBe(t.portfolio.position('ETHUSDT').realizedPnl.toFixed());
    // a: (3100 - 3000) * 0.1 = 10; b: (3000 - 2900) * 0.3 + (3050 - 3000) * 0.3 = 45; c: (3000 - 3000) * 0.05 = 0; less fees.
    const gross = (s: string) => t.portfolio.ledger.lot(s, 'ETHUSDT').realizedPnl.plus(t.portfolio.ledger.lot(s, 'ETHUSDT').fees).toFixed();
    expect(['a', 'b', 'c'].map(gross), 'each owner realized its own price moves').toEqual(['10', '45', '0']);
  });
});

describe('futures: a reversal keeps its stop', () => {
  it('exitLong and enterShort on one candle: the new short gets a BUY STOP_MARKET 2 % above', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'BTCUSDT', new Dec('60000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'rev', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.002\nrisk:\n  stopLossPct: 2\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const signal = (action: SignalAction) => k.bus.publish('signal.rev', { kind: 'signal', ts: clock.now(), strategy: 'rev', symbol: 'BTCUSDT', action, reason: `test ${action}` });
    const stops = async (): Promise<string[]> => {
      const open = await futuresClient(ex!).fetchOpenOrders('BTC/USDT:USDT', undefined, undefined, { trigger: true });
      return open.map((o) => {
        const i = o.info as Record<string, string>;
        return `${i.side} ${i.orderType ?? i.type} ${new Dec(i.quantity ?? i.origQty ?? '0').toFixed()}@${new Dec(i.triggerPrice ?? i.stopPrice ?? '0').toFixed()}`;
      });
    };

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'BTCUSDT', '60000');
    signal('enterLong');
    await settled(k);
    await settled(k);
    expect(await stops(), 'the long is protected').toEqual(['SELL STOP_MARKET 0.002@58800']);

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'BTCUSDT', '61000');
    const sells: string[] = [];
    k.bus.on('fill', (f) => f.side === 'SELL' && void sells.push(f.quantity.toFixed()), 'test');
    signal('exitLong');
    signal('enterShort');
    for (let i = 0; i < 20 && sells.length < 2; i++) await settled(k);
    await settled(k);
    expect(sells, 'the exit, then the entry').toEqual(['0.002', '0.002']);
    expect(await stops(), "the short's stop, 2 % above its entry; the long's is gone").toEqual(['BUY STOP_MARKET 0.002@62220']);
    expect(k.trading!.portfolio.ledger.lot('rev', 'BTCUSDT').quantity.toFixed()).toBe('-0.002');
    expect(k.trading!.protection.view().unprotected, 'nothing unprotected').toEqual([]);
  });
});

describe('futures: a stop the exchange refuses', () => {
  it('the position is reported unprotected (heartbeat unhealthy) until the retried stop is working', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'BTCUSDT', new Dec('60000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'rev', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.002\nrisk:\n  stopLossPct: 2\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const t = k.trading!;
    // The next conditional order is refused as Binance refuses one whose trigger is already crossed
    // (USD-M "New Algo Order (TRADE)": -2021 "Order would immediately trigger.").
    ex.faults.fails.push({ count: 1, status: 400, code: -2021, msg: 'Order would immediately trigger.', pathPrefix: '/fapi/v1/algoOrder' });
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'BTCUSDT', '60000');
    k.bus.publish('signal.rev', { kind: 'signal', ts: clock.now(), strategy: 'rev', symbol: 'BTCUSDT', action: 'enterLong', reason: 'test' });
    for (let i = 0; i < 20 && t.protection.view().unprotected.length === 0; i++) await settled(k);
    expect(t.portfolio.ledger.lot('rev', 'BTCUSDT').quantity.toFixed(), 'the entry filled').toBe('0.002');
    expect(t.protection.view().unprotected.map((u) => [u.strategy, u.symbol]), 'the stop was refused: unprotected').toEqual([['rev', 'BTCUSDT']]);
    let hb = k.heartbeat.write();
    expect([hb.healthy, hb.protection.status], 'an unprotected position makes the bot unhealthy').toEqual([false, 'down']);
    expect(hb.problems.join(' '), 'and says which').toMatch(/protection is down: UNPROTECTED: rev BTCUSDT/);

    // The retry, 5 s later on the bot's clock: the stop is placed and the position is protected again.
    clock.advanceBy(5_000);
    for (let i = 0; i < 20 && t.protection.view().unprotected.length > 0; i++) await settled(k);
    await settled(k);
    expect(t.protection.view().unprotected, 'protected again').toEqual([]);
    hb = k.heartbeat.write();
    expect([hb.healthy, hb.protection.status]).toEqual([true, 'ok']);
    expect(t.protection.view().owners.map((o) => [o.strategy, o.stop, o.onExchange]), 'the stop is on the exchange').toEqual([['rev', '58800', ['stop']]]);
  });
});

describe('futures hedge mode (POSITION_MODE=HEDGE)', () => {
  it('two strategies hold the LONG and SHORT legs of one symbol; each exit and stop acts on its own leg', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: futures\n', { POSITION_MODE: 'HEDGE' });
    addStrategy(ws, 'up', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\nrisk:\n  stopLossPct: 2\n' });
    addStrategy(ws, 'down', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.3\nrisk:\n  stopLossPct: 2\n' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    const t = k.trading!;
    const c = futuresClient(ex);
    const dual = (await c.fapiPrivateGetPositionSideDual()) as { dualSidePosition: boolean };
    expect(dual.dualSidePosition, 'the bot switched the account to hedge mode at start').toBe(true);
    const legs = async (): Promise<Record<string, string>> => {
      const raw = (await c.fapiPrivateV2GetPositionRisk({ symbol: 'ETHUSDT' })) as Array<{ positionSide: string; positionAmt: string }>;
      return Object.fromEntries(raw.filter((p) => p.positionSide !== 'BOTH' && !new Dec(p.positionAmt).isZero()).map((p) => [p.positionSide, new Dec(p.positionAmt).toFixed()]));
    };
    const stops = async (): Promise<string[]> => {
      const open = await c.fetchOpenOrders('ETH/USDT:USDT', undefined, undefined, { trigger: true });
      return open.map((o) => {
        const i = o.info as Record<string, string>;
        return `${i.positionSide} ${i.side} ${i.orderType ?? i.type} ${new Dec(i.quantity ?? i.origQty ?? '0').toFixed()}@${new Dec(i.triggerPrice ?? i.stopPrice ?? '0').toFixed()}`;
      }).sort();
    };
    const signal = (strategy: string, action: SignalAction) => k.bus.publish(`signal.${strategy}`, { kind: 'signal', ts: clock.now(), strategy, symbol: 'ETHUSDT', action, reason: `test ${action}` });
    const rejected: string[] = [];
    k.bus.on('order.update', (u) => u.status === 'REJECTED' && void rejected.push(`${u.strategy} ${u.reason}`), 'test');

    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'ETHUSDT', '3000');
    signal('up', 'enterLong');
    signal('down', 'enterShort');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(await legs(), 'each strategy on its own leg: nothing netted').toEqual({ LONG: '0.1', SHORT: '-0.3' });
    expect([t.portfolio.ledger.lot('up', 'ETHUSDT', 'LONG').quantity.toFixed(), t.portfolio.ledger.lot('down', 'ETHUSDT', 'SHORT').quantity.toFixed()]).toEqual(['0.1', '-0.3']);
    expect(await stops(), "each leg's stop closes that leg (positionSide, no reduceOnly: Binance refuses it in hedge mode)").toEqual(['LONG SELL STOP_MARKET 0.1@2940', 'SHORT BUY STOP_MARKET 0.3@3060']);

    // up exits: the LONG leg closes; the SHORT leg and its stop stay.
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'ETHUSDT', '3010');
    signal('up', 'exitLong');
    for (let i = 0; i < 4; i++) await settled(k);
    expect(await legs(), 'the LONG leg is closed').toEqual({ SHORT: '-0.3' });
    expect(await stops(), "the LONG leg's stop went with it").toEqual(['SHORT BUY STOP_MARKET 0.3@3060']);
    expect(rejected, 'nothing refused').toEqual([]);
    const r = await t.reconciler.run();
    expect([r.discrepancies, r.halted], 'the legs reconcile one by one').toEqual([0, []]);
  });
});

describe('futures: an entry that fills after a restart', () => {
  it('still gets its stop: the levels kept for the resting entry attach when it fills', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'BTCUSDT', new Dec('60000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    addStrategy(ws, 'dip', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.002\nrisk:\n  stopLossPct: 2\norder:\n  type: limit\n  offsetBps: 50\n  ttlSec: 86400\n  onExpiry: cancel\n' });
    let clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    clock.advanceBy(60_000);
    candle(kernel, ex, clock, 'futures', 'BTCUSDT', '60000');
    kernel.bus.publish('signal.dip', { kind: 'signal', ts: clock.now(), strategy: 'dip', symbol: 'BTCUSDT', action: 'enterLong', reason: 'test' });
    for (let i = 0; i < 3; i++) await settled(kernel);
    expect(kernel.trading!.execution.openOrders('BTCUSDT').map((r) => [r.type, r.price, r.status]), 'the entry rests 50 bps below').toEqual([['LIMIT', '59700', 'NEW']]);
    await kernel.stop('deploy');

    // Restarted; the market trades down through the limit.
    clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
    const k = kernel;
    clock.advanceBy(60_000);
    candle(k, ex, clock, 'futures', 'BTCUSDT', '59600');
    for (let i = 0; i < 20 && k.trading!.portfolio.ledger.lot('dip', 'BTCUSDT').flat; i++) await settled(k);
    for (let i = 0; i < 3; i++) await settled(k);
    expect(k.trading!.portfolio.ledger.lot('dip', 'BTCUSDT').quantity.toFixed(), 'the entry filled after the restart').toBe('0.002');
    expect(k.trading!.protection.view().owners.map((o) => [o.strategy, o.stop, o.onExchange]), '2 % below the signal price, on the exchange').toEqual([['dip', '58800', ['stop']]]);
  });
});
