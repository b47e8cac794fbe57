/**
 * The kill switch on the local exchange (USD-M futures, the real ccxt and
 * ws clients, the real `trader` CLI as a child process): open orders on 5
 * symbols (one of them a conditional stop, held in Binance's algo-order
 * book) and 3 open positions (long, short, long), placed by hand as a
 * trader would have them. `trader trade stop-all --flatten` must leave
 * nothing open and nothing held, both with the bot running (through its
 * control API) and with it stopped (straight to the exchange), say what it
 * did, do nothing the second time, and leave the account HALTED across a
 * restart until someone resumes it.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { Dec } from '../../src/core/decimal.ts';
import { createFuturesClient } from '../../src/venues/binance/ccxt-clients.ts';
import { killQuietly, runCli, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { tradingWorkspace } from '../support/trading.ts';
import type { Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let ws: Workspace | undefined;
let bot: RunningCli | undefined;
afterEach(async () => {
  if (bot) await killQuietly(bot);
  await ex?.close();
  ws?.cleanup();
  bot = ex = ws = undefined;
});

const PRICES: Record<string, string> = { BTCUSDT: '60000', ETHUSDT: '3000', ALGOUSDT: '0.2', AVAXUSDT: '30', DOTUSDT: '6' };

type Client = ReturnType<typeof createFuturesClient>;

function client(x: LocalExchange): Client {
  const c = createFuturesClient({ spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
  // All symbols at once is what this check wants (ccxt warns about its weight by default).
  (c.options as Record<string, Record<string, unknown>>).fetchOpenOrders = { ...(c.options as Record<string, Record<string, unknown>>).fetchOpenOrders, warnWithoutSymbol: false };
  return c;
}

/** What a trader might have when they reach for the kill switch. */
async function messyAccount(x: LocalExchange): Promise<void> {
  for (const [s, p] of Object.entries(PRICES)) x.setPrice('futures', s, new Dec(p));
  const c = client(x);
  await c.loadMarkets();
  // Positions: long BTC, short ETH, long ALGO.
  await c.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.002);
  await c.createOrder('ETH/USDT:USDT', 'market', 'sell', 0.01);
  await c.createOrder('ALGO/USDT:USDT', 'market', 'buy', 100);
  // Resting limits on all five symbols, and a protective stop on the BTC long.
  await c.createOrder('BTC/USDT:USDT', 'limit', 'buy', 0.002, 58200);
  await c.createOrder('ETH/USDT:USDT', 'limit', 'buy', 0.01, 2910);
  await c.createOrder('ALGO/USDT:USDT', 'limit', 'buy', 100, 0.194);
  await c.createOrder('AVAX/USDT:USDT', 'limit', 'buy', 1, 29.1);
  await c.createOrder('DOT/USDT:USDT', 'limit', 'buy', 2, 5.82);
  await c.createOrder('BTC/USDT:USDT', 'market', 'sell', 0.002, undefined, { stopPrice: 55000, reduceOnly: true });
  const held = await exchangeView(x);
  expect(held.open, 'five limits and one stop are working').toBe(6);
  expect(held.positions).toEqual({ BTCUSDT: '0.002', ETHUSDT: '-0.01', ALGOUSDT: '100' });
}

/** The exchange's own records: open orders (regular and conditional) and non-zero positions. */
async function exchangeView(x: LocalExchange): Promise<{ open: number; positions: Record<string, string> }> {
  const c = client(x);
  await c.loadMarkets();
  const regular = await c.fetchOpenOrders();
  const algo = await c.fetchOpenOrders(undefined, undefined, undefined, { trigger: true });
  const raw = (await c.fapiPrivateV2GetPositionRisk()) as Array<{ symbol: string; positionAmt: string }>;
  const positions = Object.fromEntries(raw.filter((p) => !new Dec(p.positionAmt).isZero()).map((p) => [p.symbol, new Dec(p.positionAmt).toFixed()]));
  return { open: regular.length + algo.length, positions };
}

interface Report {
  via: string;
  halted: { changed: boolean };
  cancelled: Array<{ symbol: string; status: string }>;
  closed: Array<{ symbol: string; side: string; quantity: string; status: string }>;
  failures: string[];
  remaining: { openOrders: number; positions: unknown[] };
}

async function stopAll(w: Workspace): Promise<Report> {
  const r = await runCli(['trade', 'stop-all', '--flatten', '--json'], { env: w.env, cwd: w.dir });
  expect(r.code, `stop-all exit code; stderr: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

function checkFirstRun(r: Report, via: RegExp): void {
  expect(r.via).toMatch(via);
  expect(r.halted.changed, 'the account was ACTIVE').toBe(true);
  expect(r.cancelled.map((c) => c.symbol).sort(), 'every open order, the stop included').toEqual(['ALGOUSDT', 'AVAXUSDT', 'BTCUSDT', 'BTCUSDT', 'DOTUSDT', 'ETHUSDT']);
  expect(r.cancelled.every((c) => c.status === 'CANCELED')).toBe(true);
  expect(r.closed.map((c) => `${c.symbol} ${c.side} ${c.quantity} ${c.status}`).sort()).toEqual(['ALGOUSDT SELL 100 FILLED', 'BTCUSDT SELL 0.002 FILLED', 'ETHUSDT BUY 0.01 FILLED']);
  expect(r.failures).toEqual([]);
  expect(r.remaining).toEqual({ openOrders: 0, positions: [] });
}

function checkRecorded(w: Workspace, by: string): void {
  const db = new Database(w.dbFile, { readonly: true });
  try {
    // The positions were placed by hand: their closes are the external owner's orders, asked for by the kill switch.
    const closes = db.prepare("SELECT symbol, side, status, reduce_only, strategy FROM orders WHERE source = 'kill-switch' ORDER BY symbol").all();
    expect(closes, 'each close went through the order path: a row, reduce-only, filled').toEqual([
      { symbol: 'ALGOUSDT', side: 'SELL', status: 'FILLED', reduce_only: 1, strategy: 'external' },
      { symbol: 'BTCUSDT', side: 'SELL', status: 'FILLED', reduce_only: 1, strategy: 'external' },
      { symbol: 'ETHUSDT', side: 'BUY', status: 'FILLED', reduce_only: 1, strategy: 'external' },
    ]);
    const fills = db.prepare("SELECT COUNT(*) AS n FROM fills f JOIN orders o ON o.client_order_id = f.client_order_id WHERE o.source = 'kill-switch'").get() as { n: number };
    expect(fills.n, 'one fill per close, recorded once').toBe(3);
    const halt = db.prepare("SELECT state_to, reason FROM risk_events WHERE kind = 'state' ORDER BY id").all();
    expect(halt, 'one state change: the halt, with who did it').toEqual([{ state_to: 'HALTED', reason: `KILL_SWITCH: stop-all --flatten by ${by}` }]);
  } finally {
    db.close();
  }
}

async function tradeStatus(w: Workspace): Promise<{ via: string; states: Array<{ scope: string; state: string; reason: string }> }> {
  const r = await runCli(['trade', 'status', '--json'], { env: w.env, cwd: w.dir });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('kill switch: trader trade stop-all --flatten', () => {
  it('with the bot running: through the control API, idempotent, HALTED kept across a restart', async () => {
    ex = await LocalExchange.start();
    ws = tradingWorkspace(ex, 'market: futures\n');
    await messyAccount(ex);
    bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.userStream.status === 'ok', bot);

    const first = await stopAll(ws);
    checkFirstRun(first, /running bot/);
    expect(await exchangeView(ex), "the exchange's own records").toEqual({ open: 0, positions: {} });

    const second = await stopAll(ws);
    expect([second.halted.changed, second.cancelled.length, second.closed.length], 'nothing left to do').toEqual([false, 0, 0]);

    const hb = await waitForHeartbeat(ws.heartbeatFile, (h) => h.tradingState === 'HALTED', bot);
    expect(hb.risk.status).toBe('degraded');

    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
    checkRecorded(ws, 'operator (control API)');
    bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    await waitForHeartbeat(ws.heartbeatFile, (h) => h.state === 'running' && h.pid === bot!.child.pid, bot);
    const status = await tradeStatus(ws);
    expect(status.via).toBe('running bot');
    expect(status.states, 'HALTED survives the restart').toEqual([expect.objectContaining({ scope: 'account', state: 'HALTED', reason: 'KILL_SWITCH: stop-all --flatten by operator (control API)' })]);

    const resumed = await runCli(['trade', 'resume'], { env: ws.env, cwd: ws.dir });
    expect(resumed.stdout.trim()).toBe('resume via running bot: account is ACTIVE (was HALTED)');
    expect((await tradeStatus(ws)).states).toEqual([]);
  });

  it('with the bot stopped: straight to the exchange, same result, recorded in the same database', async () => {
    ex = await LocalExchange.start();
    ws = tradingWorkspace(ex, 'market: futures\n');
    await messyAccount(ex);

    const first = await stopAll(ws);
    checkFirstRun(first, /venue directly/);
    expect(await exchangeView(ex)).toEqual({ open: 0, positions: {} });
    const second = await stopAll(ws);
    expect([second.halted.changed, second.cancelled.length, second.closed.length]).toEqual([false, 0, 0]);
    checkRecorded(ws, 'operator (CLI, bot stopped)');

    const status = await tradeStatus(ws);
    expect(status.via).toMatch(/bot not running/);
    expect(status.states).toEqual([expect.objectContaining({ scope: 'account', state: 'HALTED' })]);
  });
});
