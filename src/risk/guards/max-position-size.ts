/**
 * Guard 1, max position size per symbol.
 * Rule: the position after the order, |position + signed qty|, must not exceed
 * maxQuantity, and its notional (valued at the order's limit price, else the
 * mark price) must not exceed maxPercentOfEquity % of equity. At the limit is
 * allowed (the limit is the largest position permitted); beyond it denies.
 * Entries only: exits and reduce-only orders always pass (they shrink the position).
 */
import type { Dec } from '../../core/decimal.ts';
import { ALLOW, HUNDRED, deny, isExit, orderPrice, projectedAbsQty, symbolOf, type Guard } from '../types.ts';

export interface MaxPositionSizeConfig {
  readonly maxQuantity?: Dec;
  readonly maxPercentOfEquity?: Dec;
}

export function maxPositionSize(cfg: MaxPositionSizeConfig): Guard {
  return {
    name: 'max-position-size',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const sym = symbolOf(s, o.symbol);
      const qty = projectedAbsQty(o, sym);
      if (cfg.maxQuantity && qty.gt(cfg.maxQuantity)) {
        return deny('POSITION_SIZE_LIMIT', { qty: qty.toFixed(), max: cfg.maxQuantity.toFixed() });
      }
      if (cfg.maxPercentOfEquity) {
        const notional = qty.times(orderPrice(o, sym));
        if (s.account.equity.lte(0)) return deny('POSITION_SIZE_PCT_LIMIT', { notional, equity: s.account.equity });
        const pct = notional.div(s.account.equity).times(HUNDRED);
        if (pct.gt(cfg.maxPercentOfEquity)) {
          return deny('POSITION_SIZE_PCT_LIMIT', { pct, max: cfg.maxPercentOfEquity, notional });
        }
      }
      return ALLOW;
    },
  };
}
