/**
 * Walk-forward windows: `--walk-forward 6m/1m` optimizes on 6 months
 * (in-sample), tests the winner on the month after it (out-of-sample), then
 * rolls forward by one out-of-sample length, so the out-of-sample months
 * follow each other without gap or overlap and together cover the tail of
 * the range once.
 *
 * Units: m (calendar months, UTC), w (weeks), d (days). Months are calendar
 * months because "one month" of a 1m series should be the month a user
 * means (28 to 31 days), not a fixed 30 days that drifts off the month
 * boundaries a data set is split on.
 */
import { GridError } from './grid.ts';

const DAY = 86_400_000;
const UNIT_MS = { d: DAY, w: 7 * DAY } as const;

export interface Span {
  readonly count: number;
  readonly unit: 'm' | 'w' | 'd';
}

export interface WalkForwardSpec {
  readonly inSample: Span;
  readonly outOfSample: Span;
  /** As written, normalised: "6m/1m". */
  readonly text: string;
}

export interface WalkForwardWindow {
  /** 1-based (the stored window number; 0 is a plain grid). */
  readonly index: number;
  /** In-sample [isFrom, isTo), out-of-sample [isTo, oosTo). */
  readonly isFrom: number;
  readonly isTo: number;
  readonly oosFrom: number;
  readonly oosTo: number;
}

const SPAN = /^(\d+)([mwd])$/;

function parseSpan(text: string, whole: string, which: string): Span {
  const m = SPAN.exec(text.trim());
  if (!m) throw new GridError(`--walk-forward ${JSON.stringify(whole)}: the ${which} length ${JSON.stringify(text)} should be a count and a unit: 6m (months), 12w (weeks) or 90d (days)`);
  const count = Number(m[1]);
  if (count < 1 || count > 10_000) throw new GridError(`--walk-forward ${JSON.stringify(whole)}: the ${which} length must be 1 or more, got ${text}`);
  return { count, unit: m[2] as Span['unit'] };
}

/** "6m/1m", "90d/30d", "12w/2w" (units may differ: "6m/2w"). */
export function parseWalkForward(text: string): WalkForwardSpec {
  const parts = text.split('/');
  if (parts.length !== 2) throw new GridError(`--walk-forward ${JSON.stringify(text)}: expected in-sample/out-of-sample, e.g. 6m/1m, 90d/30d or 12w/2w`);
  const inSample = parseSpan(parts[0]!, text, 'in-sample');
  const outOfSample = parseSpan(parts[1]!, text, 'out-of-sample');
  return { inSample, outOfSample, text: `${inSample.count}${inSample.unit}/${outOfSample.count}${outOfSample.unit}` };
}

/** t plus n calendar months (UTC), the day clamped to the target month's last day (Jan 31 + 1m = Feb 28/29). */
export function addMonthsUtc(t: number, n: number): number {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + n;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const day = Math.min(d.getUTCDate(), lastDay);
  return Date.UTC(y, m, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

function add(t: number, span: Span, times: number): number {
  return span.unit === 'm' ? addMonthsUtc(t, span.count * times) : t + span.count * times * UNIT_MS[span.unit];
}

/**
 * Splits [from, to) into rolling windows: window k (0-based) has in-sample
 * [s_k, s_k + IS) and out-of-sample [s_k + IS, s_k + IS + OOS), with
 * s_k = from + k * OOS; windows whose out-of-sample would pass `to` are
 * dropped (a shorter last test would not be comparable). When both lengths
 * are in the same unit every boundary is computed from `from` (never from
 * the previous clamped boundary), so month ends do not drift and
 * out-of-sample windows never overlap.
 */
export function splitWalkForward(spec: WalkForwardSpec, from: number, to: number): WalkForwardWindow[] {
  const windows: WalkForwardWindow[] = [];
  const same = spec.inSample.unit === spec.outOfSample.unit;
  for (let k = 0; ; k++) {
    let isFrom: number, isTo: number, oosTo: number;
    if (same) {
      const unit = { unit: spec.inSample.unit, count: 1 } as const;
      isFrom = add(from, unit, k * spec.outOfSample.count);
      isTo = add(from, unit, k * spec.outOfSample.count + spec.inSample.count);
      oosTo = add(from, unit, (k + 1) * spec.outOfSample.count + spec.inSample.count);
    } else {
      isFrom = add(from, spec.outOfSample, k);
      isTo = add(isFrom, spec.inSample, 1);
      oosTo = add(isTo, spec.outOfSample, 1);
    }
    if (oosTo > to) break;
    windows.push({ index: k + 1, isFrom, isTo, oosFrom: isTo, oosTo });
    if (windows.length > 10_000) throw new GridError(`--walk-forward ${spec.text}: more than 10000 windows; use a longer out-of-sample length`);
  }
  if (windows.length === 0) {
    const needTo = same ? add(from, { unit: spec.inSample.unit, count: 1 }, spec.inSample.count + spec.outOfSample.count) : add(add(from, spec.inSample, 1), spec.outOfSample, 1);
    const days = (ms: number): string => `${+(ms / DAY).toFixed(2)} days`;
    throw new GridError(
      `--walk-forward ${spec.text}: the range ${new Date(from).toISOString()} .. ${new Date(to).toISOString()} (${days(to - from)}) fits no window: ` +
        `one window (in-sample + out-of-sample) needs ${days(needTo - from)}, through ${new Date(needTo).toISOString()}`,
    );
  }
  return windows;
}
