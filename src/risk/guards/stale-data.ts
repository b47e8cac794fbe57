/**
 * Guard 13, stale market data.
 * Rule: entries are denied when the symbol's last market-data update is more
 * than maxAgeMs old (now - lastDataAt > maxAgeMs). Exactly maxAgeMs old allows.
 * Entries only: exits stay allowed on stale data.
 */
import { ALLOW, deny, isExit, symbolOf, type Guard } from '../types.ts';

export interface StaleDataConfig {
  readonly maxAgeMs: number;
}

export function staleData(cfg: StaleDataConfig): Guard {
  return {
    name: 'stale-data',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const age = s.now - symbolOf(s, o.symbol).lastDataAt;
      if (age > cfg.maxAgeMs) return deny('STALE_MARKET_DATA', { symbol: o.symbol, ageMs: age, maxMs: cfg.maxAgeMs });
      return ALLOW;
    },
  };
}
