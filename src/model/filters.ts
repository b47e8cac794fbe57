/**
 * Exchange filters and rounding: the one module that knows Binance's order
 * rules. The simulated exchange uses `checkOrder` to reject what Binance
 * would reject; the execution engine uses the rounding helpers (and the same
 * check) so that an order that cannot pass is denied locally with a precise
 * reason instead of being sent to come back as -1013.
 */
import { Dec, type DecInput } from '../core/decimal.ts';
import type { Instrument, LotFilter } from './instrument.ts';

export type FilterName = 'PRICE_FILTER' | 'LOT_SIZE' | 'MARKET_LOT_SIZE' | 'NOTIONAL' | 'PERCENT_PRICE' | 'PERCENT_PRICE_BY_SIDE' | 'MAX_NUM_ORDERS';

/** Why an order fails a filter: which filter, which rule, and the figures. */
export interface FilterFailure {
  readonly filter: FilterName;
  /** Stable reason code, e.g. NOTIONAL_BELOW_MIN, PRICE_NOT_ON_TICK. */
  readonly code: string;
  /** Code plus figures, e.g. "NOTIONAL_BELOW_MIN: notional=4.1 min=5". */
  readonly reason: string;
}

export interface OrderForCheck {
  readonly side: 'BUY' | 'SELL';
  /** True for orders that execute at market (MARKET, STOP_MARKET, TAKE_PROFIT_MARKET). */
  readonly isMarket: boolean;
  readonly quantity: Dec;
  /** Limit price; absent for market orders. */
  readonly price?: Dec;
  /** Trigger price for conditional orders; checked against PRICE_FILTER too. */
  readonly stopPrice?: Dec;
  /** Reduce-only futures orders are exempt from the minimum notional. */
  readonly reduceOnly?: boolean;
}

export interface CheckContext {
  /** Price used for market-order notional and the percent-price bounds (spot: average price; futures: mark price). */
  readonly referencePrice?: Dec;
  /** Open orders the account already has on this symbol (for MAX_NUM_ORDERS). */
  readonly openOrders?: number;
}

function fail(filter: FilterName, code: string, figures: Record<string, DecInput | number>): FilterFailure {
  const text = Object.entries(figures)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v : new Dec(v).toFixed()}`)
    .join(' ');
  return { filter, code, reason: `${code}: ${text}` };
}

/** True when value is an exact multiple of step (step 0 means "no constraint"). */
export function isMultipleOf(value: Dec, step: Dec): boolean {
  return step.isZero() || value.mod(step).isZero();
}

function checkLot(q: Dec, lot: LotFilter, filter: 'LOT_SIZE' | 'MARKET_LOT_SIZE'): FilterFailure | undefined {
  if (q.lt(lot.minQty)) return fail(filter, 'QTY_BELOW_MIN', { quantity: q, min: lot.minQty });
  if (!lot.maxQty.isZero() && q.gt(lot.maxQty)) return fail(filter, 'QTY_ABOVE_MAX', { quantity: q, max: lot.maxQty });
  if (!isMultipleOf(q.minus(lot.minQty), lot.stepSize)) return fail(filter, 'QTY_NOT_ON_STEP', { quantity: q, step: lot.stepSize });
  return undefined;
}

function checkPrice(p: Dec, inst: Instrument, what: 'price' | 'stopPrice'): FilterFailure | undefined {
  const f = inst.filters.price;
  if (p.lte(0)) return fail('PRICE_FILTER', what === 'price' ? 'PRICE_NOT_POSITIVE' : 'STOP_PRICE_NOT_POSITIVE', { [what]: p });
  if (!f.minPrice.isZero() && p.lt(f.minPrice)) return fail('PRICE_FILTER', 'PRICE_BELOW_MIN', { [what]: p, min: f.minPrice });
  if (!f.maxPrice.isZero() && p.gt(f.maxPrice)) return fail('PRICE_FILTER', 'PRICE_ABOVE_MAX', { [what]: p, max: f.maxPrice });
  if (!isMultipleOf(f.minPrice.isZero() ? p : p.minus(f.minPrice), f.tickSize)) return fail('PRICE_FILTER', 'PRICE_NOT_ON_TICK', { [what]: p, tick: f.tickSize });
  return undefined;
}

/**
 * Checks one order against every filter, in Binance's order of evaluation
 * (price, lot, notional, percent price, order count). Returns the first
 * failure, or undefined when the order passes.
 */
export function checkOrder(inst: Instrument, o: OrderForCheck, ctx: CheckContext = {}): FilterFailure | undefined {
  const f = inst.filters;
  if (o.price !== undefined) {
    const e = checkPrice(o.price, inst, 'price');
    if (e) return e;
  }
  if (o.stopPrice !== undefined) {
    const e = checkPrice(o.stopPrice, inst, 'stopPrice');
    if (e) return e;
  }
  const lotErr = checkLot(o.quantity, f.lot, 'LOT_SIZE') ?? (o.isMarket ? checkLot(o.quantity, f.marketLot, 'MARKET_LOT_SIZE') : undefined);
  if (lotErr) return lotErr;

  const priceForNotional = o.isMarket ? ctx.referencePrice : o.price;
  if (priceForNotional !== undefined && !(inst.market === 'futures' && o.reduceOnly)) {
    const notional = o.quantity.times(priceForNotional);
    const n = f.notional;
    if ((!o.isMarket || n.applyMinToMarket) && notional.lt(n.minNotional)) return fail('NOTIONAL', 'NOTIONAL_BELOW_MIN', { notional, min: n.minNotional });
    if (n.maxNotional && (!o.isMarket || n.applyMaxToMarket) && notional.gt(n.maxNotional)) return fail('NOTIONAL', 'NOTIONAL_ABOVE_MAX', { notional, max: n.maxNotional });
  }

  if (o.price !== undefined && ctx.referencePrice !== undefined) {
    const ref = ctx.referencePrice;
    if (f.percentPriceBySide) {
      const pp = f.percentPriceBySide;
      const [up, down] = o.side === 'BUY' ? [pp.bidMultiplierUp, pp.bidMultiplierDown] : [pp.askMultiplierUp, pp.askMultiplierDown];
      if (o.price.gt(ref.times(up))) return fail('PERCENT_PRICE_BY_SIDE', 'PRICE_ABOVE_PERCENT_BAND', { price: o.price, max: ref.times(up) });
      if (o.price.lt(ref.times(down))) return fail('PERCENT_PRICE_BY_SIDE', 'PRICE_BELOW_PERCENT_BAND', { price: o.price, min: ref.times(down) });
    } else if (f.percentPrice) {
      const pp = f.percentPrice;
      if (o.price.gt(ref.times(pp.multiplierUp))) return fail('PERCENT_PRICE', 'PRICE_ABOVE_PERCENT_BAND', { price: o.price, max: ref.times(pp.multiplierUp) });
      if (o.price.lt(ref.times(pp.multiplierDown))) return fail('PERCENT_PRICE', 'PRICE_BELOW_PERCENT_BAND', { price: o.price, min: ref.times(pp.multiplierDown) });
    }
  }

  if (ctx.openOrders !== undefined && ctx.openOrders >= f.maxNumOrders) return fail('MAX_NUM_ORDERS', 'TOO_MANY_OPEN_ORDERS', { open: ctx.openOrders, max: f.maxNumOrders });
  return undefined;
}

/** Quantity truncated down to the step (never rounds up: never more than asked). */
export function roundQuantity(q: DecInput, lot: LotFilter): Dec {
  const d = new Dec(q);
  if (lot.stepSize.isZero()) return d;
  const base = lot.minQty.isZero() ? new Dec(0) : lot.minQty;
  if (d.lt(base)) return d.toDecimalPlaces(lot.stepSize.decimalPlaces(), Dec.ROUND_DOWN);
  return base.plus(d.minus(base).div(lot.stepSize).floor().times(lot.stepSize));
}

/**
 * Price rounded to the tick. Limits round toward the passive side (a buy
 * down, a sell up), so rounding never makes an order more aggressive than
 * the strategy asked.
 */
export function roundPrice(p: DecInput, inst: Instrument, side: 'BUY' | 'SELL'): Dec {
  const d = new Dec(p);
  const tick = inst.filters.price.tickSize;
  if (tick.isZero()) return d;
  const steps = d.div(tick);
  return (side === 'BUY' ? steps.floor() : steps.ceil()).times(tick);
}

/**
 * Binance USD-M trailing stops (TRAILING_STOP_MARKET): which callback rates
 * Binance accepts. The execution engine checks a
 * rate before sending; the matching engine (local exchange, sim venue)
 * refuses the same rates with Binance's answer, -2007 "Invalid callBack rate.".
 *
 * Source: USDⓈ-M Futures "New Algo Order (TRADE)" (POST /fapi/v1/algoOrder,
 * where conditional orders live since December 2025): callbackRate "Used
 * with TRAILING_STOP_MARKET orders, min 0.1, max 5 where 1 for 1%" (the
 * page said max 10 until December 2025, when the algo endpoint arrived; the
 * latest revision no longer repeats the range). The rate is a percent with
 * one decimal: the page gives no step, but Binance refuses finer rates
 * (0.68) with the same -2007, so 0.1 is the step.
 */
export const CALLBACK_RATE = { min: new Dec('0.1'), max: new Dec('5'), step: new Dec('0.1') } as const;

/**
 * Why Binance would refuse this callbackRate (percent, 1 = 1 %), as a
 * reason code with the figures, or undefined when it is accepted:
 *   CALLBACK_RATE_OUT_OF_RANGE: callbackRate=12 min=0.1 max=5
 *   CALLBACK_RATE_NOT_ON_STEP: callbackRate=0.15 step=0.1
 */
export function checkCallbackRate(rate: Dec): string | undefined {
  const { min, max, step } = CALLBACK_RATE;
  if (!rate.isFinite() || rate.lt(min) || rate.gt(max)) return `CALLBACK_RATE_OUT_OF_RANGE: callbackRate=${rate.toFixed()} min=${min.toFixed()} max=${max.toFixed()}`;
  if (!rate.mod(step).isZero()) return `CALLBACK_RATE_NOT_ON_STEP: callbackRate=${rate.toFixed()} step=${step.toFixed()}`;
  return undefined;
}
