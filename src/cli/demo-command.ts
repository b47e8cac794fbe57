/**
 * `npm run demo` (`trader demo [--mode testnet|sim] [--speed 600] [--seconds 60]`):
 * the bot trading offline, with no keys, within a minute.
 *
 *   --mode testnet (default): the local Binance-compatible exchange replays
 *     the bundled ALGOUSDT month at --speed, and the bot trades it through
 *     the real ccxt and ws clients (MODE=testnet, every URL pointed at it);
 *   --mode sim: the bot replays the same file itself (MODE=sim, FEED=replay)
 *     into the in-process sim venue.
 *
 * Three built-in strategies (rsi, ema-cross, bollinger) are switched on for
 * ALGOUSDT on 1m candles, on USD-M futures (one-way mode), each with a 3 %
 * stop-loss and a 4 % take-profit. Everything goes to a fresh folder (printed
 * at the start): database, logs, heartbeat, config. The log shows signals,
 * orders, fills, positions and PnL as they happen. Every 5 s a status shows
 * each strategy's own position (the ledger's line: quantity, entry, its stop
 * and where the stop is) and the symbol's net beside what the exchange holds;
 * at the end a table per strategy (round trips, realized PnL, fees, open
 * position, unrealized PnL) whose total is checked against the account's
 * figures (demo-summary.ts), also written to status/demo-summary.json.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveClock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import { EXIT } from '../core/errors.ts';
import { newRunId } from '../core/ids.ts';
import { createLogger } from '../core/logger.ts';
import { VERSION } from '../core/version.ts';
import { Kernel } from '../kernel/kernel.ts';
import { LocalExchange } from '../local-exchange/local-exchange.ts';
import { replaySources } from '../market-data/replay.ts';
import { loadSettings } from '../settings/load-settings.ts';
import { Store } from '../store/store.ts';
import { createIndicatorFactory } from '../strategy/indicators/index.ts';
import { owners, renderSummary, statusLines, stopCounts, storedFees, strategyRow, summarize, summaryJson, workingStops } from './demo-summary.ts';
import { loadStrategiesOrReport } from './run.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'data/sample/ALGOUSDT-1m-2023-02.csv.gz');
const SYMBOL = 'ALGOUSDT';
/** How often the running status is printed. */
const STATUS_EVERY_MS = 5_000;

const STRATEGIES: Record<string, string> = {
  rsi: 'params:\n  period: 14\n  oversold: 35\n  overbought: 65\n  allowShort: true\n',
  'ema-cross': 'params:\n  fast: 9\n  slow: 21\n  allowShort: true\n',
  bollinger: 'params:\n  period: 20\n  stdDevs: 2\n  minBandwidth: 0.002\n  allowShort: true\n',
};

export interface DemoOptions {
  mode: string;
  speed: string;
  seconds: string;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const mode = o.mode;
  const speed = Number(o.speed);
  const seconds = Number(o.seconds);
  if (mode !== 'testnet' && mode !== 'sim') return usage(`--mode must be testnet or sim, got ${JSON.stringify(o.mode)}`);
  if (!(speed > 0)) return usage(`--speed must be a positive number (600 = ten minutes of data a second), got ${JSON.stringify(o.speed)}`);
  if (!(seconds > 0)) return usage(`--seconds must be a positive number, got ${JSON.stringify(o.seconds)}`);

  const dir = mkdtempSync(join(tmpdir(), 'trader-demo-'));
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  // The replay runs hundreds of times faster than real time: the order rate limits scale with it (at
  // 600x, an entry with its stop and target and a reversal's exit land within one real second, and the
  // default 10 orders a second denied exits).
  const scaled = (perMarketTime: number) => Math.min(10_000, Math.max(perMarketTime, Math.ceil(perMarketTime * speed)));
  writeFileSync(join(dir, 'config/bot.yaml'), `market: futures\nrisk:\n  maxDailyLossPct: 10\n  maxOrdersPerSymbolPerMinute: ${scaled(20)}\n  maxOrdersPerSecond: ${scaled(10)}\nsymbols:\n  ALGOUSDT:\n    leverage: 2\n`);
  for (const [name, yaml] of Object.entries(STRATEGIES)) {
    mkdirSync(join(dir, 'strategies', name), { recursive: true });
    // The demo trades the shipped strategies as they are: a one-line module that re-exports each.
    writeFileSync(join(dir, 'strategies', name, 'index.ts'), `export { default } from ${JSON.stringify(join(REPO, 'strategies', name, 'index.ts'))};\n`);
    writeFileSync(join(dir, 'strategies', name, 'ALGOUSDT.yaml'), `enabled: true\ntimeframe: 1m\n${yaml}sizing:\n  type: quote\n  amount: 100\nrisk:\n  stopLossPct: 3\n  takeProfitPct: 4\n`);
  }

  let ex: LocalExchange | undefined;
  const env: Record<string, string> = {
    MODE: mode,
    DB_URL: `sqlite:${join(dir, 'data/trader.db')}`,
    HEARTBEAT_PATH: join(dir, 'status/heartbeat.json'),
    HEARTBEAT_INTERVAL_MS: '1000',
    LOG_DIR: join(dir, 'logs'),
    LOG_FORMAT: 'pretty',
    CONTROL_PORT: '0',
  };
  if (mode === 'testnet') {
    const sources = replaySources([SAMPLE], 'futures');
    if (!Array.isArray(sources)) return usage(sources.error);
    ex = await LocalExchange.start({ replay: { sources, speed } });
    Object.assign(env, { ...ex.botEnv(), FEED: 'live' });
  } else {
    Object.assign(env, { FEED: 'replay', REPLAY_FILES: SAMPLE, REPLAY_SPEED: String(speed) });
  }

  const settings = loadSettings({ cwd: dir, env, envFile: false });
  const strategies = await loadStrategiesOrReport(settings);
  if (!strategies) return EXIT.CONFIG;
  const clock = new LiveClock();
  const log = createLogger({ level: 'info', format: 'pretty', dir: settings.paths.logDir, base: { runId: 'demo' } });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`trader demo: MODE=${mode}, ALGOUSDT USD-M 1m from February 2023 at ${speed}x (${mode === 'testnet' ? 'local exchange on ' + ex!.url + ', real ccxt + ws' : 'in-process replay into the sim venue'}), strategies ${Object.keys(STRATEGIES).join(', ')}, for ${seconds} s`);
  say(`  folder ${dir} (heartbeat: status/heartbeat.json, logs: logs/, database: data/trader.db)`);

  const kernel = await Kernel.start({ settings, clock, logger: log.logger, version: VERSION, runId: newRunId(), specs: strategies.specs, indicators: createIndicatorFactory });
  const t = kernel.trading!;
  const names = Object.keys(STRATEGIES);
  const quote = t.portfolio.quoteAsset;
  // The account's own figures, kept beside the strategies' lines: the wallet at start (the exchange's snapshot), funding, closed trips as reported.
  const walletStart = t.portfolio.cash();
  let funding = ZERO;
  let closedTrips = 0;
  kernel.bus.on(
    'position.changed',
    (p) => {
      if (p.symbol === SYMBOL && p.closedTrade) closedTrips++;
    },
    'demo',
  );
  kernel.bus.on(
    'account.updated',
    (a) => {
      if (a.reason === 'FUNDING_FEE' && a.balanceChange) funding = funding.plus(a.balanceChange);
    },
    'demo',
  );

  const count = (table: 'orders' | 'fills' | 'signals') => (kernel.store.all(kernel.store.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')))[0]?.n ?? 0);
  const headline = () => {
    const v = t.riskView() as { equity: string; realizedToday: string; unrealized: string };
    return `signals ${count('signals')}, orders ${count('orders')}, fills ${count('fills')}; realized ${v.realizedToday}, unrealized ${v.unrealized}, equity ${v.equity} ${quote}`;
  };
  const venueNet = async (): Promise<Dec | string> => {
    try {
      return (await t.venue.positions([SYMBOL])).filter((p) => p.symbol === SYMBOL).reduce((q, p) => q.plus(p.quantity), ZERO);
    } catch (e) {
      return `the exchange's position unknown: ${(e as Error).message}`;
    }
  };
  const rows = (store: Store) => {
    const view = t.protection.view();
    const working = workingStops(store, SYMBOL);
    return owners(t.portfolio, names, SYMBOL).map((s) => strategyRow(t.portfolio, view, working, s, SYMBOL));
  };
  let running = true;
  const status = async () => {
    const venue = await venueNet();
    if (!running) return;
    // One write: the block stays together between the log lines.
    say([headline(), ...statusLines(rows(kernel.store), SYMBOL, t.portfolio.ledger.net(SYMBOL), venue)].map((l) => `[demo] ${l}`).join('\n'));
  };
  const ticker = setInterval(() => void status(), STATUS_EVERY_MS);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  running = false;
  clearInterval(ticker);
  const venueAtEnd = await venueNet();
  const last = headline();
  await kernel.stop('demo finished');
  await ex?.close();
  log.flush();
  log.close();
  // The books are final once the kernel stopped (execution stops before the portfolio stops booking).
  const store = Store.open(settings.paths.dbFile, { readonly: true });
  let summary;
  try {
    summary = summarize(SYMBOL, quote, rows(store), stopCounts(store, SYMBOL), {
      trades: closedTrips,
      realized: t.portfolio.cash().minus(walletStart).minus(funding),
      fees: storedFees(store, SYMBOL, quote),
      unrealized: t.portfolio.unrealized(),
      walletStart,
      walletEnd: t.portfolio.cash(),
      funding,
      equity: t.portfolio.equity(),
      venueNet: venueAtEnd,
    });
  } finally {
    store.close();
  }
  writeFileSync(join(dir, 'status/demo-summary.json'), `${JSON.stringify(summaryJson(summary), null, 2)}\n`);
  say(`[demo] done: ${last}`);
  say(renderSummary(summary).map((l) => `[demo] ${l}`).join('\n'));
  say(`  look around: ${join(dir, 'status/heartbeat.json')}, ${join(dir, 'status/demo-summary.json')}, ${join(dir, 'logs')}; trader order list / trade status with DB_URL=sqlite:${join(dir, 'data/trader.db')}`);
  return EXIT.OK;
}

function usage(msg: string): number {
  process.stderr.write(`trader demo: ${msg}\n`);
  return EXIT.USAGE;
}
