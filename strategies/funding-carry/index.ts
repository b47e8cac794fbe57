/**
 * funding-carry: collect a large funding payment by holding the receiving
 * side over one funding time (USD-M futures only).
 *
 * Rule, on each closed candle, with { rate, nextFundingTime } = ctx.funding()
 * and now = ctx.now():
 *  - enter when flat, |rate| >= minRate and the next funding time is ahead
 *    and within entryMinutes (0 < nextFundingTime - now <= entryMinutes):
 *    against the paying side: rate > 0 (longs pay shorts) -> enterShort,
 *    rate < 0 (shorts pay longs) -> enterLong. At most one entry per funding
 *    time (an entry that did not fill is not repeated every candle);
 *  - exit the side it entered once now >= that funding time + exitAfterMinutes.
 *  - a position it finds without knowing which funding time it was for (the
 *    instance was rebuilt or reset) is closed at once: a carry trade is only
 *    meant to be held over one funding time.
 * Price risk is not hedged: the YAML's risk.stopLossPct is the guard.
 *
 * Warm-up: 1 candle (no history is needed, only the funding data).
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';

const MINUTE_MS = 60_000;

const params = z.strictObject({
  minRate: z.number().gt(0).max(0.05).default(0.0005).describe('smallest |funding rate| worth trading (0.0005 = 0.05% per funding)'),
  entryMinutes: z.number().int().min(1).max(480).default(30).describe('enter at most this many minutes before the funding time'),
  exitAfterMinutes: z.number().int().min(0).max(480).default(5).describe('exit this many minutes after the funding time'),
});

export default defineStrategy({
  name: 'funding-carry',
  description: 'Funding carry: before a funding time with |rate| >= minRate, take the side that receives funding; exit just after.',
  params,
  defaultTimeframe: '1m',
  markets: ['futures'],
  warmup: () => 1,
  create(ctx, p) {
    if (ctx.market !== 'futures') throw new Error('funding-carry trades USD-M futures only');
    /** The funding time the current trade is for, and its side. */
    let trade: { fundingTime: number; side: 'long' | 'short' } | undefined;
    const at = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    return {
      onCandle() {
        const now = ctx.now();
        let side = ctx.position().side;
        if (trade && now >= trade.fundingTime + p.exitAfterMinutes * MINUTE_MS) {
          const why = `funding of ${at(trade.fundingTime)} UTC passed ${p.exitAfterMinutes} min ago`;
          if (side === 'long' && trade.side === 'long') ctx.exitLong({ reason: why });
          else if (side === 'short' && trade.side === 'short') ctx.exitShort({ reason: why });
          if (side === trade.side) side = 'flat';
          trade = undefined;
        } else if (!trade && side !== 'flat') {
          const why = 'carry position of an unknown funding time (instance rebuilt): closing it';
          if (side === 'long') ctx.exitLong({ reason: why });
          else ctx.exitShort({ reason: why });
          return;
        }
        if (side !== 'flat' || trade) return;
        const f = ctx.funding();
        if (!f || Math.abs(f.rate) < p.minRate) return;
        const ahead = f.nextFundingTime - now;
        if (!(ahead > 0 && ahead <= p.entryMinutes * MINUTE_MS)) return;
        const why = `funding ${(f.rate * 100).toFixed(4)}% at ${at(f.nextFundingTime)} UTC in ${Math.ceil(ahead / MINUTE_MS)} min: ${f.rate > 0 ? 'longs pay, go short' : 'shorts pay, go long'}`;
        if (f.rate > 0) ctx.enterShort({ reason: why });
        else ctx.enterLong({ reason: why });
        trade = { fundingTime: f.nextFundingTime, side: f.rate > 0 ? 'short' : 'long' };
      },
      reset() {
        trade = undefined;
      },
    };
  },
});
