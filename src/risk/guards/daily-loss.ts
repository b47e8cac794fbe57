/**
 * Guard 2, account daily max loss.
 * Rule: loss = -(realized today + unrealized), UTC day. When the loss reaches
 * the limit (loss >= maxLoss, or loss >= maxLossPercent % of the day-start
 * equity) the account is HALTED until 00:00 UTC of the next day. At the limit
 * denies: the limit is the loss that stops trading.
 * Entries only: the verdict escalates the account to HALTED until the next
 * UTC day, and the HALTED state (not this guard) decides which exits may
 * still pass (full closes: see trading-state.ts). The risk engine also runs
 * this guard on every equity change, so the halt lands when the loss does,
 * not at the next entry.
 */
import { utcDayStart } from '../../core/clock.ts';
import { ZERO, type Dec } from '../../core/decimal.ts';
import { ALLOW, HUNDRED, deny, isExit, type Guard } from '../types.ts';

const DAY_MS = 86_400_000;

export interface DailyLossConfig {
  readonly maxLoss?: Dec;
  readonly maxLossPercent?: Dec;
}

export function dailyLoss(cfg: DailyLossConfig): Guard {
  return {
    name: 'daily-loss',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const a = s.account;
      const loss = a.realizedToday.plus(a.unrealized).neg();
      if (loss.lte(ZERO)) return ALLOW;
      const until = utcDayStart(s.now) + DAY_MS;
      const escalate = { scope: 'account', to: 'HALTED', until } as const;
      if (cfg.maxLoss && loss.gte(cfg.maxLoss)) {
        return deny('DAILY_LOSS_LIMIT', { loss, limit: cfg.maxLoss }, escalate);
      }
      if (cfg.maxLossPercent && a.dayStartEquity.gt(0)) {
        const pct = loss.div(a.dayStartEquity).times(HUNDRED);
        if (pct.gte(cfg.maxLossPercent)) {
          return deny('DAILY_LOSS_PCT_LIMIT', { pct, limit: cfg.maxLossPercent, loss }, escalate);
        }
      }
      return ALLOW;
    },
  };
}
