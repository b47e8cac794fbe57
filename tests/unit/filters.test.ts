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
});
