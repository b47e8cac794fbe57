/**
 * bollinger: Bollinger Band re-entry (mean reversion to the middle band).
 *
 * Rule, on each closed candle, with Bollinger(period, stdDevs) of the closes
 * (bands of the previous candle for the previous close):
 *  - enterLong when flat, the previous close was below its lower band and
 *    this close is back inside the bands (lower < close < upper);
 *  - exitLong when long and the close is at or above the middle band;
 *  - allowShort (futures only): enterShort when flat, the previous close was
 *    above its upper band and this close is back inside (lower < close < upper);
 *    exitShort when short and the close is at or below the middle band.
 * Entries are skipped while bandwidth = (upper - lower) / middle is below
 * minBandwidth: the bands are too narrow (a quiet, ranging market) for the
 * move back to the middle to pay. Exits are never skipped.
 * Exits are decided first; a candle that exits may also enter the other way.
 *
 * Warm-up: period + 1 candles (the first bands come with candle `period`; a
 * re-entry needs the previous candle's bands).
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';
import type { BollingerValue } from '../../src/strategy/indicators/types.ts';

const params = z.strictObject({
  period: z.number().int().min(2).max(1000).default(20).describe('SMA and standard-deviation window (candles)'),
  stdDevs: z.number().gt(0).max(10).default(2).describe('band distance from the middle, in standard deviations'),
  minBandwidth: z.number().min(0).max(10).default(0.01).describe('no entries while (upper - lower) / middle is below this (0.01 = 1%)'),
  allowShort: z.boolean().default(false).describe('also trade shorts (futures only) on a re-entry from above the upper band'),
});

export default defineStrategy({
  name: 'bollinger',
  description: 'Bollinger re-entry: long when the close comes back inside from below the lower band, out at the middle band (optionally short).',
  params,
  defaultTimeframe: '15m',
  warmup: (p) => p.period + 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const fresh = () => ({
      bands: ctx.indicators.bollinger(p.period, p.stdDevs),
      prev: undefined as { close: number; bands: BollingerValue } | undefined,
    });
    let s = fresh();
    return {
      onCandle(c) {
        const b = s.bands.update(c.close);
        if (b === undefined) return;
        const prev = s.prev;
        s.prev = { close: c.close, bands: b };
        let side = ctx.position().side;
        if (side === 'long' && c.close >= b.middle) {
          ctx.exitLong({ reason: `close ${c.close} reached the middle band ${b.middle.toPrecision(6)}` });
          side = 'flat';
        } else if (side === 'short' && c.close <= b.middle) {
          ctx.exitShort({ reason: `close ${c.close} reached the middle band ${b.middle.toPrecision(6)}` });
          side = 'flat';
        }
        if (side !== 'flat' || !prev || b.bandwidth < p.minBandwidth) return;
        const inside = c.close > b.lower && c.close < b.upper;
        if (!inside) return;
        const width = `bandwidth ${(b.bandwidth * 100).toFixed(2)}%`;
        if (prev.close < prev.bands.lower) {
          ctx.enterLong({ reason: `close ${c.close} back above the lower band ${b.lower.toPrecision(6)} (${width})` });
        } else if (p.allowShort && prev.close > prev.bands.upper) {
          ctx.enterShort({ reason: `close ${c.close} back below the upper band ${b.upper.toPrecision(6)} (${width})` });
        }
      },
      reset() {
        s = fresh();
      },
    };
  },
});
