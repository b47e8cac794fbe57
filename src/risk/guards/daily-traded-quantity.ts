/**
 * Guard 8, daily max traded quantity per symbol (UTC day).
 * Rule: quantity traded today + this order's quantity must not exceed
 * maxQuantity (per-symbol override, else the default). At the limit allows;
 * above denies.
 * Entries only: exits are counted by the engine but never blocked, so a
 * position can always be closed.
 */
import type { Dec } from '../../core/decimal.ts';
import { ALLOW, deny, isExit, symbolOf, type Guard } from '../types.ts';

export interface DailyTradedQuantityConfig {
  readonly maxQuantity?: Dec;
  readonly perSymbol?: Readonly<Record<string, Dec>>;
}

export function dailyTradedQuantity(cfg: DailyTradedQuantityConfig): Guard {
  return {
    name: 'daily-traded-quantity',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const max = cfg.perSymbol?.[o.symbol] ?? cfg.maxQuantity;
      if (!max) return ALLOW;
      const total = symbolOf(s, o.symbol).tradedQtyToday.plus(o.quantity);
      if (total.gt(max)) {
        return deny('DAILY_QUANTITY_LIMIT', { symbol: o.symbol, qty: total.toFixed(), max: max.toFixed() });
      }
      return ALLOW;
    },
  };
}
