/**
 * Guard 10, consecutive losses.
 * Rule: when a strategy has maxLosses or more losing trades in a row on a
 * symbol, its entries on that symbol are denied until lastLossAt + cooldownMs.
 * maxLosses - 1 losses allow; maxLosses deny; at exactly the cooldown's end
 * entries are allowed again.
 * Entries only.
 */
import { ALLOW, deny, isExit, type Guard } from '../types.ts';

export interface ConsecutiveLossesConfig {
  readonly maxLosses: number;
  readonly cooldownMs: number;
}

export function consecutiveLosses(cfg: ConsecutiveLossesConfig): Guard {
  return {
    name: 'consecutive-losses',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const r = s.strategies.find((x) => x.strategy === o.strategy && x.symbol === o.symbol);
      if (!r || r.consecutiveLosses < cfg.maxLosses || r.lastLossAt === undefined) return ALLOW;
      const until = r.lastLossAt + cfg.cooldownMs;
      if (s.now >= until) return ALLOW;
      return deny('CONSECUTIVE_LOSSES', {
        strategy: o.strategy,
        symbol: o.symbol,
        losses: r.consecutiveLosses,
        max: cfg.maxLosses,
        until: new Date(until).toISOString(),
      });
    },
  };
}
