/**
 * macd: MACD signal-line crossover, confirmed by the histogram's sign change.
 *
 * Rule, on each closed candle, with MACD(fast, slow, signal) of the closes and
 * histogram = MACD line - signal line:
 *  - bullish change: previous histogram <= 0 and this one > 0
 *    -> exitShort when short; enterLong when flat;
 *  - bearish change: previous histogram >= 0 and this one < 0
 *    -> exitLong when long; enterShort when flat and allowShort.
 * Exits are decided first, so a change can close a position and open the
 * opposite one on the same candle (with allowShort).
 *
 * Warm-up: slow + signal candles (the first histogram comes with candle
 * slow + signal - 1; a sign change needs the one before it).
 */
import { z } from 'zod';
import { defineStrategy, turnTo } from '../../src/strategy/api.ts';

const params = z
  .strictObject({
    fast: z.number().int().min(2).max(1000).default(12).describe('fast EMA period (candles)'),
    slow: z.number().int().min(2).max(1000).default(26).describe('slow EMA period (candles), above fast'),
    signal: z.number().int().min(2).max(1000).default(9).describe('signal-line EMA period (candles)'),
    allowShort: z.boolean().default(false).describe('also trade shorts (futures only) on the bearish change'),
  })
  .refine((p) => p.fast < p.slow, { message: 'fast must be below slow', path: ['fast'] });

export default defineStrategy({
  name: 'macd',
  description: 'MACD crossover: long when the histogram turns positive, out when it turns negative (optionally short).',
  params,
  defaultTimeframe: '1h',
  warmup: (p) => p.slow + p.signal,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({ macd: ctx.indicators.macd(p.fast, p.slow, p.signal), prevHist: undefined as number | undefined });
    let s = fresh();
    return {
      onCandle(c) {
        const m = s.macd.update(c.close);
        if (m === undefined) return;
        const prev = s.prevHist;
        s.prevHist = m.histogram;
        if (prev === undefined) return;
        const bullish = prev <= 0 && m.histogram > 0;
        const bearish = prev >= 0 && m.histogram < 0;
        if (!bullish && !bearish) return;
        const why = `MACD histogram ${bullish ? 'turned positive' : 'turned negative'} (${m.histogram.toPrecision(3)}; MACD ${m.macd.toPrecision(4)} ${bullish ? '>' : '<'} signal ${m.signal.toPrecision(4)})`;
        turnTo(ctx, bullish ? 'long' : 'short', { reason: why }, { allowShort: p.allowShort });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
