/**
 * The bot as a child process with market data: FEED=live against the local
 * exchange (URL overrides only, no code change) and FEED=replay in process.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { killQuietly, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { BREAKOUT, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';

let sd: StrategyDir | undefined;
let bot: RunningCli | undefined;
let ex: LocalExchange | undefined;
afterEach(async () => {
  killQuietly(bot);
  await ex?.close();
  sd?.cleanup();
  sd = bot = ex = undefined;
});

const T0 = Date.UTC(2023, 1, 1);

/** 20 rising 1m candles for ALGOUSDT: every close a new high, so breakout signals once warm. */
function setup(): { file: string; hb: string } {
  sd = strategyDir();
  sd.write('strategies/breakout/index.ts', BREAKOUT);
  sd.write('strategies/breakout/ALGOUSDT.yaml', 'params:\n  lookback: 3\n');
  sd.write('config/bot.yaml', 'market: futures\n');
  const rows = Array.from({ length: 20 }, (_, i) => {
    const o = (0.25 + i * 0.001).toFixed(4);
    const c = (0.25 + (i + 1) * 0.001).toFixed(4);
    return [T0 + i * 60_000, o, c, o, c, '1000.0', T0 + i * 60_000 + 59_999, '250', 10, '500', '125', '0'].join(',');
  });
  const file = sd.write('replay/ALGOUSDT-1m-2023-02.csv', rows.join('\n') + '\n');
  return { file, hb: join(sd.dir, 'status', 'heartbeat.json') };
}

function signalsInDb(): Array<{ action: string }> {
  const db = new Database(join(sd!.dir, 'data', 'trader.db'), { readonly: true });
  try {
    return db.prepare('SELECT action FROM signals ORDER BY id').all() as Array<{ action: string }>;
  } finally {
    db.close();
  }
}

describe('bot with market data', () => {
  it('FEED=live against the local exchange: connects, streams candles to the strategy, records signals', async () => {
    const { file, hb } = setup();
    ex = await LocalExchange.start({ replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [file] }], speed: 'max', autoStart: false } });
    // A mark price makes the exchange talk (markPrice@1s) before the replay starts, as Binance always does.
    ex.engine.setMarkPrice('ALGOUSDT', (await import('../../src/core/decimal.ts')).dec('0.25'));
    bot = startCli(['run'], {
      env: { ENV_FILE: '/dev/null', CONTROL_PORT: '0', FEED: 'live', HEARTBEAT_INTERVAL_MS: '100', BINANCE_FUTURES_WS_URL: ex.urls().futuresWs, BINANCE_FUTURES_REST_URL: ex.url },
      cwd: sd!.dir,
    });
    const live = await waitForHeartbeat(hb, (h) => h.state === 'running' && h.feed.status === 'ok', bot);
    expect(live.feed.detail).toBe('1/1 connections live, 0 of 1 symbols stale');
    ex.replay!.start();
    await ex.replay!.done;
    const done = await waitForHeartbeat(hb, (h) => h.instances[0]?.signals === 17, bot);
    expect(done.instances[0]).toMatchObject({ strategy: 'breakout', symbol: 'ALGOUSDT', state: 'ready', warm: '4/4' });
    expect((done.feed as unknown as { lastClosed: Record<string, string> }).lastClosed).toEqual({ ALGOUSDT: new Date(T0 + 19 * 60_000).toISOString() });
    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
    // Warm at the 4th candle; it and every later close (4th..20th) make a new 3-candle high: 17 entries
    // (this naive fixture signals on every one).
    expect(signalsInDb()).toHaveLength(17);
  });

  it('FEED=replay: kline files replayed in process', async () => {
    const { file, hb } = setup();
    bot = startCli(['run'], { env: { ENV_FILE: '/dev/null', CONTROL_PORT: '0', FEED: 'replay', REPLAY_FILES: file, REPLAY_SPEED: 'max', HEARTBEAT_INTERVAL_MS: '100' }, cwd: sd!.dir });
    const done = await waitForHeartbeat(hb, (h) => h.instances[0]?.signals === 17, bot);
    expect(done.feed.status).toBe('ok');
    expect(done.feed.detail).toMatch(/^replaying ALGOUSDT at full speed: 20 candles so far$/);
    bot.child.kill('SIGINT');
    expect(await bot.exited).toBe(0);
  });
});
