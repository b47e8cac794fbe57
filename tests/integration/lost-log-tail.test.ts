/**
 * The durability decision (issue 18): the database commits with
 * synchronous=NORMAL, so power loss may drop the last commits after their
 * orders went out. The exchange is the journal: after an unclean stop the
 * bot rebuilds every order (and fill) of its own client-id namespace that
 * the database lacks, before anything trades, and never sends one twice.
 *
 * Stand-in for power loss: the real bot (`trader run`, a child process, real
 * ccxt + ws on the local exchange) is killed with SIGKILL after orders placed
 * through it, then the last order rows and their fills are deleted from the
 * database file (what a lost WAL tail would have taken), and it starts again.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Dec } from '../../src/core/decimal.ts';
import { parseClientOrderId } from '../../src/execution/client-order-ids.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
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

async function order(w: Workspace, args: string[]): Promise<Record<string, unknown>> {
  const r = await runCli(['order', ...args, '--json'], { env: w.env, cwd: w.dir });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface OrderRow {
  client_order_id: string;
  strategy: string;
  side: string;
  type: string;
  quantity: string;
  status: string;
  filled_quantity: string;
  exchange_order_id: string | null;
}

function rows(file: string): { orders: OrderRow[]; fills: Array<{ trade_id: string; client_order_id: string; quantity: string; price: string; fee: string }>; seq: number } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      orders: db.prepare('SELECT client_order_id, strategy, side, type, quantity, status, filled_quantity, exchange_order_id FROM orders ORDER BY created_at, client_order_id').all() as OrderRow[],
      fills: db.prepare('SELECT trade_id, client_order_id, quantity, price, fee FROM fills ORDER BY trade_id').all() as never,
      seq: JSON.parse((db.prepare("SELECT value FROM kv WHERE key = 'intent.seq'").get() as { value: string }).value) as number,
    };
  } finally {
    db.close();
  }
}

async function startBot(w: Workspace): Promise<RunningCli> {
  const b = startCli(['run'], { env: w.env, cwd: w.dir });
  // This process's heartbeat: a killed bot leaves its last one behind.
  await waitForHeartbeat(w.heartbeatFile, (hb) => hb.pid === b.child.pid && hb.state === 'running' && hb.userStream.status === 'ok', b, 60_000);
  return b;
}

describe('a lost log tail (power loss under synchronous=NORMAL)', () => {
  it('USD-M: rows and fills the database lost come back from the exchange at start, with their owner; nothing is sent twice; new ids skip past them', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    ws = tradingWorkspace(ex, 'market: futures\n');
    bot = await startBot(ws);

    await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.006']);
    await order(ws, ['buy', '--symbol', 'BTCUSDT', '--quantity', '0.003', '--price', '49600']);
    await order(ws, ['sell', '--symbol', 'BTCUSDT', '--quantity', '0.003']);
    bot.child.kill('SIGKILL');
    await bot.exited;
    bot = undefined;

    const before = rows(ws.dbFile);
    expect(before.orders.map((o) => [o.type, o.status])).toEqual([
      ['MARKET', 'FILLED'],
      ['LIMIT', 'NEW'],
      ['MARKET', 'FILLED'],
    ]);
    // The power cut: the last two orders' rows, and the fill of one, never reached the disk.
    const lost = before.orders.slice(1).map((o) => o.client_order_id);
    const db = new Database(ws.dbFile);
    for (const cid of lost) {
      db.prepare('DELETE FROM fills WHERE client_order_id = ?').run(cid);
      db.prepare('DELETE FROM orders WHERE client_order_id = ?').run(cid);
    }
    db.close();
    expect(rows(ws.dbFile).orders).toHaveLength(1);

    bot = await startBot(ws);
    const after = rows(ws.dbFile);
    expect(after.orders, 'every row back, with its owner, status and exchange id').toEqual(before.orders);
    expect(after.fills, 'every fill back, once').toEqual(before.fills);
    expect(bot.output()).toContain('start-up recovery: 2 order rows the database had lost were rebuilt from the exchange');

    // Nothing was sent twice: one exchange order per client id, three in all.
    const account = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
    const onExchange = ex.engine.allOrders(account, 'futures', 'BTCUSDT', { limit: 1000 });
    expect(onExchange.map((o) => o.clientOrderId).sort()).toEqual(before.orders.map((o) => o.client_order_id).sort());
    // The books agree with the exchange (no reconciliation halt, no adjustment).
    const position = ex.engine.positions(account, 'BTCUSDT').find((p) => p.positionSide === 'BOTH');
    expect(position?.positionAmt.toFixed()).toBe('0.003');
    expect(bot.output()).not.toMatch(/HALT|adjustment/);

    // The next id skips past every sequence number found on the exchange.
    const next = await order(ws, ['sell', '--symbol', 'BTCUSDT', '--quantity', '0.003']);
    const maxSeq = Math.max(...before.orders.map((o) => parseClientOrderId(o.client_order_id)!.seq));
    expect(parseClientOrderId(String(next.clientOrderId))!.seq).toBeGreaterThan(maxSeq);
    expect(ex.engine.allOrders(account, 'futures', 'BTCUSDT', { limit: 1000 })).toHaveLength(4);
  }, 120_000);
});
