/**
 * Guard 3, duplicate order prevention.
 * Rule: no second entry for the same symbol and side while one is open or in
 * flight (openEntries[side] >= 1 denies; 0 allows).
 * Entries only: exits and reduce-only orders always pass.
 */
import { ALLOW, deny, isExit, symbolOf, type Guard } from '../types.ts';

export function duplicateOrder(): Guard {
  return {
    name: 'duplicate-order',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const open = symbolOf(s, o.symbol).openEntries[o.side];
      if (open >= 1) return deny('DUPLICATE_ENTRY', { symbol: o.symbol, side: o.side, open });
      return ALLOW;
    },
  };
}
