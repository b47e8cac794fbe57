/**
 * Guard 15, portfolio Value-at-Risk (historical).
 * Rule: q(c) is the historical return quantile: the returns sorted ascending,
 * element ceil((1 - c) * n) - 1 (with 100 returns: the 5th worst at 95 %, the
 * worst at 99 %). VaR(c) = max(0, -q(c)) * gross exposure after the order,
 * gross exposure = sum over symbols of |position| * mark, plus the order's
 * notional. VaR equal to the limit allows; above denies. Limits in quote,
 * or in percent of equity.
 * Fewer than minSamples returns: the guard cannot judge and allows.
 * Entries only.
 */
import { ZERO, dec, type Dec } from '../../core/decimal.ts';
import { ALLOW, HUNDRED, deny, isExit, orderPrice, symbolOf, type Guard, type RiskSnapshot } from '../types.ts';

export interface VarLimit {
  readonly confidence: 0.95 | 0.99;
  readonly maxLoss?: Dec;
  readonly maxPercentOfEquity?: Dec;
}

export interface PortfolioVarConfig {
  readonly limits: readonly VarLimit[];
  readonly minSamples?: number;
}

/** The historical return quantile at confidence c (see the rule above). */
export function historicalQuantile(returns: readonly number[], confidence: number): number {
  if (returns.length === 0) throw new RangeError('no returns');
  const sorted = [...returns].sort((a, b) => a - b);
  const k = Math.max(0, Math.ceil((1 - confidence) * sorted.length - 1e-9) - 1);
  return sorted[k] as number;
}

function grossExposure(s: RiskSnapshot): Dec {
  let g = ZERO;
  for (const sym of s.symbols.values()) g = g.plus(sym.position.abs().times(sym.markPrice));
  return g;
}

export function portfolioVar(cfg: PortfolioVarConfig): Guard {
  const minSamples = cfg.minSamples ?? 30;
  return {
    name: 'portfolio-var',
    check(o, s) {
      if (isExit(o) || s.portfolioReturns.length < minSamples) return ALLOW;
      const sym = symbolOf(s, o.symbol);
      const exposure = grossExposure(s).plus(o.quantity.times(orderPrice(o, sym)));
      for (const lim of cfg.limits) {
        const q = historicalQuantile(s.portfolioReturns, lim.confidence);
        const v = dec(Math.max(0, -q)).times(exposure);
        const pct = Math.round(lim.confidence * 100);
        const code = `VAR_LIMIT_${pct}`;
        if (lim.maxLoss && v.gt(lim.maxLoss)) return deny(code, { var: v, limit: lim.maxLoss, exposure });
        if (lim.maxPercentOfEquity) {
          const limit = s.account.equity.times(lim.maxPercentOfEquity).div(HUNDRED);
          if (v.gt(limit)) return deny(code, { var: v, limit, exposure });
        }
      }
      return ALLOW;
    },
  };
}
