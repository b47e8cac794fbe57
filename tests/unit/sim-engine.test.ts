/**
 * Matching engine, with hand-computed expected values. Instruments are the
 * shipped catalog: spot BTCUSDT tick 0.01 step 0.00001 min notional 5;
 * futures BTCUSDT tick 0.1 step 0.001 min notional 100, maint rate 0.004,
 * liquidation fee 0.0125. Fees: spot 0.1% / 0.1%, futures 0.02% maker, 0.05% taker.
 */
import { describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, dec } from '../../src/core/decimal.ts';
import { fullCatalog } from '../../src/venues/sim/catalog.ts';
import { MatchingEngine } from '../../src/venues/sim/engine.ts';
import { defaultFillModel } from '../../src/venues/sim/fill-model.ts';
import type { EngineEvent, EngineResult, PlaceOrderRequest, SimOrder } from '../../src/venues/sim/types.ts';

function engine(opts: { maxParticipation?: string; slippageBps?: string } = {}) {
  const clock = new TestClock(Date.UTC(2024, 0, 1));
  const fill = defaultFillModel();
  const e = new MatchingEngine({
    clock,
    instruments: fullCatalog(),
    fillModel: {
      ...fill,
      ...(opts.maxParticipation ? { maxParticipation: dec(opts.maxParticipation) } : {}),
      ...(opts.slippageBps ? { slippage: { kind: 'fixed' as const, bps: dec(opts.slippageBps) } } : {}),
    },
  });
  const events: EngineEvent[] = [];
  e.onEvent((ev) => events.push(ev));
  e.createAccount('a', { spot: { USDT: '10000' }, futures: '10000' });
  return { e, clock, events };
}

const s = (d: Dec | undefined): string | undefined => d?.toFixed();

function ok(r: EngineResult<SimOrder>): SimOrder {
  if (!r.ok) throw new Error(`rejected: ${r.kind} ${r.message}`);
  return r.value;
}

function spot(req: Partial<PlaceOrderRequest>): PlaceOrderRequest {
  return { market: 'spot', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', ...req };
}
function fut(req: Partial<PlaceOrderRequest>): PlaceOrderRequest {
  return { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', ...req };
}
const step = (open: string, high: string, low: string, last: string, volume?: string) => ({ open: dec(open), high: dec(high), low: dec(low), last: dec(last), ...(volume ? { volume: dec(volume) } : {}) });

function balances(e: MatchingEngine): Record<string, [string, string]> {
  return Object.fromEntries(e.spotBalances('a').map((b) => [b.asset, [b.free.toFixed(), b.locked.toFixed()]]));
}

describe('spot', () => {
  it('market buy, resting limit sell filled when price trades through, fees in the received asset', () => {
    const { e, events } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const buy = ok(e.placeOrder('a', spot({ side: 'BUY', type: 'MARKET', quantity: dec('0.1') })));
    // 0.1 * 20000 = 2000 USDT; fee 0.1 * 0.001 = 0.0001 BTC.
    expect(buy).toMatchObject({ status: 'FILLED' });
    expect(s(buy.executedQty)).toBe('0.1');
    expect(s(buy.avgPrice)).toBe('20000');
    expect(balances(e)).toEqual({ BTC: ['0.0999', '0'], USDT: ['8000', '0'] });

    const sell = ok(e.placeOrder('a', spot({ side: 'SELL', type: 'LIMIT', price: dec('21000'), quantity: dec('0.05'), timeInForce: 'GTC' })));
    expect(sell.status).toBe('NEW');
    expect(balances(e).BTC).toEqual(['0.0499', '0.05']);
    // Touching the price is not trading through it.
    e.step('spot', 'BTCUSDT', step('20000', '21000', '20000', '21000'));
    expect(ok(e.getOrder('a', 'spot', 'BTCUSDT', { orderId: sell.orderId })).status).toBe('NEW');
    e.step('spot', 'BTCUSDT', step('21000', '21000.01', '20990', '21000'));
    const filled = ok(e.getOrder('a', 'spot', 'BTCUSDT', { clientOrderId: sell.clientOrderId }));
    expect(filled.status).toBe('FILLED');
    // 0.05 * 21000 = 1050; maker fee 1.05 USDT -> 8000 + 1048.95.
    expect(balances(e)).toEqual({ BTC: ['0.0499', '0'], USDT: ['9048.95', '0'] });
    const trades = e.trades('a', 'spot', 'BTCUSDT');
    expect(trades.map((t) => [t.tradeId, s(t.price), s(t.qty), s(t.commission), t.commissionAsset, t.isMaker])).toEqual([
      [1, '20000', '0.1', '0.0001', 'BTC', false],
      [2, '21000', '0.05', '1.05', 'USDT', true],
    ]);
    const kinds = events.filter((x) => x.type === 'order').map((x) => x.type === 'order' && `${x.order.orderId}:${x.execType}:${x.order.status}`);
    expect(kinds).toEqual(['1:NEW:NEW', '1:TRADE:FILLED', '2:NEW:NEW', '2:TRADE:FILLED']);
  });

  it('a buy limit locks price*qty, fills below it at its price, cancel releases the rest', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const o = ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.1'), timeInForce: 'GTC' })));
    expect(balances(e).USDT).toEqual(['8100', '1900']);
    const c = ok(e.cancelOrder('a', 'spot', 'BTCUSDT', { orderId: o.orderId }));
    expect(c.status).toBe('CANCELED');
    expect(balances(e).USDT).toEqual(['10000', '0']);
    const again = e.cancelOrder('a', 'spot', 'BTCUSDT', { orderId: o.orderId });
    expect(again.ok === false && again.kind).toBe('UNKNOWN_ORDER');
  });

  it('partial fills when an order is larger than its share of the volume', () => {
    const { e } = engine({ maxParticipation: '0.5' });
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const o = ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.3'), timeInForce: 'GTC' })));
    e.step('spot', 'BTCUSDT', step('20000', '20000', '18900', '19500', '0.4'));
    let now = ok(e.getOrder('a', 'spot', 'BTCUSDT', { orderId: o.orderId }));
    // Half of 0.4 = 0.2 fills; 0.1 left.
    expect([now.status, s(now.executedQty)]).toEqual(['PARTIALLY_FILLED', '0.2']);
    expect(balances(e).USDT).toEqual(['4300', '1900']);
    e.step('spot', 'BTCUSDT', step('19500', '19500', '18950', '19000', '10'));
    now = ok(e.getOrder('a', 'spot', 'BTCUSDT', { orderId: o.orderId }));
    expect([now.status, s(now.executedQty), s(now.avgPrice)]).toEqual(['FILLED', '0.3', '19000']);
    // 0.3 BTC at 19000 = 5700 USDT; fee 0.0003 BTC.
    expect(balances(e)).toEqual({ BTC: ['0.2997', '0'], USDT: ['4300', '0'] });
  });

  it('market buy by quote amount (quoteOrderQty) buys what the amount affords, truncated to the step', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('30000'));
    // 100 / 30000 = 0.0033333.. -> 0.00333 BTC for 99.9 USDT.
    const o = ok(e.placeOrder('a', spot({ side: 'BUY', type: 'MARKET', quoteOrderQty: dec('100') })));
    expect([o.status, s(o.executedQty), s(o.cumQuote)]).toEqual(['FILLED', '0.00333', '99.9']);
    expect(balances(e).USDT).toEqual(['9900.1', '0']);
  });

  it('IOC and FOK: expire what cannot fill now', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const ioc = ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.1'), timeInForce: 'IOC' })));
    expect([ioc.status, s(ioc.executedQty)]).toEqual(['EXPIRED', '0']);
    const fok = ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('20100'), quantity: dec('0.1'), timeInForce: 'FOK' })));
    // Marketable: fills whole at the current price, not at its limit.
    expect([fok.status, s(fok.avgPrice)]).toEqual(['FILLED', '20000']);
    expect(balances(e).USDT).toEqual(['8000', '0']);
  });

  it('post-only (LIMIT_MAKER) that would take is rejected; stop-limit that would trigger at once is rejected', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const pm = e.placeOrder('a', spot({ type: 'LIMIT_MAKER', price: dec('20000'), quantity: dec('0.01') }));
    expect(pm.ok === false && [pm.kind, pm.message]).toEqual(['POST_ONLY_WOULD_TAKE', 'Order would immediately match and take.']);
    ok(e.placeOrder('a', spot({ type: 'LIMIT_MAKER', price: dec('19999.99'), quantity: dec('0.01') })));
    ok(e.placeOrder('a', spot({ side: 'BUY', type: 'MARKET', quantity: dec('0.1') })));
    const st = e.placeOrder('a', spot({ side: 'SELL', type: 'STOP_LOSS_LIMIT', stopPrice: dec('20500'), price: dec('20400'), quantity: dec('0.05'), timeInForce: 'GTC' }));
    expect(st.ok === false && st.kind).toBe('WOULD_TRIGGER_IMMEDIATELY');
  });

  it('STOP_LOSS_LIMIT triggers on the way down and fills at the trigger, never below its limit', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    ok(e.placeOrder('a', spot({ side: 'BUY', type: 'MARKET', quantity: dec('0.1') })));
    const sl = ok(e.placeOrder('a', spot({ side: 'SELL', type: 'STOP_LOSS_LIMIT', stopPrice: dec('19500'), price: dec('19400'), quantity: dec('0.05'), timeInForce: 'GTC' })));
    e.step('spot', 'BTCUSDT', step('20000', '20000', '19600', '19700'));
    expect(ok(e.getOrder('a', 'spot', 'BTCUSDT', { orderId: sl.orderId })).status).toBe('NEW');
    e.step('spot', 'BTCUSDT', step('19700', '19700', '19450', '19460'));
    const done = ok(e.getOrder('a', 'spot', 'BTCUSDT', { orderId: sl.orderId }));
    expect([done.status, done.triggered, s(done.avgPrice)]).toEqual(['FILLED', true, '19500']);
  });

  it('each filter rejects with the filter and the figures', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    const reason = (r: EngineResult<SimOrder>) => (r.ok ? 'accepted' : `${r.filter?.filter ?? r.kind} ${r.message}`);
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000.005'), quantity: dec('0.01') })))).toBe('PRICE_FILTER PRICE_NOT_ON_TICK: price=19000.005 tick=0.01');
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.000015') })))).toBe('LOT_SIZE QTY_NOT_ON_STEP: quantity=0.000015 step=0.00001');
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.0002') })))).toBe('NOTIONAL NOTIONAL_BELOW_MIN: notional=3.8 min=5');
    expect(reason(e.placeOrder('a', spot({ type: 'MARKET', quantity: dec('121') })))).toBe('MARKET_LOT_SIZE QTY_ABOVE_MAX: quantity=121 max=120');
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('3999.99'), quantity: dec('0.01') })))).toBe('PERCENT_PRICE_BY_SIDE PRICE_BELOW_PERCENT_BAND: price=3999.99 min=4000');
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('4000'), quantity: dec('0.01') })))).toBe('accepted');
    expect(reason(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('1') })))).toBe('INSUFFICIENT_BALANCE Account has insufficient balance for requested action.');
  });

  it('MAX_NUM_ORDERS and duplicate clientOrderId among open orders', () => {
    const { e } = engine();
    e.setLastPrice('spot', 'BTCUSDT', dec('20000'));
    ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.001'), clientOrderId: 'dup' })));
    const dup = e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.001'), clientOrderId: 'dup' }));
    expect(dup.ok === false && [dup.kind, dup.message]).toEqual(['DUPLICATE_CLIENT_ORDER_ID', 'Duplicate order sent.']);
    e.cancelOrder('a', 'spot', 'BTCUSDT', { clientOrderId: 'dup' });
    ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('19000'), quantity: dec('0.001'), clientOrderId: 'dup' })));
    for (let i = 1; i < 200; i++) ok(e.placeOrder('a', spot({ type: 'LIMIT', price: dec('10000'), quantity: dec('0.001') })));
    const over = e.placeOrder('a', spot({ type: 'LIMIT', price: dec('10000'), quantity: dec('0.001') }));
    expect(over.ok === false && over.filter?.reason).toBe('TOO_MANY_OPEN_ORDERS: open=200 max=200');
  });
});

describe('futures', () => {
  function account(e: MatchingEngine) {
    const v = e.futuresAccount('a');
    return { wallet: v.walletBalance.toFixed(), positions: v.positions.map((p) => [p.positionSide, p.positionAmt.toFixed(), p.entryPrice.toFixed()]) };
  }

  it('one-way: open, revalue, reduce with realized PnL, flip through zero', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') })));
    // Fee 3000 * 0.0005 = 1.5.
    expect(account(e)).toEqual({ wallet: '9998.5', positions: [['BOTH', '0.1', '30000']] });
    e.setLastPrice('futures', 'BTCUSDT', dec('31000'));
    expect(e.positions('a')[0]!.unrealizedPnl.toFixed()).toBe('100');
    ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.05') })));
    // Realized (31000-30000)*0.05 = 50; fee 1550*0.0005 = 0.775.
    expect(account(e)).toEqual({ wallet: '10047.725', positions: [['BOTH', '0.05', '30000']] });
    ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.1') })));
    // Closes 0.05 (+50), opens short 0.05 at 31000; fee 3100*0.0005 = 1.55.
    expect(account(e)).toEqual({ wallet: '10096.175', positions: [['BOTH', '-0.05', '31000']] });
    const t = e.trades('a', 'futures', 'BTCUSDT').map((x) => [x.side, s(x.qty), s(x.realizedPnl), s(x.commission)]);
    expect(t).toEqual([
      ['BUY', '0.1', '0', '1.5'],
      ['SELL', '0.05', '50', '0.775'],
      ['SELL', '0.1', '50', '1.55'],
    ]);
  });

  it('hedge mode keeps a long and a short; position side must match the mode', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    expect(e.setPositionMode('a', true).ok).toBe(true);
    const both = e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') }));
    expect(both.ok === false && both.kind).toBe('POSITION_SIDE_MISMATCH');
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1'), positionSide: 'LONG' })));
    ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.2'), positionSide: 'SHORT' })));
    expect(account(e).positions).toEqual([
      ['LONG', '0.1', '30000'],
      ['SHORT', '-0.2', '30000'],
    ]);
    // Selling LONG closes it; it cannot go below zero.
    e.setLastPrice('futures', 'BTCUSDT', dec('30100'));
    const close = ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.3'), positionSide: 'LONG' })));
    expect(s(close.executedQty)).toBe('0.1');
    expect(account(e).positions).toEqual([['SHORT', '-0.2', '30000']]);
    expect(e.setPositionMode('a', false).ok === false && 'refused while a position exists').toBe('refused while a position exists');
    expect((e.setPositionMode('a', true) as { kind: string }).kind).toBe('NO_NEED_TO_CHANGE_POSITION_SIDE');
  });

  it('reduce-only: rejected without a position, capped at the position size', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    const r = e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.1'), reduceOnly: true }));
    expect(r.ok === false && [r.kind, r.message]).toEqual(['REDUCE_ONLY_REJECTED', 'ReduceOnly Order is rejected.']);
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.01') })));
    // Below the 100 USDT minimum notional is fine for reduce-only.
    const ro = ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.02'), reduceOnly: true })));
    // Only the position's 0.01 can execute; the rest expires rather than opening a short.
    expect([ro.status, s(ro.executedQty)]).toEqual(['EXPIRED', '0.01']);
    expect(e.positions('a')).toEqual([]);
  });

  it('filters: min notional, tick, percent price band', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    const why = (r: EngineResult<SimOrder>) => (r.ok ? 'accepted' : (r.filter?.reason ?? r.kind));
    expect(why(e.placeOrder('a', fut({ quantity: dec('0.003') })))).toBe('NOTIONAL_BELOW_MIN: notional=90 min=100');
    expect(why(e.placeOrder('a', fut({ type: 'LIMIT', price: dec('29000.05'), quantity: dec('0.01') })))).toBe('PRICE_NOT_ON_TICK: price=29000.05 tick=0.1');
    expect(why(e.placeOrder('a', fut({ type: 'LIMIT', price: dec('31500.1'), quantity: dec('0.01') })))).toBe('PRICE_ABOVE_PERCENT_BAND: price=31500.1 max=31500');
    expect(why(e.placeOrder('a', fut({ type: 'LIMIT', price: dec('28000'), quantity: dec('0.0105') })))).toBe('QTY_NOT_ON_STEP: quantity=0.0105 step=0.001');
  });

  it('margin: rejected when the initial margin exceeds what is available', () => {
    const { e } = engine();
    e.createAccount('poor', { futures: '100' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    e.setLeverage('poor', 'BTCUSDT', 2);
    // 0.01 * 30000 / 2 = 150 > 100.
    const r = e.placeOrder('poor', fut({ quantity: dec('0.01') }));
    expect(r.ok === false && [r.kind, r.message]).toEqual(['MARGIN_INSUFFICIENT', 'Margin is insufficient.']);
    e.setLeverage('poor', 'BTCUSDT', 5);
    expect(e.placeOrder('poor', fut({ quantity: dec('0.01') })).ok).toBe(true);
  });

  it('stop-market closePosition triggers on last price; a gap fills at the open; adverse first', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') })));
    const sl = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'STOP_MARKET', stopPrice: dec('29000'), closePosition: true })));
    const tp = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'TAKE_PROFIT_MARKET', stopPrice: dec('31000'), closePosition: true })));
    const now = e.placeOrder('a', fut({ side: 'SELL', type: 'STOP_MARKET', stopPrice: dec('30500'), closePosition: true }));
    expect(now.ok === false && now.kind).toBe('WOULD_TRIGGER_IMMEDIATELY');
    // One wide step reaches both: the stop (adverse) wins, the take-profit finds nothing to close.
    e.step('futures', 'BTCUSDT', step('30000', '31100', '28900', '30000'));
    const slDone = ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: sl.orderId }));
    expect([slDone.status, s(slDone.avgPrice), s(slDone.executedQty)]).toEqual(['FILLED', '29000', '0.1']);
    expect(ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: tp.orderId })).status).toBe('EXPIRED');
    // Wallet: 10000 - 1.5 (open fee) - 100 (loss) - 1.45 (2900 * 0.0005).
    expect(account(e)).toEqual({ wallet: '9897.05', positions: [] });

    // Gap: the step opens below the stop, so the fill is at the open.
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') })));
    const sl2 = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'STOP_MARKET', stopPrice: dec('29500'), quantity: dec('0.1'), reduceOnly: true })));
    e.step('futures', 'BTCUSDT', step('29200', '29300', '29100', '29250'));
    expect(s(ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: sl2.orderId })).avgPrice)).toBe('29200');
  });

  it('FOK that cannot fill at once is rejected (USD-M -5021), not recorded; a marketable FOK fills', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    const r = e.placeOrder('a', fut({ type: 'LIMIT', timeInForce: 'FOK', price: dec('29900'), quantity: dec('0.01') }));
    expect(r.ok === false && r.kind).toBe('FOK_WOULD_NOT_FILL');
    expect(e.allOrders('a', 'futures', 'BTCUSDT')).toEqual([]);
    const o = ok(e.placeOrder('a', fut({ type: 'LIMIT', timeInForce: 'FOK', price: dec('30100'), quantity: dec('0.01') })));
    expect([o.status, s(o.avgPrice)]).toEqual(['FILLED', '30000']);
  });

  it('post-only GTX that would take is rejected; resting GTX fills as maker', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    const r = e.placeOrder('a', fut({ type: 'LIMIT', timeInForce: 'GTX', price: dec('30000'), quantity: dec('0.01') }));
    expect(r.ok === false && r.kind).toBe('POST_ONLY_WOULD_TAKE');
    const o = ok(e.placeOrder('a', fut({ type: 'LIMIT', timeInForce: 'GTX', price: dec('29900'), quantity: dec('0.01') })));
    e.step('futures', 'BTCUSDT', step('30000', '30000', '29850', '29950'));
    const t = e.trades('a', 'futures', 'BTCUSDT', { orderId: o.orderId })[0]!;
    // Maker fee 299 * 0.0002 = 0.0598.
    expect([t.isMaker, s(t.price), s(t.commission)]).toEqual([true, '29900', '0.0598']);
  });

  it('isolated margin, and liquidation at the maintenance margin that loses at most the isolated wallet', () => {
    const { e, events } = engine();
    e.createAccount('lev', { futures: '1000' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    expect(e.setMarginType('lev', 'BTCUSDT', 'isolated').ok).toBe(true);
    expect((e.setMarginType('lev', 'BTCUSDT', 'isolated') as { kind: string }).kind).toBe('NO_NEED_TO_CHANGE_MARGIN_TYPE');
    e.setLeverage('lev', 'BTCUSDT', 10);
    ok(e.placeOrder('lev', fut({ quantity: dec('0.1') })));
    let v = e.futuresAccount('lev');
    // Isolated wallet 3000 / 10 = 300; wallet 1000 - 1.5 fee.
    expect([v.walletBalance.toFixed(), v.crossWalletBalance.toFixed(), v.positions[0]!.isolatedWallet.toFixed()]).toEqual(['998.5', '698.5', '300']);
    // Liquidation price (0.1*30000 - 300) / (0.1 * (1 - 0.004)) = 27108.43...
    expect(v.positions[0]!.liquidationPrice.toFixed()).toBe('27108.4');
    // At 27200: equity 300 - 280 = 20 > maint 2720 * 0.004 = 10.88: still open.
    e.setMarkPrice('BTCUSDT', dec('27200'));
    expect(e.positions('lev')).toHaveLength(1);
    // At 27100: equity 10 <= maint 10.84: liquidated; loss 290 plus fee capped at the 10 left.
    e.setMarkPrice('BTCUSDT', dec('27100'));
    v = e.futuresAccount('lev');
    expect(v.positions).toEqual([]);
    expect(v.walletBalance.toFixed()).toBe('698.5');
    const liq = events.find((x) => x.type === 'order' && x.account === 'lev' && x.order.type === 'LIQUIDATION');
    expect(liq && liq.type === 'order' && [liq.execType, liq.order.status, s(liq.trade?.price)]).toEqual(['CALCULATED', 'FILLED', '27100']);
    expect(e.setMarginType('lev', 'BTCUSDT', 'cross').ok).toBe(true);
  });

  it('cross liquidation takes every cross position when the margin balance reaches maintenance', () => {
    const { e } = engine();
    e.createAccount('x', { futures: '500' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    e.setLeverage('x', 'BTCUSDT', 20);
    ok(e.placeOrder('x', fut({ quantity: dec('0.1') })));
    // Wallet 498.5. Margin balance 498.5 + 0.1*(P-30000) <= 0.1*P*0.004 -> P <= 2501.5 / 0.0996 = 25115.46...
    e.setMarkPrice('BTCUSDT', dec('25120'));
    expect(e.positions('x')).toHaveLength(1);
    e.setMarkPrice('BTCUSDT', dec('25110'));
    expect(e.positions('x')).toHaveLength(0);
    // Loss 489, fee 2511 * 0.0125 = 31.3875: 498.5 - 520.3875 < 0, so the wallet floors at zero.
    expect(e.futuresAccount('x').walletBalance.toFixed()).toBe('0');
  });

  it('funding: a positive rate makes longs pay and shorts receive, at the mark price', () => {
    const { e, events } = engine();
    e.createAccount('short', { futures: '10000' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') })));
    ok(e.placeOrder('short', fut({ side: 'SELL', quantity: dec('0.1') })));
    e.setMarkPrice('BTCUSDT', dec('30500'));
    e.applyFunding('BTCUSDT', dec('0.0001'));
    // 0.1 * 30500 * 0.0001 = 0.305.
    expect(e.futuresAccount('a').walletBalance.toFixed()).toBe('9998.195');
    expect(e.futuresAccount('short').walletBalance.toFixed()).toBe('9998.805');
    const f = events.filter((x) => x.type === 'funding').map((x) => x.type === 'funding' && [x.account, x.amount.toFixed()]);
    expect(f).toEqual([
      ['a', '-0.305'],
      ['short', '0.305'],
    ]);
    expect(e.incomes('a', { incomeType: 'FUNDING_FEE' }).map((i) => i.income.toFixed())).toEqual(['-0.305']);
  });

  it('take-profit-market fills when price rises through it; a MARK_PRICE stop triggers on the mark, not the last price', () => {
    const { e } = engine();
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.1') })));
    const tp = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'TAKE_PROFIT_MARKET', stopPrice: dec('31000'), quantity: dec('0.05'), reduceOnly: true })));
    e.step('futures', 'BTCUSDT', step('30000', '31050', '30000', '31020'));
    const done = ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: tp.orderId }));
    // Realized (31000 - 30000) * 0.05 = 50; fee 1550 * 0.0005 = 0.775.
    expect([done.status, s(done.avgPrice)]).toEqual(['FILLED', '31000']);
    expect(e.futuresAccount('a').walletBalance.toFixed()).toBe('10047.725');

    const sl = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'STOP_MARKET', stopPrice: dec('30000'), closePosition: true, workingType: 'MARK_PRICE' })));
    // The last price dips through the stop, the mark does not: no trigger.
    e.setMarkPrice('BTCUSDT', dec('30500'));
    e.step('futures', 'BTCUSDT', step('31020', '31020', '29900', '30100'));
    expect(ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: sl.orderId })).status).toBe('NEW');
    // The mark reaches it: the stop fires, closing the 0.05 left at the last price.
    e.setMarkPrice('BTCUSDT', dec('29990'));
    const fired = ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: sl.orderId }));
    expect([fired.status, s(fired.executedQty), s(fired.avgPrice)]).toEqual(['FILLED', '0.05', '30100']);
    expect(e.positions('a')).toEqual([]);
  });

  it('volume-scaled slippage grows with the order\'s share of the step volume', () => {
    const clock = new TestClock(Date.UTC(2024, 0, 1));
    const fill = defaultFillModel();
    const e = new MatchingEngine({ clock, instruments: fullCatalog(), fillModel: { ...fill, slippage: { kind: 'volume', bps: dec('2'), impactBps: dec('20') } } });
    e.createAccount('a', { futures: '100000' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    // A resting sell's fill is a maker fill at its price: no slippage.
    ok(e.placeOrder('a', fut({ side: 'SELL', type: 'LIMIT', price: dec('30100'), quantity: dec('0.5') })));
    e.step('futures', 'BTCUSDT', step('30000', '30150', '30000', '30100', '10'));
    expect(s(e.trades('a', 'futures', 'BTCUSDT')[0]!.price)).toBe('30100');
    // Market orders placed with no step volume pay the base 2 bps: 30100 * 1.0002 = 30106.02 -> tick 0.1 up = 30106.1.
    expect(s(ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.5') }))).avgPrice)).toBe('30106.1');
    // A stop triggered inside a step of volume 10 for 2.5 (a quarter): 2 + 20 * 0.25 = 7 bps on the 29000 trigger,
    // 29000 * 0.9993 = 28979.7 for a sell.
    ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('2.5') })));
    const sl = ok(e.placeOrder('a', fut({ side: 'SELL', type: 'STOP_MARKET', stopPrice: dec('29000'), quantity: dec('2.5'), reduceOnly: true })));
    e.step('futures', 'BTCUSDT', step('29500', '29500', '28900', '28950', '10'));
    expect(s(ok(e.getOrder('a', 'futures', 'BTCUSDT', { orderId: sl.orderId })).avgPrice)).toBe('28979.7');
  });

  it('slippage moves market fills against the taker, rounded to the tick', () => {
    const { e } = engine({ slippageBps: '5' });
    e.setLastPrice('futures', 'BTCUSDT', dec('30000'));
    // 30000 * 1.0005 = 30015 for a buy; 30000 * 0.9995 = 29985 for a sell.
    expect(s(ok(e.placeOrder('a', fut({ side: 'BUY', quantity: dec('0.01') }))).avgPrice)).toBe('30015');
    expect(s(ok(e.placeOrder('a', fut({ side: 'SELL', quantity: dec('0.01') }))).avgPrice)).toBe('29985');
  });
});
