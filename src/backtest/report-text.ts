/**
 * Backtest reports for the terminal and as CSV. Every figure is named, and
 * the terminal shows each metric's unit; the definitions live in types.ts
 * and the HTML report.
 */
import type { BacktestMetrics, BacktestReport, BacktestTrade } from './types.ts';

const DAY = 86_400_000;

export function pct(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return x > 0 ? '∞' : x < 0 ? '-∞' : 'n/a';
  return `${(x * 100).toFixed(digits)} %`;
}

export function num(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return x > 0 ? '∞' : x < 0 ? '-∞' : 'n/a';
  return x.toFixed(digits);
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0m';
  const d = Math.floor(ms / DAY);
  const h = Math.floor((ms % DAY) / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m || (!d && !h) ? `${m}m` : ''].filter(Boolean).join(' ');
}

export function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

/** [label, value] rows, in the order the report shows them. */
export function metricRows(m: BacktestMetrics): Array<[string, string]> {
  return [
    ['Start equity', num(m.startEquity)],
    ['End equity', num(m.endEquity)],
    ['Total return', pct(m.totalReturn)],
    ['Annualized return', pct(m.annualizedReturn)],
    ['Max drawdown', pct(m.maxDrawdown)],
    ['Max drawdown duration', duration(m.maxDrawdownDurationMs)],
    ['Sharpe (daily, sqrt 365)', num(m.sharpe)],
    ['Sortino (daily, sqrt 365)', num(m.sortino)],
    ['Calmar', num(m.calmar)],
    ['Trades', String(m.trades)],
    ['Win rate', pct(m.winRate)],
    ['Profit factor', num(m.profitFactor)],
    ['Expectancy (per trade)', num(m.expectancy, 4)],
    ['Average win', num(m.avgWin, 4)],
    ['Average loss', num(m.avgLoss, 4)],
    ['Largest win', num(m.largestWin, 4)],
    ['Largest loss', num(m.largestLoss, 4)],
    ['Average holding time', duration(m.avgHoldingMs)],
    ['Time in market', pct(m.timeInMarket)],
    ['Fees paid', num(m.feesPaid, 4)],
    ['Funding paid', num(m.fundingPaid, 4)],
  ];
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], rightFrom = 1): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i >= rightFrom ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(headers), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}

function describe(r: BacktestReport): string[] {
  const c = r.config;
  const strategies = c.strategies.map((s) => `${s.strategy} ${s.symbol} ${s.timeframe} ${JSON.stringify(s.params)}${s.source ? ` (${s.source})` : ''}`);
  return [
    `Backtest${r.id !== undefined ? ` #${r.id}` : ''}: ${c.market} ${utc(c.from)} .. ${utc(c.to)} UTC, ${r.candles} candles, commit ${r.gitCommit.slice(0, 12)}`,
    ...strategies.map((s) => `  ${s}`),
    `  balance ${c.balance}, fees maker ${c.fees.maker} / taker ${c.fees.taker}, slippage ${c.slippageBps} bps, latency ${c.latencyMs} ms` +
      (c.funding ? `, funding ${c.funding.rate} per 8 h (${c.funding.source})` : ''),
    `  orders: ${r.orders.submitted} sent, ${r.orders.filled} fills, ${r.orders.denied} denied` +
      (r.orders.deniedBy && r.orders.denied > 0 ? ` (${Object.entries(r.orders.deniedBy).map(([k, v]) => `${k} ${v}`).join(', ')})` : '') +
      `; ran in ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
}

/** Monthly returns: one row per year, Jan..Dec and the compounded year. */
export function monthlyGrid(m: BacktestMetrics): { year: string; months: (number | undefined)[]; total: number }[] {
  const years = new Map<string, (number | undefined)[]>();
  for (const x of m.monthly) {
    const [y, mo] = x.month.split('-');
    const row = years.get(y!) ?? new Array<number | undefined>(12).fill(undefined);
    row[Number(mo) - 1] = x.return;
    years.set(y!, row);
  }
  return [...years.entries()].sort().map(([year, months]) => ({ year, months, total: months.reduce<number>((a, r) => (r === undefined ? a : (1 + a) * (1 + r) - 1), 0) }));
}

export function formatReportTable(r: BacktestReport, maxTrades = 20): string {
  const out: string[] = [...describe(r), ''];
  out.push(table(['Metric', 'Value'], metricRows(r.metrics)));
  const grid = monthlyGrid(r.metrics);
  if (grid.length > 0) {
    out.push('', 'Monthly returns (%)');
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    out.push(table(['Year', ...months, 'Year'], grid.map((g) => [g.year, ...g.months.map((v) => (v === undefined ? '' : (v * 100).toFixed(1))), (g.total * 100).toFixed(1)])));
  }
  if (r.trades.length > 0) {
    const shown = r.trades.slice(-maxTrades);
    out.push('', `Trades (last ${shown.length} of ${r.trades.length}; --output csv|json|html for all)`);
    out.push(table(TRADE_HEADERS.slice(0, 9), shown.map((t) => tradeCells(t).slice(0, 9)), 3));
  }
  if (r.notes.length > 0) out.push('', 'Notes', ...r.notes.map((n) => `  - ${n}`));
  return out.join('\n');
}

const TRADE_HEADERS = ['Symbol', 'Side', 'Entry time', 'Entry price', 'Exit time', 'Exit price', 'Quantity', 'PnL', 'PnL %', 'Fees', 'Funding', 'Holding'];

function tradeCells(t: BacktestTrade): string[] {
  return [t.symbol, t.side, utc(t.entryTime), t.entryPrice, utc(t.exitTime), t.exitPrice, t.quantity, t.pnl, t.pnlPct.toFixed(2), t.fees, t.funding, duration(t.holdingMs)];
}

/** Two runs side by side, with the difference where it is a number. */
export function formatCompare(a: BacktestReport, b: BacktestReport): string {
  const ra = metricRows(a.metrics);
  const rb = metricRows(b.metrics);
  const keys: (keyof BacktestMetrics)[] = ['startEquity', 'endEquity', 'totalReturn', 'annualizedReturn', 'maxDrawdown', 'maxDrawdownDurationMs', 'sharpe', 'sortino', 'calmar', 'trades', 'winRate', 'profitFactor', 'expectancy', 'avgWin', 'avgLoss', 'largestWin', 'largestLoss', 'avgHoldingMs', 'timeInMarket', 'feesPaid', 'fundingPaid'];
  const rows = ra.map(([label, va], i) => {
    const k = keys[i]!;
    const x = a.metrics[k] as number;
    const y = b.metrics[k] as number;
    const d = y - x;
    const shown = !Number.isFinite(d) ? '' : /%$/.test(va) ? pct(d) : /[dhm]$/.test(va) ? (d < 0 ? '-' : '+') + duration(Math.abs(d)) : (d >= 0 ? '+' : '') + num(d, 4);
    return [label, va, rb[i]![1], shown];
  });
  const head = (r: BacktestReport): string => `#${r.id} ${r.config.strategies.map((s) => `${s.strategy} ${s.symbol} ${JSON.stringify(s.params)}`).join('; ')} ${utc(r.config.from)}..${utc(r.config.to)} (${r.gitCommit.slice(0, 12)})`;
  return [`A: ${head(a)}`, `B: ${head(b)}`, '', table(['Metric', `A #${a.id}`, `B #${b.id}`, 'B - A'], rows)].join('\n');
}

// ------------------------------------------------------------------ CSV

function csvCell(v: string | number): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN') : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  return [headers.join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n') + '\n';
}

/** metric,value rows; the monthly table as month_YYYY-MM rows. Raw numbers (fractions, ms), not formatted. */
export function metricsCsv(m: BacktestMetrics): string {
  const rows: [string, number][] = [];
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number') rows.push([k, v]);
  for (const x of m.monthly) rows.push([`month_${x.month}`, x.return]);
  return csv(['metric', 'value'], rows);
}

export function tradesCsv(trades: readonly BacktestTrade[]): string {
  return csv(
    ['symbol', 'side', 'entry_time', 'entry_price', 'exit_time', 'exit_price', 'quantity', 'pnl', 'pnl_pct', 'fees', 'funding', 'holding_ms'],
    trades.map((t) => [t.symbol, t.side, new Date(t.entryTime).toISOString(), t.entryPrice, new Date(t.exitTime).toISOString(), t.exitPrice, t.quantity, t.pnl, t.pnlPct, t.fees, t.funding, t.holdingMs]),
  );
}

export function equityCsv(r: BacktestReport): string {
  return csv(['time', 'equity'], [[new Date(r.config.from).toISOString(), r.config.balance], ...r.equity.map((p) => [new Date(p.t).toISOString(), p.equity] as [string, string])]);
}
