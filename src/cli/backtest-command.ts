/**
 * `trader backtest run|list|report|compare`. A run uses the configured
 * database's candle store (read) and stores its result there (the
 * backtest_runs table); the run itself trades in an in-memory database, so
 * it never touches the bot's orders or fills and can run while the bot runs.
 */
import { writeFileSync } from 'node:fs';
import { EXIT, TraderError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { prepareBacktest, type BacktestRequest } from '../backtest/job.ts';
import { renderHtmlReport } from '../backtest/html-report.ts';
import { equityCsv, formatCompare, formatReportTable, metricsCsv, num, pct, tradesCsv, utc } from '../backtest/report-text.ts';
import { BacktestRunStore, gitCommit, jsonNumbers } from '../backtest/run-store.ts';
import { runBacktest } from '../backtest/runner.ts';
import type { BacktestReport } from '../backtest/types.ts';
import { MARKETS, TIMEFRAMES, type Market } from '../model/market.ts';
import type { Instrument } from '../model/instrument.ts';
import { cachedInstruments } from '../execution/instrument-book.ts';
import { catalog } from '../venues/sim/catalog.ts';
import type { Settings } from '../settings/settings.ts';
import { CandleRepository } from '../store/candle-repository.ts';
import type { Store } from '../store/store.ts';
import { createIndicatorFactory } from '../strategy/indicators/index.ts';
import { parseUtcDate } from './data-command.ts';
import { withMigratedStore } from './with-store.ts';

export const OUTPUTS = ['table', 'json', 'csv', 'html'] as const;
export type Output = (typeof OUTPUTS)[number];

export interface BacktestRunOptions {
  strategy?: string;
  symbol?: string;
  timeframe?: string;
  from?: string;
  to?: string;
  market?: string;
  param: string[];
  balance?: string;
  feeBps?: string;
  slippageBps?: string;
  latencyMs?: string;
  fundingRate?: string;
  output: string;
  file?: string;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string): void => void process.stderr.write(s + '\n');

class UsageError extends TraderError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A date-only --to is inclusive (the whole day); a time is exclusive. */
export function parseRange(from: string | undefined, to: string | undefined): { from: number; to: number } {
  if (!from) throw new UsageError('--from is required (a UTC date such as 2024-01-01)');
  if (!to) throw new UsageError('--to is required (a UTC date such as 2024-12-31; a date alone includes that whole day)');
  const f = parseUtcDate(from);
  if (f === undefined) throw new UsageError(`--from: expected a UTC date such as 2024-01-01 or 2024-01-01T12:00, got ${JSON.stringify(from)}`);
  let t = parseUtcDate(to);
  if (t === undefined) throw new UsageError(`--to: expected a UTC date such as 2024-12-31 or 2024-12-31T12:00, got ${JSON.stringify(to)}`);
  if (/^\d{4}-\d{2}-\d{2}$/.test(to.trim())) t += 86_400_000;
  if (t <= f) throw new UsageError(`--to (${to}) must be after --from (${from})`);
  return { from: f, to: t };
}

/** "period=10" -> { period: 10 }; values are JSON when they parse, strings otherwise (the strategy's schema decides). */
export function parseParams(values: readonly string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const v of values.flatMap((x) => x.split(','))) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(v.trim());
    if (!m) throw new UsageError(`--param: expected key=value, got ${JSON.stringify(v)}`);
    let value: unknown = m[2];
    try {
      value = JSON.parse(m[2]!);
    } catch {
      // a string
    }
    params[m[1]!] = value;
  }
  return params;
}

function decimalOption(name: string, v: string | undefined, signed = false): string | undefined {
  if (v === undefined) return undefined;
  if (!(signed ? /^-?\d+(\.\d+)?$/ : /^\d+(\.\d+)?$/).test(v)) throw new UsageError(`${name}: expected a ${signed ? '' : 'non-negative '}number such as 10 or 0.5, got ${JSON.stringify(v)}`);
  return v;
}

export function requestFromOptions(o: BacktestRunOptions): BacktestRequest {
  if (!o.strategy) throw new UsageError('--strategy is required (see `trader strategy list`)');
  if (!o.symbol) throw new UsageError('--symbol is required, e.g. --symbol BTCUSDT or --symbol BTCUSDT,ETHUSDT');
  const symbols = o.symbol.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  if (o.market !== undefined && !(MARKETS as readonly string[]).includes(o.market)) throw new UsageError(`--market must be spot or futures, got ${JSON.stringify(o.market)}`);
  if (o.timeframe !== undefined && !(TIMEFRAMES as readonly string[]).includes(o.timeframe)) throw new UsageError(`--timeframe must be one of ${TIMEFRAMES.join(', ')}, got ${JSON.stringify(o.timeframe)}`);
  const range = parseRange(o.from, o.to);
  let latencyMs: number | undefined;
  if (o.latencyMs !== undefined) {
    latencyMs = Number(o.latencyMs);
    if (!Number.isInteger(latencyMs) || latencyMs < 0) throw new UsageError(`--latency-ms: expected whole milliseconds, got ${JSON.stringify(o.latencyMs)}`);
  }
  const feeBps = decimalOption('--fee-bps', o.feeBps);
  const slippageBps = decimalOption('--slippage-bps', o.slippageBps);
  const balance = decimalOption('--balance', o.balance);
  const fundingRate = decimalOption('--funding-rate', o.fundingRate, true);
  return {
    strategy: o.strategy,
    symbols,
    ...(o.market ? { market: o.market as BacktestRequest['market'] } : {}),
    ...(o.timeframe ? { timeframe: o.timeframe as BacktestRequest['timeframe'] } : {}),
    from: range.from,
    to: range.to,
    params: parseParams(o.param),
    ...(balance ? { balance } : {}),
    ...(feeBps ? { feeBps } : {}),
    ...(slippageBps ? { slippageBps } : {}),
    ...(latencyMs !== undefined ? { latencyMs } : {}),
    ...(fundingRate ? { fundingRate } : {}),
  };
}

/** Quiet unless something is wrong: a backtest's thousands of orders are its result, not log lines. */
function backtestLogger(settings: Settings) {
  return createLogger({ level: 'error', format: settings.env.LOG_FORMAT, stdout: { write: (line: string) => void process.stderr.write(line) } });
}

/**
 * Runs one request against the configured database and stores it. Shared by
 * the CLI, the optimizer's final run and the re-optimizer.
 */
export async function runAndStore(settings: Settings, store: Store, request: BacktestRequest, source: string): Promise<BacktestReport> {
  const prepared = await prepareBacktest(request, settings);
  const log = backtestLogger(settings);
  try {
    const result = await runBacktest({ ...prepared.config, sources: prepared.sources }, { settings, candles: new CandleRepository(store), logger: log.logger, indicators: createIndicatorFactory, instruments: backtestInstruments(store, prepared.config.market) });
    return new BacktestRunStore(store).save(source, prepared.request, result, gitCommit(settings.paths.cwd), Date.now());
  } finally {
    log.close();
  }
}

/** The shipped catalog, overridden by what the bot cached from Binance (newer filters, every listed symbol). */
export function backtestInstruments(store: Store, market: Market): Instrument[] {
  const bySymbol = new Map(catalog(market).map((i) => [i.symbol, i]));
  for (const i of cachedInstruments(store, market)) bySymbol.set(i.symbol, i);
  return [...bySymbol.values()];
}

export function render(report: BacktestReport, output: Output): { text: string; files?: Record<string, string> } {
  switch (output) {
    case 'table':
      return { text: formatReportTable(report) };
    case 'json':
      return { text: JSON.stringify(report, jsonNumbers, 2) };
    case 'html':
      return { text: renderHtmlReport(report) };
    case 'csv':
      return {
        text: `# metrics\n${metricsCsv(report.metrics)}\n# trades\n${tradesCsv(report.trades)}\n# equity\n${equityCsv(report)}`,
        files: { metrics: metricsCsv(report.metrics), trades: tradesCsv(report.trades), equity: equityCsv(report) },
      };
  }
}

/**
 * Writes the output. CSV to a file is three files (metrics, trades, equity:
 * one table each, as spreadsheets expect): out.csv -> out-metrics.csv,
 * out-trades.csv, out-equity.csv.
 */
function emit(report: BacktestReport, output: string, file: string | undefined): void {
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`--output must be one of ${OUTPUTS.join(', ')}, got ${JSON.stringify(output)}`);
  const r = render(report, output as Output);
  if (!file) return out(r.text);
  if (r.files) {
    const base = file.replace(/\.csv$/i, '');
    const written = Object.entries(r.files).map(([name, text]) => {
      const f = `${base}-${name}.csv`;
      writeFileSync(f, text);
      return f;
    });
    err(`wrote ${written.join(', ')}`);
  } else {
    writeFileSync(file, r.text.endsWith('\n') ? r.text : r.text + '\n');
    err(`wrote ${file}`);
  }
  if (output !== 'table') out(formatReportTable(report, 5));
}


export async function backtestRun(o: BacktestRunOptions): Promise<number> {
  let request: BacktestRequest;
  try {
    request = requestFromOptions(o);
    if (!(OUTPUTS as readonly string[]).includes(o.output)) throw new UsageError(`--output must be one of ${OUTPUTS.join(', ')}, got ${JSON.stringify(o.output)}`);
  } catch (e) {
    err(`trader backtest run: ${(e as Error).message}`);
    return EXIT.USAGE;
  }
  return withMigratedStore('backtest run', async (settings, store) => {
    const report = await runAndStore(settings, store, request, 'cli');
    emit(report, o.output, o.file);
    err(`stored as backtest #${report.id} (trader backtest report --id ${report.id})`);
    return EXIT.OK;
  });
}

export async function backtestList(o: { limit?: string; json?: boolean }): Promise<number> {
  const limit = o.limit === undefined ? 50 : Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    err(`trader backtest list: --limit: expected a whole number of runs >= 1, got ${JSON.stringify(o.limit)}`);
    return EXIT.USAGE;
  }
  return withMigratedStore('backtest list', async (_s, store) => {
    const runs = new BacktestRunStore(store).list(limit);
    if (o.json) {
      out(JSON.stringify(runs, jsonNumbers, 2));
      return EXIT.OK;
    }
    if (runs.length === 0) {
      out('no stored backtests yet: trader backtest run --strategy rsi --symbol BTCUSDT --from 2024-01-01 --to 2024-01-31');
      return EXIT.OK;
    }
    const rows = runs.map((r) => [String(r.id), utc(r.createdAt), r.source, r.strategy, r.symbols, r.market, `${utc(r.from).slice(0, 10)}..${utc(r.to - 1).slice(0, 10)}`, pct(r.metrics.totalReturn), num(r.metrics.sharpe), pct(r.metrics.maxDrawdown), String(r.metrics.trades), r.gitCommit.slice(0, 12)]);
    const headers = ['Id', 'Created (UTC)', 'Source', 'Strategy', 'Symbols', 'Market', 'Period', 'Return', 'Sharpe', 'Max DD', 'Trades', 'Commit'];
    const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    out([headers, ...rows].map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n'));
    return EXIT.OK;
  });
}

export async function backtestReport(o: { id: string; output: string; file?: string }): Promise<number> {
  return withMigratedStore('backtest report', async (_s, store) => {
    emit(new BacktestRunStore(store).get(o.id), o.output, o.file);
    return EXIT.OK;
  });
}

export async function backtestCompare(a: string, b: string, o: { json?: boolean }): Promise<number> {
  return withMigratedStore('backtest compare', async (_s, store) => {
    const runs = new BacktestRunStore(store);
    const ra = runs.get(a);
    const rb = runs.get(b);
    out(o.json ? JSON.stringify({ a: { id: ra.id, config: ra.config, metrics: ra.metrics }, b: { id: rb.id, config: rb.config, metrics: rb.metrics } }, jsonNumbers, 2) : formatCompare(ra, rb));
    return EXIT.OK;
  });
}
