/**
 * ensemble: a weighted vote of six simple signals, each -1, 0 or +1.
 *
 * The signals, on each closed candle (sign(x) is -1, 0 or +1):
 *  - trend:       sign(close - previous close);
 *  - momentum:    sign(close - close `momentumBars` candles ago);
 *  - swing:       sign(SMA(swingFast) - SMA(swingSlow)) of the closes (5 vs 20);
 *  - scalping:    +1 when the close is more than scalpPct % above the previous
 *                 close, -1 when more than scalpPct % below, else 0;
 *  - day:         sign(close - first close of the current UTC day); 0 when
 *                 the strategy did not see the day from its first candle (a
 *                 mid-day start), so live and backtest agree;
 *  - priceAction: +1 when the close is above the highest high of the previous
 *                 `breakoutBars` candles, -1 when below their lowest low, else 0.
 * score = sum(weight * signal) / sum(weight), in [-1, 1].
 *
 * Rule:
 *  - enterLong when flat and the score crosses above `threshold` from below
 *    (previous score <= threshold < score); exitLong when long and score < exitThreshold;
 *  - allowShort (futures only): enterShort when flat and the score crosses
 *    below -threshold (previous >= -threshold > score); exitShort when short
 *    and score > -exitThreshold.
 * Entries carry strength = |score|. Exits are decided first; a candle that
 * exits may also enter the other way.
 *
 * Warm-up: max(momentumBars + 1, swingSlow, breakoutBars + 1) + 1 candles:
 * the score needs every signal, and a crossing needs the previous score.
 */
import { z } from 'zod';
import { defineStrategy } from '../../src/strategy/api.ts';
import type { DonchianValue } from '../../src/strategy/indicators/types.ts';

const DAY_MS = 86_400_000;
const SIGNALS = ['trend', 'momentum', 'swing', 'scalping', 'day', 'priceAction'] as const;
type SignalName = (typeof SIGNALS)[number];

const weight = (what: string) => z.number().min(0).max(1000).default(1).describe(`weight of the ${what} signal (0 leaves it out)`);

const params = z
  .strictObject({
    momentumBars: z.number().int().min(1).max(1000).default(5).describe('momentum: compare the close with the close this many candles ago'),
    swingFast: z.number().int().min(1).max(1000).default(5).describe('swing: fast SMA period (candles)'),
    swingSlow: z.number().int().min(2).max(1000).default(20).describe('swing: slow SMA period (candles), above swingFast'),
    scalpPct: z.number().gt(0).max(100).default(0.1).describe('scalping: a move since the previous close beyond this % counts'),
    breakoutBars: z.number().int().min(1).max(1000).default(20).describe('price action: breakout of the high/low of this many previous candles'),
    weights: z
      .strictObject({
        trend: weight('trend (close vs previous close)'),
        momentum: weight('momentum'),
        swing: weight('swing (SMA fast vs slow)'),
        scalping: weight('scalping'),
        day: weight('day (change since the first close of the UTC day)'),
        priceAction: weight('price action (breakout)'),
      })
      .prefault({})
      .refine((w) => SIGNALS.some((k) => w[k] > 0), { message: 'at least one weight must be above 0' })
      .describe('weight of each signal in the score'),
    threshold: z.number().gt(0).lt(1).default(0.5).describe('enter long when the score crosses above this (short: below its negative)'),
    exitThreshold: z.number().min(-1).lt(1).default(0).describe('exit long when the score falls below this (short: rises above its negative)'),
    allowShort: z.boolean().default(false).describe('also trade shorts (futures only), symmetrically'),
  })
  .refine((p) => p.swingFast < p.swingSlow, { message: 'swingFast must be below swingSlow', path: ['swingFast'] })
  .refine((p) => p.exitThreshold < p.threshold, { message: 'exitThreshold must be below threshold', path: ['exitThreshold'] });

const sign = (x: number): -1 | 0 | 1 => (x > 0 ? 1 : x < 0 ? -1 : 0);

export default defineStrategy({
  name: 'ensemble',
  description: 'Weighted vote of trend, momentum, swing, scalping, day and price-action signals; trades the score crossing a threshold.',
  params,
  defaultTimeframe: '15m',
  warmup: (p) => Math.max(p.momentumBars + 1, p.swingSlow, p.breakoutBars + 1) + 1,
  create(ctx, p) {
    if (p.allowShort && ctx.market === 'spot') throw new Error('allowShort needs a futures market: spot cannot sell short');
    const totalWeight = SIGNALS.reduce((sum, k) => sum + p.weights[k], 0);
    const fresh = () => ({
      /** The last momentumBars + 1 closes, oldest first. */
      closes: [] as number[],
      fast: ctx.indicators.sma(p.swingFast),
      slow: ctx.indicators.sma(p.swingSlow),
      channel: ctx.indicators.donchian(p.breakoutBars),
      prevChannel: undefined as DonchianValue | undefined,
      day: undefined as number | undefined,
      dayFirstClose: undefined as number | undefined,
      prevScore: undefined as number | undefined,
    });
    let s = fresh();
    return {
      onCandle(c) {
        const prevClose = s.closes.at(-1);
        s.closes.push(c.close);
        if (s.closes.length > p.momentumBars + 1) s.closes.shift();
        const fast = s.fast.update(c.close);
        const slow = s.slow.update(c.close);
        const channel = s.prevChannel;
        s.prevChannel = s.channel.update(c);
        const day = Math.floor(c.openTime / DAY_MS);
        if (day !== s.day) {
          s.dayFirstClose = c.openTime % DAY_MS === 0 || s.day === day - 1 ? c.close : undefined;
          s.day = day;
        }
        const momentumBase = s.closes.length === p.momentumBars + 1 ? s.closes[0] : undefined;
        if (prevClose === undefined || momentumBase === undefined || fast === undefined || slow === undefined || !channel) return;

        const move = ((c.close - prevClose) / prevClose) * 100;
        const votes: Record<SignalName, -1 | 0 | 1> = {
          trend: sign(c.close - prevClose),
          momentum: sign(c.close - momentumBase),
          swing: sign(fast - slow),
          scalping: move > p.scalpPct ? 1 : move < -p.scalpPct ? -1 : 0,
          day: s.dayFirstClose === undefined ? 0 : sign(c.close - s.dayFirstClose),
          priceAction: c.close > channel.upper ? 1 : c.close < channel.lower ? -1 : 0,
        };
        let sum = 0;
        for (const k of SIGNALS) sum += p.weights[k] * votes[k];
        const score = sum / totalWeight;
        const prev = s.prevScore;
        s.prevScore = score;

        // Built only when a signal goes out (this runs on every candle).
        const detail = () => `score ${score.toFixed(2)} (${SIGNALS.map((k) => `${k} ${votes[k] > 0 ? '+1' : votes[k]}`).join(', ')})`;
        let side = ctx.position().side;
        if (side === 'long' && score < p.exitThreshold) {
          ctx.exitLong({ reason: `${detail()} < exitThreshold ${p.exitThreshold}` });
          side = 'flat';
        } else if (side === 'short' && score > -p.exitThreshold) {
          ctx.exitShort({ reason: `${detail()} > ${-p.exitThreshold}` });
          side = 'flat';
        }
        if (side !== 'flat' || prev === undefined) return;
        const strength = Math.min(1, Math.abs(score));
        if (prev <= p.threshold && score > p.threshold) ctx.enterLong({ reason: `${detail()} crossed above ${p.threshold}`, strength });
        else if (p.allowShort && prev >= -p.threshold && score < -p.threshold) ctx.enterShort({ reason: `${detail()} crossed below ${-p.threshold}`, strength });
      },
      reset() {
        s = fresh();
      },
    };
  },
});
