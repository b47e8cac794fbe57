/**
 * The HTML export of a backtest: one self-contained page (inline CSS, inline
 * SVG charts, no script, nothing fetched) that opens offline in a browser.
 *
 * Sections: the run's setup and notes, every metric with its definition, the
 * equity and drawdown charts, the monthly returns heatmap and the trade list.
 *
 * Built for large runs (a year of 1m equity points, tens of thousands of
 * trades): the curve is parsed once into typed arrays and reduced to at most
 * CHART_BUCKETS min/max pairs before any string is built; dates are formatted
 * with integer calendar math, never a Date per point; the page is assembled
 * from arrays joined once. Every string that comes from the report is escaped.
 */
import type { BacktestMetrics, BacktestReport, BacktestTrade, EquityPoint, MonthlyReturn } from './types.ts';
import { civilFromDays } from './metrics.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Trades listed in the page; the JSON and CSV exports have all of them. */
export const MAX_TRADE_ROWS = 5_000;
/** Time buckets per chart; each keeps its min and max, so a series has at most 2 × CHART_BUCKETS + 1 points. */
export const CHART_BUCKETS = 1_000;

// ---------------------------------------------------------------- escaping

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const NEEDS_ESCAPE = /[&<>"']/;
const ESCAPE_ALL = /[&<>"']/g;

/** Text safe inside HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE_ALL, (c) => ESCAPES[c] as string) : s;
}

// ---------------------------------------------------------------- formatting

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Day number of a calendar date (inverse of civilFromDays). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function utcDate(t: number): string {
  if (!Number.isFinite(t)) return '—';
  const { y, m, d } = civilFromDays(Math.floor(t / DAY_MS));
  return `${y}-${pad2(m)}-${pad2(d)}`;
}

/** "2024-01-05 13:00" (UTC). */
export function formatUtc(t: number): string {
  if (!Number.isFinite(t)) return '—';
  const days = Math.floor(t / DAY_MS);
  const rem = t - days * DAY_MS;
  const { y, m, d } = civilFromDays(days);
  return `${y}-${pad2(m)}-${pad2(d)} ${pad2(Math.floor(rem / HOUR_MS))}:${pad2(Math.floor((rem % HOUR_MS) / MINUTE_MS))}`;
}

/** "3d 4h 12m", "4h 0m", "12m", "45s" (floored to the unit shown). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < MINUTE_MS) return `${sign}${Math.floor(a / 1000)}s`;
  const d = Math.floor(a / DAY_MS);
  const h = Math.floor((a % DAY_MS) / HOUR_MS);
  const m = Math.floor((a % HOUR_MS) / MINUTE_MS);
  if (d > 0) return `${sign}${d}d ${h}h ${m}m`;
  if (h > 0) return `${sign}${h}h ${m}m`;
  return `${sign}${m}m`;
}

/** Fixed decimals with thousands separators; "-0.00" becomes "0.00". */
function fmtNum(x: number, decimals: number, signed = false): string {
  if (Number.isNaN(x)) return '—';
  if (x === Infinity) return '∞';
  if (x === -Infinity) return '-∞';
  let s = Math.abs(x).toFixed(decimals);
  const dot = s.indexOf('.');
  let int = dot === -1 ? s : s.slice(0, dot);
  if (int.length > 3) int = int.replace(/\B(?=(\d{3})+$)/g, ',');
  s = dot === -1 ? int : int + s.slice(dot);
  const zero = !/[1-9]/.test(s);
  if (zero) return s;
  return x < 0 ? `-${s}` : signed ? `+${s}` : s;
}

/** A fraction as a percentage: 0.1234 -> "12.34 %". */
function fmtPct(x: number, decimals = 2, signed = false): string {
  if (x === Infinity) return '∞';
  if (x === -Infinity) return '-∞';
  if (Number.isNaN(x)) return '—';
  return `${fmtNum(x * 100, decimals, signed)} %`;
}

function fmtRatio(x: number): string {
  return fmtNum(x, 2);
}

/** A decimal-string fraction as a percentage without float noise: "0.00075" -> "0.075 %". */
function decimalPct(s: string): string {
  const x = Number(s);
  if (!Number.isFinite(x)) return escapeHtml(s);
  return `${escapeHtml(String(Number((x * 100).toPrecision(12))))} %`;
}

function signClass(x: number): string {
  return x > 0 ? 'pos' : x < 0 ? 'neg' : 'zero';
}

/** Sign of a decimal string without parsing it. */
function decimalSignClass(s: string): string {
  if (s.startsWith('-')) return /[1-9]/.test(s) ? 'neg' : 'zero';
  return /[1-9]/.test(s) ? 'pos' : 'zero';
}

function safeJson(value: unknown): string {
  try {
    const s = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return s === undefined ? String(value) : s;
  } catch {
    return String(value);
  }
}

const KNOWN_QUOTES = ['FDUSD', 'USDT', 'USDC', 'BUSD', 'TUSD', 'DAI', 'USD', 'EUR', 'TRY', 'BRL', 'BTC', 'ETH', 'BNB'];

/** The quote asset shared by every symbol, when the symbols say so ("BTCUSDT" -> "USDT"); "quote" otherwise. */
function quoteUnit(symbols: readonly string[]): string {
  let found: string | undefined;
  for (const s of symbols) {
    const q = KNOWN_QUOTES.find((k) => s.toUpperCase().endsWith(k) && s.length > k.length);
    if (q === undefined || (found !== undefined && q !== found)) return 'quote';
    found = q;
  }
  return found ?? 'quote';
}

// ---------------------------------------------------------------- metrics table

type MetricKey = keyof BacktestMetrics;

interface MetricRow {
  readonly key: MetricKey;
  readonly label: string;
  readonly def: string;
  readonly fmt: (m: BacktestMetrics, quote: string) => string;
}

/** Every field of BacktestMetrics, in reading order; definitions follow the doc comments of types.ts. */
const METRIC_ROWS: readonly MetricRow[] = [
  { key: 'startEquity', label: 'Start equity', def: 'Account equity at the start of the run (the configured balance).', fmt: (m, q) => `${fmtNum(m.startEquity, 2)} ${q}` },
  { key: 'endEquity', label: 'End equity', def: 'Account equity (cash + unrealized) at the end of the run.', fmt: (m, q) => `${fmtNum(m.endEquity, 2)} ${q}` },
  { key: 'totalReturn', label: 'Total return', def: 'End equity / start equity - 1.', fmt: (m) => fmtPct(m.totalReturn, 2, true) },
  { key: 'annualizedReturn', label: 'Annualized return', def: '(end / start) ^ (365 days / span) - 1, span = to - from.', fmt: (m) => fmtPct(m.annualizedReturn, 2, true) },
  { key: 'maxDrawdown', label: 'Max drawdown', def: 'Largest peak-to-trough fall of the equity curve, a fraction of the peak.', fmt: (m) => fmtPct(m.maxDrawdown) },
  { key: 'maxDrawdownDurationMs', label: 'Max drawdown duration', def: 'Longest time from a peak until equity first regains it (or the curve ends).', fmt: (m) => formatDuration(m.maxDrawdownDurationMs) },
  { key: 'sharpe', label: 'Sharpe ratio', def: 'Daily returns (UTC days, equity at each day\'s last point vs the previous day\'s): mean / stdev × √365; sample stdev (n-1).', fmt: (m) => fmtRatio(m.sharpe) },
  { key: 'sortino', label: 'Sortino ratio', def: 'Daily returns: mean / downside deviation × √365; downside deviation = √(Σ min(r,0)² / n).', fmt: (m) => fmtRatio(m.sortino) },
  { key: 'calmar', label: 'Calmar ratio', def: 'Annualized return / max drawdown (0 when there is no drawdown).', fmt: (m) => fmtRatio(m.calmar) },
  { key: 'trades', label: 'Trades', def: 'Closed round trips (flat → position → flat) on one symbol.', fmt: (m) => fmtNum(m.trades, 0) },
  { key: 'winRate', label: 'Win rate', def: 'Fraction of trades with pnl > 0.', fmt: (m) => fmtPct(m.winRate, 1) },
  { key: 'profitFactor', label: 'Profit factor', def: 'Sum of winning pnl / |sum of losing pnl|; ∞ with no loser, 0 with no winner.', fmt: (m) => fmtRatio(m.profitFactor) },
  { key: 'expectancy', label: 'Expectancy', def: 'Mean net pnl per trade.', fmt: (m, q) => `${fmtNum(m.expectancy, 2, true)} ${q} / trade` },
  { key: 'avgWin', label: 'Average win', def: 'Mean pnl of the trades with pnl > 0.', fmt: (m, q) => `${fmtNum(m.avgWin, 2, true)} ${q}` },
  { key: 'avgLoss', label: 'Average loss', def: 'Mean pnl of the trades with pnl < 0.', fmt: (m, q) => `${fmtNum(m.avgLoss, 2, true)} ${q}` },
  { key: 'largestWin', label: 'Largest win', def: 'Highest pnl of one trade (0 without a winner).', fmt: (m, q) => `${fmtNum(m.largestWin, 2, true)} ${q}` },
  { key: 'largestLoss', label: 'Largest loss', def: 'Lowest pnl of one trade (0 without a loser).', fmt: (m, q) => `${fmtNum(m.largestLoss, 2, true)} ${q}` },
  { key: 'avgHoldingMs', label: 'Average holding time', def: 'Mean time from a trade\'s entry to its exit.', fmt: (m) => formatDuration(m.avgHoldingMs) },
  { key: 'timeInMarket', label: 'Time in market', def: 'Fraction of [from, to) with at least one position open.', fmt: (m) => fmtPct(m.timeInMarket, 1) },
  { key: 'feesPaid', label: 'Fees paid', def: 'Sum of the fees of every fill of the trades.', fmt: (m, q) => `${fmtNum(m.feesPaid, 2)} ${q}` },
  { key: 'fundingPaid', label: 'Funding paid', def: 'Net funding paid (positive = paid, negative = received).', fmt: (m, q) => `${fmtNum(m.fundingPaid, 2, true)} ${q}` },
  { key: 'monthly', label: 'Monthly returns', def: 'Per UTC calendar month: equity at the month\'s end / equity at its start - 1 (heatmap below).', fmt: (m) => monthlySummary(m.monthly) },
];

function monthlySummary(monthly: readonly MonthlyReturn[]): string {
  if (monthly.length === 0) return 'none';
  let best = monthly[0] as MonthlyReturn;
  let worst = best;
  let positive = 0;
  for (const r of monthly) {
    if (r.return > best.return) best = r;
    if (r.return < worst.return) worst = r;
    if (r.return > 0) positive++;
  }
  return `${monthly.length} months, ${positive} positive; best ${fmtPct(best.return, 2, true)} (${best.month}), worst ${fmtPct(worst.return, 2, true)} (${worst.month})`;
}

function renderMetrics(m: BacktestMetrics, quote: string): string {
  const out: string[] = ['<table class="metrics"><thead><tr><th>Metric</th><th class="num">Value</th><th>Definition</th></tr></thead><tbody>'];
  for (const row of METRIC_ROWS) {
    const def = escapeHtml(row.def);
    out.push(`<tr data-metric="${row.key}" title="${def}"><th>${escapeHtml(row.label)}</th><td class="num">${escapeHtml(row.fmt(m, quote))}</td><td class="def">${def}</td></tr>`);
  }
  out.push('</tbody></table>');
  return out.join('');
}

// ---------------------------------------------------------------- charts

interface Series {
  readonly t: number[];
  readonly v: number[];
}

/**
 * Reduces a step curve (value v[i] holds from t[i] until t[i+1]) to at most
 * 2 × buckets + 1 points: the time span is cut into equal buckets and each
 * keeps its lowest and highest value (the value carried into the bucket
 * counts, at the bucket's start), in time order, so spikes survive. Short
 * curves are drawn exactly, as steps. The last value is carried to tEnd.
 */
function downsample(t: Float64Array, v: Float64Array, tEnd: number, buckets: number): Series {
  const n = t.length;
  const ot: number[] = [];
  const ov: number[] = [];
  if (n === 0) return { t: ot, v: ov };
  if (n <= buckets) {
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        ot.push(t[i] as number);
        ov.push(v[i - 1] as number);
      }
      ot.push(t[i] as number);
      ov.push(v[i] as number);
    }
  } else {
    const t0 = t[0] as number;
    const width = (tEnd - t0) / buckets;
    let i = 0;
    let carried = v[0] as number;
    for (let b = 0; b < buckets && i < n; b++) {
      const start = t0 + b * width;
      const end = b === buckets - 1 ? Infinity : t0 + (b + 1) * width;
      let minV = carried;
      let maxV = carried;
      let minT = start;
      let maxT = start;
      for (; i < n; i++) {
        const ti = t[i] as number;
        if (ti >= end) break;
        const vi = v[i] as number;
        if (vi < minV) {
          minV = vi;
          minT = ti;
        } else if (vi > maxV) {
          maxV = vi;
          maxT = ti;
        }
        carried = vi;
      }
      if (minV === maxV) {
        ot.push(start);
        ov.push(minV);
      } else if (minT <= maxT) {
        ot.push(minT, maxT);
        ov.push(minV, maxV);
      } else {
        ot.push(maxT, minT);
        ov.push(maxV, minV);
      }
    }
    // Points stamped after tEnd (none in practice) land in the last bucket.
    for (; i < n; i++) carried = v[i] as number;
    ot.push(Math.max(tEnd, ot[ot.length - 1] as number));
    ov.push(carried);
    return { t: ot, v: ov };
  }
  const last = t[n - 1] as number;
  if (tEnd > last) {
    ot.push(tEnd);
    ov.push(v[n - 1] as number);
  }
  return { t: ot, v: ov };
}

/** Round step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over span. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

function valueTicks(min: number, max: number, count: number): { ticks: number[]; step: number } {
  const step = niceStep(max - min, count);
  const ticks: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let k = first; k * step <= max + step * 1e-9 && ticks.length < 50; k++) ticks.push(Number((k * step).toPrecision(12)));
  return { ticks, step };
}

/** Decimals that show every multiple of step exactly (2.5 -> 1, 0.05 -> 2, 50 -> 0). */
function decimalsFor(step: number): number {
  for (let d = 0; d < 8; d++) {
    const scaled = step * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
  }
  return 8;
}

const TIME_STEPS_MS = [MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS, 2 * DAY_MS, 7 * DAY_MS, 14 * DAY_MS];
const MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120];

/** A few UTC date ticks on round boundaries (hours, days, month starts). */
function timeTicks(t0: number, t1: number, maxTicks: number): Array<{ t: number; label: string }> {
  const span = t1 - t0;
  const out: Array<{ t: number; label: string }> = [];
  const fixed = TIME_STEPS_MS.find((s) => span / s <= maxTicks);
  if (fixed !== undefined) {
    for (let t = Math.ceil(t0 / fixed) * fixed; t <= t1; t += fixed) {
      out.push({ t, label: fixed >= DAY_MS ? utcDate(t) : span > DAY_MS ? formatUtc(t).slice(5) : formatUtc(t).slice(11) });
    }
    return out;
  }
  const months = span / (30.44 * DAY_MS);
  const step = MONTH_STEPS.find((s) => months / s <= maxTicks) ?? Math.ceil(months / maxTicks / 12) * 12;
  const start = civilFromDays(Math.floor(t0 / DAY_MS));
  let index = start.y * 12 + (start.m - 1);
  if (daysFromCivil(start.y, start.m, 1) * DAY_MS < t0) index++;
  index = Math.ceil(index / step) * step;
  for (; ; index += step) {
    const y = Math.floor(index / 12);
    const m = (index % 12) + 1;
    const t = daysFromCivil(y, m, 1) * DAY_MS;
    if (t > t1 || out.length > maxTicks * 2) break;
    out.push({ t, label: step % 12 === 0 ? String(y) : `${y}-${pad2(m)}` });
  }
  return out;
}

const CHART_W = 960;
const PAD_L = 72;
const PAD_R = 16;
const PAD_T = 14;
const PAD_B = 28;

interface Frame {
  readonly h: number;
  readonly t0: number;
  readonly t1: number;
  readonly vMin: number;
  readonly vMax: number;
}

function xOf(f: Frame, t: number): number {
  return PAD_L + ((t - f.t0) / (f.t1 - f.t0)) * (CHART_W - PAD_L - PAD_R);
}

function yOf(f: Frame, v: number): number {
  return PAD_T + ((f.vMax - v) / (f.vMax - f.vMin)) * (f.h - PAD_T - PAD_B);
}

function r1(x: number): string {
  return String(Math.round(x * 10) / 10);
}

function axes(f: Frame, yTicks: readonly number[], yLabel: (v: number) => string): string {
  const out: string[] = [];
  const bottom = f.h - PAD_B;
  for (const v of yTicks) {
    const y = r1(yOf(f, v));
    out.push(`<line class="grid" x1="${PAD_L}" x2="${CHART_W - PAD_R}" y1="${y}" y2="${y}"/><text class="ylab" x="${PAD_L - 6}" y="${y}" dy="0.32em" text-anchor="end">${escapeHtml(yLabel(v))}</text>`);
  }
  for (const tick of timeTicks(f.t0, f.t1, 7)) {
    const xv = xOf(f, tick.t);
    const x = r1(xv);
    // Labels near the right edge end at their tick instead of running off the picture.
    const anchor = xv > CHART_W - PAD_R - 45 ? 'end' : 'middle';
    out.push(`<line class="tick" x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}"/><text class="xlab" x="${x}" y="${bottom + 17}" text-anchor="${anchor}">${escapeHtml(tick.label)}</text>`);
  }
  out.push(`<line class="axis" x1="${PAD_L}" x2="${CHART_W - PAD_R}" y1="${bottom}" y2="${bottom}"/><line class="axis" x1="${PAD_L}" x2="${PAD_L}" y1="${PAD_T}" y2="${bottom}"/>`);
  return out.join('');
}

function pointsOf(f: Frame, s: Series): string {
  const n = s.t.length;
  const parts: string[] = [];
  let prev = '';
  for (let i = 0; i < n; i++) {
    const p = `${r1(xOf(f, s.t[i] as number))},${r1(yOf(f, s.v[i] as number))}`;
    if (p !== prev) parts.push(p); // a repeat draws nothing
    prev = p;
  }
  return parts.join(' ');
}

interface Curves {
  readonly equity: Series;
  readonly drawdown: Series;
  readonly t0: number;
  readonly t1: number;
  readonly minEquity: number;
  readonly maxEquity: number;
  readonly minDrawdown: number;
  readonly minDrawdownT: number;
  readonly start: number;
}

/** Parses the sparse curve once (start balance at `from` prepended), derives the drawdown and downsamples both. */
function buildCurves(report: BacktestReport): Curves {
  const eq: readonly EquityPoint[] = report.equity;
  const n = eq.length;
  const parsedStart = Number(report.config.balance);
  const start = Number.isFinite(parsedStart) ? parsedStart : n > 0 ? Number((eq[0] as EquityPoint).equity) : 0;
  const from = report.config.from;
  const firstT = n > 0 ? (eq[0] as EquityPoint).t : from;
  const t0 = Math.min(from, firstT);
  const lastT = n > 0 ? (eq[n - 1] as EquityPoint).t : t0;
  let t1 = Math.max(report.config.to, lastT);
  if (!(t1 > t0)) t1 = t0 + MINUTE_MS;

  const t = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const dd = new Float64Array(n + 1);
  t[0] = t0;
  v[0] = start;
  let peak = start;
  let minEquity = start;
  let maxEquity = start;
  let minDrawdown = 0;
  let minDrawdownT = t0;
  let prev = start;
  for (let i = 0; i < n; i++) {
    const p = eq[i] as EquityPoint;
    let x = Number(p.equity);
    if (!Number.isFinite(x)) x = prev;
    prev = x;
    t[i + 1] = p.t;
    v[i + 1] = x;
    if (x > peak) peak = x;
    if (x < minEquity) minEquity = x;
    if (x > maxEquity) maxEquity = x;
    const d = peak > 0 ? x / peak - 1 : 0;
    dd[i + 1] = d;
    if (d < minDrawdown) {
      minDrawdown = d;
      minDrawdownT = p.t;
    }
  }
  return {
    equity: downsample(t, v, t1, CHART_BUCKETS),
    drawdown: downsample(t, dd, t1, CHART_BUCKETS),
    t0,
    t1,
    minEquity,
    maxEquity,
    minDrawdown,
    minDrawdownT,
    start,
  };
}

function renderEquityChart(c: Curves): string {
  const h = 300;
  let lo = c.minEquity;
  let hi = c.maxEquity;
  const pad = hi > lo ? (hi - lo) * 0.05 : Math.max(Math.abs(hi) * 0.01, 1);
  lo -= pad;
  hi += pad;
  const { ticks, step } = valueTicks(lo, hi, 5);
  const decimals = decimalsFor(step);
  const f: Frame = { h, t0: c.t0, t1: c.t1, vMin: lo, vMax: hi };
  const base = r1(yOf(f, c.start));
  return [
    `<svg class="chart-svg" id="equity-chart" viewBox="0 0 ${CHART_W} ${h}" role="img" aria-label="Equity curve">`,
    axes(f, ticks, (x) => fmtNum(x, decimals)),
    `<line class="baseline" x1="${PAD_L}" x2="${CHART_W - PAD_R}" y1="${base}" y2="${base}"/>`,
    `<polyline class="equity-line" points="${pointsOf(f, c.equity)}"/>`,
    '</svg>',
  ].join('');
}

function renderDrawdownChart(c: Curves): string {
  const h = 200;
  const lo = c.minDrawdown < 0 ? c.minDrawdown * 1.08 : -0.01;
  const { ticks, step } = valueTicks(lo, 0, 4);
  const decimals = decimalsFor(Number((step * 100).toPrecision(12)));
  const f: Frame = { h, t0: c.t0, t1: c.t1, vMin: lo, vMax: 0 };
  const zero = r1(yOf(f, 0));
  const s = c.drawdown;
  const n = s.t.length;
  const line = pointsOf(f, s);
  const first = n > 0 ? r1(xOf(f, s.t[0] as number)) : String(PAD_L);
  const last = n > 0 ? r1(xOf(f, s.t[n - 1] as number)) : String(PAD_L);
  const out = [
    `<svg class="chart-svg" id="drawdown-chart" viewBox="0 0 ${CHART_W} ${h}" role="img" aria-label="Drawdown" data-min="${c.minDrawdown}">`,
    axes(f, ticks, (x) => fmtPct(x, decimals)),
    `<path class="dd-area" d="M${first},${zero} L${line.replaceAll(' ', ' L')} L${last},${zero} Z"/>`,
    `<polyline class="dd-line" points="${line}"/>`,
  ];
  if (c.minDrawdown < 0) {
    const x = xOf(f, c.minDrawdownT);
    const y = yOf(f, c.minDrawdown);
    const anchor = x > CHART_W * 0.75 ? 'end' : 'start';
    out.push(
      `<circle class="dd-min-dot" cx="${r1(x)}" cy="${r1(y)}" r="3"/>`,
      `<text class="dd-min" x="${r1(anchor === 'end' ? x - 6 : x + 6)}" y="${r1(Math.min(y, h - PAD_B - 4))}" dy="-0.2em" text-anchor="${anchor}">max drawdown ${fmtPct(c.minDrawdown)}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('');
}

// ---------------------------------------------------------------- monthly heatmap

const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function heatStyle(r: number, scale: number): string {
  if (r === 0 || !Number.isFinite(r) || !(scale > 0)) return '';
  const alpha = 0.12 + 0.68 * Math.sqrt(Math.min(1, Math.abs(r) / scale));
  return r > 0 ? ` style="background:rgba(26,127,55,${alpha.toFixed(2)})"` : ` style="background:rgba(207,34,46,${alpha.toFixed(2)})"`;
}

function heatCell(label: string, r: number, scale: number, extraClass: string): string {
  const text = fmtPct(r, 2, true);
  return `<td class="hm ${signClass(r)}${extraClass}" data-month="${escapeHtml(label)}" title="${escapeHtml(label)}: ${text}"${heatStyle(r, scale)}>${text}</td>`;
}

function renderHeatmap(monthly: readonly MonthlyReturn[]): string {
  if (monthly.length === 0) return '<p class="muted">No monthly returns (empty period).</p>';
  const years = new Map<number, Array<number | undefined>>();
  let scale = 0;
  for (const r of monthly) {
    const y = Number(r.month.slice(0, 4));
    const m = Number(r.month.slice(5, 7));
    if (!Number.isInteger(y) || !(m >= 1 && m <= 12)) continue;
    let row = years.get(y);
    if (row === undefined) {
      row = new Array<number | undefined>(12).fill(undefined);
      years.set(y, row);
    }
    row[m - 1] = r.return;
    if (Number.isFinite(r.return)) scale = Math.max(scale, Math.abs(r.return));
  }
  const sorted = [...years.keys()].sort((a, b) => a - b);
  const totals = new Map<number, number>();
  let yearScale = 0;
  for (const y of sorted) {
    let g = 1;
    for (const r of years.get(y) as Array<number | undefined>) if (r !== undefined) g *= 1 + r;
    totals.set(y, g - 1);
    if (Number.isFinite(g - 1)) yearScale = Math.max(yearScale, Math.abs(g - 1));
  }
  const out: string[] = ['<table class="heatmap"><thead><tr><th>Year</th>'];
  for (const name of MONTH_NAMES) out.push(`<th>${name}</th>`);
  out.push('<th>Year</th></tr></thead><tbody>');
  for (const y of sorted) {
    const row = years.get(y) as Array<number | undefined>;
    out.push(`<tr><th>${y}</th>`);
    for (let m = 0; m < 12; m++) {
      const r = row[m];
      out.push(r === undefined ? '<td class="hm empty"></td>' : heatCell(`${y}-${pad2(m + 1)}`, r, scale, ''));
    }
    out.push(heatCell(String(y), totals.get(y) as number, yearScale, ' total'), '</tr>');
  }
  out.push('</tbody></table>');
  return out.join('');
}

// ---------------------------------------------------------------- trades

function renderTrades(trades: readonly BacktestTrade[]): string {
  if (trades.length === 0) return '<p class="muted">No trades.</p>';
  const shown = Math.min(trades.length, MAX_TRADE_ROWS);
  const out: string[] = [
    '<div class="scroll"><table class="trades"><thead><tr><th class="num">#</th><th>Symbol</th><th>Side</th><th>Entry time</th><th class="num">Entry price</th><th>Exit time</th><th class="num">Exit price</th><th class="num">Quantity</th><th class="num">PnL</th><th class="num">PnL %</th><th class="num">Fees</th><th class="num">Funding</th><th class="num">Holding</th></tr></thead><tbody>',
  ];
  for (let i = 0; i < shown; i++) {
    const tr = trades[i] as BacktestTrade;
    const pnl = String(tr.pnl);
    out.push(
      `<tr><td class="num">${i + 1}</td><td>${escapeHtml(tr.symbol)}</td><td class="side-${tr.side === 'SHORT' ? 'short' : 'long'}">${escapeHtml(tr.side)}</td>` +
        `<td class="time">${formatUtc(tr.entryTime)}</td><td class="num">${escapeHtml(tr.entryPrice)}</td>` +
        `<td class="time">${formatUtc(tr.exitTime)}</td><td class="num">${escapeHtml(tr.exitPrice)}</td>` +
        `<td class="num">${escapeHtml(tr.quantity)}</td><td class="num ${decimalSignClass(pnl)}">${escapeHtml(pnl)}</td>` +
        `<td class="num ${signClass(tr.pnlPct)}">${fmtPct(tr.pnlPct / 100, 2, true)}</td><td class="num">${escapeHtml(tr.fees)}</td>` +
        `<td class="num">${escapeHtml(tr.funding)}</td><td class="num">${formatDuration(tr.holdingMs)}</td></tr>`,
    );
  }
  out.push('</tbody></table></div>');
  if (trades.length > shown) {
    const left = trades.length - shown;
    out.push(`<p class="left-out">Showing the first ${fmtNum(shown, 0)} of ${fmtNum(trades.length, 0)} trades: ${fmtNum(left, 0)} more are left out here; the JSON and CSV exports have all of them.</p>`);
  }
  return out.join('');
}

// ---------------------------------------------------------------- header

function renderSetup(report: BacktestReport): string {
  const c = report.config;
  const rows: Array<[string, string]> = [];
  rows.push(['Market', escapeHtml(c.market)]);
  rows.push(['Period', `${formatUtc(c.from)} → ${formatUtc(c.to)} UTC <span class="muted">(${formatDuration(c.to - c.from)}, end exclusive)</span>`]);
  rows.push(['Balance', escapeHtml(c.balance)]);
  rows.push(['Fees', `maker ${decimalPct(c.fees.maker)}, taker ${decimalPct(c.fees.taker)} <span class="muted">(${escapeHtml(c.fees.maker)} / ${escapeHtml(c.fees.taker)})</span>`]);
  rows.push(['Slippage', `${escapeHtml(c.slippageBps)} bps`]);
  rows.push(['Latency', `${fmtNum(c.latencyMs, 0)} ms`]);
  rows.push(['Funding', c.funding ? `${escapeHtml(c.funding.source)} rate ${escapeHtml(c.funding.rate)} (${decimalPct(c.funding.rate)}) per 8 h` : 'none']);
  rows.push(['Git commit', `<code>${escapeHtml(report.gitCommit)}</code>`]);
  rows.push(['Created', `${formatUtc(report.createdAt)} UTC`]);
  if (report.id !== undefined) rows.push(['Run id', escapeHtml(report.id)]);
  rows.push(['Candles', fmtNum(report.candles, 0)]);
  rows.push(['Orders', `${fmtNum(report.orders.submitted, 0)} submitted, ${fmtNum(report.orders.filled, 0)} filled, ${fmtNum(report.orders.denied, 0)} denied`]);
  if (report.closedAtEnd.length > 0) rows.push(['Closed at end', escapeHtml(report.closedAtEnd.join(', '))]);
  if (Number.isFinite(report.elapsedMs)) rows.push(['Run time', `${fmtNum(report.elapsedMs / 1000, 2)} s`]);

  const out: string[] = ['<table class="strategies"><thead><tr><th>Strategy</th><th>Symbol</th><th>Timeframe</th><th>Params</th><th>Data source</th></tr></thead><tbody>'];
  for (const s of c.strategies) {
    out.push(
      `<tr><td>${escapeHtml(s.strategy)}</td><td>${escapeHtml(s.symbol)}</td><td>${escapeHtml(s.timeframe)}</td><td><code class="params">${escapeHtml(safeJson(s.params))}</code></td><td>${s.source === undefined ? '<span class="muted">—</span>' : escapeHtml(s.source)}</td></tr>`,
    );
  }
  out.push('</tbody></table><table class="setup"><tbody>');
  for (const [k, v] of rows) out.push(`<tr><th>${k}</th><td>${v}</td></tr>`);
  out.push('</tbody></table>');
  return out.join('');
}

function renderNotes(notes: readonly string[]): string {
  if (notes.length === 0) return '';
  const out: string[] = ['<section class="notes-box"><h2>Assumptions and notes</h2><ul class="notes">'];
  for (const n of notes) out.push(`<li>${escapeHtml(n)}</li>`);
  out.push('</ul></section>');
  return out.join('');
}

// ---------------------------------------------------------------- page

const CSS = `
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1200px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
.sub,.muted{color:#656d76}
.sub{margin:0 0 16px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;margin:8px 0}
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
thead th{background:#eef1f4;font-weight:600;white-space:nowrap}
tbody tr:nth-child(even){background:#f6f8fa}
tbody th{font-weight:600;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.time{white-space:nowrap;font-variant-numeric:tabular-nums}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
table.setup{width:auto;min-width:50%}
table.setup th{width:9em;color:#424a53}
table.metrics{width:auto}
table.metrics td.def{color:#656d76;font-size:12px;max-width:560px}
table.metrics tr{cursor:help}
.notes-box{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:4px 16px 10px;margin:16px 0}
.notes-box h2{border:0;margin:10px 0 4px}
.notes{margin:0;padding-left:20px}
.notes li{margin:3px 0}
.chart{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px;margin:8px 0}
.chart-svg{display:block;width:100%;height:auto;font-size:11px;font-family:inherit}
.chart-svg .grid{stroke:#eaeef2;stroke-width:1}
.chart-svg .axis,.chart-svg .tick{stroke:#8c959f;stroke-width:1}
.chart-svg .ylab,.chart-svg .xlab{fill:#57606a}
.chart-svg .baseline{stroke:#8c959f;stroke-width:1;stroke-dasharray:4 4}
.chart-svg .equity-line{fill:none;stroke:#0969da;stroke-width:1.5;stroke-linejoin:round}
.chart-svg .dd-area{fill:rgba(207,34,46,.25);stroke:none}
.chart-svg .dd-line{fill:none;stroke:#cf222e;stroke-width:1}
.chart-svg .dd-min-dot{fill:#cf222e}
.chart-svg .dd-min{fill:#a40e26;font-weight:600}
table.heatmap{width:auto}
table.heatmap td.hm{text-align:center;min-width:64px;white-space:nowrap;font-variant-numeric:tabular-nums;border:1px solid #fff}
table.heatmap td.total{font-weight:600;border-left:2px solid #d0d7de}
td.pos{color:#116329}
td.neg{color:#a40e26}
table.heatmap td.pos,table.heatmap td.neg{color:#1f2328}
.side-long{color:#116329}
.side-short{color:#a40e26}
.scroll{overflow-x:auto}
.left-out{background:#ddf4ff;border:1px solid #54aeff;border-radius:6px;padding:6px 12px}
footer{margin-top:32px;color:#8c959f;font-size:12px}
`;

/** The whole report as one self-contained HTML document (UTF-8, no external resource, no script). */
export function renderHtmlReport(report: BacktestReport): string {
  const c = report.config;
  const symbols = [...new Set(c.strategies.map((s) => s.symbol))];
  const names = [...new Set(c.strategies.map((s) => s.strategy))];
  const timeframes = [...new Set(c.strategies.map((s) => s.timeframe))];
  const quote = quoteUnit(symbols);
  const title = `Backtest: ${names.join(', ') || 'no strategy'} on ${symbols.join(', ') || 'no symbol'}`;
  const curves = buildCurves(report);
  const m = report.metrics;
  const headline = `${c.market} · ${timeframes.join(', ')} · ${utcDate(c.from)} → ${utcDate(c.to)} · total return ${fmtPct(m.totalReturn, 2, true)} · max drawdown ${fmtPct(m.maxDrawdown)} · ${fmtNum(m.trades, 0)} trades`;

  return [
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Nothing may load from anywhere: the page is complete as it is.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body><main class="wrap">`,
    `<header><h1>${escapeHtml(title)}</h1><p class="sub">${escapeHtml(headline)}</p></header>`,
    '<section id="setup"><h2>Setup</h2>',
    renderSetup(report),
    '</section>',
    renderNotes(report.notes),
    '<section id="metrics"><h2>Metrics</h2>',
    renderMetrics(m, quote),
    '</section>',
    `<section id="equity"><h2>Equity <span class="muted">(${escapeHtml(quote)}, dashed line = start balance)</span></h2><div class="chart">`,
    renderEquityChart(curves),
    '</div></section>',
    '<section id="drawdown"><h2>Drawdown <span class="muted">(equity / running peak - 1)</span></h2><div class="chart">',
    renderDrawdownChart(curves),
    '</div></section>',
    '<section id="monthly"><h2>Monthly returns <span class="muted">(UTC months; year = months compounded)</span></h2>',
    renderHeatmap(m.monthly),
    '</section>',
    `<section id="trades"><h2>Trades <span class="muted">(${fmtNum(report.trades.length, 0)}; prices, quantities, PnL, fees and funding as recorded, in ${escapeHtml(quote)})</span></h2>`,
    renderTrades(report.trades),
    '</section>',
    `<footer>Generated ${formatUtc(report.createdAt)} UTC from commit ${escapeHtml(report.gitCommit)}. All times UTC.</footer>`,
    '</main></body></html>\n',
  ].join('');
}
