/**
 * Guard 6, per-strategy daily loss limit.
 * Rule: the strategy's realized loss today, summed over all its symbols,
 * reaching maxLoss (loss >= maxLoss) denies that strategy's entries. At the
 * limit denies; just below allows.
 * Entries only: the strategy may still close what it holds.
 */
import { ZERO, type Dec } from '../../core/decimal.ts';
import { ALLOW, deny, isExit, type Guard } from '../types.ts';

export interface StrategyDailyLossConfig {
  readonly maxLoss: Dec;
}

export function strategyDailyLoss(cfg: StrategyDailyLossConfig): Guard {
  return {
    name: 'strategy-daily-loss',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const realized = s.strategies
        .filter((r) => r.strategy === o.strategy)
        .reduce((acc, r) => acc.plus(r.realizedToday), ZERO);
      const loss = realized.neg();
      if (loss.gt(ZERO) && loss.gte(cfg.maxLoss)) {
        return deny('STRATEGY_DAILY_LOSS_LIMIT', { strategy: o.strategy, loss, limit: cfg.maxLoss });
      }
      return ALLOW;
    },
  };
}
