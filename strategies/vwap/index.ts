/**
 * vwap: reversion to the session VWAP (sessions are UTC days, reset at 00:00 UTC).
 *
 * Rule, on each closed candle, with VWAP = the session's volume-weighted
 * typical price so far (this candle included) and
 * deviation = (close - VWAP) / VWAP * 100:
 *  - enterLong  when flat and deviation < -deviationPct (close more than
 *    deviationPct % below VWAP);
 *  - exitLong   when long and close >= VWAP;
 *  - allowShort (futures only): enterShort when flat and deviation >
 *    deviationPct; exitShort when short and close <= VWAP.
 * Exits are decided first; a candle that exits may also enter the other way.
 *
 * Entries are taken only in a session seen from its start (its first candle
 * opened at 00:00 UTC, or the previous candle seen was on the previous day):
 * after a mid-day start the VWAP would cover only part of the day and differ
 * from the one a backtest computes, so the strategy waits for the next
 * session. Exits use whatever VWAP it has.
 *
 * Warm-up: 1 candle (the VWAP exists from the first candle of a session).
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';

const DAY_MS = 86_400_000;

const params = z.strictObject({
  deviationPct: z.number().gt(0).max(50).default(1).describe('enter when the close is more than this % away from VWAP'),
  allowShort: z.boolean().default(false).describe('also trade shorts (futures only) when the close is far above VWAP'),
});

export default defineStrategy({
  name: 'vwap',
  description: 'Session VWAP reversion: long when the close is deviationPct % below VWAP, out back at VWAP (optionally short).',
  params,
  defaultTimeframe: '5m',
  warmup: () => 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({ vwap: ctx.indicators.vwap(), day: undefined as number | undefined, fromStart: false });
    let s = fresh();
    return {
      onCandle(c) {
        const day = Math.floor(c.openTime / DAY_MS);
        if (day !== s.day) {
          s.fromStart = c.openTime % DAY_MS === 0 || s.day === day - 1;
          s.day = day;
        }
        const vwap = s.vwap.update(c);
        if (vwap === undefined) return;
        const deviation = ((c.close - vwap) / vwap) * 100;
        const shown = () => `close ${c.close} is ${deviation.toFixed(2)}% from VWAP ${vwap.toPrecision(6)}`;
        let side = ctx.position().side;
        if (side === 'long' && c.close >= vwap) {
          ctx.exitLong({ reason: `back at VWAP: ${shown()}` });
          side = 'flat';
        } else if (side === 'short' && c.close <= vwap) {
          ctx.exitShort({ reason: `back at VWAP: ${shown()}` });
          side = 'flat';
        }
        if (side !== 'flat' || !s.fromStart) return;
        if (deviation < -p.deviationPct) ctx.enterLong({ reason: `below VWAP by more than ${p.deviationPct}%: ${shown()}` });
        else if (p.allowShort && deviation > p.deviationPct) ctx.enterShort({ reason: `above VWAP by more than ${p.deviationPct}%: ${shown()}` });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
