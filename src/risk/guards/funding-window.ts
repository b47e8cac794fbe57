/**
 * Guard 11, funding window (futures).
 * Rule: no new entries when the next funding time is windowMinutes or less
 * away (0 <= next - now <= window). Exactly windowMinutes away denies; one
 * millisecond more allows.
 * Futures entries only: spot orders and exits pass.
 */
import { ALLOW, deny, isExit, symbolOf, type Guard } from '../types.ts';

export interface FundingWindowConfig {
  readonly windowMinutes: number;
}

export function fundingWindow(cfg: FundingWindowConfig): Guard {
  const windowMs = cfg.windowMinutes * 60_000;
  return {
    name: 'funding-window',
    check(o, s) {
      if (o.market !== 'futures' || isExit(o)) return ALLOW;
      const next = symbolOf(s, o.symbol).nextFundingTime;
      if (next === undefined) return ALLOW;
      const away = next - s.now;
      if (away >= 0 && away <= windowMs) {
        return deny('FUNDING_WINDOW', { symbol: o.symbol, minutes: (away / 60_000).toFixed(2), window: cfg.windowMinutes });
      }
      return ALLOW;
    },
  };
}
