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
 * ALGOUSDT on 1m candles, on USD-M futures. Everything goes to a fresh
 * folder (printed at the start): database, logs, heartbeat, config. The log
 * shows signals, orders, fills, positions and PnL as they happen; a summary
 * comes every 10 s and at the end.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveClock } from '../core/clock.ts';
import { EXIT } from '../core/errors.ts';
import { newRunId } from '../core/ids.ts';
import { createLogger } from '../core/logger.ts';
import { VERSION } from '../core/version.ts';
import { Kernel } from '../kernel/kernel.ts';
import { LocalExchange } from '../local-exchange/local-exchange.ts';
import { replaySources } from '../market-data/replay.ts';
import { loadSettings } from '../settings/load-settings.ts';
import { createIndicatorFactory } from '../strategy/indicators/index.ts';
import { loadStrategiesOrReport } from './run.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'data/sample/ALGOUSDT-1m-2023-02.csv.gz');

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
  // The replay runs hundreds of times faster than a real minute: per-minute order limits scale with it.
  writeFileSync(join(dir, 'config/bot.yaml'), `market: futures\nrisk:\n  maxDailyLossPct: 10\n  maxOrdersPerSymbolPerMinute: ${Math.min(10_000, Math.max(20, Math.ceil(20 * speed)))}\nsymbols:\n  ALGOUSDT:\n    leverage: 2\n`);
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
  const summary = () => {
    const t = kernel.trading!;
    const st = kernel.store;
    const count = (table: 'orders' | 'fills' | 'signals') => (st.all(st.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')))[0]?.n ?? 0);
    const v = t.riskView() as { equity: string; realizedToday: string; unrealized: string };
    const pos = t.portfolio.positions().map((p) => `${p.symbol} ${p.quantity.toFixed()} @ ${p.entryPrice.toFixed(4)}`).join(', ') || 'flat';
    return `signals ${count('signals')}, orders ${count('orders')}, fills ${count('fills')}; position ${pos}; realized ${v.realizedToday}, unrealized ${v.unrealized}, equity ${v.equity} USDT`;
  };
  const ticker = setInterval(() => say(`[demo] ${summary()}`), 10_000);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, seconds * 1000);
    const stop = () => {
      clearTimeout(t);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(ticker);
  const last = summary();
  await kernel.stop('demo finished');
  await ex?.close();
  log.flush();
  log.close();
  say(`[demo] done: ${last}`);
  say(`  look around: ${join(dir, 'status/heartbeat.json')}, ${join(dir, 'logs')}; trader order list / trade status with DB_URL=sqlite:${join(dir, 'data/trader.db')}`);
  return EXIT.OK;
}

function usage(msg: string): number {
  process.stderr.write(`trader demo: ${msg}\n`);
  return EXIT.USAGE;
}
