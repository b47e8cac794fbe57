/**
 * grid: a fixed price grid between `lower` and `upper`.
 *
 * Levels: `levels` prices evenly spaced from lower to upper, both included
 * (level i = lower + i * (upper - lower) / (levels - 1), rounded to 12
 * significant digits).
 *
 * Rule, on each closed candle, against the previous close:
 *  - the close crosses DOWN through a level L (previous close > L >= close):
 *    one buy per level crossed, highest level first: exitShort while the grid
 *    holds short units, enterLong otherwise ('grid buy at L');
 *  - the close crosses UP through a level L (previous close < L <= close):
 *    one sell per level crossed, lowest level first: exitLong while the grid
 *    holds long units ('grid sell at L'), otherwise enterShort when allowShort.
 * Only the levels count, so price moves outside [lower, upper] signal nothing
 * beyond the last level crossed on the way out.
 *
 * Each grid signal stands for ONE grid unit; the YAML's sizing decides what a
 * unit is (e.g. { type: quote, amount: 50 }). Unlike the other built-ins, the
 * grid therefore enters while already long (one more unit per level lower);
 * it is the one strategy that adds to its position. Exits are emitted only
 * while it holds units: it counts the units it signalled and forgets them when
 * the position view says flat (an exit or a stop closed everything).
 *
 * Spot and futures (short units only with allowShort, futures only).
 * Warm-up: 2 candles (a crossing needs the previous close).
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';

const params = z
  .strictObject({
    lower: z.number().positive().describe('lowest grid level (price); required'),
    upper: z.number().positive().describe('highest grid level (price); required, above lower'),
    levels: z.number().int().min(2).max(1000).default(10).describe('number of levels, evenly spaced from lower to upper inclusive'),
    allowShort: z.boolean().default(false).describe('sell short on up-crossings when holding no long units (futures only)'),
  })
  .refine((p) => p.upper > p.lower, { message: 'upper must be above lower (the grid spans lower..upper)', path: ['upper'] });

export default defineStrategy({
  name: 'grid',
  description: 'Price grid: buy one unit per level crossed downwards, sell one per level crossed upwards.',
  params,
  defaultTimeframe: '1m',
  warmup: () => 2,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const step = (p.upper - p.lower) / (p.levels - 1);
    // Rounded to 12 significant digits, so a level meant to be 0.25 is the double 0.25,
    // the very number a close printed as 0.2500 parses to (closes often sit exactly on a level).
    const levels = Array.from({ length: p.levels }, (_, i) => (i === p.levels - 1 ? p.upper : Number((p.lower + i * step).toPrecision(12))));
    // Enough decimals to tell neighbouring levels apart (0.2450 for a 0.01 step).
    const decimals = Math.min(12, Math.max(2, Math.ceil(-Math.log10(step)) + 2));
    const show = (x: number) => x.toFixed(decimals);
    let prevClose: number | undefined;
    /** Grid units held: > 0 long units, < 0 short units. */
    let units = 0;
    return {
      onCandle(c) {
        const prev = prevClose;
        prevClose = c.close;
        if (prev === undefined || prev === c.close) return;
        // Reconcile with the position view: flat means every unit is gone; a
        // position it did not count (after a restart) counts as one unit.
        const side = ctx.position().side;
        if (side === 'flat') units = 0;
        else if (side === 'long' && units <= 0) units = 1;
        else if (side === 'short' && units >= 0) units = -1;
        if (c.close < prev) {
          for (let i = levels.length - 1; i >= 0; i--) {
            const level = levels[i]!;
            if (!(prev > level && c.close <= level)) continue;
            if (units < 0) ctx.exitShort({ reason: `grid buy at ${show(level)}`, unit: true });
            else ctx.enterLong({ reason: `grid buy at ${show(level)}`, unit: true });
            units++;
          }
        } else {
          for (let i = 0; i < levels.length; i++) {
            const level = levels[i]!;
            if (!(prev < level && c.close >= level)) continue;
            if (units > 0) {
              ctx.exitLong({ reason: `grid sell at ${show(level)}`, unit: true });
              units--;
            } else if (p.allowShort) {
              ctx.enterShort({ reason: `grid sell at ${show(level)}`, unit: true });
              units--;
            }
          }
        }
      },
      reset() {
        prevClose = undefined;
        units = 0;
      },
    };
  },
});
