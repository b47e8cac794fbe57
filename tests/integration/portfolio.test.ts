/**
 * `trader portfolio history | show` and `trader db backup`, as real child
 * processes over real databases:
 *
 *   history: the real kernel (MODE=sim, the sim venue, a strategy that trades)
 *   runs in this process on a TestClock through 2.5 days of real ALGOUSDT
 *   1m candles from ../shared/data, with equity snapshots on that clock. The
 *   bot's own replay feed (FEED=replay) stamps every candle with the wall
 *   clock, so all of its fills would land today; driving the kernel's clock
 *   from the data gives fills and snapshots on three UTC days. The candles keep
 *   their real prices and are re-stamped to end before today, so `--days 30`
 *   (which counts back from the wall clock) covers them. The printed figures
 *   are then checked against the fills and equity_snapshots tables.
 *
 *   show: bot stopped (from the database) and bot running (its control API)
 *   list the same positions; backup: while the bot runs, the copy has the
 *   same rows, and an existing file is not overwritten without --force.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock, utcDay, utcDayStart } from '../../src/core/clock.ts';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { readKlineFile } from '../../src/market-data/kline-files.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { loadStrategyModules, resolveInstances } from '../../src/strategy/loader.ts';
import { killQuietly, runCli, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';
import { tradingWorkspace } from '../support/trading.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';

const DAY = 86_400_000;
const MIN = 60_000;
const KLINES = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');

let sd: StrategyDir | undefined;
let ws: Workspace | undefined;
let ex: LocalExchange | undefined;
let bot: RunningCli | undefined;
afterEach(async () => {
  if (bot) killQuietly(bot);
  await bot?.exited;
  await ex?.close();
  ws?.cleanup();
  sd?.cleanup();
  bot = ex = ws = sd = undefined;
});

/** Long every `every` candles, flat again half-way: fills all day, every day. */
const CYCLE = moduleSource(`
export default defineStrategy({
  name: 'cycle',
  description: 'long every N candles, flat again half-way through',
  params: z.object({ every: z.number().int().min(2).default(180) }),
  defaultTimeframe: '1m',
  warmup: () => 1,
  create(ctx, p) {
    let n = 0;
    return {
      onCandle() {
        n++;
        const side = ctx.position().side;
        if (side === 'flat' && n % p.every === 0) ctx.enterLong({ reason: 'cycle in' });
        else if (side === 'long' && n % p.every === Math.floor(p.every / 2)) ctx.exitLong({ reason: 'cycle out' });
      },
      reset() { n = 0; },
    };
  },
});`);

interface SnapRow {
  resolution: string;
  ts: number;
  equity: string;
}
interface FillRow {
  ts: number;
  realized_pnl: string | null;
  fee: string;
  fee_asset: string;
}

/** The per-day figures worked out straight from the two tables (see src/portfolio/history.ts for the rules). */
function expectedDays(dbFile: string): Array<{ day: string; equity: string; pnl: string | null; realized: string; fills: number }> {
  const db = new Database(dbFile, { readonly: true });
  try {
    const snaps = db.prepare('SELECT resolution, ts, equity FROM equity_snapshots ORDER BY ts').all() as SnapRow[];
    const fills = db.prepare('SELECT ts, realized_pnl, fee, fee_asset FROM fills ORDER BY ts, id').all() as FillRow[];
    expect(new Set(fills.map((f) => f.fee_asset)), 'the sim venue charges futures fees in USDT').toEqual(new Set(['USDT']));
    const days = [...new Set([...snaps.map((s) => utcDayStart(s.ts)), ...fills.map((f) => utcDayStart(f.ts))])].sort((a, b) => a - b);
    const intraday = (d: number) => snaps.filter((s) => s.resolution !== '1d' && s.ts >= d && s.ts < d + DAY);
    const daily = (d: number) => snaps.find((s) => s.resolution === '1d' && s.ts === d);
    return days.map((d) => {
      const end = intraday(d).at(-1) ?? daily(d + DAY) ?? daily(d);
      const start = intraday(d - DAY).at(-1) ?? daily(d);
      const own = fills.filter((f) => f.ts >= d && f.ts < d + DAY);
      // The venue's own realized PnL (Binance's realizedPnl on each futures trade), less the fee.
      const realized = own.reduce((acc, f) => acc.plus(f.realized_pnl ?? 0).minus(f.fee), ZERO);
      return { day: utcDay(d), equity: new Dec(end!.equity).toFixed(), pnl: start ? new Dec(end!.equity).minus(start.equity).toFixed() : null, realized: realized.toFixed(), fills: own.length };
    });
  } finally {
    db.close();
  }
}

describe('trader portfolio history', () => {
  it('over a database filled by a sim run spanning three UTC days: per-day equity, PnL and realized match the tables', { timeout: 240_000 }, async () => {
    sd = strategyDir();
    sd.write('strategies/cycle/index.ts', CYCLE);
    sd.write('strategies/cycle/ALGOUSDT.yaml', 'timeframe: 1m\nparams:\n  every: 180\nsizing:\n  type: quote\n  amount: 200\n');
    // The safety-net poll and periodic reconciliation only cost time against the in-process venue.
    sd.write('config/bot.yaml', 'market: futures\nreconcile:\n  intervalSec: 86400\n');
    const env = { MODE: 'sim', FEED: 'none', CONTROL_PORT: '0', HEARTBEAT_INTERVAL_MS: '60000', ORDER_POLL_SEC: '3600', LOG_LEVEL: 'warn' };
    const settings = loadSettings({ cwd: sd.dir, env, envFile: false });
    const { modules } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, sd.dir);
    const { specs, issues } = resolveInstances(settings, settings.strategies, modules);
    expect(issues).toEqual([]);

    // 2.5 days of real candles, re-stamped to start three days before today (00:00 UTC): they end yesterday at noon.
    const t0 = utcDayStart(Date.now()) - 3 * DAY;
    const candles = [];
    for (const k of readKlineFile(KLINES)) {
      if (candles.length === 2.5 * 24 * 60) break;
      candles.push(k);
    }
    const clock = new TestClock(t0);
    const kernel = await Kernel.start({ settings, clock, logger: silentLogger(), version: 't', runId: 'run-sim', specs, indicators: createIndicatorFactory });
    // The kernel's own EquitySnapshots writes the minute rows on this clock.
    try {
      for (const [i, k] of candles.entries()) {
        const openTime = t0 + i * MIN;
        clock.advanceTo(openTime + MIN);
        kernel.bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market: 'futures', symbol: 'ALGOUSDT', timeframe: '1m', openTime, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close), volume: Number(k.volume) });
        await kernel.trading!.execution.idle();
      }
    } finally {
      await kernel.stop('test done');
    }

    const expected = expectedDays(settings.paths.dbFile);
    expect(expected.map((d) => d.day), 'three UTC days, none of them today').toEqual([0, 1, 2].map((i) => utcDay(t0 + i * DAY)));
    expect(expected.filter((d) => d.fills > 0).length, 'fills on every day').toBe(3);
    const db = new Database(settings.paths.dbFile, { readonly: true });
    const byRes = Object.fromEntries((db.prepare('SELECT resolution, count(*) AS n FROM equity_snapshots GROUP BY resolution').all() as Array<{ resolution: string; n: number }>).map((r) => [r.resolution, r.n]));
    db.close();
    expect(byRes['1d'], "one '1d' row per day (the portfolio's day start)").toBe(3);
    // The last thinning ran at t0 + 60 h: the first 12 hours' minutes became 12 hourly rows.
    expect([byRes['1h'], byRes['1m']], 'minutes older than 48 h were thinned into hourly rows during the run').toEqual([12, 48 * 60 + 1]);

    const cli = { env: { ...env, ENV_FILE: '/dev/null' }, cwd: sd.dir };
    const json = await runCli(['portfolio', 'history', '--days', '30', '--json'], cli);
    expect(json.code, json.stderr).toBe(0);
    const h = JSON.parse(json.stdout) as { market: string; quoteAsset: string; days: Array<{ day: string; equity: string; pnl: string | null; realized: string; fills: number }> };
    expect([h.market, h.quoteAsset]).toEqual(['futures', 'USDT']);
    expect(h.days.map((d) => ({ day: d.day, equity: d.equity, pnl: d.pnl, realized: d.realized, fills: d.fills })), 'exact decimal strings, from the tables').toEqual(expected);
    expect(h.days[0]!.pnl, 'the first day starts from its day-start row').not.toBeNull();

    const text = await runCli(['portfolio', 'history', '--days', '30'], cli);
    expect(text.code, text.stderr).toBe(0);
    for (const d of expected) {
      const line = text.stdout.split('\n').find((l) => l.startsWith(d.day));
      expect(line, `a row for ${d.day}`).toBeDefined();
      const cells = line!.trim().split(/\s{2,}/);
      const two = (s: string) => new Dec(s).toFixed(2);
      const sign = (s: string) => (two(s).startsWith('-') ? two(s) : `+${two(s)}`);
      expect(cells[1], `${d.day} equity`).toBe(two(d.equity));
      expect(cells[2], `${d.day} day PnL`).toBe(sign(d.pnl!));
      expect(cells[4], `${d.day} realized`).toBe(sign(d.realized));
      expect(cells[5], `${d.day} fills`).toBe(String(d.fills));
    }
    expect(text.stdout, 'the chart, one column per day').toMatch(/┤[ ▁▂▃▄▅▆▇█]{6}/);

    const one = await runCli(['portfolio', 'history', '--days', '1'], cli);
    expect([one.code, one.stdout.trim()], 'no data in the window (today): said plainly, not an error').toEqual([0, 'no equity snapshots yet (futures, last 1 day): they are written every minute while the bot runs']);
    const bad = await runCli(['portfolio', 'history', '--days', 'ten'], cli);
    expect(bad.code).toBe(64);
  });

  it('no database yet: exit 66 with the reason; an empty one: no snapshots yet, exit 0', async () => {
    ws = makeWorkspace();
    const none = await runCli(['portfolio', 'history'], { env: ws.env, cwd: ws.dir });
    expect(none.code).toBe(66);
    expect(none.stderr).toContain('trader portfolio history: no database at');
    await runCli(['db', 'migrate'], { env: ws.env, cwd: ws.dir });
    const empty = await runCli(['portfolio', 'history'], { env: ws.env, cwd: ws.dir });
    expect([empty.code, empty.stdout]).toEqual([0, 'no equity snapshots yet (spot, last 30 days): they are written every minute while the bot runs\n']);
    const show = await runCli(['portfolio', 'show'], { env: ws.env, cwd: ws.dir });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('positions: none open');
  });
});

describe('trader portfolio show and trader db backup', () => {
  it('the same positions from the database (bot stopped) and the control API (bot running); a backup while it runs', { timeout: 120_000 }, async () => {
    ex = await LocalExchange.start();
    ex.setPrice('spot', 'BTCUSDT', new Dec('50000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    const buy = await runCli(['order', 'buy', '--symbol', 'BTCUSDT', '--quantity', '0.002', '--json'], { env: ws.env, cwd: ws.dir });
    expect(buy.code, buy.stderr).toBe(0);

    type Show = { via: string; positions: Array<Record<string, string | null>>; balances: Array<{ asset: string }>; equity: string | null; cashSource: string };
    const off = await runCli(['portfolio', 'show', '--json'], { env: ws.env, cwd: ws.dir });
    expect(off.code, off.stderr).toBe(0);
    const offline = JSON.parse(off.stdout) as Show;
    expect(offline.via).toBe('database (bot not running)');
    expect(offline.positions.map((p) => [p.symbol, p.side, p.entryPrice, p.markPrice]), 'bought at 50000; no candle stored, so the mark is the last fill price').toEqual([['BTCUSDT', 'LONG', '50000', '50000']]);
    expect(offline.positions[0]!.markSource).toMatch(/^last fill price at /);
    expect(offline.balances.map((b) => b.asset)).toEqual(['USDT', 'BTC']);
    const offText = await runCli(['portfolio', 'show'], { env: ws.env, cwd: ws.dir });
    expect(offText.stdout).toMatch(/BTCUSDT mark: last fill price at \d{4}-/);

    bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.userStream.status === 'ok', bot);
    const on = await runCli(['portfolio', 'show', '--json'], { env: ws.env, cwd: ws.dir });
    expect(on.code, on.stderr).toBe(0);
    const live = JSON.parse(on.stdout) as Show;
    expect(live.via).toBe('running bot');
    const pick = (s: Show) => s.positions.map((p) => ({ symbol: p.symbol, side: p.side, quantity: p.quantity, entryPrice: p.entryPrice, markPrice: p.markPrice, unrealizedPnl: p.unrealizedPnl }));
    expect(pick(live), 'the running bot and the database agree').toEqual(pick(offline));
    // Cash: the bot's ledger; offline, the last snapshot (before the order) moved by the fill since.
    expect([live.balances, live.equity], 'balances and equity agree too').toEqual([offline.balances, offline.equity]);
    expect(offline.cashSource).toMatch(/, plus 1 fill since$/);
    const onText = await runCli(['portfolio', 'show'], { env: ws.env, cwd: ws.dir });
    expect(onText.stdout).toMatch(/^portfolio \(spot, USDT\) via running bot/);

    // db backup while the bot runs.
    const dir = join(ws.dir, 'backups');
    mkdirSync(dir);
    const file = join(dir, 'trader-copy.db');
    const b1 = await runCli(['db', 'backup', '--to', file], { env: ws.env, cwd: ws.dir });
    expect(b1.code, b1.stderr).toBe(0);
    expect(b1.stdout).toMatch(/^backed up .* to .*trader-copy\.db: [\d.]+ KiB \(\d+ bytes\), schema 0006_order_namespace, integrity_check ok\n$/);
    expect(existsSync(file + '-wal'), 'a single self-contained file').toBe(false);
    const stable = ['orders', 'fills', 'positions', 'instruments', 'signals', 'risk_events', 'candle_series', 'backtest_runs'];
    const counts = (f: string) => {
      const db = new Database(f, { readonly: true });
      try {
        return Object.fromEntries(stable.map((t) => [t, (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n]));
      } finally {
        db.close();
      }
    };
    expect(counts(file), 'the copy holds the same rows').toEqual(counts(ws.dbFile));
    expect(counts(file).fills).toBeGreaterThan(0);
    const size = statSync(file).size;

    const again = await runCli(['db', 'backup', '--to', file], { env: ws.env, cwd: ws.dir });
    expect(again.code, 'an existing file is not overwritten').toBe(73);
    expect(again.stderr).toContain('already exists; pass --force to overwrite it');
    expect(statSync(file).size).toBe(size);
    const forced = await runCli(['db', 'backup', '--to', file, '--force'], { env: ws.env, cwd: ws.dir });
    expect(forced.code, forced.stderr).toBe(0);

    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
  });
});
