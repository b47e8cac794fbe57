/**
 * `trader portfolio show [--json]`, `trader portfolio history [--days 30] [--json]`
.
 *
 * show: through the running bot's control API when it runs (its live
 * portfolio), else from the database (positions table, last stored close as
 * the mark, cash from the last equity snapshot); the same builder either way.
 * history: always from the database, read-only (WAL: the running bot's writes
 * are not blocked), so it needs no running bot.
 */
import { LiveClock } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import { EXIT } from '../core/errors.ts';
import { storedPortfolioShow, type PortfolioShow } from '../control/portfolio-controls.ts';
import { dailyHistory, type DailyHistory } from '../portfolio/history.ts';
import { call, findRunningBot } from './bot-access.ts';
import { loadSettingsOrReport } from './run.ts';
import { withReadOnlyStore } from './with-store.ts';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

// ------------------------------------------------------------------ show

export async function portfolioShow(o: { json?: boolean }): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const remote = await findRunningBot(settings);
  if (remote) {
    let res;
    try {
      res = await call(remote, 'GET', '/v1/portfolio');
    } catch (e) {
      err(`trader portfolio show: the bot's control API at ${remote.url} did not answer: ${(e as Error).message}`);
      return EXIT.TEMP_FAIL;
    }
    if (res.status === 404) {
      // A bot started from an older checkout has no portfolio route: the database still answers (read-only).
      return withReadOnlyStore(settings, 'portfolio show', (store) => {
        printShow({ via: 'database (the running bot has no portfolio route: restart it for live figures)', ...storedPortfolioShow(store, settings.market, settings.bot.quoteAsset, new LiveClock().now()) }, o.json);
        return EXIT.OK;
      });
    }
    if (res.status !== 200) {
      err(`trader portfolio show: control API said ${res.status}: ${String(res.body.message ?? JSON.stringify(res.body))}`);
      return res.status === 401 ? EXIT.CONFIG : EXIT.SOFTWARE;
    }
    printShow({ via: 'running bot', ...(res.body as unknown as PortfolioShow) }, o.json);
    return EXIT.OK;
  }
  return withReadOnlyStore(settings, 'portfolio show', (store) => {
    const view = storedPortfolioShow(store, settings.market, settings.bot.quoteAsset, new LiveClock().now());
    printShow({ via: 'database (bot not running)', ...view }, o.json);
    return EXIT.OK;
  });
}

function printShow(v: PortfolioShow & { via: string }, json?: boolean): void {
  if (json) {
    out(JSON.stringify(v, null, 2));
    return;
  }
  const q = v.quoteAsset;
  const lines: string[] = [];
  lines.push(`portfolio (${v.market}, ${q}) via ${v.via}, as of ${v.asOf}`);
  lines.push(`equity: ${money(v.equity)} ${q}   unrealized PnL: ${signed(v.unrealizedPnl)}   exposure: gross ${money(v.grossExposure)} (${v.grossExposurePct ?? '?'} % of equity), net ${signed(v.netExposure)}`);
  lines.push(`cash: ${money(v.balances[0]?.value ?? null)} ${q} (${v.cashSource})`);
  lines.push('');
  lines.push('balances');
  lines.push(...table(['asset', 'quantity', `value (${q})`], v.balances.map((b) => [b.asset, b.quantity, money(b.value)]), [false, true, true]).map((l) => '  ' + l));
  lines.push('');
  if (v.positions.length === 0) lines.push('positions: none open');
  else {
    lines.push('positions');
    lines.push(
      ...table(
        ['symbol', 'side', 'quantity', 'entry', 'mark', 'unrealized PnL', 'notional', '% equity'],
        v.positions.map((p) => [p.symbol, p.side, p.quantity, p.entryPrice, p.markPrice ?? '-', p.unrealizedPnl === null ? '-' : signed(p.unrealizedPnl), money(p.notional), p.pctOfEquity ?? '-']),
        [false, false, true, true, true, true, true, true],
      ).map((l) => '  ' + l),
    );
    for (const p of v.positions) lines.push(`  ${p.symbol} mark: ${p.markSource}`);
  }
  out(lines.join('\n'));
}

// ------------------------------------------------------------------ history

export async function portfolioHistory(o: { days?: string; json?: boolean }): Promise<number> {
  const days = o.days === undefined ? 30 : Number(o.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) {
    err(`trader portfolio history: --days: expected a whole number of days from 1 to 3660, got ${JSON.stringify(o.days)}`);
    return EXIT.USAGE;
  }
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  return withReadOnlyStore(settings, 'portfolio history', (store) => {
    const h = dailyHistory(store, { market: settings.market, quoteAsset: settings.bot.quoteAsset, days, now: new LiveClock().now() });
    if (o.json) {
      out(JSON.stringify(h, null, 2));
      return EXIT.OK;
    }
    out(formatHistory(h, days));
    return EXIT.OK;
  });
}

/** The history as the terminal shows it: a table per day and a chart of daily equity. */
export function formatHistory(h: DailyHistory, days: number): string {
  const q = h.quoteAsset;
  if (h.days.length === 0) return `no equity snapshots yet (${h.market}, last ${days} day${days === 1 ? '' : 's'}): they are written every minute while the bot runs`;
  const lines: string[] = [`equity history (${h.market}, ${q}), last ${days} day${days === 1 ? '' : 's'}, UTC days; equity at each day's end (today: latest)`];
  lines.push(
    ...table(
      ['date', `equity (${q})`, 'day PnL', 'day PnL %', 'realized', 'fills'],
      h.days.map((d) => [d.day, money(d.equity), d.pnl === null ? '-' : signed(d.pnl), d.pnlPct === null ? '-' : `${d.pnlPct.startsWith('-') ? '' : '+'}${d.pnlPct} %`, signed(d.realized), String(d.fills)]),
      [false, true, true, true, true, true],
    ),
  );
  const points = h.days.filter((d) => d.equity !== null).map((d) => ({ label: d.day.slice(5), value: Number(d.equity) }));
  if (points.length > 0) {
    lines.push('');
    lines.push(...equityChart(points));
  }
  lines.push('');
  lines.push('day PnL: change in equity over the day (funding and deposits included); realized: the day\'s fills, net of fees. Exact figures: --json');
  return lines.join('\n');
}

const BLOCKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/**
 * A block chart, one column (two characters) per point, `height` rows, the
 * y axis labelled with the top and bottom values. One point, or equal points,
 * draw a flat half-height bar. Plain numbers: this is drawing, not money.
 */
export function equityChart(points: ReadonlyArray<{ label: string; value: number }>, height = 8): string[] {
  if (points.length === 0) return [];
  const values = points.map((p) => p.value);
  const max = Math.max(...values);
  const min = Math.min(...values);
  const span = max - min;
  // Eighths of a row per column: at least one (a visible bar), at most height * 8.
  const levels = values.map((v) => (span === 0 ? height * 4 : 1 + Math.round(((v - min) / span) * (height * 8 - 1))));
  const top = max.toFixed(2);
  const bottom = min.toFixed(2);
  const w = Math.max(top.length, bottom.length);
  const rows: string[] = [];
  for (let r = height - 1; r >= 0; r--) {
    const axis = r === height - 1 ? top.padStart(w) + ' ┤' : r === 0 ? bottom.padStart(w) + ' ┤' : ' '.repeat(w) + ' │';
    const cells = levels.map((l) => {
      const fill = l - r * 8;
      const ch = fill >= 8 ? BLOCKS[7]! : fill <= 0 ? ' ' : BLOCKS[fill - 1]!;
      return ch + ch;
    });
    rows.push((axis + cells.join('')).trimEnd());
  }
  const first = points[0]!.label;
  const last = points[points.length - 1]!.label;
  // First and last day under the chart (past its right edge when it is narrower than both).
  const labels = points.length === 1 ? first : first + ' '.repeat(Math.max(1, points.length * 2 - first.length - last.length)) + last;
  rows.push(' '.repeat(w + 2) + labels);
  return rows;
}

// ------------------------------------------------------------------ db backup

// ------------------------------------------------------------------ helpers

function table(headers: string[], rows: string[][], right: boolean[]): string[] {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** A money figure to 2 places (the quote asset's usual precision, half-even on the exact decimal); '-' when unknown. */
export function money(s: string | null): string {
  if (s === null || s === 'unknown') return '-';
  const t = new Dec(s).toFixed(2);
  return t === '-0.00' ? '0.00' : t;
}

function signed(s: string): string {
  const t = money(s);
  return t.startsWith('-') || t === '0.00' ? t : '+' + t;
}
