/**
 * Binance USD-M trailing stops (TRAILING_STOP_MARKET): the one place that
 * knows which callback rates Binance accepts. The execution engine checks a
 * rate before sending; the matching engine (local exchange, sim venue)
 * refuses the same rates with Binance's answer, -2007 "Invalid callBack rate.".
 *
 * Source: USDⓈ-M Futures "New Algo Order (TRADE)" (POST /fapi/v1/algoOrder,
 * where conditional orders live since December 2025): callbackRate "Used
 * with TRAILING_STOP_MARKET orders, min 0.1, max 5 where 1 for 1%" (the
 * page said max 10 until December 2025, when the algo endpoint arrived; the
 * latest revision no longer repeats the range). The rate is a percent with
 * one decimal: the page gives no step, but Binance refuses finer rates
 * (0.68) with the same -2007, so 0.1 is the step.
 */
import { Dec } from '../../core/decimal.ts';

export const CALLBACK_RATE = { min: new Dec('0.1'), max: new Dec('5'), step: new Dec('0.1') } as const;

/**
 * Why Binance would refuse this callbackRate (percent, 1 = 1 %), as a
 * reason code with the figures, or undefined when it is accepted:
 *   CALLBACK_RATE_OUT_OF_RANGE: callbackRate=12 min=0.1 max=5
 *   CALLBACK_RATE_NOT_ON_STEP: callbackRate=0.15 step=0.1
 */
export function checkCallbackRate(rate: Dec): string | undefined {
  const { min, max, step } = CALLBACK_RATE;
  if (!rate.isFinite() || rate.lt(min) || rate.gt(max)) return `CALLBACK_RATE_OUT_OF_RANGE: callbackRate=${rate.toFixed()} min=${min.toFixed()} max=${max.toFixed()}`;
  if (!rate.mod(step).isZero()) return `CALLBACK_RATE_NOT_ON_STEP: callbackRate=${rate.toFixed()} step=${step.toFixed()}`;
  return undefined;
}
