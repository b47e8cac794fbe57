/**
 * How orders fill: one model for the local exchange, MODE=sim and the
 * backtester, so there is one answer to "what price would I have got".
 */
import { Dec } from '../../core/decimal.ts';
import type { Market } from '../../model/market.ts';
import type { Side } from './types.ts';

export interface FeeRates {
  readonly maker: Dec;
  readonly taker: Dec;
}

export interface FillModelConfig {
  /**
   * Market-order slippage against the current price:
   *  - fixed: always `bps`;
   *  - volume: `bps` plus `impactBps` for an order as large as the step's
   *    whole volume, scaled linearly by the order's share of it.
   */
  readonly slippage: { readonly kind: 'fixed'; readonly bps: Dec } | { readonly kind: 'volume'; readonly bps: Dec; readonly impactBps: Dec };
  /**
   * Largest share of a step's volume one order may fill in that step (0..1].
   * Below 1, large orders fill partially over several steps.
   */
  readonly maxParticipation: Dec;
  /** Binance regular-tier defaults: spot 0.1% / 0.1%, USD-M 0.02% / 0.05%. */
  readonly fees: Readonly<Record<Market, FeeRates>>;
}

export function defaultFillModel(): FillModelConfig {
  return {
    slippage: { kind: 'fixed', bps: new Dec(0) },
    maxParticipation: new Dec(1),
    fees: {
      spot: { maker: new Dec('0.001'), taker: new Dec('0.001') },
      futures: { maker: new Dec('0.0002'), taker: new Dec('0.0005') },
    },
  };
}

const BPS = new Dec(10_000);

/** Price a market order of qty fills at, rounded to the tick against the taker. */
export function marketFillPrice(cfg: FillModelConfig, side: Side, price: Dec, qty: Dec, stepVolume: Dec | undefined, tick: Dec): Dec {
  let bps = cfg.slippage.bps;
  if (cfg.slippage.kind === 'volume' && stepVolume !== undefined && stepVolume.gt(0)) {
    bps = bps.plus(cfg.slippage.impactBps.times(Dec.min(qty.div(stepVolume), 1)));
  }
  const factor = side === 'BUY' ? BPS.plus(bps).div(BPS) : BPS.minus(bps).div(BPS);
  const raw = price.times(factor);
  if (tick.isZero()) return raw;
  const steps = raw.div(tick);
  return (side === 'BUY' ? steps.ceil() : steps.floor()).times(tick);
}

/** How much of `remaining` may fill in a step with this volume. */
export function fillableQty(cfg: FillModelConfig, remaining: Dec, stepVolume: Dec | undefined, step: Dec): Dec {
  if (stepVolume === undefined || cfg.maxParticipation.gte(1)) return remaining;
  const cap = stepVolume.times(cfg.maxParticipation);
  const capped = step.isZero() ? cap : cap.div(step).floor().times(step);
  return Dec.min(remaining, capped);
}

/** Commission for a fill, rounded to 8 decimals as Binance reports it. */
export function commission(notionalOrQty: Dec, rate: Dec): Dec {
  return notionalOrQty.times(rate).toDecimalPlaces(8, Dec.ROUND_HALF_UP);
}
