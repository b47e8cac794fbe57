/**
 * One Binance exchangeInfo symbol (spot /api/v3/exchangeInfo or USD-M
 * /fapi/v1/exchangeInfo; ccxt keeps it as `market.info`) turned into the
 * project's Instrument, every filter an exact Decimal parsed from Binance's
 * strings. ccxt's own market numbers are floats and never used here.
 *
 * Only the parts we read are validated; a symbol that lacks one, or carries
 * a value that is not what Binance documents, is refused with an error that
 * names the symbol and the field, so a bad listing is found at once instead
 * of surfacing later as a rounding mystery.
 *
 * Shapes (see local-exchange/serialize.ts for both, written out):
 *  - spot: PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL (or the older
 *    MIN_NOTIONAL), PERCENT_PRICE_BY_SIDE (or the older PERCENT_PRICE),
 *    MAX_NUM_ORDERS {maxNumOrders}, MAX_NUM_ALGO_ORDERS {maxNumAlgoOrders};
 *    no pricePrecision/quantityPrecision fields, so they are the decimals
 *    of the tick and step.
 *  - futures: the same price and lot filters, MIN_NOTIONAL {notional},
 *    PERCENT_PRICE, MAX_NUM_ORDERS / MAX_NUM_ALGO_ORDERS {limit},
 *    pricePrecision / quantityPrecision, liquidationFee. The maintenance
 *    margin rate is not in exchangeInfo (its maintMarginPercent is a fixed
 *    placeholder): it comes from /fapi/v1/leverageBracket and is passed in.
 */
import { z } from 'zod';
import { dec, isDecimalString, type Dec } from '../../core/decimal.ts';
import type { Instrument, InstrumentFilters, LotFilter } from '../../model/instrument.ts';
import type { Market } from '../../model/market.ts';

export class ExchangeInfoError extends Error {
  constructor(
    readonly symbol: string,
    readonly field: string,
    problem: string,
  ) {
    super(`exchangeInfo symbol ${symbol}: ${field}: ${problem}`);
    this.name = 'ExchangeInfoError';
  }
}

const decimal = z.string().refine((s) => isDecimalString(s) && !s.trim().startsWith('-'), { message: 'expected a non-negative decimal string' });
const count = z.number().int().nonnegative();

const symbolHead = z.object({
  symbol: z.string().regex(/^[A-Z0-9]{2,30}$/, { message: 'expected an upper-case Binance symbol' }),
  status: z.string().min(1),
  baseAsset: z.string().min(1),
  quoteAsset: z.string().min(1),
  filters: z.array(z.looseObject({ filterType: z.string() })),
});

const futuresHead = z.object({
  pricePrecision: count,
  quantityPrecision: count,
  liquidationFee: decimal.optional(),
});

const priceFilter = z.object({ minPrice: decimal, maxPrice: decimal, tickSize: decimal });
const lotFilter = z.object({ minQty: decimal, maxQty: decimal, stepSize: decimal });
const spotNotional = z.object({ minNotional: decimal, maxNotional: decimal.optional(), applyMinToMarket: z.boolean(), applyMaxToMarket: z.boolean() });
const spotMinNotional = z.object({ minNotional: decimal, applyToMarket: z.boolean() });
const futuresMinNotional = z.object({ notional: decimal });
const percentPrice = z.object({ multiplierUp: decimal, multiplierDown: decimal });
const percentPriceBySide = z.object({ bidMultiplierUp: decimal, bidMultiplierDown: decimal, askMultiplierUp: decimal, askMultiplierDown: decimal });
const spotMaxOrders = z.object({ maxNumOrders: count });
const spotMaxAlgo = z.object({ maxNumAlgoOrders: count });
const futuresLimit = z.object({ limit: count });

// When Binance leaves out an order-count filter, its documented defaults apply.
const DEFAULT_MAX_ORDERS = 200;
const DEFAULT_MAX_ALGO: Record<Market, number> = { spot: 5, futures: 10 };

/** Binance statuses that the Instrument type has no word for are "not trading now" (BREAK). */
function mapStatus(s: string): Instrument['status'] {
  if (s === 'TRADING' || s === 'HALT' || s === 'BREAK') return s;
  return 'BREAK';
}

function describe(err: z.ZodError): { path: string; message: string } {
  const first = err.issues[0];
  return { path: first ? first.path.map(String).join('.') : '', message: first?.message ?? 'invalid' };
}

export interface InstrumentExtras {
  /** Futures: the first leverage bracket's maintMarginRatio (from /fapi/v1/leverageBracket). */
  readonly maintMarginRate?: Dec;
}

/**
 * Converts one raw exchangeInfo symbol object. Throws ExchangeInfoError
 * naming the symbol and the field when a part we need is missing or
 * malformed.
 */
export function instrumentFromBinance(raw: unknown, market: Market, extras: InstrumentExtras = {}): Instrument {
  const name = typeof raw === 'object' && raw !== null && typeof (raw as { symbol?: unknown }).symbol === 'string' ? (raw as { symbol: string }).symbol : '(unnamed)';
  const parse = <T>(schema: z.ZodType<T>, value: unknown, field: string): T => {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    const { path, message } = describe(r.error);
    throw new ExchangeInfoError(name, [field, path].filter(Boolean).join('.'), `${message} (got ${JSON.stringify(pick(value, path))})`);
  };

  const head = parse(symbolHead, raw, '');
  const byType = new Map<string, Record<string, unknown>>();
  for (const f of head.filters) byType.set(f.filterType, f);
  const filter = <T>(type: string, schema: z.ZodType<T>): T | undefined => {
    const f = byType.get(type);
    return f === undefined ? undefined : parse(schema, f, `filters.${type}`);
  };
  const required = <T>(type: string, schema: z.ZodType<T>): T => {
    const v = filter(type, schema);
    if (v === undefined) throw new ExchangeInfoError(name, `filters.${type}`, 'missing');
    return v;
  };

  const pf = required('PRICE_FILTER', priceFilter);
  const lf = required('LOT_SIZE', lotFilter);
  const price = { minPrice: dec(pf.minPrice), maxPrice: dec(pf.maxPrice), tickSize: dec(pf.tickSize) };
  const lot: LotFilter = { minQty: dec(lf.minQty), maxQty: dec(lf.maxQty), stepSize: dec(lf.stepSize) };
  const mlf = filter('MARKET_LOT_SIZE', lotFilter);
  // Without a MARKET_LOT_SIZE, market orders follow LOT_SIZE (Binance's rule).
  const marketLot: LotFilter = mlf ? { minQty: dec(mlf.minQty), maxQty: dec(mlf.maxQty), stepSize: dec(mlf.stepSize) } : lot;
  if (price.tickSize.isZero()) throw new ExchangeInfoError(name, 'filters.PRICE_FILTER.tickSize', 'is zero');
  if (lot.stepSize.isZero()) throw new ExchangeInfoError(name, 'filters.LOT_SIZE.stepSize', 'is zero');

  let filters: InstrumentFilters;
  let precision: { pricePrecision: number; quantityPrecision: number };
  let futuresExtra: Pick<Instrument, 'maintMarginRate' | 'liquidationFee'> = {};

  if (market === 'spot') {
    const notional = filter('NOTIONAL', spotNotional);
    const legacy = notional ? undefined : filter('MIN_NOTIONAL', spotMinNotional);
    if (!notional && !legacy) throw new ExchangeInfoError(name, 'filters.NOTIONAL', 'missing (and no MIN_NOTIONAL either)');
    const bySide = filter('PERCENT_PRICE_BY_SIDE', percentPriceBySide);
    const pp = filter('PERCENT_PRICE', percentPrice);
    filters = {
      price,
      lot,
      marketLot,
      notional: notional
        ? { minNotional: dec(notional.minNotional), ...(notional.maxNotional !== undefined ? { maxNotional: dec(notional.maxNotional) } : {}), applyMinToMarket: notional.applyMinToMarket, applyMaxToMarket: notional.applyMaxToMarket }
        : { minNotional: dec(legacy!.minNotional), applyMinToMarket: legacy!.applyToMarket, applyMaxToMarket: false },
      ...(pp ? { percentPrice: { multiplierUp: dec(pp.multiplierUp), multiplierDown: dec(pp.multiplierDown) } } : {}),
      ...(bySide
        ? {
            percentPriceBySide: {
              bidMultiplierUp: dec(bySide.bidMultiplierUp),
              bidMultiplierDown: dec(bySide.bidMultiplierDown),
              askMultiplierUp: dec(bySide.askMultiplierUp),
              askMultiplierDown: dec(bySide.askMultiplierDown),
            },
          }
        : {}),
      maxNumOrders: filter('MAX_NUM_ORDERS', spotMaxOrders)?.maxNumOrders ?? DEFAULT_MAX_ORDERS,
      maxNumAlgoOrders: filter('MAX_NUM_ALGO_ORDERS', spotMaxAlgo)?.maxNumAlgoOrders ?? DEFAULT_MAX_ALGO.spot,
    };
    // Spot lists no display precision; the tick and step are the precision.
    precision = { pricePrecision: price.tickSize.decimalPlaces(), quantityPrecision: lot.stepSize.decimalPlaces() };
  } else {
    const fh = parse(futuresHead, raw, '');
    const mn = required('MIN_NOTIONAL', futuresMinNotional);
    const pp = filter('PERCENT_PRICE', percentPrice);
    filters = {
      price,
      lot,
      marketLot,
      notional: { minNotional: dec(mn.notional), applyMinToMarket: true, applyMaxToMarket: false },
      ...(pp ? { percentPrice: { multiplierUp: dec(pp.multiplierUp), multiplierDown: dec(pp.multiplierDown) } } : {}),
      maxNumOrders: filter('MAX_NUM_ORDERS', futuresLimit)?.limit ?? DEFAULT_MAX_ORDERS,
      maxNumAlgoOrders: filter('MAX_NUM_ALGO_ORDERS', futuresLimit)?.limit ?? DEFAULT_MAX_ALGO.futures,
    };
    precision = { pricePrecision: fh.pricePrecision, quantityPrecision: fh.quantityPrecision };
    futuresExtra = {
      ...(extras.maintMarginRate !== undefined ? { maintMarginRate: extras.maintMarginRate } : {}),
      ...(fh.liquidationFee !== undefined ? { liquidationFee: dec(fh.liquidationFee) } : {}),
    };
  }

  return {
    market,
    symbol: head.symbol,
    baseAsset: head.baseAsset,
    quoteAsset: head.quoteAsset,
    status: mapStatus(head.status),
    ...precision,
    filters,
    ...futuresExtra,
  };
}

/** The value at a dotted path, for the error message. */
function pick(value: unknown, path: string): unknown {
  let v = value;
  for (const k of path.split('.').filter(Boolean)) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}
