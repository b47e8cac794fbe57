/**
 * Instrument definitions for the symbols the project ships data for, with
 * Binance's tick and step sizes and notional minimums (as Binance listed them
 * in 2024-2025). The local exchange serves these in exchangeInfo; tests use
 * them for rounding at real boundaries (tick 0.01 / 0.1 / 0.0001, step 0.001 / 1).
 */
import { Dec } from '../../core/decimal.ts';
import type { Instrument } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';

interface Spec {
  base: string;
  tick: string;
  step: string;
  minNotional: string;
  minPrice: string;
  maxPrice: string;
  maxQty: string;
  marketMaxQty: string;
  /** Futures maintenance margin rate (first tier) and liquidation fee. */
  maint?: string;
}

const d = (s: string): Dec => new Dec(s);

function decimals(s: string): number {
  return new Dec(s).decimalPlaces();
}

/** What spot and futures instruments share: identity, precisions, price and lot filters. */
function base(market: Market, symbol: string, s: Spec): Omit<Instrument, 'filters'> & { filters: Pick<Instrument['filters'], 'price' | 'lot'> } {
  return {
    market,
    symbol,
    baseAsset: s.base,
    quoteAsset: 'USDT',
    status: 'TRADING',
    pricePrecision: decimals(s.tick),
    quantityPrecision: decimals(s.step),
    filters: {
      price: { minPrice: d(s.minPrice), maxPrice: d(s.maxPrice), tickSize: d(s.tick) },
      lot: { minQty: d(s.step), maxQty: d(s.maxQty), stepSize: d(s.step) },
    },
  };
}

function spot(symbol: string, s: Spec): Instrument {
  const b = base('spot', symbol, s);
  return {
    ...b,
    filters: {
      ...b.filters,
      // Spot MARKET_LOT_SIZE has no step of its own (Binance lists 0).
      marketLot: { minQty: d('0'), maxQty: d(s.marketMaxQty), stepSize: d('0') },
      notional: { minNotional: d(s.minNotional), maxNotional: d('9000000'), applyMinToMarket: true, applyMaxToMarket: false },
      percentPriceBySide: { bidMultiplierUp: d('5'), bidMultiplierDown: d('0.2'), askMultiplierUp: d('5'), askMultiplierDown: d('0.2') },
      maxNumOrders: 200,
      maxNumAlgoOrders: 5,
    },
  };
}

function futures(symbol: string, s: Spec): Instrument {
  const b = base('futures', symbol, s);
  return {
    ...b,
    filters: {
      ...b.filters,
      marketLot: { minQty: d(s.step), maxQty: d(s.marketMaxQty), stepSize: d(s.step) },
      notional: { minNotional: d(s.minNotional), applyMinToMarket: true, applyMaxToMarket: false },
      percentPrice: { multiplierUp: d('1.05'), multiplierDown: d('0.95') },
      maxNumOrders: 200,
      maxNumAlgoOrders: 10,
    },
    maintMarginRate: d(s.maint ?? '0.01'),
    liquidationFee: d('0.0125'),
  };
}

const SPOT: Record<string, Spec> = {
  BTCUSDT: { base: 'BTC', tick: '0.01', step: '0.00001', minNotional: '5', minPrice: '0.01', maxPrice: '1000000', maxQty: '9000', marketMaxQty: '120' },
  ETHUSDT: { base: 'ETH', tick: '0.01', step: '0.0001', minNotional: '5', minPrice: '0.01', maxPrice: '1000000', maxQty: '9000', marketMaxQty: '2500' },
};

const FUTURES: Record<string, Spec> = {
  BTCUSDT: { base: 'BTC', tick: '0.1', step: '0.001', minNotional: '100', minPrice: '556.8', maxPrice: '4529764', maxQty: '1000', marketMaxQty: '120', maint: '0.004' },
  ETHUSDT: { base: 'ETH', tick: '0.01', step: '0.001', minNotional: '20', minPrice: '39.86', maxPrice: '306177', maxQty: '10000', marketMaxQty: '2000', maint: '0.004' },
  ALGOUSDT: { base: 'ALGO', tick: '0.0001', step: '0.1', minNotional: '5', minPrice: '0.0010', maxPrice: '100', maxQty: '10000000', marketMaxQty: '1500000' },
  AVAXUSDT: { base: 'AVAX', tick: '0.001', step: '1', minNotional: '5', minPrice: '0.100', maxPrice: '100000', maxQty: '1000000', marketMaxQty: '50000', maint: '0.0065' },
  DOTUSDT: { base: 'DOT', tick: '0.001', step: '0.1', minNotional: '5', minPrice: '0.100', maxPrice: '100000', maxQty: '1000000', marketMaxQty: '100000', maint: '0.0065' },
  FILUSDT: { base: 'FIL', tick: '0.001', step: '0.1', minNotional: '5', minPrice: '0.100', maxPrice: '100000', maxQty: '1000000', marketMaxQty: '100000' },
  LINKUSDT: { base: 'LINK', tick: '0.001', step: '0.01', minNotional: '20', minPrice: '0.460', maxPrice: '100000', maxQty: '500000', marketMaxQty: '20000', maint: '0.0065' },
  NEARUSDT: { base: 'NEAR', tick: '0.001', step: '1', minNotional: '5', minPrice: '0.100', maxPrice: '100000', maxQty: '1000000', marketMaxQty: '100000' },
};

/** The shipped instruments for one market. */
export function catalog(market: Market): Instrument[] {
  return market === 'spot' ? Object.entries(SPOT).map(([s, spec]) => spot(s, spec)) : Object.entries(FUTURES).map(([s, spec]) => futures(s, spec));
}

/** Every shipped instrument, spot and futures. */
export function fullCatalog(): Instrument[] {
  return [...catalog('spot'), ...catalog('futures')];
}
