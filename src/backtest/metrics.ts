/**
 * Backtest statistics: risk-adjusted returns, drawdown, trade figures and the
 * monthly table, computed from the equity curve and the closed trades.
 *
 * Money arrives as decimal strings and is converted with Number(): these are
 * statistics for a report, not balances, so float precision is enough and
 * keeps a year of 1m points fast. The hot loops use typed arrays and integer
 * day numbers (ms / 86 400 000); dates are only formatted once per UTC day,
 * with integer calendar math, never a Date per point.
 */
import type { BacktestMetrics, BacktestTrade, EquityPoint, MonthlyReturn } from './types.ts';

const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;
const SQRT_365 = Math.sqrt(365);

export interface MetricsInput {
  /** ms UTC, inclusive start of the backtest span. */
  readonly from: number;
  /** ms UTC, exclusive end. */
  readonly to: number;
  /** Decimal string. */
  readonly startEquity: string;
  /** Ascending t; may be sparse (e.g. one point per candle of the strategy timeframe). */
  readonly equity: readonly EquityPoint[];
  readonly trades: readonly BacktestTrade[];
}

/** The equity curve parsed once, so every pass over it reads numbers. */
interface Curve {
  readonly t: Float64Array;
  readonly v: Float64Array;
}

function parseCurve(equity: readonly EquityPoint[]): Curve {
  const n = equity.length;
  const t = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = equity[i] as EquityPoint;
    t[i] = p.t;
    v[i] = Number(p.equity);
  }
  return { t, v };
}

/**
 * Year, month (1-12) and day of a day number (days since 1970-01-01, UTC),
 * by the proleptic Gregorian "civil from days" algorithm (H. Hinnant), so no
 * Date is allocated.
 */
export function civilFromDays(days: number): { y: number; m: number; d: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Equity at the end of each UTC day touched by [from, to), as parallel arrays
 * (day numbers and values). A day without a point carries the previous day's
 * value (startEquity before the first point). A point outside [from, to)
 * counts for the nearest day of the span, so a final mark stamped exactly at
 * `to` (a candle's close) still ends the last day instead of being dropped.
 */
function dailyValues(curve: Curve, startEquity: number, from: number, to: number): { days: Float64Array; values: Float64Array } {
  if (!(to > from)) return { days: new Float64Array(0), values: new Float64Array(0) };
  const firstDay = Math.floor(from / DAY_MS);
  const lastDay = Math.floor((to - 1) / DAY_MS);
  const count = lastDay - firstDay + 1;
  const values = new Float64Array(count).fill(Number.NaN);
  const { t, v } = curve;
  for (let i = 0; i < t.length; i++) {
    let d = Math.floor((t[i] as number) / DAY_MS);
    if (d < firstDay) d = firstDay;
    else if (d > lastDay) d = lastDay;
    // Ascending t: the last point of the day overwrites the earlier ones.
    values[d - firstDay] = v[i] as number;
  }
  const days = new Float64Array(count);
  let prev = startEquity;
  for (let i = 0; i < count; i++) {
    days[i] = firstDay + i;
    const x = values[i] as number;
    if (Number.isNaN(x)) values[i] = prev;
    else prev = x;
  }
  return { days, values };
}

/** Simple return; 0 after a zero equity, where a ratio has no meaning (and would poison the mean with NaN). */
function ratioReturn(cur: number, prev: number): number {
  return prev === 0 ? 0 : cur / prev - 1;
}

function returnsOf(values: Float64Array, startEquity: number): number[] {
  const out = new Array<number>(values.length);
  let prev = startEquity;
  for (let i = 0; i < values.length; i++) {
    const cur = values[i] as number;
    out[i] = ratioReturn(cur, prev);
    prev = cur;
  }
  return out;
}

/**
 * Last equity of each UTC day in [from, to), carrying the previous value
 * forward for days without a point (startEquity before the first point).
 * Days are 'YYYY-MM-DD'.
 */
export function dailyEquity(
  equity: readonly EquityPoint[],
  startEquity: number,
  from: number,
  to: number,
): Array<{ day: string; equity: number }> {
  const { days, values } = dailyValues(parseCurve(equity), startEquity, from, to);
  const out: Array<{ day: string; equity: number }> = [];
  for (let i = 0; i < days.length; i++) {
    const { y, m, d } = civilFromDays(days[i] as number);
    out.push({ day: `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`, equity: values[i] as number });
  }
  return out;
}

/** Daily returns from dailyEquity; the first day's return is against startEquity. */
export function dailyReturns(equity: readonly EquityPoint[], startEquity: number, from: number, to: number): number[] {
  return returnsOf(dailyValues(parseCurve(equity), startEquity, from, to).values, startEquity);
}

function sharpeOf(r: readonly number[]): number {
  const n = r.length;
  if (n < 2) return 0;
  let sum = 0;
  for (const x of r) sum += x;
  const mean = sum / n;
  let sq = 0;
  for (const x of r) sq += (x - mean) * (x - mean);
  const sd = Math.sqrt(sq / (n - 1));
  return sd === 0 ? 0 : (mean / sd) * SQRT_365;
}

function sortinoOf(r: readonly number[]): number {
  const n = r.length;
  if (n === 0) return 0;
  let sum = 0;
  let down = 0;
  for (const x of r) {
    sum += x;
    if (x < 0) down += x * x;
  }
  const dd = Math.sqrt(down / n);
  return dd === 0 ? 0 : (sum / n / dd) * SQRT_365;
}

/**
 * Largest peak-to-trough fall (fraction of the peak) and the longest time
 * underwater. startEquity at `from` is the first peak. A peak's time is the
 * latest time equity stood at (or above) the running peak, so a flat stretch
 * at the top does not count as underwater; a drawdown lasts from there until
 * equity first gets back to >= the peak, or until the last point if it never
 * does.
 */
function drawdownOf(curve: Curve, startEquity: number, from: number): { maxDrawdown: number; durationMs: number } {
  const { t, v } = curve;
  let peak = startEquity;
  let peakTime = from;
  let underwater = false;
  let maxDrawdown = 0;
  let durationMs = 0;
  for (let i = 0; i < t.length; i++) {
    const x = v[i] as number;
    const time = t[i] as number;
    if (x >= peak) {
      if (underwater && time - peakTime > durationMs) durationMs = time - peakTime;
      underwater = false;
      peak = x;
      peakTime = time;
    } else {
      underwater = true;
      if (peak > 0) {
        const dd = (peak - x) / peak;
        if (dd > maxDrawdown) maxDrawdown = dd;
      }
    }
  }
  const n = t.length;
  if (underwater && n > 0) {
    const last = t[n - 1] as number;
    if (last - peakTime > durationMs) durationMs = last - peakTime;
  }
  return { maxDrawdown, durationMs };
}

/**
 * One row per UTC calendar month touched by [from, to): the month's last
 * equity against the previous month's (startEquity for the first month).
 * Built from the daily series, whose last day in a month is exactly the
 * month's last point (carried forward when the month has none).
 */
function monthlyOf(days: Float64Array, values: Float64Array, startEquity: number): MonthlyReturn[] {
  const out: MonthlyReturn[] = [];
  let prevEnd = startEquity;
  let key = -1;
  let label = '';
  let end = startEquity;
  for (let i = 0; i < days.length; i++) {
    const { y, m } = civilFromDays(days[i] as number);
    const k = y * 12 + (m - 1);
    if (k !== key) {
      if (key !== -1) {
        out.push({ month: label, return: ratioReturn(end, prevEnd) });
        prevEnd = end;
      }
      key = k;
      label = `${pad(y, 4)}-${pad(m, 2)}`;
    }
    end = values[i] as number;
  }
  if (key !== -1) out.push({ month: label, return: ratioReturn(end, prevEnd) });
  return out;
}

/** Length of the union of the trades' [entryTime, exitTime) clipped to [from, to). Symbols may overlap, so intervals are merged. */
function timeInMarketMs(trades: readonly BacktestTrade[], from: number, to: number): number {
  const spans: Array<[number, number]> = [];
  for (const tr of trades) {
    const a = Math.max(tr.entryTime, from);
    const b = Math.min(tr.exitTime, to);
    if (b > a) spans.push([a, b]);
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let total = 0;
  let curStart = Number.NaN;
  let curEnd = Number.NaN;
  for (const [a, b] of spans) {
    if (Number.isNaN(curStart) || a > curEnd) {
      if (!Number.isNaN(curStart)) total += curEnd - curStart;
      curStart = a;
      curEnd = b;
    } else if (b > curEnd) {
      curEnd = b;
    }
  }
  if (!Number.isNaN(curStart)) total += curEnd - curStart;
  return total;
}

interface TradeStats {
  readonly winRate: number;
  readonly profitFactor: number;
  readonly expectancy: number;
  readonly avgWin: number;
  readonly avgLoss: number;
  readonly largestWin: number;
  readonly largestLoss: number;
  readonly avgHoldingMs: number;
  readonly feesPaid: number;
  readonly fundingPaid: number;
}

function tradeStats(trades: readonly BacktestTrade[]): TradeStats {
  let wins = 0;
  let losses = 0;
  let grossWin = 0;
  let grossLoss = 0; // negative or 0
  let largestWin = 0;
  let largestLoss = 0; // most negative pnl, or 0
  let total = 0;
  let holding = 0;
  let fees = 0;
  let funding = 0;
  for (const tr of trades) {
    const pnl = Number(tr.pnl);
    total += pnl;
    holding += tr.holdingMs;
    fees += Number(tr.fees);
    funding += Number(tr.funding);
    // A trade at exactly 0 is neither a win nor a loss, but counts in winRate's denominator.
    if (pnl > 0) {
      wins++;
      grossWin += pnl;
      if (pnl > largestWin) largestWin = pnl;
    } else if (pnl < 0) {
      losses++;
      grossLoss += pnl;
      if (pnl < largestLoss) largestLoss = pnl;
    }
  }
  const n = trades.length;
  let profitFactor = 0;
  if (wins > 0) profitFactor = losses === 0 || grossLoss === 0 ? Number.POSITIVE_INFINITY : grossWin / -grossLoss;
  return {
    winRate: n === 0 ? 0 : wins / n,
    profitFactor,
    expectancy: n === 0 ? 0 : total / n,
    avgWin: wins === 0 ? 0 : grossWin / wins,
    avgLoss: losses === 0 ? 0 : grossLoss / losses,
    largestWin,
    largestLoss,
    avgHoldingMs: n === 0 ? 0 : holding / n,
    feesPaid: fees,
    fundingPaid: funding,
  };
}

export function computeMetrics(input: MetricsInput): BacktestMetrics {
  const { from, to, trades } = input;
  const startEquity = Number(input.startEquity);
  const curve = parseCurve(input.equity);
  const n = curve.v.length;
  const endEquity = n > 0 ? (curve.v[n - 1] as number) : startEquity;
  const span = to - from;

  const totalReturn = startEquity > 0 ? endEquity / startEquity - 1 : 0;
  // An equity at or below zero is a total loss: clamp the ratio so the
  // fractional power gives -1 instead of NaN.
  const annualizedReturn =
    startEquity > 0 && span > 0 ? Math.pow(Math.max(endEquity / startEquity, 0), YEAR_MS / span) - 1 : 0;

  const { days, values } = dailyValues(curve, startEquity, from, to);
  const returns = returnsOf(values, startEquity);
  const { maxDrawdown, durationMs } = drawdownOf(curve, startEquity, from);

  return {
    startEquity,
    endEquity,
    totalReturn,
    annualizedReturn,
    trades: trades.length,
    ...tradeStats(trades),
    sharpe: sharpeOf(returns),
    sortino: sortinoOf(returns),
    calmar: maxDrawdown === 0 ? 0 : annualizedReturn / maxDrawdown,
    maxDrawdown,
    maxDrawdownDurationMs: durationMs,
    monthly: monthlyOf(days, values, startEquity),
    timeInMarket: span > 0 ? timeInMarketMs(trades, from, to) / span : 0,
  };
}
