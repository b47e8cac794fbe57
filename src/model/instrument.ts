/**
 * An instrument as the exchange defines it, with Binance's filters as exact
 * Decimals. The same shape serves the simulated exchange (which enforces
 * the filters) and the execution engine (which rounds to them before
 * sending); the checks and rounding themselves live in filters.ts.
 */
import type { Dec } from '../core/decimal.ts';
import type { Market } from './market.ts';

export interface PriceFilter {
  readonly minPrice: Dec;
  readonly maxPrice: Dec;
  readonly tickSize: Dec;
}

export interface LotFilter {
  readonly minQty: Dec;
  readonly maxQty: Dec;
  readonly stepSize: Dec;
}

/** Spot NOTIONAL (min and max, each optionally applied to market orders) or futures MIN_NOTIONAL. */
export interface NotionalFilter {
  readonly minNotional: Dec;
  readonly maxNotional?: Dec;
  readonly applyMinToMarket: boolean;
  readonly applyMaxToMarket: boolean;
}

/** Futures PERCENT_PRICE: a limit price must stay within mark * [down, up]. */
export interface PercentPriceFilter {
  readonly multiplierUp: Dec;
  readonly multiplierDown: Dec;
}

/** Spot PERCENT_PRICE_BY_SIDE: bounds around the average price, per side. */
export interface PercentPriceBySideFilter {
  readonly bidMultiplierUp: Dec;
  readonly bidMultiplierDown: Dec;
  readonly askMultiplierUp: Dec;
  readonly askMultiplierDown: Dec;
}

export interface InstrumentFilters {
  readonly price: PriceFilter;
  readonly lot: LotFilter;
  readonly marketLot: LotFilter;
  readonly notional: NotionalFilter;
  readonly percentPrice?: PercentPriceFilter;
  readonly percentPriceBySide?: PercentPriceBySideFilter;
  readonly maxNumOrders: number;
  readonly maxNumAlgoOrders: number;
}

export interface Instrument {
  readonly market: Market;
  readonly symbol: string;
  readonly baseAsset: string;
  readonly quoteAsset: string;
  readonly status: 'TRADING' | 'BREAK' | 'HALT';
  /** Decimals Binance reports for display (futures pricePrecision / quantityPrecision). */
  readonly pricePrecision: number;
  readonly quantityPrecision: number;
  readonly filters: InstrumentFilters;
  /** Futures only: maintenance margin rate (single tier) and liquidation clearance fee rate. */
  readonly maintMarginRate?: Dec;
  readonly liquidationFee?: Dec;
}
