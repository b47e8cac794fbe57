/**
 * Position sizing: every method of rawSize with exact Decimal figures worked
 * by hand, and sizeOrder's rounding against the shipped instruments (spot
 * BTCUSDT step 0.00001, futures ALGOUSDT step 0.1, AVAXUSDT step 1, BTCUSDT
 * step 0.001). Sizing objects go through strategyConfigSchema, as a strategy
 * YAML would, so the schema defaults (kelly maxPercent 10, minTrades 20,
 * fallbackPercent 1; volatility atrPeriod 14) are the ones exercised.
 */
import { describe, expect, it } from 'vitest';
import { dec, type Dec } from '../../src/core/decimal.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { rawSize, sizeOrder, type Sizing, type SizingInput, type SizingResult } from '../../src/risk/sizing.ts';
import { strategyConfigSchema } from '../../src/settings/strategy-config.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';

function sizing(raw: Record<string, unknown>): Sizing {
  const s = strategyConfigSchema.parse({ sizing: raw }).sizing;
  if (!s) throw new Error('sizing did not parse');
  return s;
}

const NO_TRIPS: SizingInput['trips'] = { trades: 0, wins: 0, losses: 0, grossWin: dec(0), grossLoss: dec(0) };

function input(o: Partial<SizingInput> = {}): SizingInput {
  return { price: dec(100), equity: dec(10_000), trips: NO_TRIPS, ...o };
}

function trips(trades: number, wins: number, losses: number, grossWin: string, grossLoss: string): SizingInput['trips'] {
  return { trades, wins, losses, grossWin: dec(grossWin), grossLoss: dec(grossLoss) };
}

/** The quantity of a sized result, failing the test with the reason when there is none. */
function qty(r: SizingResult): Dec {
  if ('reason' in r) throw new Error(`expected a quantity, got reason ${r.reason}`);
  return r.quantity;
}

function reason(r: SizingResult): string {
  if (!('reason' in r)) throw new Error(`expected a reason, got quantity ${r.quantity.toFixed()}`);
  return r.reason;
}

function inst(market: 'spot' | 'futures', symbol: string): Instrument {
  const i = catalog(market).find((x) => x.symbol === symbol);
  if (!i) throw new Error(`${market} ${symbol} not in catalog`);
  return i;
}

const SPOT_BTC = inst('spot', 'BTCUSDT');
const FUT_BTC = inst('futures', 'BTCUSDT');
const FUT_ALGO = inst('futures', 'ALGOUSDT');
const FUT_AVAX = inst('futures', 'AVAXUSDT');

describe('sizing: schema defaults', () => {
  it('kelly and volatility take their defaults from strategyConfigSchema', () => {
    expect(sizing({ type: 'kelly', fraction: 0.5 }), 'kelly defaults').toEqual({ type: 'kelly', fraction: 0.5, maxPercent: 10, minTrades: 20, fallbackPercent: 1 });
    expect(sizing({ type: 'volatility', targetPercent: 1 }), 'volatility default ATR period').toEqual({ type: 'volatility', targetPercent: 1, atrPeriod: 14 });
    const f = sizing({ type: 'fixed', quantity: '0.5' });
    expect(f.type === 'fixed' && f.quantity.toFixed(), 'fixed quantity is a Dec from a string').toBe('0.5');
  });
});

describe('sizing: rawSize by method', () => {
  it('refuses a non-positive price before any method', () => {
    expect(reason(rawSize(sizing({ type: 'fixed', quantity: 1 }), input({ price: dec(0) }))), 'price 0').toBe('SIZING_NO_PRICE: price=0');
    expect(reason(rawSize(sizing({ type: 'percent-equity', percent: 1 }), input({ price: dec(-5) }))), 'negative price').toBe('SIZING_NO_PRICE: price=-5');
  });

  it('fixed: the configured quantity, whatever price and equity', () => {
    const r = rawSize(sizing({ type: 'fixed', quantity: '0.5' }), input({ price: dec(123.45), equity: dec(1) }));
    expect(qty(r).toFixed(), 'fixed ignores price and equity').toBe('0.5');
    expect('detail' in r && r.detail).toBe('fixed 0.5');
  });

  it('quote: amount / price', () => {
    // 250 / 40000 = 0.00625
    const r = rawSize(sizing({ type: 'quote', amount: 250 }), input({ price: dec(40_000) }));
    expect(qty(r).toFixed(), '250 USDT at 40000').toBe('0.00625');
    expect('detail' in r && r.detail).toBe('quote 250');
  });

  it('percent-equity: equity * percent / 100 / price', () => {
    // 10000 * 2 / 100 = 200 USDT; 200 / 50000 = 0.004
    const r = rawSize(sizing({ type: 'percent-equity', percent: 2 }), input({ price: dec(50_000) }));
    expect(qty(r).toFixed(), '2% of 10000 at 50000').toBe('0.004');
    expect('detail' in r && r.detail).toBe('2% of equity 10000.00');
  });

  it('risk: equity * percent / 100 / |price - stop|, for a stop below (long) or above (short)', () => {
    const s = sizing({ type: 'risk', percent: 1 });
    // risk budget 10000 * 1% = 100 USDT; distance 5 -> 20 units
    const long = rawSize(s, input({ price: dec(100), stopPrice: dec(95) }));
    expect(qty(long).toFixed(), 'long: 100 / (100 - 95)').toBe('20');
    expect('detail' in long && long.detail).toBe('risk 1% over stop distance 5');
    expect(qty(rawSize(s, input({ price: dec(100), stopPrice: dec(105) }))).toFixed(), 'short: 100 / |100 - 105|').toBe('20');
    // 100 / 0.8 = 125
    expect(qty(rawSize(s, input({ price: dec('100.5'), stopPrice: dec('99.7') }))).toFixed(), 'fractional distance 0.8').toBe('125');
  });

  it('risk: no stop and a zero stop distance are reasons, not quantities', () => {
    const s = sizing({ type: 'risk', percent: 1 });
    expect(reason(rawSize(s, input())), 'no stop').toBe('SIZING_NO_STOP: risk sizing needs a stop (signal stopLoss or risk.stopLossPct)');
    expect(reason(rawSize(s, input({ price: dec(100), stopPrice: dec('100.0') }))), 'stop at the price').toBe('SIZING_ZERO_STOP_DISTANCE: price=100 stop=100');
  });

  it('kelly: below minTrades closed trips, fallbackPercent of equity', () => {
    const s = sizing({ type: 'kelly', fraction: 0.5 });
    // 19 < 20 trades: 10000 * 1% = 100 USDT at 100 -> 1
    const r = rawSize(s, input({ trips: trips(19, 19, 0, '1900', '0') }));
    expect(qty(r).toFixed(), 'fallback 1% of equity at price 100').toBe('1');
    expect('detail' in r && r.detail).toBe('kelly fallback 1% (19/20 trades)');
    const custom = sizing({ type: 'kelly', fraction: 0.5, minTrades: 5, fallbackPercent: 3 });
    expect(qty(rawSize(custom, input({ trips: trips(4, 1, 3, '10', '30') }))).toFixed(), 'custom fallback 3% below 5 trades').toBe('3');
  });

  it('kelly: a worked example, f = (p - (1 - p) / b) * fraction', () => {
    // 20 trips: 11 wins (550 gross: avg 50), 9 losses (180 gross: avg 20).
    // p = 11/20 = 0.55, b = 50/20 = 2.5, p - (1-p)/b = 0.55 - 0.45/2.5 = 0.55 - 0.18 = 0.37
    // half Kelly: 0.185 of equity; maxPercent 25 leaves it; 10000 * 0.185 / 100 = 18.5
    const t = trips(20, 11, 9, '550', '180');
    const r = rawSize(sizing({ type: 'kelly', fraction: 0.5, maxPercent: 25 }), input({ trips: t }));
    expect(qty(r).toFixed(), 'half Kelly 18.5% of 10000 at 100').toBe('18.5');
    expect('detail' in r && r.detail).toBe('kelly 18.50% of equity');
    // Same record, default maxPercent 10: capped at 10% -> 10
    const capped = rawSize(sizing({ type: 'kelly', fraction: 0.5 }), input({ trips: t }));
    expect(qty(capped).toFixed(), '18.5% capped at maxPercent 10').toBe('10');
    expect('detail' in capped && capped.detail).toBe('kelly 10.00% of equity');
  });

  it('kelly: no losses yet sizes at the cap', () => {
    const r = rawSize(sizing({ type: 'kelly', fraction: 0.25, maxPercent: 4 }), input({ trips: trips(20, 20, 0, '2000', '0') }));
    expect(qty(r).toFixed(), 'no losses: maxPercent 4 of 10000 at 100').toBe('4');
  });

  it('kelly: no edge (f <= 0) is KELLY_NO_EDGE', () => {
    const s = sizing({ type: 'kelly', fraction: 0.5 });
    // p = 0.4, b = (160/8)/(240/12) = 1: 0.4 - 0.6 = -0.2, half -> -0.1
    expect(reason(rawSize(s, input({ trips: trips(20, 8, 12, '160', '240') }))), 'negative edge').toBe('KELLY_NO_EDGE: trades=20 wins=8 f=-0.1000');
    // p = 0.5, b = 1: exactly zero edge is still no trade
    expect(reason(rawSize(s, input({ trips: trips(20, 10, 10, '100', '100') }))), 'zero edge').toBe('KELLY_NO_EDGE: trades=20 wins=10 f=0.0000');
    expect(reason(rawSize(s, input({ trips: trips(20, 0, 20, '0', '400') }))), 'no wins').toBe('KELLY_NO_EDGE: trades=20 wins=0 f=0.0000');
  });

  it('volatility: equity * targetPercent / 100 / ATR', () => {
    // 10000 * 1% = 100 USDT per ATR of 250 -> 0.4
    const r = rawSize(sizing({ type: 'volatility', targetPercent: 1 }), input({ price: dec(30_000), atr: 250 }));
    expect(qty(r).toFixed(), 'a one-ATR move is 1% of equity').toBe('0.4');
    expect('detail' in r && r.detail).toBe('volatility 1% per ATR 250');
  });

  it('volatility: no ATR (undefined, 0, NaN) is SIZING_NO_ATR naming the period', () => {
    const s = sizing({ type: 'volatility', targetPercent: 1, atrPeriod: 21 });
    for (const atr of [undefined, 0, Number.NaN, -1]) {
      const x = atr === undefined ? input() : input({ atr });
      expect(reason(rawSize(s, x)), `atr=${String(atr)}`).toBe('SIZING_NO_ATR: ATR(21) not warmed up');
    }
  });
});

describe('sizing: sizeOrder rounds down by the instrument', () => {
  it('no sizing in the YAML is percent-equity 1%', () => {
    // 10000 * 1% = 100 USDT; 100 / 40000 = 0.0025 (on the 0.00001 step already)
    const r = sizeOrder(undefined, input({ price: dec(40_000) }), SPOT_BTC, false);
    expect(qty(r).toFixed(), 'default 1% of equity').toBe('0.0025');
    expect('detail' in r && r.detail).toBe('1% of equity 10000.00');
  });

  it('spot BTCUSDT (step 0.00001): truncates, never rounds up', () => {
    // 100 / 30000 = 0.003333... -> 0.00333
    const r = sizeOrder(sizing({ type: 'quote', amount: 100 }), input({ price: dec(30_000) }), SPOT_BTC, false);
    expect(qty(r).toFixed(), '0.00333... truncated to 5 places').toBe('0.00333');
    // 0.0049999 would round half-up to 0.005; truncation keeps 0.00499
    expect(qty(sizeOrder(sizing({ type: 'fixed', quantity: '0.0049999' }), input(), SPOT_BTC, false)).toFixed(), 'just under a step boundary').toBe('0.00499');
  });

  it('spot market orders: MARKET_LOT_SIZE step 0 leaves the lot-rounded quantity as is', () => {
    const s = sizing({ type: 'quote', amount: 100 });
    expect(SPOT_BTC.filters.marketLot.stepSize.toFixed(), 'catalog spot market step').toBe('0');
    expect(qty(sizeOrder(s, input({ price: dec(30_000) }), SPOT_BTC, true)).toFixed(), 'market same as limit').toBe('0.00333');
  });

  it('futures steps 0.1 (ALGOUSDT), 1 (AVAXUSDT), 0.001 (BTCUSDT)', () => {
    expect(qty(sizeOrder(sizing({ type: 'fixed', quantity: '12.39' }), input(), FUT_ALGO, false)).toFixed(), 'ALGO 12.39 -> 12.3, not 12.4').toBe('12.3');
    // 5 / 0.1737 = 28.785...
    expect(qty(sizeOrder(sizing({ type: 'quote', amount: 5 }), input({ price: dec('0.1737') }), FUT_ALGO, true)).toFixed(), 'ALGO 28.785 -> 28.7').toBe('28.7');
    expect(qty(sizeOrder(sizing({ type: 'fixed', quantity: '7.999' }), input(), FUT_AVAX, false)).toFixed(), 'AVAX 7.999 -> 7').toBe('7');
    // risk: 10000 * 0.5% = 50 over distance 3900 = 0.01282... -> 0.012
    const r = sizeOrder(sizing({ type: 'risk', percent: 0.5 }), input({ price: dec(65_000), stopPrice: dec(61_100) }), FUT_BTC, true);
    expect(qty(r).toFixed(), 'BTC 0.01282 -> 0.012').toBe('0.012');
  });

  it('the rounded quantity is always <= the raw one and within one step of it', () => {
    const s = sizing({ type: 'quote', amount: 100 });
    const cases: Array<[Instrument, string]> = [
      [FUT_ALGO, '0.1737'],
      [FUT_ALGO, '0.33333'],
      [FUT_AVAX, '17.3'],
      [FUT_BTC, '64999.9'],
      [SPOT_BTC, '64999.99'],
      [SPOT_BTC, '30000'],
    ];
    for (const [i, price] of cases) {
      const x = input({ price: dec(price) });
      const raw = qty(rawSize(s, x));
      const q = qty(sizeOrder(s, x, i, false));
      expect(q.lte(raw), `price ${price}: ${q.toFixed()} <= ${raw.toFixed()}`).toBe(true);
      expect(raw.minus(q).lt(i.filters.lot.stepSize), `price ${price}: within a step`).toBe(true);
      expect(q.mod(i.filters.lot.stepSize).isZero(), `price ${price}: on the step`).toBe(true);
    }
  });

  it('below minQty: SIZE_BELOW_MIN_QTY with the raw figure, the minimum and the method', () => {
    // 0.1 / 30000 = 0.00000333... < 0.00001
    expect(reason(sizeOrder(sizing({ type: 'quote', amount: '0.1' }), input({ price: dec(30_000) }), SPOT_BTC, false)), 'spot BTC dust').toBe(
      'SIZE_BELOW_MIN_QTY: quantity=0.000003333333 min=0.00001 (quote 0.1)',
    );
    expect(reason(sizeOrder(sizing({ type: 'fixed', quantity: '0.09' }), input(), FUT_ALGO, false)), 'ALGO 0.09 < 0.1').toBe('SIZE_BELOW_MIN_QTY: quantity=0.09 min=0.1 (fixed 0.09)');
    expect(reason(sizeOrder(sizing({ type: 'fixed', quantity: '0.999' }), input(), FUT_AVAX, true)), 'AVAX 0.999 < 1').toBe('SIZE_BELOW_MIN_QTY: quantity=0.999 min=1 (fixed 0.999)');
  });

  it('a sizing reason passes through sizeOrder unchanged', () => {
    expect(reason(sizeOrder(sizing({ type: 'risk', percent: 1 }), input(), FUT_BTC, true)), 'no stop').toMatch(/^SIZING_NO_STOP: /);
  });

  it('market orders are also rounded to a coarser MARKET_LOT_SIZE step', () => {
    // ALGOUSDT with a market-lot step of 1 (catalog futures use the lot step; this variant makes the second rounding visible).
    const coarse: Instrument = { ...FUT_ALGO, filters: { ...FUT_ALGO.filters, marketLot: { minQty: dec(1), maxQty: dec(1_500_000), stepSize: dec(1) } } };
    const s = sizing({ type: 'fixed', quantity: '12.39' });
    expect(qty(sizeOrder(s, input(), coarse, false)).toFixed(), 'limit: lot step 0.1').toBe('12.3');
    expect(qty(sizeOrder(s, input(), coarse, true)).toFixed(), 'market: then market step 1').toBe('12');
    // 0.5 passes the lot filter (>= 0.1) but truncates to 0 on the market step: refused, not sent as 0.
    expect(reason(sizeOrder(sizing({ type: 'fixed', quantity: '0.5' }), input(), coarse, true)), 'market rounding to zero').toBe('SIZE_BELOW_MIN_QTY: quantity=0.5 min=0.1 (fixed 0.5)');
  });
});
