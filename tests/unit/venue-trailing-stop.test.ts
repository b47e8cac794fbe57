/**
 * Trailing stops: the callbackRate rule (venues/binance/trailing.ts) and the
 * matching engine's TRAILING_STOP_MARKET, with hand-computed values.
 *
 * Binance, USDⓈ-M Futures "New Algo Order (TRADE)": callbackRate "min 0.1,
 * max 5 where 1 for 1%"; workingType "MARK_PRICE, CONTRACT_PRICE. Default
 * CONTRACT_PRICE" decides which price the order trails; "SELL: the highest
 * price after order placed >= activatePrice, and the latest price <= the
 * highest price * (1 - callbackRate)", "BUY: the lowest price after order
 * placed <= activatePrice, and the latest price >= the lowest price * (1 +
 * callbackRate)". Error Codes: -2007 INVALID_CALLBACK_RATE.
 *
 * ETHUSDT: tick 0.01, step 0.001, min notional 20; taker 0.05 %.
 */
import { describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { checkCallbackRate } from '../../src/venues/binance/trailing.ts';
import { fullCatalog } from '../../src/venues/sim/catalog.ts';
import { MatchingEngine } from '../../src/venues/sim/engine.ts';
import type { EngineEvent, EngineResult, PlaceOrderRequest, SimOrder } from '../../src/venues/sim/types.ts';

function engine() {
  const e = new MatchingEngine({ clock: new TestClock(Date.UTC(2030, 0, 1)), instruments: fullCatalog() });
  const events: EngineEvent[] = [];
  e.onEvent((ev) => events.push(ev));
  e.createAccount('a', { futures: '10000' });
  return { e, events };
}

function ok(r: EngineResult<SimOrder>): SimOrder {
  if (!r.ok) throw new Error(`rejected: ${r.kind} ${r.message}`);
  return r.value;
}

const eth = (req: Partial<PlaceOrderRequest>): PlaceOrderRequest => ({ market: 'futures', symbol: 'ETHUSDT', side: 'BUY', type: 'MARKET', quantity: dec('1'), ...req });
const fills = (events: EngineEvent[], clientOrderId: string): string[] =>
  events.flatMap((ev) => (ev.type === 'order' && ev.trade && ev.order.clientOrderId === clientOrderId ? [`${ev.trade.side} ${ev.trade.qty.toFixed()} @ ${ev.trade.price.toFixed()}`] : []));

describe('checkCallbackRate ("New Algo Order (TRADE)": min 0.1, max 5, 1 = 1 %)', () => {
  it('accepts 0.1 to 5 in steps of 0.1 and says why otherwise', () => {
    for (const ok of ['0.1', '1', '2.5', '5']) expect(checkCallbackRate(dec(ok)), ok).toBeUndefined();
    expect(checkCallbackRate(dec('0.05'))).toBe('CALLBACK_RATE_OUT_OF_RANGE: callbackRate=0.05 min=0.1 max=5');
    expect(checkCallbackRate(dec('12'))).toBe('CALLBACK_RATE_OUT_OF_RANGE: callbackRate=12 min=0.1 max=5');
    expect(checkCallbackRate(dec('5.1'))).toBe('CALLBACK_RATE_OUT_OF_RANGE: callbackRate=5.1 min=0.1 max=5');
    expect(checkCallbackRate(dec('0.68'))).toBe('CALLBACK_RATE_NOT_ON_STEP: callbackRate=0.68 step=0.1');
  });
});

describe('TRAILING_STOP_MARKET in the matching engine', () => {
  it('BUY with workingType MARK_PRICE trails the mark: a contract-price spike does not trigger it; the mark 1 % above its low does, filling at the last price', () => {
    const { e, events } = engine();
    e.setLastPrice('futures', 'ETHUSDT', dec('3000'));
    ok(e.placeOrder('a', eth({ side: 'SELL', clientOrderId: 'short' })));
    const t = ok(e.placeOrder('a', eth({ type: 'TRAILING_STOP_MARKET', workingType: 'MARK_PRICE', callbackRate: dec('1'), reduceOnly: true, clientOrderId: 'tr' })));
    expect([t.stopPrice.toFixed(), t.activatePrice?.toFixed(), t.trailActivated], 'trails at once from the mark 3000').toEqual(['3030', '3000', true]);
    e.setMarkPrice('ETHUSDT', dec('2900'));
    expect(e.getOrder('a', 'futures', 'ETHUSDT', { clientOrderId: 'tr' })).toMatchObject({ ok: true, value: { stopPrice: dec('2929') } });
    e.setLastPrice('futures', 'ETHUSDT', dec('2960'));
    expect(fills(events, 'tr'), 'the contract price is not what this order watches').toEqual([]);
    e.setMarkPrice('ETHUSDT', dec('2935'));
    expect(fills(events, 'tr'), 'mark 2935 >= 2900 * 1.01; a market buy at the last price').toEqual(['BUY 1 @ 2960']);
    expect(e.positions('a')).toEqual([]);
  });

  it('a gap through the level fills at the price the step opened at, not at the level', () => {
    const { e, events } = engine();
    e.setLastPrice('futures', 'ETHUSDT', dec('3000'));
    ok(e.placeOrder('a', eth({ clientOrderId: 'long' })));
    ok(e.placeOrder('a', eth({ side: 'SELL', type: 'TRAILING_STOP_MARKET', callbackRate: dec('2'), reduceOnly: true, clientOrderId: 'tr' })));
    // Level 3000 * 0.98 = 2940; the next step opens at 2900, already through it.
    e.step('futures', 'ETHUSDT', { open: dec('2900'), high: dec('2950'), low: dec('2890'), last: dec('2920') });
    expect(fills(events, 'tr')).toEqual(['SELL 1 @ 2900']);
  });

  it('a BUY activation price must be below the price (-2021 otherwise); it starts trailing only once the low reaches it', () => {
    const { e, events } = engine();
    e.setLastPrice('futures', 'ETHUSDT', dec('3000'));
    ok(e.placeOrder('a', eth({ side: 'SELL', clientOrderId: 'short' })));
    const above = e.placeOrder('a', eth({ type: 'TRAILING_STOP_MARKET', callbackRate: dec('1'), activationPrice: dec('3000'), reduceOnly: true, clientOrderId: 'x' }));
    expect(above).toMatchObject({ ok: false, kind: 'WOULD_TRIGGER_IMMEDIATELY', message: 'Order would immediately trigger.' });
    const t = ok(e.placeOrder('a', eth({ type: 'TRAILING_STOP_MARKET', callbackRate: dec('1'), activationPrice: dec('2800'), reduceOnly: true, clientOrderId: 'tr' })));
    expect([t.stopPrice.toFixed(), t.trailActivated]).toEqual(['0', false]);
    e.setLastPrice('futures', 'ETHUSDT', dec('2850'));
    e.setLastPrice('futures', 'ETHUSDT', dec('3100'));
    expect(fills(events, 'tr'), 'not active: the low 2850 never reached 2800').toEqual([]);
    e.setLastPrice('futures', 'ETHUSDT', dec('2790'));
    e.setLastPrice('futures', 'ETHUSDT', dec('2830'));
    // Low 2790, level 2817.9; 2790 -> 2830 crosses it.
    expect(fills(events, 'tr')).toEqual(['BUY 1 @ 2817.9']);
  });

  it('refuses what Binance refuses: callbackRate out of range or off step (-2007), no callbackRate, a price, spot', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'ETHUSDT', dec('3000'));
    e.setLastPrice('spot', 'ETHUSDT', dec('3000'));
    const tr = (extra: Partial<PlaceOrderRequest>) => e.placeOrder('a', eth({ side: 'SELL', type: 'TRAILING_STOP_MARKET', ...extra }));
    expect(tr({ callbackRate: dec('5.5') })).toMatchObject({ ok: false, kind: 'INVALID_CALLBACK_RATE', message: 'Invalid callBack rate.' });
    expect(tr({ callbackRate: dec('0.25') })).toMatchObject({ ok: false, kind: 'INVALID_CALLBACK_RATE' });
    expect(tr({})).toMatchObject({ ok: false, kind: 'INVALID_PARAMETER', message: "Mandatory parameter 'callbackRate' was not sent, was empty/null, or malformed." });
    expect(tr({ callbackRate: dec('1'), price: dec('2900') })).toMatchObject({ ok: false, message: "Parameter 'price' sent when not required." });
    expect(e.placeOrder('a', { ...eth({ side: 'SELL', type: 'TRAILING_STOP_MARKET', callbackRate: dec('1') }), market: 'spot' })).toMatchObject({ ok: false, message: 'Invalid orderType.' });
  });
});
