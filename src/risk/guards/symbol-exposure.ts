/**
 * Guard 7, per-symbol max exposure (notional).
 * Rule: |position after the order| * (limit price, else mark price) must not
 * exceed maxNotional. At the limit allows; above denies.
 * Entries only.
 */
import type { Dec } from '../../core/decimal.ts';
import { ALLOW, deny, isExit, orderPrice, projectedAbsQty, symbolOf, type Guard } from '../types.ts';

export interface SymbolExposureConfig {
  readonly maxNotional: Dec;
}

export function symbolExposure(cfg: SymbolExposureConfig): Guard {
  return {
    name: 'symbol-exposure',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const sym = symbolOf(s, o.symbol);
      const exposure = projectedAbsQty(o, sym).times(orderPrice(o, sym));
      if (exposure.gt(cfg.maxNotional)) {
        return deny('SYMBOL_EXPOSURE_LIMIT', { symbol: o.symbol, exposure, max: cfg.maxNotional });
      }
      return ALLOW;
    },
  };
}
