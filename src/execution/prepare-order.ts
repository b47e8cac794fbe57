/**
 * From an approved intent to the numbers the exchange accepts: rounded to
 * step and tick and checked against every filter (model/filters.ts). Pure:
 * a failure is a reason for an order.denied, and nothing is written or sent.
 */
import type { Dec } from '../core/decimal.ts';
import type { OrderIntent } from '../model/events.ts';
import { checkCallbackRate, checkOrder, roundPrice, roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';

const MARKET_TYPES = new Set(['MARKET', 'STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET']);

export interface PreparedOrder {
  readonly quantity: Dec;
  readonly price?: Dec;
  readonly stopPrice?: Dec;
}

/**
 * Rounds an intent to the instrument and checks every filter. Quantity is
 * truncated (never rounded up) to LOT_SIZE and, for orders that execute at
 * market, MARKET_LOT_SIZE too; prices go to the tick on the passive side.
 */
export function prepareOrder(inst: Instrument, i: Pick<OrderIntent, 'type' | 'side' | 'quantity' | 'price' | 'stopPrice' | 'reduceOnly' | 'callbackRate'>, referencePrice: Dec | undefined, openOrders: number): PreparedOrder | { reason: string } {
  const isMarket = MARKET_TYPES.has(i.type);
  let quantity = roundQuantity(i.quantity, inst.filters.lot);
  if (isMarket) quantity = roundQuantity(quantity, inst.filters.marketLot);
  const price = i.price ? roundPrice(i.price, inst, i.side) : undefined;
  // A stop rounds toward triggering sooner (a sell stop up, a buy stop down): never later than asked.
  const stopPrice = i.stopPrice ? roundPrice(i.stopPrice, inst, i.side === 'SELL' ? 'SELL' : 'BUY') : undefined;
  if (quantity.lte(0)) return { reason: `QTY_ROUNDS_TO_ZERO: quantity=${i.quantity.toFixed()} step=${inst.filters.lot.stepSize.toFixed()}` };
  if (i.type === 'TRAILING_STOP_MARKET') {
    const bad = i.callbackRate ? checkCallbackRate(i.callbackRate) : 'CALLBACK_RATE_MISSING: a trailing stop needs callbackRate';
    if (bad) return { reason: bad };
  }
  const failure = checkOrder(
    inst,
    { side: i.side, isMarket, quantity, ...(price ? { price } : {}), ...(stopPrice ? { stopPrice } : {}), ...(i.reduceOnly ? { reduceOnly: true } : {}) },
    { ...(referencePrice ? { referencePrice } : {}), openOrders },
  );
  if (failure) return { reason: failure.reason };
  return { quantity, ...(price ? { price } : {}), ...(stopPrice ? { stopPrice } : {}) };
}

export interface PreparedOco {
  readonly quantity: Dec;
  /** The take-profit leg's limit price (LIMIT_MAKER). */
  readonly limit: Dec;
  /** The stop leg's trigger and limit prices (STOP_LOSS_LIMIT). */
  readonly stopPrice: Dec;
  readonly stopLimit: Dec;
}

/**
 * The OCO form of prepareOrder: a LIMIT_MAKER take-profit and a
 * STOP_LOSS_LIMIT stop on one quantity, both legs rounded and checked, the
 * list counted as one more open order for each leg's check.
 */
export function prepareOco(inst: Instrument, i: Pick<OrderIntent, 'side' | 'quantity' | 'price' | 'stopPrice' | 'stopLimitPrice'>, referencePrice: Dec | undefined, openOrders: number): PreparedOco | { reason: string } {
  if (!i.price || !i.stopPrice || !i.stopLimitPrice) return { reason: 'OCO_INCOMPLETE: an OCO needs price (take-profit), stopPrice and stopLimitPrice' };
  const quantity = roundQuantity(i.quantity, inst.filters.lot);
  // The take-profit rests on the passive side; the stop triggers no later than asked; its limit lets it fill.
  const limit = roundPrice(i.price, inst, i.side === 'SELL' ? 'SELL' : 'BUY');
  const stopPrice = roundPrice(i.stopPrice, inst, i.side === 'SELL' ? 'SELL' : 'BUY');
  const stopLimit = roundPrice(i.stopLimitPrice, inst, i.side === 'SELL' ? 'BUY' : 'SELL');
  if (quantity.lte(0)) return { reason: `QTY_ROUNDS_TO_ZERO: quantity=${i.quantity.toFixed()} step=${inst.filters.lot.stepSize.toFixed()}` };
  for (const leg of [{ price: limit }, { price: stopLimit, stopPrice }]) {
    const failure = checkOrder(inst, { side: i.side, isMarket: false, quantity, ...leg }, { ...(referencePrice ? { referencePrice } : {}), openOrders: openOrders + 1 });
    if (failure) return { reason: failure.reason };
  }
  return { quantity, limit, stopPrice, stopLimit };
}
