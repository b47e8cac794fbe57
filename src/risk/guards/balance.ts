/**
 * Guard 4, available balance or margin covers the order, fees included.
 * Rule: cost = notional / leverage + notional * feeRate, with notional =
 * quantity * (limit price, else mark price); leverage is 1 on spot. Cost
 * equal to the available balance is allowed; above it denies.
 * Entries only: a spot exit spends base asset, a futures reduce-only order
 * frees margin, so neither needs quote balance.
 */
import { dec, type Dec } from '../../core/decimal.ts';
import { ALLOW, deny, isExit, orderPrice, symbolOf, type Guard } from '../types.ts';

export interface BalanceConfig {
  /** Futures leverage; spot always uses 1. */
  readonly leverage?: Dec;
}

export function balance(cfg: BalanceConfig = {}): Guard {
  const one = dec(1);
  return {
    name: 'balance',
    check(o, s) {
      if (isExit(o)) return ALLOW;
      const sym = symbolOf(s, o.symbol);
      const notional = o.quantity.times(orderPrice(o, sym));
      const leverage = o.market === 'futures' ? (cfg.leverage ?? one) : one;
      const fee = notional.times(s.account.feeRate);
      const required = notional.div(leverage).plus(fee);
      if (required.gt(s.account.availableBalance)) {
        return deny('INSUFFICIENT_BALANCE', { required, available: s.account.availableBalance, fee });
      }
      return ALLOW;
    },
  };
}
