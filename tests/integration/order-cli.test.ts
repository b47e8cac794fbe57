/**
 * `trader order buy|sell|cancel|list` on the local exchange (spot BTCUSDT,
 * real ccxt + ws, the real CLI as a child process): straight to the venue
 * when the bot is stopped, through the running bot's control API when it
 * runs; the same risk checks and filters either way, every order recorded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { killQuietly, runCli, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { tradingWorkspace } from '../support/trading.ts';
import type { Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let ws: Workspace | undefined;
let bot: RunningCli | undefined;
afterEach(async () => {
  if (bot) killQuietly(bot);
  await bot?.exited;
  await ex?.close();
  ws?.cleanup();
  bot = ex = ws = undefined;
});

async function order(w: Workspace, args: string[]): Promise<{ code: number; out: Record<string, unknown>; stderr: string }> {
  const r = await runCli(['order', ...args, '--json'], { env: w.env, cwd: w.dir });
  return { code: r.code, out: r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : {}, stderr: r.stderr };
}

describe('trader order', () => {
  it('bot stopped: market and limit orders, list, cancel; filters and risk deny with the reason; bad input is a usage error', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'BTCUSDT', new Dec('50000'));
    ws = tradingWorkspace(ex, 'market: spot\n');

    const m = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.0012345']);
    expect(m.code, m.stderr).toBe(0);
    expect(m.out).toMatchObject({ via: 'venue directly (bot not running)', status: 'FILLED', filledQuantity: '0.00123', averagePrice: '50000' });

    const l = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.001', '--price', '49750.019']);
    expect(l.code, JSON.stringify(l.out)).toBe(0);
    expect(l.out, 'rests on the book, price rounded down to the tick').toMatchObject({ status: 'NEW' });
    const list = await order(ws, ['list', '--open']);
    const open = list.out.orders as Array<Record<string, string>>;
    expect(open.map((o) => [o.strategy, o.type, o.price, o.status])).toEqual([['manual', 'LIMIT', '49750.01', 'NEW']]);

    const c = await order(ws, ['cancel', '--id', String(l.out.clientOrderId)]);
    expect(c.out).toMatchObject({ status: 'CANCELED', clientOrderId: l.out.clientOrderId });
    expect(((await order(ws, ['list', '--open'])).out.orders as unknown[]).length).toBe(0);

    // A denial is an answer, not a fault: exit 3 (70 is "internal error"), with the denial's code and reason.
    const small = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.00001']);
    expect([small.code, small.out.status, small.out.code, small.out.reason], 'filters deny').toEqual([3, 'DENIED', 'NOTIONAL_BELOW_MIN', 'NOTIONAL_BELOW_MIN: notional=0.5 min=5']);
    const far = await order(ws, ['sell', '--symbol', 'BTCUSDT', '--quantity', '0.001', '--price', '60000']);
    expect([far.code, far.out.status, far.out.code, far.out.reason], 'risk denies').toEqual([3, 'DENIED', 'PRICE_DEVIATION', 'PRICE_DEVIATION: price=60000.00 mark=50000.00 bps=2000.00 max=100.00']);
    const text = await runCli(['order', 'sell', '--symbol', 'BTCUSDT', '--quantity', '0.001', '--price', '60000'], { env: ws.env, cwd: ws.dir });
    expect([text.code, text.stdout], 'the text form names the code too').toEqual([3, 'sell via venue directly (bot not running): DENIED PRICE_DEVIATION: price=60000.00 mark=50000.00 bps=2000.00 max=100.00\n']);
    const unknown = await order(ws, ['cancel', '--id', 'no-such-order']);
    expect([unknown.code, unknown.out.status], 'no such order: 66 (no input), not an internal error').toEqual([66, 'NOT_FOUND']);

    const bad = await runCli(['order', 'buy', '--symbol', 'btcusdt', '--quantity', '0'], { env: ws.env, cwd: ws.dir });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--symbol: an upper-case symbol such as BTCUSDT (got "btcusdt")');
    expect(bad.stderr).toContain('--quantity: must be above 0 (got "0")');
  });

  it('bot running: the order goes through the bot (its risk engine and execution), recorded in its database', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'BTCUSDT', new Dec('50000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.userStream.status === 'ok', bot);

    // No feed for BTCUSDT in this bot: the venue's price is the mark the order is checked against.
    const m = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.001']);
    expect(m.out).toMatchObject({ via: 'running bot', status: 'FILLED', filledQuantity: '0.001', averagePrice: '50000' });

    const l = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.001', '--price', '49900']);
    expect(l.out).toMatchObject({ via: 'running bot', status: 'NEW' });
    const c = await order(ws, ['cancel', '--id', String(l.out.clientOrderId)]);
    expect(c.out).toMatchObject({ via: 'running bot', status: 'CANCELED' });
    const list = await order(ws, ['list']);
    expect((list.out.orders as Array<Record<string, string>>).map((o) => [o.type, o.status]), 'newest first').toEqual([['LIMIT', 'CANCELED'], ['MARKET', 'FILLED']]);
    const small = await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.00001']);
    expect([small.code, small.out.via, small.out.status, small.out.code], "the bot's denial: exit 3 with its code").toEqual([3, 'running bot', 'DENIED', 'NOTIONAL_BELOW_MIN']);
  });
});
