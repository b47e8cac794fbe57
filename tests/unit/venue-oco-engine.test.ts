/**
 * Spot OCO in the matching engine (hand-computed). Binance, "New Order list -
 * OCO (TRADE)": "activation of one order immediately cancels the other";
 * SELL prices "LIMIT_MAKER price > Last Traded Price > stopPrice"; user data
 * "Order Expiry Reason" OCO_TRIGGER for the leg that goes; ListStatus
 * EXEC_STARTED, then ALL_DONE.
 *
 * Spot BTCUSDT: tick 0.01, step 0.00001; fees 0.1 % of what is received.
 */
import { describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { fullCatalog } from '../../src/venues/sim/catalog.ts';
import { MatchingEngine } from '../../src/venues/sim/engine.ts';
import type { EngineEvent, PlaceOrderListRequest } from '../../src/venues/sim/types.ts';

function engine() {
  const e = new MatchingEngine({ clock: new TestClock(Date.UTC(2030, 0, 1)), instruments: fullCatalog() });
  const events: EngineEvent[] = [];
  e.onEvent((ev) => events.push(ev));
  e.createAccount('a', { spot: { USDT: '10000', BTC: '1' } });
  e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
  return { e, events };
}

const btc = (e: MatchingEngine): string[] => {
  const b = e.spotBalances('a').find((x) => x.asset === 'BTC')!;
  return [b.free.toFixed(), b.locked.toFixed()];
};

const sell: PlaceOrderListRequest = {
  symbol: 'BTCUSDT',
  side: 'SELL',
  quantity: dec('0.5'),
  listClientOrderId: 'L',
  above: { type: 'LIMIT_MAKER', price: dec('21000'), clientOrderId: 'tp' },
  below: { type: 'STOP_LOSS_LIMIT', stopPrice: dec('19000'), price: dec('18000'), timeInForce: 'GTC', clientOrderId: 'sl' },
};

describe('spot OCO in the matching engine', () => {
  it('locks the quantity once; a step through both legs takes the adverse one (the stop), the other EXPIRED, the list ALL_DONE', () => {
    const { e, events } = engine();
    const r = e.placeOrderList('a', sell);
    if (!r.ok) throw new Error(r.message);
    expect(r.value.orders.map((o) => [o.clientOrderId, o.type, o.orderListId])).toEqual([
      ['sl', 'STOP_LOSS_LIMIT', r.value.list.orderListId],
      ['tp', 'LIMIT_MAKER', r.value.list.orderListId],
    ]);
    expect(btc(e), 'not 1.0 locked for two legs').toEqual(['0.5', '0.5']);
    e.step('spot', 'BTCUSDT', { open: dec('20000'), high: dec('21500'), low: dec('18500'), last: dec('20000') });
    const orderEvents = events.flatMap((ev) => (ev.type === 'order' ? [`${ev.order.clientOrderId} ${ev.execType} ${ev.order.status}`] : []));
    expect(orderEvents).toEqual(['sl NEW NEW', 'tp NEW NEW', 'tp EXPIRED EXPIRED', 'sl TRADE FILLED']);
    expect(events.flatMap((ev) => (ev.type === 'orderList' ? [ev.list.listStatusType] : []))).toEqual(['EXEC_STARTED', 'ALL_DONE']);
    // The stop, a limit at 18000, triggered at 19000 and filled there: 0.5 BTC sold, none locked.
    const fill = events.find((ev) => ev.type === 'order' && ev.trade);
    expect(fill?.type === 'order' && fill.trade ? [fill.trade.price.toFixed(), fill.trade.qty.toFixed()] : []).toEqual(['19000', '0.5']);
    expect(btc(e)).toEqual(['0.5', '0']);
    expect(e.openOrderLists('a')).toEqual([]);
  });

  it('refuses legs on the wrong sides, two limits, prices against the last trade, and funds the pair does not have', () => {
    const { e } = engine();
    const swap = { ...sell, above: sell.below, below: sell.above };
    expect(e.placeOrderList('a', swap)).toMatchObject({ ok: false, kind: 'ORDER_LIST_INVALID', listRule: 'SELL_LIMIT_MUST_BE_ABOVE' });
    expect(e.placeOrderList('a', { ...sell, below: { type: 'LIMIT_MAKER', price: dec('19000') } })).toMatchObject({ ok: false, listRule: 'BOTH_LIMIT' });
    expect(e.placeOrderList('a', { ...sell, side: 'BUY' })).toMatchObject({ ok: false, listRule: 'BUY_LIMIT_MUST_BE_BELOW' });
    expect(e.placeOrderList('a', { ...sell, above: { type: 'LIMIT_MAKER', price: dec('19999') } })).toMatchObject({ ok: false, kind: 'ORDER_LIST_PRICES' });
    expect(e.placeOrderList('a', { ...sell, quantity: dec('2') })).toMatchObject({ ok: false, kind: 'INSUFFICIENT_BALANCE' });
    expect(e.openOrders('a', 'spot'), 'a refused list leaves nothing behind').toEqual([]);
    expect(btc(e)).toEqual(['1', '0']);
  });
});
