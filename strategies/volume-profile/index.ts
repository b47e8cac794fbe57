/**
 * volume-profile: trades the edges of the value area of a rolling volume profile.
 *
 * The profile: volume by price over the `period` candles BEFORE this one
 * (`bins` price bins; the value area is the band around the point of control
 * holding `valueArea` of the volume; see the indicator for the exact
 * definition). Using the previous candles means a candle is tested against
 * levels it did not shape.
 *
 * Rule, on each closed candle, with VAL / VAH = that value area's low / high:
 *  - bounce:    low <= VAL and close > VAL (pierced the floor, closed back above);
 *  - rejection: high >= VAH and close < VAH (reached the ceiling, closed back below);
 *  - enterLong on a bounce when flat; exitLong on a rejection when long;
 *  - allowShort (futures only): enterShort on a rejection when flat,
 *    exitShort on a bounce when short.
 * A candle that is both (it spans the whole value area) says nothing and is
 * ignored. Exits are decided first; a candle that exits may also enter the
 * other way.
 *
 * Warm-up: period + 1 candles (the profile of `period` candles, then one to test).
 */
import { z } from 'zod';
import { defineStrategy, turnTo } from '../../src/strategy/api.ts';
import type { VolumeProfileValue } from '../../src/strategy/indicators/types.ts';

const params = z.strictObject({
  period: z.number().int().min(2).max(5000).default(120).describe('candles in the rolling profile'),
  bins: z.number().int().min(3).max(1000).default(24).describe('price bins the profile is cut into'),
  valueArea: z.number().gt(0).lt(1).default(0.7).describe('share of the volume in the value area (0.7 = 70%)'),
  allowShort: z.boolean().default(false).describe('also trade shorts (futures only): short a rejection at the value-area high'),
});

export default defineStrategy({
  name: 'volume-profile',
  description: 'Volume profile: long on a bounce off the value-area low, out on a rejection at the value-area high (optionally short).',
  params,
  defaultTimeframe: '5m',
  warmup: (p) => p.period + 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({
      profile: ctx.indicators.volumeProfile(p.period, p.bins, p.valueArea),
      prev: undefined as VolumeProfileValue | undefined,
    });
    let s = fresh();
    return {
      onCandle(c) {
        const va = s.prev;
        s.prev = s.profile.update(c);
        if (!va) return;
        const bounce = c.low <= va.valueAreaLow && c.close > va.valueAreaLow;
        const rejection = c.high >= va.valueAreaHigh && c.close < va.valueAreaHigh;
        if (bounce === rejection) return;
        const why = bounce
          ? `bounce: low ${c.low} <= value-area low ${va.valueAreaLow.toPrecision(6)} < close ${c.close}`
          : `rejection: high ${c.high} >= value-area high ${va.valueAreaHigh.toPrecision(6)} > close ${c.close}`;
        turnTo(ctx, bounce ? 'long' : 'short', { reason: why }, { allowShort: p.allowShort });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
