/**
 * The `trader` command. Groups that later work fills in say so and exit 2;
 * they never pretend to have done something.
 */
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeFor } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';
import { formatStatus, judgeHeartbeatFile } from '../health/status.ts';
import { Store } from '../store/store.ts';
import { dataDownload, dataImport, dataList, type DownloadCommandOptions, type ImportCommandOptions } from './data-command.ts';
import { peekEnv } from './env-peek.ts';
import { runExchange, type ExchangeCommandOptions } from './exchange-command.ts';
import { loadSettingsOrReport, runBot } from './run.ts';
import { strategyInfo, strategyList, strategyValidate } from './strategy-command.ts';
import { tradeCommand, type TradeOptions } from './trade-command.ts';
import { orderCommand, type OrderOptions } from './order-command.ts';
import { runDemo, type DemoOptions } from './demo-command.ts';
import { reconcileCommand } from './reconcile-command.ts';
import { registerOptimize } from './optimize-command.ts';
import { registerConfig } from './config-command.ts';
import { portfolioHistory, portfolioShow } from './portfolio-command.ts';
import { dbBackup } from './db-backup.ts';
import { backtestCompare, backtestList, backtestReport, backtestRun, type BacktestRunOptions } from './backtest-command.ts';

/** Command groups that exist in the CLI but are filled in by later work. */
export const PLANNED_GROUPS: ReadonlyArray<[name: string, description: string]> = [];

export function buildProgram(): Command {
  const program = new Command('trader')
    .description('Crypto trading bot for Binance spot and USD-M futures')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run')
    .description('start the bot (what `npm start` runs); stops cleanly on Ctrl-C or SIGTERM')
    .option('--param <key=value...>', 'override a strategy parameter: period=10 (every strategy) or rsi.period=10', collect, [])
    .action(async (opts: { param: string[] }) => {
      process.exitCode = await runBot({ params: opts.param });
    });

  program
    .command('status')
    .description('show the running bot\'s heartbeat; exits 1 when it is stale or unhealthy (usable as a HEALTHCHECK)')
    .option('--file <path>', 'heartbeat file (default: HEARTBEAT_PATH from the environment or the env file, $ENV_FILE or .env, as the bot reads it; else status/heartbeat.json)')
    .option('--json', 'print the heartbeat and verdict as JSON')
    .action((opts: { file?: string; json?: boolean }) => {
      const file = resolve(opts.file ?? peekEnv('HEARTBEAT_PATH') ?? 'status/heartbeat.json');
      const verdict = judgeHeartbeatFile(file, Date.now());
      process.stdout.write((opts.json ? JSON.stringify(verdict, null, 2) : formatStatus(verdict)) + '\n');
      process.exitCode = verdict.healthy ? EXIT.OK : EXIT.UNHEALTHY;
    });

  const db = program.command('db').description('database: migrations, status and backup');
  db.command('migrate')
    .description('apply pending migrations (the bot also does this at start)')
    .action(() =>
      withStore('db migrate', {}, async (store) => {
        const r = await store.migrate();
        process.stdout.write(r.applied.length ? `applied ${r.applied.join(', ')}; schema is at ${r.current}\n` : `nothing to apply; schema is at ${r.current}\n`);
      }),
    );
  db.command('status')
    .description('database file, schema version and row counts')
    .action(() =>
      withStore('db status', { readonly: true }, async (store) => {
        const tables = store.sqlite
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_%' ORDER BY name")
          .all() as { name: string }[];
        process.stdout.write(`database: ${store.file}\nschema:   ${(await store.currentMigration()) ?? 'none'}\n`);
        for (const { name } of tables) {
          const { n } = store.sqlite.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number };
          process.stdout.write(`  ${name.padEnd(18)}${String(n).padStart(10)} rows\n`);
        }
      }),
    );

  db.command('backup')
    .description('online backup to a file (works while the bot runs): verified with integrity_check, written under a temporary name and renamed')
    .option('--to <file>', 'the backup file')
    .option('--force', 'overwrite the file if it exists')
    .action(async (opts: { to?: string; force?: boolean }) => {
      process.exitCode = await dbBackup(opts);
    });

  const portfolio = program.command('portfolio').description('balances, positions and equity history');
  portfolio
    .command('show')
    .description('balances, positions (entry, mark, unrealized PnL) and exposure: from the running bot, or from the database when it is stopped')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await portfolioShow(opts);
    });
  portfolio
    .command('history')
    .description('daily equity, day PnL and realized PnL, with a chart of daily equity (UTC days, from the database)')
    .option('--days <n>', 'how many days back, today included', '30')
    .option('--json', 'print as JSON (exact decimal strings)')
    .action(async (opts: { days?: string; json?: boolean }) => {
      process.exitCode = await portfolioHistory(opts);
    });

  program
    .command('exchange')
    .description('run the local Binance-compatible exchange (REST + WebSocket) on 127.0.0.1, replaying kline files')
    .option('--replay <files...>', 'Binance kline dumps (csv, csv.gz, zip) or folders of them')
    .option('--speed <n>', 'replay speed: 1 = real time, 60 = a minute per second, or max', '60')
    .option('--port <n>', 'port (0 picks a free one)', '0')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--market <m>', 'spot or futures (default: futures, or spot when the path says so)')
    .option('--json', 'print the URLs as one JSON line')
    .action(async (opts: ExchangeCommandOptions) => {
      process.exitCode = await runExchange(opts);
    });

  const strategy = program.command('strategy').description('list, describe and validate strategies');
  strategy
    .command('list')
    .description('every strategy folder with its symbols')
    .action(async () => {
      process.exitCode = await strategyList();
    });
  strategy
    .command('info <name>')
    .description('a strategy\'s parameters: types, bounds, defaults, descriptions')
    .action(async (name: string) => {
      process.exitCode = await strategyInfo(name);
    });
  strategy
    .command('validate')
    .description('check every strategy YAML against its strategy; exits 78 listing every problem')
    .option('--param <key=value...>', 'check overrides too: period=10 or rsi.period=10', collect, [])
    .action(async (opts: { param: string[] }) => {
      process.exitCode = await strategyValidate(opts.param);
    });

  const data = program.command('data').description('download, import and list candle history');
  data
    .command('import <paths...>')
    .description('import Binance kline dumps (csv, csv.gz, zip; folders are searched): rows checked, bad rows and gaps reported, re-importing changes nothing')
    .option('--market <m>', 'spot or futures (default: spot when the path says so, else futures)')
    .option('--symbol <s>', 'symbol, when the file name does not start with it (BTCUSDT-1h-...)')
    .option('--timeframe <tf>', 'interval, when the file name does not say it (default: from the data)')
    .action(async (paths: string[], opts: ImportCommandOptions) => {
      process.exitCode = await dataImport(paths, opts);
    });
  data
    .command('download')
    .description('download closed candles over Binance REST (BINANCE_SPOT_REST_URL / BINANCE_FUTURES_REST_URL); resumes after the last stored candle')
    .option('--symbol <s>', 'symbol, e.g. BTCUSDT')
    .option('--market <m>', 'spot or futures')
    .option('--timeframe <tf>', 'interval: 1m, 5m, 1h, 1d ...', '1m')
    .option('--from <date>', 'first candle, UTC: 2024-01-01 or 2024-01-01T12:00')
    .option('--to <date>', 'candles opening before this, UTC (default: now)')
    .action(async (opts: DownloadCommandOptions) => {
      process.exitCode = await dataDownload(opts);
    });
  data
    .command('list')
    .description('stored candles per market, symbol and timeframe: first, last, rows, gaps')
    .action(async () => {
      process.exitCode = await dataList();
    });

  const trade = program.command('trade').description('the kill switch, pause / resume, and trading status (through the running bot, or directly when it is stopped)');
  trade
    .command('stop-all')
    .description('HALT the account, cancel every open order on every symbol; --flatten also closes every position at market')
    .option('--flatten', 'close every position at market (reduce-only on futures)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: TradeOptions) => {
      process.exitCode = await tradeCommand('stop-all', opts);
    });
  for (const [name, what] of [
    ['pause', 'stop new entries (REDUCING: exits and stops keep working), or HALT with --halt'],
    ['resume', 'back to ACTIVE'],
  ] as const) {
    const cmd = trade
      .command(name)
      .description(`${what}: the whole account, or one --symbol or --strategy`)
      .option('--symbol <symbol>', 'only this symbol')
      .option('--strategy <name>', 'only this strategy')
      .option('--json', 'print the result as JSON');
    if (name === 'pause') cmd.option('--halt', 'HALTED instead of REDUCING (only full closes pass)');
    cmd.action(async (opts: TradeOptions) => {
      process.exitCode = await tradeCommand(name, opts);
    });
  }
  trade
    .command('status')
    .description("trading states, tripped guards, today's PnL and limits")
    .option('--json', 'print as JSON')
    .action(async (opts: TradeOptions) => {
      process.exitCode = await tradeCommand('status', opts);
    });

  program
    .command('demo')
    .description('the bot trading offline with no keys: the local exchange replays the bundled sample and three strategies trade it')
    .option('--mode <mode>', 'testnet (local exchange, real ccxt + ws) or sim (in-process replay)', 'testnet')
    .option('--speed <x>', 'replay speed (600 = ten minutes of data a second)', '600')
    .option('--seconds <s>', 'how long to run', '60')
    .action(async (opts: DemoOptions) => {
      process.exitCode = await runDemo(opts);
    });

  program
    .command('reconcile')
    .description("compare orders, fills and positions with the exchange's; print the difference and apply it")
    .option('--dry-run', 'print the difference, change nothing')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      process.exitCode = await reconcileCommand(opts);
    });

  const order = program.command('order').description('manual orders: same risk checks as the bot (through it when it runs, else straight to the venue)');
  for (const side of ['buy', 'sell'] as const) {
    order
      .command(side)
      .description(`${side} at market, or a limit with --price`)
      .requiredOption('--symbol <symbol>', 'e.g. BTCUSDT')
      .requiredOption('--quantity <qty>', 'base quantity, e.g. 0.01 (rounded down to the step)')
      .option('--price <price>', 'limit price (rounded to the tick, passive side)')
      .option('--reduce-only', 'only reduce a position')
      .option('--json', 'print the outcome as JSON')
      .action(async (opts: OrderOptions) => {
        process.exitCode = await orderCommand(side, opts);
      });
  }
  order
    .command('cancel')
    .description('cancel one order by its client order id')
    .requiredOption('--id <clientOrderId>', 'from trader order list')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: OrderOptions) => {
      process.exitCode = await orderCommand('cancel', opts);
    });
  order
    .command('list')
    .description('the latest 100 orders (every source), newest first')
    .option('--open', 'only working orders')
    .option('--json', 'print as JSON')
    .action(async (opts: OrderOptions) => {
      process.exitCode = await orderCommand('list', opts);
    });

  const backtest = program.command('backtest').description('run a strategy over stored candles with the live kernel (sim venue, test clock); every run is stored');
  backtest
    .command('run')
    .description('backtest one strategy on one or more symbols; data comes from the candle store (trader data import|download)')
    .option('--strategy <name>', 'strategy folder, e.g. rsi')
    .option('--symbol <list>', 'symbol(s), comma-separated: BTCUSDT or BTCUSDT,ETHUSDT')
    .option('--timeframe <tf>', `strategy timeframe (${'1m, 5m, 15m, 1h, 4h, 1d ...'}); default: the YAML's, else the strategy's`)
    .option('--from <date>', 'first candle, UTC: 2024-01-01 or 2024-01-01T12:00')
    .option('--to <date>', 'last day, UTC, inclusive (2024-12-31 = through the end of that day); with a time: exclusive')
    .option('--market <m>', 'spot or futures (default: config/bot.yaml market)')
    .option('--param <key=value...>', 'override a parameter: period=10 (repeat or comma-separate)', collect, [])
    .option('--balance <quote>', 'starting balance (default: config/bot.yaml sim.balance)')
    .option('--fee-bps <n>', 'fee for maker and taker, basis points (default: Binance VIP0, spot 10/10, futures 2/5)')
    .option('--slippage-bps <n>', 'market-order slippage against you, basis points (default 0)')
    .option('--latency-ms <n>', 'signal to order arrival; a market order fills at the first price after it (default 0: the next open)')
    .option('--funding-rate <r>', 'futures: flat funding rate per 8 h, as a fraction (default 0.0001)')
    .option('--output <format>', 'table, json, csv or html', 'table')
    .option('--file <path>', 'write the output here (csv: <path>-metrics.csv, -trades.csv, -equity.csv)')
    .action(async (opts: BacktestRunOptions) => {
      process.exitCode = await backtestRun(opts);
    });
  backtest
    .command('list')
    .description('stored backtests, newest first')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print as JSON')
    .action(async (opts: { limit?: string; json?: boolean }) => {
      process.exitCode = await backtestList(opts);
    });
  backtest
    .command('report')
    .description('show a stored backtest again, in any output format')
    .option('--id <id>', 'run id, or latest', 'latest')
    .option('--output <format>', 'table, json, csv or html', 'table')
    .option('--file <path>', 'write the output here')
    .action(async (opts: { id: string; output: string; file?: string }) => {
      process.exitCode = await backtestReport(opts);
    });
  backtest
    .command('compare <a> <b>')
    .description('two stored backtests side by side (ids, or latest)')
    .option('--json', 'print as JSON')
    .action(async (a: string, b: string, opts: { json?: boolean }) => {
      process.exitCode = await backtestCompare(a, b, opts);
    });

  registerOptimize(program);
  registerConfig(program);

  for (const [name, description] of PLANNED_GROUPS) {
    program
      .command(name)
      .description(`${description} (not available yet)`)
      .argument('[args...]')
      .allowUnknownOption()
      .helpOption(false)
      .action(() => {
        process.stderr.write(`trader ${name}: not available yet (${description}).\n`);
        process.exitCode = EXIT.NOT_AVAILABLE;
      });
  }
  return program;
}

/**
 * Runs fn with the configured database open, closing it afterwards; bad
 * configuration and store errors become a message and an exit code.
 */
async function withStore(command: string, opts: { readonly?: boolean }, fn: (store: Store) => Promise<void>): Promise<void> {
  const settings = loadSettingsOrReport();
  if (!settings) return void (process.exitCode = EXIT.CONFIG);
  try {
    const store = Store.open(settings.paths.dbFile, opts);
    try {
      await fn(store);
    } finally {
      store.close();
    }
  } catch (err) {
    process.stderr.write(`trader ${command}: ${(err as Error).message}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs the CLI and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version land here with code 0.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
}
