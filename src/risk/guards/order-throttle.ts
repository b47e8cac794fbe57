/**
 * Guard 12, order rate throttle, per symbol and global.
 * Rule: the snapshot counts orders already sent (per symbol over the engine's
 * window, globally over the last second). This order is allowed while the
 * count is below the limit (count < max, so after it count <= max); at the
 * limit denies.
 * Applies to every order, exits included: exchange rate-limit bans hurt exits
 * most, and a runaway loop is a loop whatever the order's side.
 */
import { ALLOW, deny, symbolOf, type Guard } from '../types.ts';

export interface OrderThrottleConfig {
  readonly maxPerSymbol: number;
  readonly maxGlobalPerSecond: number;
}

export function orderThrottle(cfg: OrderThrottleConfig): Guard {
  return {
    name: 'order-throttle',
    check(o, s) {
      if (s.globalOrdersLastSecond >= cfg.maxGlobalPerSecond) {
        return deny('ORDER_RATE_GLOBAL', { count: s.globalOrdersLastSecond, max: cfg.maxGlobalPerSecond });
      }
      const count = symbolOf(s, o.symbol).recentOrders;
      if (count >= cfg.maxPerSymbol) return deny('ORDER_RATE_SYMBOL', { symbol: o.symbol, count, max: cfg.maxPerSymbol });
      return ALLOW;
    },
  };
}
