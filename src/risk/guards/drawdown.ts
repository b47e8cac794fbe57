/**
 * Guard 9, drawdown from peak equity.
 * Rule: dd = (peak - equity) / peak * 100. dd >= haltAtPct: the account goes
 * HALTED and the entry is denied. dd >= reduceAtPct: the account goes
 * REDUCING and the entry is denied. Each threshold triggers at the threshold
 * itself; just below allows. Entries only: the state then decides which
 * exits pass (REDUCING: any reducing order; HALTED: full closes).
 * Escalates the account (no expiry: recovering from a drawdown is a human call).
 */
import type { Dec } from '../../core/decimal.ts';
import { ALLOW, HUNDRED, deny, isExit, type Guard } from '../types.ts';

export interface DrawdownConfig {
  readonly reduceAtPct: Dec;
  readonly haltAtPct: Dec;
}

export function drawdown(cfg: DrawdownConfig): Guard {
  if (cfg.haltAtPct.lt(cfg.reduceAtPct)) throw new RangeError('drawdown: haltAtPct must be >= reduceAtPct');
  return {
    name: 'drawdown',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const { peakEquity: peak, equity } = s.account;
      if (peak.lte(0) || equity.gte(peak)) return ALLOW;
      const dd = peak.minus(equity).div(peak).times(HUNDRED);
      if (dd.gte(cfg.haltAtPct)) {
        return deny('DRAWDOWN_HALT', { drawdown: dd, limit: cfg.haltAtPct }, { scope: 'account', to: 'HALTED' });
      }
      if (dd.gte(cfg.reduceAtPct)) {
        return deny('DRAWDOWN_REDUCE', { drawdown: dd, limit: cfg.reduceAtPct }, { scope: 'account', to: 'REDUCING' });
      }
      return ALLOW;
    },
  };
}
