/**
 * ema-cross: fast/slow EMA crossover.
 *
 * Rule, on each closed candle, with EMA(fast) and EMA(slow) of the closes:
 *  - golden cross: previous fast <= previous slow and fast > slow
 *    -> exitShort when short; enterLong when flat;
 *  - death cross: previous fast >= previous slow and fast < slow
 *    -> exitLong when long; enterShort when flat and allowShort.
 * Exits are decided first, so a cross can close a position and open the
 * opposite one on the same candle (with allowShort).
 *
 * Warm-up: slow + 1 candles (both EMAs exist from candle `slow`; a cross
 * needs their previous values too).
 */
import { z } from 'zod';
import { defineStrategy, turnTo } from '../../src/strategy/api.ts';

const params = z
  .strictObject({
    fast: z.number().int().min(1).max(1000).default(9).describe('fast EMA period (candles)'),
    slow: z.number().int().min(2).max(1000).default(21).describe('slow EMA period (candles), above fast'),
    allowShort: z.boolean().default(false).describe('also trade shorts (futures only) on the death cross'),
  })
  .refine((p) => p.fast < p.slow, { message: 'fast must be below slow', path: ['fast'] });

export default defineStrategy({
  name: 'ema-cross',
  description: 'EMA crossover: long on the golden cross (fast above slow), out on the death cross (optionally short).',
  params,
  defaultTimeframe: '15m',
  warmup: (p) => p.slow + 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({
      fast: ctx.indicators.ema(p.fast),
      slow: ctx.indicators.ema(p.slow),
      prev: undefined as { fast: number; slow: number } | undefined,
    });
    let s = fresh();
    return {
      onCandle(c) {
        const fast = s.fast.update(c.close);
        const slow = s.slow.update(c.close);
        if (fast === undefined || slow === undefined) return;
        const prev = s.prev;
        s.prev = { fast, slow };
        if (!prev) return;
        const golden = prev.fast <= prev.slow && fast > slow;
        const death = prev.fast >= prev.slow && fast < slow;
        if (!golden && !death) return;
        const why = `${golden ? 'golden' : 'death'} cross: EMA${p.fast} ${fast.toPrecision(6)} ${golden ? '>' : '<'} EMA${p.slow} ${slow.toPrecision(6)}`;
        turnTo(ctx, golden ? 'long' : 'short', { reason: why }, { allowShort: p.allowShort });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
