/**
 * Guard 5, price protection.
 * Rules, each allowed at the limit and denied beyond it:
 * - a limit price more than maxDeviationBps from the mark price denies, for
 *   every order (a fat-fingered exit price is as harmful as an entry's);
 * - the last price more than maxDeviationBps from the mark price denies entries;
 * - an abnormal previous candle, range (high - low) / low * 100 above
 *   maxCandleRangePct, denies entries.
 * Exits pass the last-price and candle rules: they must stay possible in a crash.
 */
import { dec, type Dec } from '../../core/decimal.ts';
import { ALLOW, BPS, HUNDRED, deny, isExit, symbolOf, type Guard } from '../types.ts';

export interface PriceProtectionConfig {
  readonly maxDeviationBps: Dec;
  readonly maxCandleRangePct?: Dec;
}

export function priceProtection(cfg: PriceProtectionConfig): Guard {
  return {
    name: 'price-protection',
    check(o, s) {
      const sym = symbolOf(s, o.symbol);
      const mark = sym.markPrice;
      const bps = (p: Dec): Dec => p.minus(mark).abs().div(mark).times(BPS);
      if (o.price) {
        const dev = bps(o.price);
        if (dev.gt(cfg.maxDeviationBps)) {
          return deny('PRICE_DEVIATION', { price: o.price, mark, bps: dev, max: cfg.maxDeviationBps });
        }
      }
      if (isExit(o)) return ALLOW;
      const lastDev = bps(sym.lastPrice);
      if (lastDev.gt(cfg.maxDeviationBps)) {
        return deny('LAST_PRICE_DEVIATION', { last: sym.lastPrice, mark, bps: lastDev, max: cfg.maxDeviationBps });
      }
      const c = sym.prevCandle;
      if (cfg.maxCandleRangePct && c && c.low > 0) {
        const range = dec(c.high).minus(c.low).div(c.low).times(HUNDRED);
        if (range.gt(cfg.maxCandleRangePct)) {
          return deny('ABNORMAL_CANDLE', { rangePct: range, max: cfg.maxCandleRangePct });
        }
      }
      return ALLOW;
    },
  };
}
