/**
 * Position sizing for signals that carry no quantity. Pure: the planner
 * passes the price, equity, stop and the strategy's own trip record; the
 * result is rounded down by the exchange filters before any guard sees it.
 *
 * Methods (strategy YAML `sizing.type`):
 *  - fixed:          quantity
 *  - quote:          amount / price
 *  - percent-equity: equity * percent / 100 / price
 *  - risk:           equity * percent / 100 / |price - stop|   (needs a stop)
 *  - kelly:          f = p - (1 - p) / b, with p the strategy's win rate on
 *                    the symbol and b its average win / average loss;
 *                    equity * min(fraction * f, maxPercent / 100) / price.
 *                    Below minTrades closed trips: fallbackPercent of equity
 *                    (fixed fraction). No edge (f <= 0): no trade.
 *  - volatility:     equity * targetPercent / 100 / ATR: a one-ATR move is
 *                    targetPercent of equity.
 * No sizing in the YAML: percent-equity 1 %.
 */
import { Dec, ZERO } from '../core/decimal.ts';
import { roundQuantity } from '../model/filters.ts';
import type { Instrument } from '../model/instrument.ts';
import type { StrategyConfig } from '../settings/strategy-config.ts';

export type Sizing = NonNullable<StrategyConfig['sizing']>;

export const DEFAULT_SIZING: Sizing = { type: 'percent-equity', percent: 1 };

export interface SizingInput {
  readonly price: Dec;
  readonly equity: Dec;
  readonly stopPrice?: Dec;
  readonly trips: { readonly trades: number; readonly wins: number; readonly losses: number; readonly grossWin: Dec; readonly grossLoss: Dec };
  /** ATR in price units (statistics: a plain number). */
  readonly atr?: number;
}

export type SizingResult = { readonly quantity: Dec; readonly detail: string } | { readonly reason: string };

const HUNDRED = new Dec(100);

/** The raw (unrounded) quantity a sizing method asks for. */
export function rawSize(s: Sizing, x: SizingInput): SizingResult {
  if (x.price.lte(0)) return { reason: `SIZING_NO_PRICE: price=${x.price.toFixed()}` };
  switch (s.type) {
    case 'fixed':
      return { quantity: s.quantity, detail: `fixed ${s.quantity.toFixed()}` };
    case 'quote':
      return { quantity: s.amount.div(x.price), detail: `quote ${s.amount.toFixed()}` };
    case 'percent-equity':
      return { quantity: x.equity.times(s.percent).div(HUNDRED).div(x.price), detail: `${s.percent}% of equity ${x.equity.toFixed(2)}` };
    case 'risk': {
      if (!x.stopPrice) return { reason: 'SIZING_NO_STOP: risk sizing needs a stop (signal stopLoss or risk.stopLossPct)' };
      const dist = x.price.minus(x.stopPrice).abs();
      if (dist.isZero()) return { reason: `SIZING_ZERO_STOP_DISTANCE: price=${x.price.toFixed()} stop=${x.stopPrice.toFixed()}` };
      return { quantity: x.equity.times(s.percent).div(HUNDRED).div(dist), detail: `risk ${s.percent}% over stop distance ${dist.toFixed()}` };
    }
    case 'kelly': {
      const t = x.trips;
      if (t.trades < s.minTrades) {
        return { quantity: x.equity.times(s.fallbackPercent).div(HUNDRED).div(x.price), detail: `kelly fallback ${s.fallbackPercent}% (${t.trades}/${s.minTrades} trades)` };
      }
      const cap = new Dec(s.maxPercent).div(HUNDRED);
      let f: Dec;
      if (t.losses === 0) f = cap;
      else if (t.wins === 0) f = ZERO;
      else {
        const p = new Dec(t.wins).div(t.trades);
        const b = t.grossWin.div(t.wins).div(t.grossLoss.div(t.losses));
        f = p.minus(new Dec(1).minus(p).div(b)).times(s.fraction);
      }
      if (f.lte(0)) return { reason: `KELLY_NO_EDGE: trades=${t.trades} wins=${t.wins} f=${f.toFixed(4)}` };
      const used = Dec.min(f, cap);
      return { quantity: x.equity.times(used).div(x.price), detail: `kelly ${used.times(HUNDRED).toFixed(2)}% of equity` };
    }
    case 'volatility': {
      if (x.atr === undefined || !(x.atr > 0)) return { reason: `SIZING_NO_ATR: ATR(${s.atrPeriod}) not warmed up` };
      return { quantity: x.equity.times(s.targetPercent).div(HUNDRED).div(new Dec(x.atr)), detail: `volatility ${s.targetPercent}% per ATR ${x.atr}` };
    }
  }
}

/** Sizes and rounds down to the instrument's step (and the market-lot step for market orders). */
export function sizeOrder(s: Sizing | undefined, x: SizingInput, inst: Instrument, isMarket: boolean): SizingResult {
  const r = rawSize(s ?? DEFAULT_SIZING, x);
  if ('reason' in r) return r;
  let q = roundQuantity(r.quantity, inst.filters.lot);
  if (isMarket) q = roundQuantity(q, inst.filters.marketLot);
  if (q.lt(inst.filters.lot.minQty) || q.lte(0)) {
    return { reason: `SIZE_BELOW_MIN_QTY: quantity=${r.quantity.toDecimalPlaces(12).toFixed()} min=${inst.filters.lot.minQty.toFixed()} (${r.detail})` };
  }
  return { quantity: q, detail: r.detail };
}
