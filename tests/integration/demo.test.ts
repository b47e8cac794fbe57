/**
 * `npm run demo`, both ways, as a newcomer runs it (the real CLI in a child
 * process, offline, no keys): the bot trades the bundled sample and the
 * summary shows signals, orders, fills and PnL; the heartbeat it leaves
 * behind says what it traded.
 *
 * Issue 17: three strategies on one symbol, each with its own line. The
 * periodic status shows each strategy's own position and stop; the final
 * table per strategy sums exactly to the account's figures (as the demo
 * printed them, and as the database's fills book them again through a fresh
 * ledger); at least one strategy held a position with a stop the exchange
 * accepted.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { cachedInstruments } from '../../src/execution/instrument-book.ts';
import { EXTERNAL, Ledger } from '../../src/ledger/ledger.ts';
import type { PositionSide } from '../../src/model/events.ts';
import { Store } from '../../src/store/store.ts';
import { runCli } from '../support/bot-process.ts';
import { makeWorkspace } from '../support/workspace.ts';

const STRATEGIES = ['rsi', 'ema-cross', 'bollinger'];

function figures(stdout: string): { signals: number; orders: number; fills: number; folder: string } {
  const done = /\[demo\] done: signals (\d+), orders (\d+), fills (\d+);/.exec(stdout);
  const folder = /folder (\S+) /.exec(stdout);
  expect(done, `a final summary line; got:\n${stdout.slice(-2000)}`).not.toBeNull();
  return { signals: Number(done![1]), orders: Number(done![2]), fills: Number(done![3]), folder: folder![1]! };
}

interface SummaryFile {
  symbol: string;
  rows: Array<{ strategy: string; trades: number; realized: string; fees: string; quantity: string; flat: boolean; unrealized: string; stop?: { price: string; where: string }; stops: { set: number; hit: number } }>;
  total: { trades: number; realized: string; fees: string; unrealized: string; net: string };
  account: { trades: number; realized: string; fees: string; unrealized: string };
  matches: boolean;
  differ: string[];
}

/** The periodic status blocks: after each headline, one line per strategy (and the net line). */
function statusBlocks(stdout: string): Array<Map<string, string>> {
  const lines = stdout.split('\n');
  const blocks: Array<Map<string, string>> = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\[demo\] signals \d+/.test(lines[i]!)) continue;
    const b = new Map<string, string>();
    for (let j = i + 1; j < lines.length && lines[j]!.startsWith('[demo]   '); j++) {
      const m = /^\[demo\] {3}(\S+) +(.*)$/.exec(lines[j]!);
      if (m) b.set(m[1]!, m[2]!);
    }
    blocks.push(b);
  }
  return blocks;
}

/** The stored fills booked again through a fresh ledger, as the portfolio books them at start: closed trips, realized (fees included) and fees. */
function fromDatabase(dbFile: string): { trades: number; realized: Dec; fees: Dec; stopOrders: Array<{ strategy: string; status: string }> } {
  const store = Store.open(dbFile, { readonly: true });
  try {
    const instruments = new Map(cachedInstruments(store, 'futures').map((i) => [i.symbol, i]));
    const ledger = new Ledger({ market: 'futures', quoteAsset: 'USDT', instrument: (s) => instruments.get(s), price: () => undefined });
    const rows = store.all(
      store.db
        .selectFrom('fills')
        .leftJoin('orders', 'orders.client_order_id', 'fills.client_order_id')
        .select(['fills.trade_id', 'fills.symbol', 'fills.side', 'fills.price', 'fills.quantity', 'fills.fee', 'fills.fee_asset', 'fills.ts', 'fills.owner', 'orders.strategy', 'orders.position_side'])
        .where('fills.market', '=', 'futures')
        .orderBy('fills.ts')
        .orderBy('fills.id'),
    );
    let trades = 0;
    let fees = ZERO;
    for (const r of rows) {
      fees = fees.plus(r.fee);
      ledger.applyFill({
        kind: 'fill',
        ts: r.ts,
        tradeId: r.trade_id,
        strategy: r.strategy ?? r.owner ?? EXTERNAL,
        ...(r.position_side && r.position_side !== 'BOTH' ? { positionSide: r.position_side as PositionSide } : {}),
        market: 'futures',
        symbol: r.symbol,
        side: r.side as 'BUY' | 'SELL',
        price: new Dec(r.price),
        quantity: new Dec(r.quantity),
        fee: new Dec(r.fee),
        feeAsset: r.fee_asset,
        isMaker: false,
      }).forEach((c) => c.closedTrip && trades++);
    }
    const stopOrders = store.all(store.db.selectFrom('orders').select(['strategy', 'status']).where('source', '=', 'protective').where('type', '=', 'STOP_MARKET').where('exchange_order_id', 'is not', null));
    return { trades, realized: ledger.realized('ALGOUSDT'), fees, stopOrders };
  } finally {
    store.close();
  }
}

const sum = (xs: readonly string[]) => xs.reduce((a, x) => a.plus(x), ZERO).toFixed();

describe('npm run demo', () => {
  for (const mode of ['testnet', 'sim'] as const) {
    it(`--mode ${mode}: signals, orders, fills and PnL within seconds, offline; each strategy's own line, the table sums to the account`, async () => {
      const ws = makeWorkspace();
      try {
        const r = await runCli(['demo', '--mode', mode, '--seconds', '15', '--speed', '600'], { env: ws.env, cwd: ws.dir });
        expect(r.code, r.stderr).toBe(0);
        const f = figures(r.stdout);
        // On failure, say why from what the demo printed (denials name their reason).
        const why = `\n${r.stdout.split('\n').filter((l) => /denied|ERROR|WARN|\[demo\]/.test(l)).slice(-30).join('\n')}`;
        expect(f.signals, `strategies signalled${why}`).toBeGreaterThan(0);
        expect(f.orders, `signals became orders${why}`).toBeGreaterThan(0);
        expect(f.fills, `orders filled${why}`).toBeGreaterThan(0);
        expect(r.stdout).toMatch(/fill ALGOUSDT (BUY|SELL) [\d.]+ @ [\d.]+ fee [\d.]+ USDT/);
        expect(r.stdout).toMatch(/position ALGOUSDT/);
        const hb = JSON.parse(readFileSync(join(f.folder, 'status/heartbeat.json'), 'utf8')) as { state: string; mode: string; symbols: string[]; risk: { realizedToday: string } };
        expect([hb.state, hb.mode, hb.symbols]).toEqual(['stopped', mode, ['ALGOUSDT']]);
        expect(hb.risk.realizedToday, 'PnL in the heartbeat').toMatch(/^-?\d+\.\d\d$/);

        // While running: every status names the three strategies, each with its own line, then the net.
        const blocks = statusBlocks(r.stdout);
        expect(blocks.length, `periodic status lines${why}`).toBeGreaterThan(0);
        for (const b of blocks) {
          expect([...b.keys()], why).toEqual([...STRATEGIES, 'ALGOUSDT']);
          for (const s of STRATEGIES) expect(b.get(s), why).toMatch(/^(flat|long [\d.]+ @ [\d.]+|short [\d.]+ @ [\d.]+)[,;]/);
          // A position held shows its stop (every entry carries risk.stopLossPct).
          for (const s of STRATEGIES) if (/^(long|short)/.test(b.get(s)!)) expect(b.get(s), `${s} holds without a stop${why}`).toMatch(/, stop [\d.]+ \(/);
          expect(b.get('ALGOUSDT'), why).toMatch(/^net -?[\d.]+ \(the lines' sum; the exchange holds -?[\d.]+\)$/);
        }

        // At the end: a row per strategy, a total, the account, and the check.
        for (const s of [...STRATEGIES, 'total', 'account']) expect(r.stdout, why).toMatch(new RegExp(`^\\[demo\\] {3}${s} +\\d+ +[+-]?\\d+\\.\\d{4} +\\d+\\.\\d{4} `, 'm'));
        expect(r.stdout, why).toMatch(/\[demo\] {3}the total equals the account's figures: \d+ trades/);
        const s = JSON.parse(readFileSync(join(f.folder, 'status/demo-summary.json'), 'utf8')) as SummaryFile;
        expect(s.rows.map((x) => x.strategy)).toEqual(STRATEGIES);
        expect([s.matches, s.differ]).toEqual([true, []]);
        // The rows sum exactly to the total, and the total is the account's.
        const rowTrades = s.rows.reduce((a, x) => a + x.trades, 0);
        expect([rowTrades, s.total.trades]).toEqual([s.account.trades, s.account.trades]);
        expect([sum(s.rows.map((x) => x.realized)), s.total.realized]).toEqual([s.account.realized, s.account.realized]);
        expect([sum(s.rows.map((x) => x.fees)), s.total.fees]).toEqual([s.account.fees, s.account.fees]);
        expect(sum(s.rows.map((x) => x.unrealized))).toBe(s.account.unrealized);
        expect(s.account.trades, `round trips closed${why}`).toBeGreaterThan(0);
        // The account's figures are the database's: its fills booked again give the same trips, realized PnL and fees.
        const db = fromDatabase(join(f.folder, 'data/trader.db'));
        expect([db.trades, db.realized.toFixed(), db.fees.toFixed()]).toEqual([s.account.trades, s.account.realized, s.account.fees]);
        // At least one strategy held a position with a stop the exchange accepted (stops are placed for open positions only).
        expect(db.stopOrders.length, `stop orders on the exchange${why}`).toBeGreaterThan(0);
        expect(db.stopOrders.every((o) => STRATEGIES.includes(o.strategy)), 'each stop is owned by the strategy it protects').toBe(true);
        expect(s.rows.reduce((a, x) => a + x.stops.set, 0)).toBe(db.stopOrders.length);
        rmSync(f.folder, { recursive: true, force: true });
      } finally {
        ws.cleanup();
      }
    }, 60_000);
  }
});
