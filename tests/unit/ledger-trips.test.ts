/**
 * The ledger's round trips, as the backtester's trade list reads them
 * (Ledger.watch, closedTrip, holding): per owner, with spot dust carried from
 * one trip into the next at its cost, and the books adding up to the cash
 * that moved to the last unit, also where the average entry price does not
 * divide evenly. Every figure is worked by hand beside its assertion; money
 * is compared as exact Decimal strings.
 */
import { describe, expect, it } from 'vitest';
import { dec, type Dec } from '../../src/core/decimal.ts';
import { Ledger, type LotChange } from '../../src/ledger/ledger.ts';
import type { Fill } from '../../src/model/events.ts';
import type { Market } from '../../src/model/market.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';

const T0 = Date.UTC(2026, 0, 15);
const MIN = 60_000;
let seq = 0;

function ledger(market: Market, price: () => Dec | undefined) {
  const instruments = catalog(market);
  return new Ledger({ market, quoteAsset: 'USDT', instrument: (s) => instruments.find((i) => i.symbol === s), price: () => price() });
}

function fill(o: { market: Market; symbol: string; side: 'BUY' | 'SELL'; qty: string; price: string; fee: string; feeAsset: string; ts: number; strategy?: string }): Fill {
  return { kind: 'fill', ts: o.ts, tradeId: `t${++seq}`, strategy: o.strategy ?? 'rsi', market: o.market, symbol: o.symbol, side: o.side, price: dec(o.price), quantity: dec(o.qty), fee: dec(o.fee), feeAsset: o.feeAsset, isMaker: false };
}

const s = (d: Dec): string => d.toFixed();

describe('ledger round trips (the trade list)', () => {
  it('spot: dust left by a trip is carried into the next one at its cost; trips plus the holding at cost are the cash that moved, exactly', () => {
    let mark = dec('40000');
    const l = ledger('spot', () => mark);
    const seen: LotChange[] = [];
    const unwatch = l.watch((changes) => void seen.push(...changes));
    let cash = dec(0);
    const book = (f: Fill): LotChange => {
      const n = f.price.times(f.quantity);
      cash = f.side === 'BUY' ? cash.minus(n) : cash.plus(n);
      if (f.feeAsset === 'USDT') cash = cash.minus(f.fee);
      const [c] = l.applyFill(f);
      return c!;
    };

    // Trip 1. Buy 0.00123 at 40000, fee 0.1 % in BTC (0.00000123): 0.00122877 received, cost 49.1508.
    expect(book(fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', qty: '0.00123', price: '40000', fee: '0.00000123', feeAsset: 'BTC', ts: T0 })).closedTrip).toBeUndefined();
    expect(l.holding('rsi', 'BTCUSDT')).toMatchObject({ flat: false, trip: { side: 'LONG', openedAt: T0 } });
    expect(s(l.holding('rsi', 'BTCUSDT').cost)).toBe('49.1508');
    // Sell what the lot size allows, 0.00122 at 41000 (fee 0.05002 USDT): 0.00000877 BTC is left, below minQty 0.00001.
    const c1 = book(fill({ market: 'spot', symbol: 'BTCUSDT', side: 'SELL', qty: '0.00122', price: '41000', fee: '0.05002', feeAsset: 'USDT', ts: T0 + 10 * MIN }));
    const t1 = c1.closedTrip!;
    expect(c1.lot).toMatchObject({ flat: true });
    expect(s(c1.lot.dust)).toBe('0.00000877');
    // Realized: 50.02 less the sold part's cost, 49.1508 x 0.00122 / 0.00122877 (rounded to 20 decimals); fees: 0.0492 (the BTC fee at 40000) + 0.05002.
    const cost1 = dec('49.1508');
    const share1 = cost1.times('0.00122').div('0.00122877').toDecimalPlaces(20, 6);
    expect({ side: t1.side, openedAt: t1.openedAt, closedAt: t1.closedAt, entry: s(t1.entryQuantity), entryValue: s(t1.entryValue), carried: s(t1.carriedQuantity), exit: s(t1.exitQuantity), exitValue: s(t1.exitValue), max: s(t1.maxQuantity), fees: s(t1.fees) }).toEqual({
      side: 'LONG',
      openedAt: T0,
      closedAt: T0 + 10 * MIN,
      entry: '0.00122877',
      entryValue: '49.1508',
      carried: '0',
      exit: '0.00122',
      exitValue: '50.02',
      max: '0.00122877',
      fees: '0.09922',
    });
    expect(s(t1.pnl)).toBe(s(dec('50.02').minus(share1).minus('0.0492').minus('0.05002')));
    // The dust keeps the rest of the cost.
    expect(s(l.holding('rsi', 'BTCUSDT').cost)).toBe(s(cost1.minus(share1)));
    expect(l.holding('rsi', 'BTCUSDT').trip, 'no trip while only dust is held').toBeUndefined();

    // Trip 2. Buy 0.001 at 42000, fee 0.000001 BTC: 0.000999 received on top of the dust (0.00100777 held).
    mark = dec('42000');
    book(fill({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', qty: '0.001', price: '42000', fee: '0.000001', feeAsset: 'BTC', ts: T0 + 20 * MIN }));
    const open = l.holding('rsi', 'BTCUSDT');
    expect({ q: s(open.quantity), entry: s(open.trip!.entryQuantity), entryValue: s(open.trip!.entryValue), carried: s(open.trip!.carriedQuantity), carriedCost: s(open.trip!.carriedCost) }).toEqual({
      q: '0.00100777',
      entry: '0.000999',
      entryValue: '41.958',
      carried: '0.00000877',
      carriedCost: s(cost1.minus(share1)),
    });
    // Sell 0.001 at 43000 (fee 0.043 USDT): the dust is swept in, 0.00000777 is left.
    const c2 = book(fill({ market: 'spot', symbol: 'BTCUSDT', side: 'SELL', qty: '0.001', price: '43000', fee: '0.043', feeAsset: 'USDT', ts: T0 + 30 * MIN }));
    const t2 = c2.closedTrip!;
    expect({ side: t2.side, openedAt: t2.openedAt, exit: s(t2.exitQuantity), exitValue: s(t2.exitValue), max: s(t2.maxQuantity), fees: s(t2.fees) }).toEqual({ side: 'LONG', openedAt: T0 + 20 * MIN, exit: '0.001', exitValue: '43', max: '0.00100777', fees: '0.085' });
    expect(s(c2.lot.dust)).toBe('0.00000777');

    // The watcher saw every change, after it was booked.
    expect(seen.map((c) => (c.closedTrip ? 'closed' : 'open'))).toEqual(['open', 'closed', 'open', 'closed']);
    unwatch();

    // Trips plus the dust at the mark less its cost: the cash that moved plus the coins held at the mark, to the last unit.
    mark = dec('43500');
    const held = l.holding('rsi', 'BTCUSDT');
    const unrealized = held.quantity.times(mark).minus(held.cost);
    const equityChange = cash.plus(held.quantity.times(mark));
    expect(s(t1.pnl.plus(t2.pnl).plus(unrealized))).toBe(s(equityChange));
    // The lifetime realized PnL is the trips' (nothing is in no trip).
    expect(s(l.lot('rsi', 'BTCUSDT').realizedPnl)).toBe(s(t1.pnl.plus(t2.pnl)));
  });

  it('futures: a flip closes the old trip on its own figures and opens the next at the fill price, which pays the fee', () => {
    const l = ledger('futures', () => dec('2000'));
    l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', qty: '1', price: '2000', fee: '0.4', feeAsset: 'USDT', ts: T0 }));
    l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', qty: '2', price: '2030', fee: '0.812', feeAsset: 'USDT', ts: T0 + MIN }));
    const [flip] = l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', qty: '5', price: '2100', fee: '2.1', feeAsset: 'USDT', ts: T0 + 2 * MIN }));
    const t = flip!.closedTrip!;
    // Long 3 at a cost of 6060: sold at 2100 = 6300, realized 240, less the entry fees 1.212.
    expect({ side: t.side, entry: s(t.entryQuantity), entryValue: s(t.entryValue), exit: s(t.exitQuantity), exitValue: s(t.exitValue), max: s(t.maxQuantity), fees: s(t.fees), pnl: s(t.pnl), openedAt: t.openedAt, closedAt: t.closedAt }).toEqual({
      side: 'LONG',
      entry: '3',
      entryValue: '6060',
      exit: '3',
      exitValue: '6300',
      max: '3',
      fees: '1.212',
      pnl: '238.788',
      openedAt: T0,
      closedAt: T0 + 2 * MIN,
    });
    const next = l.holding('rsi', 'ETHUSDT');
    expect({ q: s(next.quantity), cost: s(next.cost), side: next.trip!.side, openedAt: next.trip!.openedAt, entry: s(next.trip!.entryQuantity), value: s(next.trip!.entryValue), fees: s(next.trip!.fees), pnl: s(next.trip!.pnl) }).toEqual({
      q: '-2',
      cost: '4200',
      side: 'SHORT',
      openedAt: T0 + 2 * MIN,
      entry: '2',
      value: '4200',
      fees: '2.1',
      pnl: '-2.1',
    });
    // Covered at 2050: +100 on the short, the trip pays both its fees.
    const [cover] = l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', qty: '2', price: '2050', fee: '0.82', feeAsset: 'USDT', ts: T0 + 3 * MIN }));
    expect({ side: cover!.closedTrip!.side, pnl: s(cover!.closedTrip!.pnl), exitValue: s(cover!.closedTrip!.exitValue) }).toEqual({ side: 'SHORT', pnl: '97.08', exitValue: '4100' });
    expect(s(l.lot('rsi', 'ETHUSDT').realizedPnl)).toBe('335.868');
  });

  it('an average entry that does not divide evenly: the full close realizes exactly the proceeds less what was paid', () => {
    const l = ledger('futures', () => dec('2000'));
    l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', qty: '1', price: '2000', fee: '0', feeAsset: 'USDT', ts: T0 }));
    l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', qty: '2', price: '2001', fee: '0', feeAsset: 'USDT', ts: T0 + MIN }));
    // Entry 6002 / 3 = 2000.666..., which no decimal holds: a partial close takes 6002 x 1 / 3 rounded to 20 decimals.
    const [a] = l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', qty: '1', price: '2010', fee: '0', feeAsset: 'USDT', ts: T0 + 2 * MIN }));
    expect(s(a!.realized)).toBe('9.33333333333333333333');
    const [b] = l.applyFill(fill({ market: 'futures', symbol: 'ETHUSDT', side: 'SELL', qty: '2', price: '2010', fee: '0', feeAsset: 'USDT', ts: T0 + 3 * MIN }));
    expect(s(b!.closedTrip!.pnl), '3 x 2010 - 6002').toBe('28');
    expect(s(l.holding('rsi', 'ETHUSDT').cost)).toBe('0');
  });
});
