/**
 * rsi: Wilder RSI mean reversion.
 *
 * Rule, on each closed candle, with RSI = Wilder RSI(period) of the closes:
 *  - enterLong  when RSI < oversold and flat;
 *  - exitLong   when long and RSI > overbought;
 *  - allowShort (futures only): enterShort when RSI > overbought and flat,
 *    exitShort when short and RSI < oversold.
 * Exits are decided first; a candle that exits may also enter the other way
 * (long with RSI > overbought and allowShort: exitLong, then enterShort).
 *
 * Warm-up: period + 1 candles (the first RSI needs `period` close-to-close changes).
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';

const params = z
  .strictObject({
    period: z.number().int().min(2).max(1000).default(14).describe('RSI period in candles (Wilder smoothing)'),
    oversold: z.number().gt(0).lt(100).default(30).describe('RSI below this is oversold: enter long (and cover a short)'),
    overbought: z.number().gt(0).lt(100).default(70).describe('RSI above this is overbought: exit long (and enter a short)'),
    allowShort: z.boolean().default(false).describe('also trade shorts (futures only): short when overbought, cover when oversold'),
  })
  .refine((p) => p.oversold < p.overbought, { message: 'oversold must be below overbought', path: ['oversold'] });

export default defineStrategy({
  name: 'rsi',
  description: 'Wilder RSI mean reversion: long below oversold, out above overbought (optionally short the other way).',
  params,
  defaultTimeframe: '15m',
  warmup: (p) => p.period + 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({ rsi: ctx.indicators.rsi(p.period) });
    let s = fresh();
    return {
      onCandle(c) {
        const rsi = s.rsi.update(c.close);
        if (rsi === undefined) return;
        const shown = () => rsi.toFixed(1);
        let side = ctx.position().side;
        if (side === 'long' && rsi > p.overbought) {
          ctx.exitLong({ reason: `RSI ${shown()} > overbought ${p.overbought}` });
          side = 'flat';
        } else if (side === 'short' && rsi < p.oversold) {
          ctx.exitShort({ reason: `RSI ${shown()} < oversold ${p.oversold}` });
          side = 'flat';
        }
        if (side !== 'flat') return;
        if (rsi < p.oversold) ctx.enterLong({ reason: `RSI ${shown()} < oversold ${p.oversold}` });
        else if (p.allowShort && rsi > p.overbought) ctx.enterShort({ reason: `RSI ${shown()} > overbought ${p.overbought}` });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
