import { describe, expect, it } from 'vitest';
import { dec } from '../../src/core/decimal.ts';
import { checkOrder, roundPrice, roundQuantity } from '../../src/model/filters.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';

const fut = (sym: string) => catalog('futures').find((i) => i.symbol === sym)!;

describe('rounding at real boundaries', () => {
  it('quantity truncates to the step, never up (step 0.001 and step 1)', () => {
    expect(roundQuantity('0.0019999', fut('BTCUSDT').filters.lot).toFixed()).toBe('0.001');
    expect(roundQuantity('1.999', fut('AVAXUSDT').filters.lot).toFixed()).toBe('1');
    expect(roundQuantity('2', fut('AVAXUSDT').filters.lot).toFixed()).toBe('2');
    expect(roundQuantity('123.45678', fut('ALGOUSDT').filters.lot).toFixed()).toBe('123.4');
  });

  it('price rounds to the tick toward the passive side (tick 0.1 / 0.01 / 0.0001)', () => {
    expect(roundPrice('30000.17', fut('BTCUSDT'), 'BUY').toFixed()).toBe('30000.1');
    expect(roundPrice('30000.11', fut('BTCUSDT'), 'SELL').toFixed()).toBe('30000.2');
    expect(roundPrice('2000.005', fut('ETHUSDT'), 'BUY').toFixed()).toBe('2000');
    expect(roundPrice('0.12345', fut('ALGOUSDT'), 'SELL').toFixed()).toBe('0.1235');
    expect(roundPrice('0.1234', fut('ALGOUSDT'), 'SELL').toFixed(), 'already on tick: unchanged').toBe('0.1234');
  });

  it('a rounded order passes every filter; the unrounded one does not', () => {
    const inst = fut('ETHUSDT');
    const raw = { side: 'BUY' as const, isMarket: false, quantity: dec('0.0105'), price: dec('2000.005') };
    expect(checkOrder(inst, raw, { referencePrice: dec('2000') })?.code).toBe('PRICE_NOT_ON_TICK');
    const rounded = { ...raw, quantity: roundQuantity(raw.quantity, inst.filters.lot), price: roundPrice(raw.price, inst, 'BUY') };
    // 0.01 * 2000 = 20: exactly the minimum notional passes.
    expect(checkOrder(inst, rounded, { referencePrice: dec('2000') })).toBeUndefined();
    expect(checkOrder(inst, { ...rounded, quantity: dec('0.009') }, { referencePrice: dec('2000') })?.reason).toBe('NOTIONAL_BELOW_MIN: notional=18 min=20');
  });

  it('every bound of every filter names itself and its figures', () => {
    const btc = fut('BTCUSDT');
    const spotBtc = catalog('spot').find((i) => i.symbol === 'BTCUSDT')!;
    const o = (q: string, p?: string, extra: Partial<Parameters<typeof checkOrder>[1]> = {}) => ({ side: 'BUY' as const, isMarket: p === undefined, quantity: dec(q), ...(p ? { price: dec(p) } : {}), ...extra });
    const ref = { referencePrice: dec('30000') };
    expect(checkOrder(btc, o('0.01', '556.7'), { referencePrice: dec('560') })?.reason).toBe('PRICE_BELOW_MIN: price=556.7 min=556.8');
    expect(checkOrder(btc, o('0.001', '4529764.1'), ref)?.reason).toBe('PRICE_ABOVE_MAX: price=4529764.1 max=4529764');
    expect(checkOrder(btc, o('0.0009', '30000'), ref)?.reason).toBe('QTY_BELOW_MIN: quantity=0.0009 min=0.001');
    expect(checkOrder(btc, o('1000.001', '30000'), ref)?.reason).toBe('QTY_ABOVE_MAX: quantity=1000.001 max=1000');
    expect(checkOrder(btc, o('0.01', '28499.9'), ref)?.reason).toBe('PRICE_BELOW_PERCENT_BAND: price=28499.9 min=28500');
    expect(checkOrder(btc, o('0.01', undefined, { stopPrice: dec('29000.05') }), ref)?.reason).toBe('PRICE_NOT_ON_TICK: stopPrice=29000.05 tick=0.1');
    expect(checkOrder(btc, o('0.002', undefined, { reduceOnly: true }), ref), 'reduce-only is exempt from the minimum notional').toBeUndefined();
    expect(checkOrder(spotBtc, o('300', '30000'), ref), 'exactly the maximum passes').toBeUndefined();
    expect(checkOrder(spotBtc, o('300.00001', '30000'), ref)?.reason).toBe('NOTIONAL_ABOVE_MAX: notional=9000000.3 max=9000000');
    expect(checkOrder(spotBtc, o('0.0001', undefined), { referencePrice: dec('30000') })?.reason).toBe('NOTIONAL_BELOW_MIN: notional=3 min=5');
    expect(checkOrder(spotBtc, o('0.01', '150000.01'), ref)?.reason).toBe('PRICE_ABOVE_PERCENT_BAND: price=150000.01 max=150000');
  });
});
