/**
 * Parity: one day of real ALGOUSDT futures candles, the rsi strategy, run
 * twice: through the backtester, and through the bot itself (`trader run`,
 * MODE=sim, FEED=live) against the local exchange replaying the same
 * candles over its WebSocket. Same kernel, two adapters (DESIGN.md): the
 * signals (candle and action), the fills' sides and quantities must be the
 * same; prices differ only by the fill model: the paper venue fills a market
 * order at the last price when it arrives (the signal candle's close), the
 * backtester at the next price event (the next candle's open).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareBacktest } from '../../src/backtest/job.ts';
import { runBacktest } from '../../src/backtest/runner.ts';
import { createLogger } from '../../src/core/logger.ts';
import { dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { importKlineFiles } from '../../src/market-data/import.ts';
import type { Fill, Signal } from '../../src/model/events.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { killQuietly, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { REPO_ROOT } from '../support/workspace.ts';

const SOURCE = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
const T0 = Date.UTC(2023, 1, 1);
const MIN = 60_000;
/** Five hours of 1m candles at 600x: one candle every 100 ms. */
const CANDLES = 300;

let sd: StrategyDir | undefined;
let bot: RunningCli | undefined;
let ex: LocalExchange | undefined;
let store: Store | undefined;
afterAll(async () => {
  killQuietly(bot);
  await ex?.close();
  store?.close();
  sd?.cleanup();
});

describe('backtester vs the bot in MODE=sim on the local exchange, same candles', () => {
  it('same signals (candle, action), same fills (side, quantity); prices differ only as the two fill models say', async () => {
    sd = strategyDir();
    sd.write('strategies/rsi/index.ts', readFileSync(join(REPO_ROOT, 'strategies', 'rsi', 'index.ts'), 'utf8').replace("'../../src/strategy/api.ts'", `'${REPO_ROOT}/src/strategy/api.ts'`));
    sd.write('strategies/rsi/ALGOUSDT.yaml', 'timeframe: 1m\nparams:\n  period: 6\n  allowShort: true\nsizing:\n  type: quote\n  amount: 50\n');
    // The order-rate guards count orders per wall-clock second: a replay at 600x can trip them and
    // the backtest (on candle time) cannot. Everything else is the same for both runs.
    sd.write('config/bot.yaml', 'market: futures\nrisk:\n  guards: [balance, max-position-size, duplicate-order]\n');
    const lines = gunzipSync(readFileSync(SOURCE)).toString().split('\n').filter((l) => /^\d/.test(l)).slice(0, CANDLES);
    const file = sd.write('replay/ALGOUSDT-1m-2023-02.csv', lines.join('\n') + '\n');
    const candles = lines.map((l) => l.split(',')).map((f) => ({ openTime: Number(f[0]), open: f[1]!, close: f[4]! }));
    const byOpen = new Map(candles.map((c) => [c.openTime, c]));

    // ---- the bot, MODE=sim, FEED=live against the local exchange
    // 600x, not full speed: a live bot's ctx.position() follows its fills, which land a few ms after
    // the signal. At full speed the next candles would outrun them and the strategy would see "flat"
    // where the backtester (which settles the order path between candles, as real time does) sees
    // the position. 100 ms per candle is 20x the order path's p50 in MODE=sim.
    ex = await LocalExchange.start({ replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [file] }], speed: 600, autoStart: false } });
    ex.engine.setMarkPrice('ALGOUSDT', dec(candles[0]!.open));
    const hb = join(sd.dir, 'status', 'heartbeat.json');
    bot = startCli(['run'], {
      env: { ENV_FILE: '/dev/null', MODE: 'sim', FEED: 'live', HEARTBEAT_INTERVAL_MS: '100', CONTROL_PORT: '0', BINANCE_FUTURES_WS_URL: ex.urls().futuresWs, BINANCE_FUTURES_REST_URL: ex.url },
      cwd: sd.dir,
    });
    await waitForHeartbeat(hb, (h) => h.state === 'running' && h.feed.status === 'ok', bot, 60_000);
    ex.replay!.start();
    await ex.replay!.done;
    const last = new Date(T0 + (CANDLES - 1) * MIN).toISOString();
    await waitForHeartbeat(hb, (h) => (h.feed as unknown as { lastClosed: Record<string, string> }).lastClosed.ALGOUSDT === last, bot, 60_000);
    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
    const db = new Database(join(sd.dir, 'data', 'trader.db'), { readonly: true });
    const liveSignals = (db.prepare('SELECT payload FROM signals ORDER BY id').all() as { payload: string }[]).map((r) => JSON.parse(r.payload) as { candleTime: number; action: string });
    const liveFills = db.prepare("SELECT side, quantity, price FROM fills WHERE market = 'futures' ORDER BY id").all() as { side: string; quantity: string; price: string }[];
    db.close();

    // ---- the backtester over the same candles (its own store, the same strategy folder and bot.yaml)
    sd.write('bt/.keep', '');
    store = Store.open(join(sd.dir, 'bt', 'candles.db'));
    await store.migrate();
    const repo = new CandleRepository(store);
    await importKlineFiles(repo, [file], { market: 'futures', symbol: 'ALGOUSDT' });
    const settings = loadSettings({ cwd: sd.dir, env: { STRATEGIES_DIR: join(sd.dir, 'strategies'), CONFIG_FILE: join(sd.dir, 'config', 'bot.yaml') }, envFile: false });
    const p = await prepareBacktest({ strategy: 'rsi', symbols: ['ALGOUSDT'], market: 'futures', from: T0, to: T0 + CANDLES * MIN }, settings);
    const btSignals: Signal[] = [];
    const btFills: Fill[] = [];
    const log = createLogger({ level: 'silent', format: 'json' });
    const r = await runBacktest(p.config, {
      settings,
      candles: repo,
      logger: log.logger,
      indicators: createIndicatorFactory,
      onBus: (bus) => {
        bus.observe('signal.*' as never, (s: Signal) => void btSignals.push(s), 'parity');
        bus.on('fill', (f) => void btFills.push(f), 'parity');
      },
    });
    log.close();

    // ---- signals: the same candles decided the same actions
    expect(btSignals.length).toBeGreaterThan(10);
    expect(btSignals.map((s) => [s.candleTime, s.action])).toEqual(liveSignals.map((s) => [s.candleTime, s.action]));

    // ---- fills: same sides and quantities, in order. A signal on the very last candle fills live
    // (at its close) but has no next candle to fill at in the backtest.
    const lastCandleSignals = btSignals.filter((s) => s.candleTime === T0 + (CANDLES - 1) * MIN).length;
    expect(liveFills.length - btFills.length).toBe(lastCandleSignals);
    expect(btFills.map((f) => [f.side, f.quantity.toFixed()])).toEqual(liveFills.slice(0, btFills.length).map((f) => [f.side, f.quantity]));

    // ---- prices: each as its fill model says (slippage 0 in both): live at the signal candle's close,
    // backtest at the next candle's open. Each signal produced one order here, so fill i belongs to signal i.
    const entryOrExit = btSignals.slice(0, btFills.length);
    let maxGapBps = 0;
    btFills.forEach((f, i) => {
      const t = entryOrExit[i]!.candleTime!;
      expect(liveFills[i]!.price, `live fill ${i}`).toBe(dec(byOpen.get(t)!.close).toFixed());
      expect(f.price.toFixed(), `backtest fill ${i}`).toBe(dec(byOpen.get(t + MIN)!.open).toFixed());
      maxGapBps = Math.max(maxGapBps, Math.abs(Number(f.price) / Number(liveFills[i]!.price) - 1) * 10_000);
    });
    // On 1m crypto data the next open is the last close, or a tick away.
    expect(maxGapBps).toBeLessThan(20);
    expect(r.trades.length).toBeGreaterThan(5);
  }, 180_000);
});
