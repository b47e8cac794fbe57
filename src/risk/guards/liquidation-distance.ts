/**
 * Guard 14, liquidation distance (futures).
 * Rule: distance = |mark - liquidation| / mark * 100, from the projected
 * liquidation price the snapshot carries. distance <= reduceWithinPct: deny
 * the entry and escalate the symbol to REDUCING. distance <= denyEntryWithinPct:
 * deny the entry. At a threshold denies; just beyond it allows.
 * Futures entries only: exits move the liquidation price away and always pass.
 */
import type { Dec } from '../../core/decimal.ts';
import { ALLOW, HUNDRED, deny, isExit, symbolOf, type Guard } from '../types.ts';

export interface LiquidationDistanceConfig {
  readonly denyEntryWithinPct: Dec;
  readonly reduceWithinPct: Dec;
}

export function liquidationDistance(cfg: LiquidationDistanceConfig): Guard {
  if (cfg.reduceWithinPct.gt(cfg.denyEntryWithinPct)) {
    throw new RangeError('liquidation-distance: reduceWithinPct must be <= denyEntryWithinPct');
  }
  return {
    name: 'liquidation-distance',
    check(o, s) {
      if (o.market !== 'futures' || isExit(o)) return ALLOW;
      const sym = symbolOf(s, o.symbol);
      const liq = sym.liquidationPrice;
      if (!liq || liq.lte(0) || sym.markPrice.lte(0)) return ALLOW;
      const dist = sym.markPrice.minus(liq).abs().div(sym.markPrice).times(HUNDRED);
      if (dist.lte(cfg.reduceWithinPct)) {
        return deny(
          'LIQUIDATION_REDUCE',
          { symbol: o.symbol, distancePct: dist, limit: cfg.reduceWithinPct },
          { scope: 'symbol', to: 'REDUCING' },
        );
      }
      if (dist.lte(cfg.denyEntryWithinPct)) {
        return deny('LIQUIDATION_DISTANCE', { symbol: o.symbol, distancePct: dist, limit: cfg.denyEntryWithinPct });
      }
      return ALLOW;
    },
  };
}
