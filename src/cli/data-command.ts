/**
 * `trader data`: import Binance kline dumps, download history over REST,
 * and list what the candle store holds. All three open the configured
 * database (DB_URL) and apply pending migrations first, as the bot does.
 */
import { isAbsolute, relative } from 'node:path';
import { LiveClock, type Clock } from '../core/clock.ts';
import { EXIT } from '../core/errors.ts';
import { formatGap } from '../market-data/candle-checks.ts';
import { DEFAULT_REST_BASE, DownloadError, downloadCandles, type DownloadProgress, type DownloadReport } from '../market-data/download.ts';
import { expandKlinePaths, importKlineFiles, type FileImportReport, type ImportTotals } from '../market-data/import.ts';
import { formatUtc, INTERVALS, isInterval, type Interval } from '../market-data/intervals.ts';
import { formatKlineFileIssue } from '../market-data/kline-files.ts';
import { MARKETS, SYMBOL_PATTERN, type Market } from '../model/market.ts';
import { CandleRepository } from '../store/candle-repository.ts';
import { peekEnv } from './env-peek.ts';
import { withMigratedStore } from './with-store.ts';

/** sysexits EX_DATAERR: some input file could not be imported (the others were). */
const EXIT_DATA_ERROR = 65;
/** Bad rows and gaps printed per file; the counts are always complete. */
const SHOW_ISSUES = 20;
const SHOW_GAPS = 5;

export interface ImportCommandOptions {
  market?: string;
  symbol?: string;
  timeframe?: string;
}

export interface DownloadCommandOptions {
  symbol?: string;
  market?: string;
  timeframe: string;
  from?: string;
  to?: string;
}

type Out = (line: string) => void;
const out: Out = (line) => void process.stdout.write(line + '\n');
const err: Out = (line) => void process.stderr.write(line + '\n');

// ---------------------------------------------------------------- import

export async function dataImport(paths: readonly string[], o: ImportCommandOptions): Promise<number> {
  const usage = (msg: string): number => {
    err(`trader data import: ${msg}`);
    return EXIT.USAGE;
  };
  if (o.market !== undefined && !isMarket(o.market)) return usage(`--market must be spot or futures, got ${JSON.stringify(o.market)}`);
  if (o.timeframe !== undefined && !isInterval(o.timeframe)) return usage(`--timeframe must be one of ${INTERVALS.join(', ')}, got ${JSON.stringify(o.timeframe)}`);
  if (o.symbol !== undefined && !SYMBOL_PATTERN.test(o.symbol)) return usage(`--symbol must be a Binance symbol such as BTCUSDT (upper-case letters and digits), got ${JSON.stringify(o.symbol)}`);
  const files = expandKlinePaths(paths);
  if (!Array.isArray(files)) return usage(files.error);
  if (files.length === 0) return usage(`no kline files (.csv, .csv.gz, .zip) in ${paths.join(', ')}`);

  return withCandleStore('data import', async (repo) => {
    const { totals } = await importKlineFiles(repo, files, {
      ...(o.market ? { market: o.market as Market } : {}),
      ...(o.symbol ? { symbol: o.symbol } : {}),
      ...(o.timeframe ? { timeframe: o.timeframe as Interval } : {}),
      onFile: (r) => printFileReport(r, out),
    });
    out(formatTotals(totals));
    return totals.failedFiles > 0 ? EXIT_DATA_ERROR : EXIT.OK;
  });
}

function printFileReport(r: FileImportReport, print: Out): void {
  const name = shortPath(r.file);
  if (r.error) {
    print(`${name}: not imported: ${r.error}`);
    return;
  }
  const span = r.first !== undefined ? `${formatUtc(r.first)} .. ${formatUtc(r.last!)} UTC` : 'no candles';
  print(
    `${name}: ${r.market} ${r.symbol} ${r.timeframe ?? '?'}, ${span}: ` +
      `${n(r.rowsRead)} rows read, ${n(r.inserted)} new, ${n(r.updated)} updated, ${n(r.badRows)} bad, ${gapText(r.gaps, r.missing)} (${r.seconds.toFixed(2)} s)`,
  );
  for (const i of r.issues.slice(0, SHOW_ISSUES)) print(`  bad row ${formatKlineFileIssue({ ...i, file: shortPath(i.file) })}`);
  if (r.badRows > SHOW_ISSUES) print(`  ... and ${n(r.badRows - SHOW_ISSUES)} more bad rows`);
  for (const g of r.firstGaps.slice(0, SHOW_GAPS)) print(`  gap ${formatGap(g)}`);
  if (r.gaps > SHOW_GAPS) print(`  ... and ${n(r.gaps - SHOW_GAPS)} more gaps`);
}

function formatTotals(t: ImportTotals): string {
  const rate = t.seconds > 0 ? `, ${n(Math.round(t.rowsRead / t.seconds))} rows/s` : '';
  const failed = t.failedFiles > 0 ? ` (${t.failedFiles} not imported)` : '';
  return `total: ${t.files} file${t.files === 1 ? '' : 's'}${failed}, ${n(t.rowsRead)} rows read, ${n(t.inserted)} new, ${n(t.updated)} updated, ${n(t.badRows)} bad, ${gapText(t.gaps, t.missing)} (${t.seconds.toFixed(2)} s${rate})`;
}

function gapText(gaps: number, missing: number): string {
  return gaps === 0 ? '0 gaps' : `${n(gaps)} gap${gaps === 1 ? '' : 's'} (${n(missing)} missing candles)`;
}

// ------------------------------------------------------------------ list

export async function dataList(): Promise<number> {
  return withCandleStore('data list', async (repo) => {
    const rows = repo.summary();
    if (rows.length === 0) {
      out('no candles stored yet: `trader data import <files>` or `trader data download --symbol ... --from ...` adds some');
      return EXIT.OK;
    }
    const table = [['market', 'symbol', 'timeframe', 'first (UTC)', 'last (UTC)', 'rows', 'gaps']];
    for (const r of rows) table.push([r.market, r.symbol, r.timeframe, formatUtc(r.first), formatUtc(r.last), n(r.rows), n(r.gaps)]);
    const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
    // Numbers right-aligned, text left-aligned.
    for (const row of table) out(row.map((cell, c) => (c >= 5 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
    out('gaps: candles missing between the first and the last (exchange outages, or history not downloaded yet)');
    return EXIT.OK;
  });
}

// -------------------------------------------------------------- download

export async function dataDownload(o: DownloadCommandOptions, clock: Clock = new LiveClock()): Promise<number> {
  const usage = (msg: string): number => {
    err(`trader data download: ${msg}`);
    return EXIT.USAGE;
  };
  if (!o.symbol) return usage('--symbol is required, e.g. --symbol BTCUSDT');
  const symbol = o.symbol.toUpperCase();
  if (!SYMBOL_PATTERN.test(symbol)) return usage(`--symbol must be a Binance symbol such as BTCUSDT (letters and digits), got ${JSON.stringify(o.symbol)}`);
  if (!o.market) return usage('--market is required: spot or futures (USD-M perpetuals)');
  if (!isMarket(o.market)) return usage(`--market must be spot or futures, got ${JSON.stringify(o.market)}`);
  const market: Market = o.market;
  if (!isInterval(o.timeframe)) return usage(`--timeframe must be one of ${INTERVALS.join(', ')}, got ${JSON.stringify(o.timeframe)}`);
  const interval: Interval = o.timeframe;
  if (!o.from) return usage('--from is required, e.g. --from 2024-01-01 (UTC)');
  const from = parseUtcDate(o.from);
  if (from === undefined) return usage(`--from: expected a UTC date such as 2024-01-01 or 2024-01-01T12:00, got ${JSON.stringify(o.from)}`);
  let to: number | undefined;
  if (o.to !== undefined) {
    to = parseUtcDate(o.to);
    if (to === undefined) return usage(`--to: expected a UTC date such as 2024-02-01 or 2024-02-01T12:00, got ${JSON.stringify(o.to)}`);
    if (to <= from) return usage(`--to (${o.to}) must be after --from (${o.from})`);
  }
  if (from >= clock.now()) return usage(`--from (${o.from}) is in the future`);

  const envName = market === 'spot' ? 'BINANCE_SPOT_REST_URL' : 'BINANCE_FUTURES_REST_URL';
  const baseUrl = peekEnv(envName) ?? DEFAULT_REST_BASE[market];
  const label = `${symbol} ${market} ${interval}`;

  return withCandleStore('data download', async (repo) => {
    const progress = new ProgressView(process.stderr, label, clock);
    const resumeFrom = repo.lastOpenTime(market, symbol, interval);
    if (resumeFrom !== undefined && resumeFrom >= from) err(`${label}: resuming after ${formatUtc(resumeFrom)} UTC, the last stored candle`);
    let report: DownloadReport;
    try {
      report = await downloadCandles(
        { market, symbol, interval, from, ...(to !== undefined ? { to } : {}) },
        { repo, clock, baseUrl, onProgress: (p) => progress.update(p), onNotice: (m) => progress.notice(`${label}: ${m}`) },
      );
    } catch (e) {
      progress.finish();
      if (!(e instanceof DownloadError)) throw e;
      const stored = repo.lastOpenTime(market, symbol, interval);
      err(`trader data download: ${e.flag ? `${e.flag}: ` : ''}${e.message}`);
      if (stored !== undefined) err(`${label}: candles up to ${formatUtc(stored)} UTC are stored; run the same command again to resume`);
      return e.flag ? EXIT.USAGE : e.retryable ? EXIT.TEMP_FAIL : EXIT.SOFTWARE;
    }
    progress.finish();
    printDownloadReport(report, label, baseUrl);
    return EXIT.OK;
  });
}

function printDownloadReport(r: DownloadReport, label: string, baseUrl: string): void {
  const waited = r.rateLimitWaits > 0 ? `; waited ${(r.rateLimitWaitMs / 1000).toFixed(0)} s for rate limits (${r.rateLimitWaits}x)` : '';
  const retried = r.retries > 0 ? `; ${r.retries} retries` : '';
  const stillOpen = r.open > 0 ? '; the candle in progress is left for later' : '';
  if (r.received === 0) {
    const after = r.resumedAfter !== undefined ? ` after ${formatUtc(r.resumedAfter)} UTC` : '';
    out(`${label}: nothing new${after} (${r.pages} page${r.pages === 1 ? '' : 's'} from ${baseUrl}${waited}${stillOpen}); ${n(r.badRows)} bad, 0 gaps`);
    return;
  }
  out(
    `${label}: ${n(r.received)} candles ${formatUtc(r.first!)} .. ${formatUtc(r.last!)} UTC, ${n(r.inserted)} new, ${n(r.updated)} updated; ` +
      `${r.pages} page${r.pages === 1 ? '' : 's'} from ${baseUrl} in ${r.seconds.toFixed(1)} s${waited}${retried}${stillOpen}; ${n(r.badRows)} bad, ${gapText(r.gaps, r.missing)}`,
  );
  for (const g of r.firstGaps.slice(0, SHOW_GAPS)) out(`  gap ${formatGap(g)}`);
  if (r.gaps > SHOW_GAPS) out(`  ... and ${n(r.gaps - SHOW_GAPS)} more gaps`);
}

/**
 * Progress on stderr: a redrawn bar with ETA on a terminal, else a plain
 * line for the first page and then at most every 5 s (logs stay readable).
 */
class ProgressView {
  private lastDraw = -Infinity;
  private drawn = false;
  private readonly tty: boolean;
  private last: DownloadProgress | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly label: string,
    private readonly clock: Clock,
  ) {
    this.tty = stream.isTTY === true;
  }

  update(p: DownloadProgress): void {
    this.last = p;
    const now = this.clock.now();
    if (now - this.lastDraw < (this.tty ? 100 : 5000)) return;
    this.lastDraw = now;
    this.draw(p);
  }

  notice(message: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(message + '\n');
    if (this.tty && this.last) this.draw(this.last);
  }

  finish(): void {
    if (this.tty && this.drawn) {
      if (this.last) this.draw(this.last);
      this.stream.write('\n');
    }
    this.drawn = false;
  }

  private draw(p: DownloadProgress): void {
    const span = Math.max(1, p.end - p.start);
    const f = Math.min(1, Math.max(0, (p.position - p.start) / span));
    const eta = f > 0 && f < 1 ? ` ETA ${duration((p.elapsedMs * (1 - f)) / f)}` : '';
    const pct = `${Math.floor(f * 100)}%`;
    const what = `${n(p.candles)} candles, up to ${formatUtc(p.position)} UTC`;
    if (this.tty) {
      const width = 24;
      const full = Math.round(f * width);
      this.stream.write(`\r\x1b[K${this.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${pct.padStart(4)}  ${what}${eta}`);
      this.drawn = true;
    } else {
      this.stream.write(`${this.label}: page ${p.pages}, ${what} (${pct}${eta})\n`);
    }
  }
}

// ---------------------------------------------------------------- helpers

/** The configured database, open and migrated, as a candle repository. */
function withCandleStore(command: string, fn: (repo: CandleRepository) => Promise<number>): Promise<number> {
  return withMigratedStore(command, (_settings, store) => fn(new CandleRepository(store)));
}

function isMarket(s: string): s is Market {
  return (MARKETS as readonly string[]).includes(s);
}

/**
 * A UTC date or date-time: 2024-01-01, 2024-01-01T12:00, 2024-01-01 12:00:30,
 * with an optional trailing Z. Undefined for anything else, including
 * impossible dates such as 2024-02-30.
 */
export function parseUtcDate(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/.exec(s.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return undefined;
  return t;
}

function n(x: number): string {
  return x.toLocaleString('en-US');
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function shortPath(p: string): string {
  if (!isAbsolute(p)) return p;
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}
