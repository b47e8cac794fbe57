/**
 * The portfolio against a real SQLite store (temp file, migrated), a real bus
 * and a TestClock, driven only through bus events (account.updated, fill,
 * candle.closed, mark.price). Every figure is worked by hand in the comment
 * above its assertion; money is compared as exact Decimal strings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec, type Dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { Fill, PositionChanged } from '../../src/model/events.ts';
import type { Market } from '../../src/model/market.ts';
import { Portfolio } from '../../src/portfolio/portfolio.ts';
import { Store } from '../../src/store/store.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const logger = silentLogger();

let ws: Workspace | undefined;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
  ws?.cleanup();
  ws = undefined;
});

interface Rig {
  store: Store;
  bus: Bus;
  clock: TestClock;
  changes: PositionChanged[];
  portfolio(market: Market): Portfolio;
  fill(o: FillOpts): void;
  snapshot(usdt: string, walletBalance?: string): void;
  candle(market: Market, symbol: string, close: number, timeframe?: '1m' | '5m'): void;
  mark(symbol: string, price: string): void;
}

interface FillOpts {
  market: Market;
  symbol: string;
  side: 'BUY' | 'SELL';
  price: string;
  qty: string;
  fee?: string;
  feeAsset?: string;
  strategy?: string;
  tradeId?: string;
  ts?: number;
}

let tradeSeq = 0;

async function rig(start = T0): Promise<Rig> {
  ws ??= makeWorkspace();
  const store = Store.open(ws.dbFile);
  await store.migrate();
  cleanups.push(() => store.close());
  const clock = new TestClock(start);
  const bus = new Bus({ logger, clock });
  const changes: PositionChanged[] = [];
  bus.on('position.changed', (p) => changes.push(p), 'test');
  return {
    store,
    bus,
    clock,
    changes,
    portfolio: (market) => newPortfolio(market, bus, store, clock),
    fill(o) {
      bus.publish('fill', fillEvent(o, clock.now()));
    },
    snapshot(usdt, walletBalance) {
      bus.publish('account.updated', {
        kind: 'account.updated',
        ts: clock.now(),
        balances: [
          { asset: 'USDT', free: dec(usdt), locked: dec(0) },
          { asset: 'BTC', free: dec('3'), locked: dec(0) },
        ],
        ...(walletBalance ? { walletBalance: dec(walletBalance) } : {}),
        reason: 'SNAPSHOT',
      });
    },
    candle(market, symbol, close, timeframe = '1m') {
      bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market, symbol, timeframe, openTime: clock.now() - 60_000, open: close, high: close, low: close, close, volume: 1 });
    },
    mark(symbol, price) {
      bus.publish('mark.price', { kind: 'mark.price', ts: clock.now(), symbol, markPrice: dec(price) });
    },
  };
}

function newPortfolio(market: Market, bus: Bus, store: Store, clock: TestClock): Portfolio {
  const insts = new Map(catalog(market).map((i) => [i.symbol, i]));
  const p = new Portfolio({
    bus,
    store,
    clock,
    logger,
    market,
    quoteAsset: 'USDT',
    instrument: (s) => insts.get(s),
  });
  p.start();
  cleanups.push(() => p.stop());
  return p;
}

function fillEvent(o: FillOpts, now: number): Fill {
  return {
    kind: 'fill',
    ts: o.ts ?? now,
    tradeId: o.tradeId ?? `t${++tradeSeq}`,
    strategy: o.strategy ?? 'a',
    market: o.market,
    symbol: o.symbol,
    side: o.side,
    price: dec(o.price),
    quantity: dec(o.qty),
    fee: dec(o.fee ?? '0'),
    feeAsset: o.feeAsset ?? 'USDT',
    isMaker: false,
  };
}

const s = (d: Dec | undefined): string | undefined => d?.toFixed();

describe('portfolio: spot', () => {
  it('SNAPSHOT sets cash to free + locked quote; other assets and ORDER updates leave the ledger alone', async () => {
    const r = await rig();
    const p = r.portfolio('spot');
    r.bus.publish('account.updated', { kind: 'account.updated', ts: r.clock.now(), balances: [{ asset: 'USDT', free: dec('9000.5'), locked: dec('999.5') }, { asset: 'BTC', free: dec(2), locked: dec(0) }], reason: 'SNAPSHOT' });
    expect(s(p.cash()), 'free 9000.5 + locked 999.5').toBe('10000');
    expect(s(p.equity()), 'no positions: equity is cash').toBe('10000');
    r.bus.publish('account.updated', { kind: 'account.updated', ts: r.clock.now(), balances: [{ asset: 'USDT', free: dec(1), locked: dec(0) }], reason: 'ORDER' });
    expect(s(p.cash()), 'ORDER balances are the venue echo of fills the ledger already counted').toBe('10000');
  });

  it('average entry across adds, base-asset buy fees, USDT sell fees, realized PnL, cash and equity', async () => {
    const r = await rig();
    const p = r.portfolio('spot');
    r.snapshot('10000');
    const openedAt = r.clock.now();

    // Buy 0.01 @ 40000, fee 0.00001 BTC: position 0.00999; fee worth 0.00001 * 40000 = 0.4 USDT.
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '40000', qty: '0.01', fee: '0.00001', feeAsset: 'BTC' });
    let pos = p.position('BTCUSDT');
    expect(s(pos.quantity), 'the base fee never arrives').toBe('0.00999');
    expect(s(pos.entryPrice)).toBe('40000');
    expect(s(pos.realizedPnl), 'the base fee valued at the fill price').toBe('-0.4');
    expect(s(p.cash()), '10000 - 400 notional; the fee was paid in BTC').toBe('9600');
    // mark = first fill price (no candle yet): 9600 + 0.00999 * 40000 = 9999.6
    expect(s(p.equity()), 'equity lost exactly the fee').toBe('9999.6');
    expect(pos.owner).toBe('a');
    expect(pos.openedAt).toBe(openedAt);

    r.clock.advanceBy(60_000);
    // Buy 0.01 @ 42000, fee 0.00001 BTC (0.42 USDT): entry (40000*0.00999 + 42000*0.00999) / 0.01998 = 41000
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '42000', qty: '0.01', fee: '0.00001', feeAsset: 'BTC' });
    pos = p.position('BTCUSDT');
    expect(s(pos.quantity)).toBe('0.01998');
    expect(s(pos.entryPrice), 'quantity-weighted average entry').toBe('41000');
    expect(s(pos.realizedPnl), '-0.4 - 0.42').toBe('-0.82');
    expect(s(p.cash()), '9600 - 420').toBe('9180');

    // A 1m close at 43000 is the spot mark: unrealized (43000 - 41000) * 0.01998 = 39.96; equity 9180 + 0.01998 * 43000 = 10039.14
    r.candle('spot', 'BTCUSDT', 43_000);
    pos = p.position('BTCUSDT');
    expect(s(pos.markPrice)).toBe('43000');
    expect(s(pos.unrealizedPnl)).toBe('39.96');
    expect(s(p.unrealized())).toBe('39.96');
    expect(s(p.equity()), 'cash + qty * mark').toBe('10039.14');
    // A 5m candle is not the mark.
    r.candle('spot', 'BTCUSDT', 1, '5m');
    expect(s(p.mark('BTCUSDT')), 'only 1m candles move the mark').toBe('43000');

    // Partial close: sell 0.00999 @ 44000, fee 0.43956 USDT (0.1% of 439.56).
    // realized (44000 - 41000) * 0.00999 = 29.97, minus the fee: -0.82 + 29.97 - 0.43956 = 28.71044
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'SELL', price: '44000', qty: '0.00999', fee: '0.43956' });
    pos = p.position('BTCUSDT');
    expect(s(pos.quantity)).toBe('0.00999');
    expect(s(pos.entryPrice), 'a reduction keeps the entry').toBe('41000');
    expect(s(pos.realizedPnl)).toBe('28.71044');
    expect(s(p.cash()), '9180 + 439.56 - 0.43956').toBe('9619.12044');
    expect(r.changes.at(-1)?.closedTrade, 'a partial close closes no trip').toBeUndefined();

    // Full close: sell 0.00999 @ 39000, fee 0.38961: realized (39000 - 41000) * 0.00999 = -19.98
    // trip PnL: -0.4 - 0.42 + 29.97 - 0.43956 - 19.98 - 0.38961 = 8.34083
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'SELL', price: '39000', qty: '0.00999', fee: '0.38961' });
    pos = p.position('BTCUSDT');
    expect(s(pos.quantity)).toBe('0');
    expect(s(pos.realizedPnl), 'lifetime realized, fees included').toBe('8.34083');
    expect(pos.owner, 'flat: no owner').toBeUndefined();
    expect(s(p.cash()), '9619.12044 + 389.61 - 0.38961').toBe('10008.34083');
    expect(s(p.equity()), 'flat: equity = start 10000 + trip PnL').toBe('10008.34083');
    expect(p.positions(), 'no open positions').toEqual([]);
    expect(s(p.realizedToday())).toBe('8.34083');
    expect(s(p.strategyRealizedToday('a'))).toBe('8.34083');
    expect(s(p.tradedToday('BTCUSDT')), '0.01 + 0.01 + 0.00999 + 0.00999').toBe('0.03998');

    const t = p.trips('a', 'BTCUSDT');
    expect({ trades: t.trades, wins: t.wins, losses: t.losses, grossWin: s(t.grossWin), grossLoss: s(t.grossLoss), streak: t.consecutiveLosses }, 'one winning trip').toEqual({
      trades: 1,
      wins: 1,
      losses: 0,
      grossWin: '8.34083',
      grossLoss: '0',
      streak: 0,
    });

    expect(r.changes.length, 'one position.changed per fill').toBe(4);
    const last = r.changes.at(-1)!;
    expect(last.market).toBe('spot');
    expect(s(last.quantity)).toBe('0');
    expect(s(last.realizedPnl)).toBe('8.34083');
    expect(last.closedTrade && { strategy: last.closedTrade.strategy, pnl: s(last.closedTrade.pnl), openedAt: last.closedTrade.openedAt }, 'the closing change carries the trip').toEqual({
      strategy: 'a',
      pnl: '8.34083',
      openedAt,
    });
  });

  it('writes the positions row on every fill', async () => {
    const r = await rig();
    r.portfolio('spot');
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '40000', qty: '0.01', fee: '0.00001', feeAsset: 'BTC' });
    r.clock.advanceBy(1000);
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '42000', qty: '0.01', fee: '0.00001', feeAsset: 'BTC' });
    const rows = r.store.all(r.store.db.selectFrom('positions').selectAll());
    expect(rows, 'one row per (market, symbol, side), updated in place').toEqual([
      { market: 'spot', symbol: 'BTCUSDT', position_side: 'BOTH', quantity: '0.01998', entry_price: '41000', realized_pnl: '-0.82', updated_at: T0 + 1000 },
    ]);
  });

  it('dust below minQty counts as flat: the trip closes and the next buy opens a new one', async () => {
    const r = await rig();
    const p = r.portfolio('spot');
    r.snapshot('1000');
    // Buy 0.01 @ 40000 with a 0.000005 BTC fee (0.2 USDT): 0.009995 held, but the step is 0.00001,
    // so the most one can sell is 0.00999, leaving 0.000005 BTC of dust (< minQty 0.00001).
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '40000', qty: '0.01', fee: '0.000005', feeAsset: 'BTC' });
    // Sell 0.00999 @ 41000, fee 0.40959: trip PnL -0.2 + (41000 - 40000) * 0.00999 - 0.40959 = 9.38041
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'SELL', price: '41000', qty: '0.00999', fee: '0.40959' });
    const ct = r.changes.at(-1)?.closedTrade;
    expect(ct && { strategy: ct.strategy, pnl: s(ct.pnl) }, 'dust left: the trip is closed').toEqual({ strategy: 'a', pnl: '9.38041' });
    const pos = p.position('BTCUSDT');
    expect(s(pos.quantity), 'the dust is still held').toBe('0.000005');
    expect(s(pos.unrealizedPnl), 'dust has no unrealized PnL').toBe('0');
    expect(pos.owner, 'flat: no owner').toBeUndefined();
    expect(p.trips('a', 'BTCUSDT').trades).toBe(1);
    expect(s(p.trips('a', 'BTCUSDT').grossWin)).toBe('9.38041');

    // The next buy (strategy b) starts a new trip that b owns.
    r.clock.advanceBy(5000);
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '41000', qty: '0.01', strategy: 'b' });
    const next = p.position('BTCUSDT');
    expect(next.owner, 'dust does not keep the old owner').toBe('b');
    expect(next.openedAt).toBe(T0 + 5000);
    expect(s(next.quantity)).toBe('0.010005');
  });

  it('ignores fills and candles of the other market', async () => {
    const r = await rig();
    const p = r.portfolio('spot');
    r.snapshot('10000');
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '40000', qty: '1', fee: '16' });
    r.candle('futures', 'BTCUSDT', 50_000);
    expect(s(p.position('BTCUSDT').quantity), 'a futures fill is not a spot position').toBe('0');
    expect(s(p.cash())).toBe('10000');
    expect(s(p.realizedToday())).toBe('0');
    expect(p.mark('BTCUSDT'), 'a futures candle is not a spot mark').toBeUndefined();
    expect(r.changes, 'no position.changed').toEqual([]);
    expect(r.store.all(r.store.db.selectFrom('positions').selectAll()), 'no positions row').toEqual([]);
  });
});

describe('portfolio: futures', () => {
  it('cash is the wallet plus realized PnL minus fees; equity adds unrealized; FUNDING_FEE moves cash', async () => {
    const r = await rig();
    const p = r.portfolio('futures');
    r.snapshot('1', '5000');
    expect(s(p.cash()), 'futures SNAPSHOT: the wallet balance, not the USDT free balance').toBe('5000');

    // Buy 1 @ 2000 (fee 0.8), buy 1 @ 2100 (fee 0.84): entry 2050, cash 5000 - 1.64 = 4998.36
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2000', qty: '1', fee: '0.8' });
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2100', qty: '1', fee: '0.84' });
    expect(s(p.position('ETHUSDT').entryPrice)).toBe('2050');
    expect(s(p.cash()), 'futures: notional does not leave the wallet, fees do').toBe('4998.36');

    // Mark 2200: unrealized (2200 - 2050) * 2 = 300; equity 4998.36 + 300 = 5298.36
    r.mark('ETHUSDT', '2200');
    expect(s(p.unrealized())).toBe('300');
    expect(s(p.equity()), 'wallet + unrealized').toBe('5298.36');
    // A 1m close is only the last price for futures; the mark price stays the mark.
    r.candle('futures', 'ETHUSDT', 2190);
    expect(s(p.mark('ETHUSDT'))).toBe('2200');
    expect(s(p.last('ETHUSDT'))).toBe('2190');

    // Sell 0.5 @ 2250, fee 0.45: realized (2250 - 2050) * 0.5 = 100; cash 4998.36 + 100 - 0.45 = 5097.91
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', price: '2250', qty: '0.5', fee: '0.45' });
    const pos = p.position('ETHUSDT');
    expect(s(pos.quantity)).toBe('1.5');
    expect(s(pos.realizedPnl), '-0.8 - 0.84 + 100 - 0.45').toBe('97.91');
    expect(s(p.cash())).toBe('5097.91');
    // unrealized (2200 - 2050) * 1.5 = 225; equity 5322.91
    expect(s(p.equity())).toBe('5322.91');

    r.bus.publish('account.updated', { kind: 'account.updated', ts: r.clock.now(), balances: [], reason: 'FUNDING_FEE', balanceChange: dec('-1.5') });
    expect(s(p.cash()), 'funding paid: 5097.91 - 1.5').toBe('5096.41');
    r.bus.publish('account.updated', { kind: 'account.updated', ts: r.clock.now(), balances: [], reason: 'FUNDING_FEE', balanceChange: dec('0.25') });
    expect(s(p.cash()), 'funding received: + 0.25').toBe('5096.66');
  });

  it('a flip by one strategy (long 1, sell 3 -> short 2) closes its trip and opens a new one at the fill price', async () => {
    const r = await rig();
    const p = r.portfolio('futures');
    r.snapshot('0', '10000');
    const t1 = r.clock.now();
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '50000', qty: '1', fee: '20', strategy: 'a' });
    r.clock.advanceBy(60_000);
    const t2 = r.clock.now();
    // Sell 3 @ 51000, fee 61.2: the long closes on (51000 - 50000) * 1 = 1000; the trip = -20 + 1000 = 980.
    // The flipping fill's fee belongs to the new trip.
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'SELL', price: '51000', qty: '3', fee: '61.2', strategy: 'a' });
    const flip = r.changes.at(-1)!;
    expect(flip.closedTrade && { strategy: flip.closedTrade.strategy, pnl: s(flip.closedTrade.pnl), openedAt: flip.closedTrade.openedAt }, "a's trip closes with its PnL").toEqual({ strategy: 'a', pnl: '980', openedAt: t1 });
    let pos = p.position('BTCUSDT');
    expect(s(pos.quantity), 'long 1 - 3 = short 2').toBe('-2');
    expect(s(pos.entryPrice), 'the new trip opens at the fill price').toBe('51000');
    expect(pos.owner).toBe('a');
    expect(pos.openedAt).toBe(t2);
    expect(s(pos.realizedPnl), '-20 + 1000 - 61.2').toBe('918.8');
    expect(s(p.strategyRealizedToday('a'))).toBe('918.8');
    expect(s(p.cash()), '10000 - 20 + 1000 - 61.2').toBe('10918.8');
    r.mark('BTCUSDT', '50000');
    expect(s(p.position('BTCUSDT').unrealizedPnl), 'a short gains as the mark falls').toBe('2000');
    expect(s(p.equity())).toBe('12918.8');
    // Buy 2 @ 50500, fee 40.4: realized (50500 - 51000) * 2 * -1 = 1000; the trip -61.2 + 1000 - 40.4 = 898.4
    r.clock.advanceBy(60_000);
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '50500', qty: '2', fee: '40.4', strategy: 'a' });
    const close = r.changes.at(-1)!;
    expect(close.closedTrade && { strategy: close.closedTrade.strategy, pnl: s(close.closedTrade.pnl), openedAt: close.closedTrade.openedAt }).toEqual({ strategy: 'a', pnl: '898.4', openedAt: t2 });
    pos = p.position('BTCUSDT');
    expect(s(pos.quantity)).toBe('0');
    expect(s(pos.realizedPnl), '918.8 + 1000 - 40.4').toBe('1878.4');
    expect(p.trips('a', 'BTCUSDT').trades).toBe(2);
  });

  it("strategies on one symbol own their positions: b's sell opens b's short and never closes a's long (issue 17)", async () => {
    // Before the ledger, one net position per symbol: b's exitShort/enterShort closed a's long ("first opener owns the trip").
    const r = await rig();
    const p = r.portfolio('futures');
    r.snapshot('0', '10000');
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '50000', qty: '1', fee: '20', strategy: 'a' });
    r.fill({ market: 'futures', symbol: 'BTCUSDT', side: 'SELL', price: '51000', qty: '3', fee: '61.2', strategy: 'b' });
    expect(r.changes.every((c) => c.closedTrade === undefined), 'no trip closed: neither owner reduced its own position').toBe(true);
    expect([s(p.ledger.lot('a', 'BTCUSDT').quantity), s(p.ledger.lot('b', 'BTCUSDT').quantity)], 'a long 1, b short 3').toEqual(['1', '-3']);
    expect(s(p.position('BTCUSDT').quantity), 'the venue nets them: -2').toBe('-2');
    expect([s(p.strategyRealizedToday('a')), s(p.strategyRealizedToday('b'))], 'each pays its own fee').toEqual(['-20', '-61.2']);
    r.mark('BTCUSDT', '50500');
    // a: (50500 - 50000) * 1 = 500; b: (50500 - 51000) * -3 = 1500; together 2000 = the net's (50500 * -2) - cost.
    expect(s(p.position('BTCUSDT').unrealizedPnl), 'the owners\' unrealized PnL sums').toBe('2000');
    expect(s(p.equity()), '10000 - 20 - 61.2 + 2000').toBe('11918.8');
  });

  it('a trip opened by a and flattened by the kill switch counts for a', async () => {
    const r = await rig();
    const p = r.portfolio('futures');
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2000', qty: '1', fee: '0', strategy: 'a' });
    r.clock.advanceBy(30_000);
    // Sell 1 @ 1900, fee 0.76: trip -100 - 0.76 = -100.76
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', price: '1900', qty: '1', fee: '0.76', strategy: 'kill-switch' });
    expect(s(p.strategyRealizedToday('a')), 'the loss and the closing fee are a\'s').toBe('-100.76');
    expect(s(p.strategyRealizedToday('kill-switch')), 'the kill switch took no risk').toBe('0');
    const t = p.trips('a', 'ETHUSDT');
    expect({ trades: t.trades, losses: t.losses, grossLoss: s(t.grossLoss), streak: t.consecutiveLosses, lastLossAt: t.lastLossAt }).toEqual({
      trades: 1,
      losses: 1,
      grossLoss: '100.76',
      streak: 1,
      lastLossAt: T0 + 30_000,
    });
    expect(p.trips('kill-switch', 'ETHUSDT').trades, 'no trip for the closer').toBe(0);
    expect(r.changes.at(-1)?.closedTrade?.strategy).toBe('a');
  });

  it('consecutive losses count up, a win resets them, lastLossAt keeps the last loss', async () => {
    const r = await rig();
    const p = r.portfolio('futures');
    const trip = (entry: string, exit: string) => {
      r.fill({ market: 'futures', symbol: 'LINKUSDT', side: 'BUY', price: entry, qty: '10' });
      r.clock.advanceBy(60_000);
      r.fill({ market: 'futures', symbol: 'LINKUSDT', side: 'SELL', price: exit, qty: '10' });
      r.clock.advanceBy(60_000);
    };
    trip('15', '14.5'); // -5
    trip('15', '14.9'); // -1
    const secondLossAt = T0 + 3 * 60_000;
    let t = p.trips('a', 'LINKUSDT');
    expect(t.consecutiveLosses, 'two losses in a row').toBe(2);
    expect(t.lastLossAt).toBe(secondLossAt);
    expect(s(t.grossLoss), '5 + 1').toBe('6');
    trip('15', '15.2'); // +2
    t = p.trips('a', 'LINKUSDT');
    expect(t.consecutiveLosses, 'a win resets the streak').toBe(0);
    expect(t.lastLossAt, 'the last loss time stays').toBe(secondLossAt);
    expect({ trades: t.trades, wins: t.wins, losses: t.losses, grossWin: s(t.grossWin) }).toEqual({ trades: 3, wins: 1, losses: 2, grossWin: '2' });
    trip('15', '15'); // 0: breakeven
    t = p.trips('a', 'LINKUSDT');
    expect({ wins: t.wins, streak: t.consecutiveLosses }, 'a breakeven trip is not a loss').toEqual({ wins: 2, streak: 0 });
  });

  it('realizedToday resets at 00:00 UTC; the lifetime realized on the position stays', async () => {
    const r = await rig(Date.UTC(2026, 0, 15, 23, 30));
    const p = r.portfolio('futures');
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2000', qty: '1' });
    r.fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', price: '1900', qty: '1' });
    expect(s(p.realizedToday())).toBe('-100');
    expect(s(p.strategyRealizedToday('a'))).toBe('-100');
    expect(s(p.tradedToday('ETHUSDT'))).toBe('2');
    r.clock.advanceTo(Date.UTC(2026, 0, 15, 23, 59, 59, 999));
    expect(s(p.realizedToday()), 'still the same UTC day').toBe('-100');
    r.clock.advanceTo(Date.UTC(2026, 0, 16, 0, 0, 0, 1));
    expect(s(p.realizedToday()), 'a new UTC day').toBe('0');
    expect(s(p.strategyRealizedToday('a'))).toBe('0');
    expect(s(p.tradedToday('ETHUSDT'))).toBe('0');
    expect(s(p.position('ETHUSDT').realizedPnl), 'lifetime realized is not a day counter').toBe('-100');
    expect(p.trips('a', 'ETHUSDT').losses, 'trips are not a day counter').toBe(1);
  });
});

describe('portfolio: persistence and restart', () => {
  it('a second portfolio rebuilt from the fills table has the same positions, trips and today\'s PnL', async () => {
    const yesterday = Date.UTC(2026, 0, 14, 22, 0);
    const r = await rig(yesterday);
    const live = r.portfolio('futures');
    let seq = 0;
    /** What the execution engine does: the order row, then the fill row; and the fill on the bus. */
    const record = (o: FillOpts & { withOrder?: boolean }) => {
      const f = fillEvent({ ...o, tradeId: `T${++seq}` }, r.clock.now());
      const cid = o.withOrder === false ? null : `cid-${seq}`;
      if (cid) {
        r.store.run(
          r.store.db.insertInto('orders').values({
            client_order_id: cid,
            intent_id: `${f.strategy}/${f.symbol}/${seq}`,
            strategy: f.strategy,
            market: f.market,
            symbol: f.symbol,
            side: f.side,
            type: 'MARKET',
            time_in_force: null,
            quantity: f.quantity.toFixed(),
            price: null,
            stop_price: null,
            reduce_only: 0,
            status: 'FILLED',
            exchange_order_id: `E${seq}`,
            filled_quantity: f.quantity.toFixed(),
            average_price: f.price.toFixed(),
            error: null,
            created_at: f.ts,
            source: 'strategy',
            position_side: 'BOTH',
            updated_at: f.ts,
          }),
        );
      }
      r.store.run(
        r.store.db.insertInto('fills').values({
          market: f.market,
          symbol: f.symbol,
          trade_id: f.tradeId,
          client_order_id: cid,
          exchange_order_id: `E${seq}`,
          side: f.side,
          price: f.price.toFixed(),
          quantity: f.quantity.toFixed(),
          fee: f.fee.toFixed(),
          fee_asset: f.feeAsset,
          realized_pnl: null,
          is_maker: 0,
          ts: f.ts,
        }),
      );
      r.bus.publish('fill', cid ? { ...f, clientOrderId: cid } : { ...f, strategy: 'external' });
    };

    // Yesterday: a loses a round trip on ETH (-100 - 0.8 - 0.76 = -101.56) and opens BTC.
    record({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2000', qty: '1', fee: '0.8', strategy: 'a' });
    r.clock.advanceBy(60_000);
    record({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', price: '1900', qty: '1', fee: '0.76', strategy: 'a' });
    record({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '50000', qty: '0.1', fee: '2', strategy: 'a' });
    // Today: b adds to BTC, the kill switch flattens part, an external fill on LINK, and a's new ETH trip wins.
    r.clock.advanceTo(Date.UTC(2026, 0, 15, 9, 0));
    record({ market: 'futures', symbol: 'BTCUSDT', side: 'BUY', price: '52000', qty: '0.1', fee: '2.08', strategy: 'b' });
    record({ market: 'futures', symbol: 'BTCUSDT', side: 'SELL', price: '53000', qty: '0.05', fee: '1.06', strategy: 'kill-switch' });
    record({ market: 'futures', symbol: 'LINKUSDT', side: 'BUY', price: '15', qty: '10', fee: '0.06', strategy: 'x', withOrder: false });
    record({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', price: '2000', qty: '1', fee: '0.8', strategy: 'a' });
    r.clock.advanceBy(60_000);
    record({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', price: '2100', qty: '1', fee: '0.84', strategy: 'a' });
    r.clock.advanceBy(60_000);

    // Today by hand. Each owner has its own line: a long 0.1 @ 50000, b long 0.1 @ 52000 (b pays its fee 2.08).
    // The kill-switch row (an older database's label, not an owner) closes the lines it reduces, largest
    // first (a and b tie; a by name): a sells 0.05 @ 53000 = +150 - 1.06 = 148.94. ETH: +100 - 0.8 - 0.84 = 98.36.
    // LINK: a fill with no order row is external, fee -0.06.
    // a today: 148.94 + 98.36 = 247.3; b: -2.08; external: -0.06; total 245.16.
    expect(s(live.strategyRealizedToday('a')), 'live: a today').toBe('247.3');
    expect(s(live.strategyRealizedToday('b')), 'live: b today').toBe('-2.08');
    expect(s(live.strategyRealizedToday('external')), 'live: the order-less fill').toBe('-0.06');
    expect(s(live.realizedToday()), 'live: today').toBe('245.16');

    live.stop();
    const bus2 = new Bus({ logger, clock: r.clock });
    const rebuilt = newPortfolio('futures', bus2, r.store, r.clock);

    for (const sym of ['BTCUSDT', 'ETHUSDT', 'LINKUSDT']) {
      const a = live.position(sym);
      const b = rebuilt.position(sym);
      expect({ q: s(b.quantity), e: s(b.entryPrice), r: s(b.realizedPnl), owner: b.owner, openedAt: b.openedAt }, `${sym} rebuilt`).toEqual({
        q: s(a.quantity),
        e: s(a.entryPrice),
        r: s(a.realizedPnl),
        owner: a.owner,
        openedAt: a.openedAt,
      });
    }
    expect(s(rebuilt.position('BTCUSDT').quantity)).toBe('0.15');
    expect([s(rebuilt.ledger.lot('a', 'BTCUSDT').quantity), s(rebuilt.ledger.lot('a', 'BTCUSDT').entryPrice)], "a's own line").toEqual(['0.05', '50000']);
    expect([s(rebuilt.ledger.lot('b', 'BTCUSDT').quantity), s(rebuilt.ledger.lot('b', 'BTCUSDT').entryPrice)], "b's own line").toEqual(['0.1', '52000']);
    expect(rebuilt.position('BTCUSDT').owner, 'both own a part').toBe('a,b');
    expect(s(rebuilt.ledger.external('LINKUSDT')), 'a fill with no order row is external, not the bot\'s').toBe('10');
    expect(s(rebuilt.position('LINKUSDT').quantity), 'external holdings are not the bot\'s position').toBe('0');
    for (const [strat, sym] of [['a', 'ETHUSDT'], ['a', 'BTCUSDT'], ['b', 'BTCUSDT']] as const) {
      const x = live.trips(strat, sym);
      const y = rebuilt.trips(strat, sym);
      expect({ ...y, grossWin: s(y.grossWin), grossLoss: s(y.grossLoss) }, `trips ${strat} ${sym}`).toEqual({ ...x, grossWin: s(x.grossWin), grossLoss: s(x.grossLoss) });
    }
    const eth = rebuilt.trips('a', 'ETHUSDT');
    expect({ trades: eth.trades, wins: eth.wins, losses: eth.losses, streak: eth.consecutiveLosses }).toEqual({ trades: 2, wins: 1, losses: 1, streak: 0 });
    expect(s(rebuilt.realizedToday()), 'yesterday\'s fills are not today\'s PnL').toBe('245.16');
    expect(s(rebuilt.strategyRealizedToday('a'))).toBe('247.3');
    expect(s(rebuilt.strategyRealizedToday('b'))).toBe('-2.08');
    expect(s(rebuilt.strategyRealizedToday('external'))).toBe('-0.06');
    expect(s(rebuilt.tradedToday('BTCUSDT')), 'today: 0.1 + 0.05').toBe('0.15');
  });

  it('peak and day-start equity persist in kv across restarts (day-start only within the same UTC day)', async () => {
    const r = await rig();
    const p = r.portfolio('spot');
    r.snapshot('10000');
    expect(s(p.dayStartEquity()), 'the first look of the day').toBe('10000');
    // Buy 0.1 BTC @ 40000 (no fee): cash 6000, equity 10000; close 41000 -> 10100 (peak); 40500 -> 10050.
    r.fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', price: '40000', qty: '0.1' });
    r.candle('spot', 'BTCUSDT', 41_000);
    r.candle('spot', 'BTCUSDT', 40_500);
    expect(s(p.equity())).toBe('10050');
    expect(s(p.peakEquity()), 'the peak stays at the high').toBe('10100');
    // A rising peak is written at most every 10 s, and at stop.
    p.stop();
    const kv = r.store.all(r.store.db.selectFrom('kv').select(['value']).where('key', '=', 'portfolio.marks'))[0];
    expect(kv && JSON.parse(kv.value), 'stored marks').toEqual({ day: Date.UTC(2026, 0, 15), dayStartEquity: '10000', peakEquity: '10100' });

    // Same day, new process: no fills rows (the portfolio never writes them), cash 0 until the SNAPSHOT.
    r.clock.advanceBy(3_600_000);
    const p2 = newPortfolio('spot', new Bus({ logger, clock: r.clock }), r.store, r.clock);
    expect(s(p2.peakEquity()), 'peak restored').toBe('10100');
    expect(s(p2.dayStartEquity()), 'day start restored on the same day').toBe('10000');
    p2.stop();

    // Next UTC day: the peak survives, the day start does not.
    r.clock.advanceTo(Date.UTC(2026, 0, 16, 0, 5));
    const bus3 = new Bus({ logger, clock: r.clock });
    const p3 = newPortfolio('spot', bus3, r.store, r.clock);
    expect(s(p3.peakEquity()), 'peak restored the next day').toBe('10100');
    bus3.publish('account.updated', { kind: 'account.updated', ts: r.clock.now(), balances: [{ asset: 'USDT', free: dec('9900'), locked: dec(0) }], reason: 'SNAPSHOT' });
    expect(s(p3.dayStartEquity()), 'a new day starts from the first equity seen').toBe('9900');
    expect(s(p3.peakEquity())).toBe('10100');
  });
});
