/**
 * Reconciliation at start, on the local exchange (USD-M, real ccxt + ws):
 * what happened while the bot was down is found and applied before anything
 * trades: a limit order that filled meanwhile, a fill the bot never heard of,
 * orders and positions placed by hand (per reconcile.external), and a
 * position that changed with no explanation (the symbol goes HALTED).
 * `trader reconcile --dry-run` reports the same and changes nothing.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveClock, type Clock } from '../../src/core/clock.ts';
import { Dec, dec } from '../../src/core/decimal.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { createFuturesClient } from '../../src/venues/binance/ccxt-clients.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { runCli } from '../support/bot-process.ts';
import { candle, nextEvent, startKernel, tradingWorkspace } from '../support/trading.ts';
import type { Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let kernel: Kernel | undefined;
let ws: Workspace | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  await ex?.close();
  ws?.cleanup();
  kernel = ex = ws = undefined;
});

/** startKernel with the bot's JSON log lines collected (debug and up), to see what a stop leaves in the log. */
function startKernelLogging(w: Workspace, clock: Clock, lines: string[], onLine: () => void): Promise<Kernel> {
  const { logger } = createLogger({ level: 'debug', format: 'json', stdout: { write: (l: string) => (lines.push(l), onLine()) } });
  const settings = loadSettings({ cwd: w.dir, env: w.env, envFile: false });
  return Kernel.start({ settings, clock, logger, version: 'test', runId: 'run-test', specs: [], indicators: createIndicatorFactory, execution: { retryDelayMs: 50 } });
}

function byHand(x: LocalExchange): ReturnType<typeof createFuturesClient> {
  return createFuturesClient({ spotBase: x.url, futuresBase: x.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false });
}

describe('reconciliation at start', () => {
  it('settles what finished while the bot was down, adopts nothing by default, halts what it cannot explain', async () => {
    ex = await LocalExchange.start();
    for (const [s, p] of [['BTCUSDT', '60000'], ['ETHUSDT', '3000'], ['ALGOUSDT', '0.2']] as const) ex.setPrice('futures', s, new Dec(p));
    ws = tradingWorkspace(ex, 'market: futures\nreconcile:\n  external: ignore\n');
    let clock = new LiveClock();
    kernel = await startKernel(ws, clock);
    let t = kernel.trading!;
    expect(t.reconciler.last?.discrepancies, 'a fresh account matches').toBe(0);

    // Run 1: a resting limit on BTC, and an ETH long.
    candle(kernel, ex, clock, 'futures', 'BTCUSDT', '60000');
    candle(kernel, ex, clock, 'futures', 'ETHUSDT', '3000');
    const resting = nextEvent(kernel.bus, 'order.update', (u) => u.symbol === 'BTCUSDT' && u.status === 'NEW');
    t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.002'), price: dec('59900'), source: 'manual', strategy: 'manual', reason: 'rest' });
    const limit = await resting;
    const ethFill = nextEvent(kernel.bus, 'fill', (f) => f.symbol === 'ETHUSDT');
    t.planner.submit({ symbol: 'ETHUSDT', side: 'BUY', quantity: dec('0.05'), source: 'manual', strategy: 'manual', reason: 'long' });
    await ethFill;
    await kernel.stop('deploy');
    kernel = undefined;

    // While it is down: the limit fills; someone closes the ETH long by hand and opens ALGO by hand, with a resting order.
    ex.setPrice('futures', 'BTCUSDT', new Dec('59800'));
    const c = byHand(ex);
    await c.loadMarkets();
    await c.createOrder('ETH/USDT:USDT', 'market', 'sell', 0.05, undefined, { reduceOnly: true });
    await c.createOrder('ALGO/USDT:USDT', 'market', 'buy', 100);
    await c.createOrder('ALGO/USDT:USDT', 'limit', 'buy', 100, 0.195);

    // Dry run first: the report, and nothing changed.
    const dry = await runCli(['reconcile', '--dry-run', '--json'], { env: ws.env, cwd: ws.dir });
    const d = JSON.parse(dry.stdout) as { dryRun: boolean; symbols: Array<{ symbol: string; fillsAdded: number; position: { status: string } }> };
    expect(d.dryRun).toBe(true);
    expect(d.symbols.map((s) => `${s.symbol} ${s.position.status} missed=${s.fillsAdded}`), `the diff, before anything is applied: ${dry.stdout}`).toEqual([
      'ALGOUSDT external missed=0',
      'BTCUSDT match missed=1', // the limit's fill explains the exchange's 0.002
      'ETHUSDT unexplained missed=0',
    ]);
    const db = new Database(ws.dbFile, { readonly: true });
    expect(db.prepare('SELECT status FROM orders WHERE client_order_id = ?').get(limit.clientOrderId), 'dry run: the row is untouched').toEqual({ status: 'NEW' });
    db.close();

    // Run 2: reconciliation at start applies it before anything trades.
    clock = new LiveClock();
    kernel = await startKernel(ws, clock);
    t = kernel.trading!;
    const r = t.reconciler.last!;
    expect(r.fillsFromWorkingOrders, 'the limit that filled while down: its fill recorded').toBe(1);
    expect(t.portfolio.position('BTCUSDT').quantity.toFixed()).toBe('0.002');
    const db2 = new Database(ws.dbFile, { readonly: true });
    expect(db2.prepare('SELECT status, filled_quantity FROM orders WHERE client_order_id = ?').get(limit.clientOrderId)).toEqual({ status: 'FILLED', filled_quantity: '0.002' });
    db2.close();
    expect(r.symbols.map((s) => [s.symbol, s.position.ours, s.position.venue, s.position.status, s.position.action, s.externalOrders.map((e) => `${e.side} ${e.type} ${e.action}`)])).toEqual([
      ['ALGOUSDT', '0', '100', 'external', 'ignored', ['BUY LIMIT ignore']],
      ['ETHUSDT', '0.05', '0', 'unexplained', 'HALTED', []],
    ]);
    expect(r.halted).toEqual(['ETHUSDT']);
    expect(t.risk.states.get('symbol', 'ETHUSDT')).toBe('HALTED');
    expect(t.risk.states.entry('symbol', 'ETHUSDT')?.reason).toBe('RECONCILE_POSITION_MISMATCH: venue=0 ours=0.05 diff=-0.05');
    expect(t.risk.states.get('symbol', 'ALGOUSDT'), 'ignored, not halted').toBe('ACTIVE');
    const hb = kernel.heartbeat.write();
    expect([hb.reconcile.status, hb.reconcile.detail]).toEqual(['degraded', expect.stringContaining('HALTED ETHUSDT')]);
    expect(t.portfolio.position('ETHUSDT').quantity.toFixed(), "the books follow the exchange's quantity").toBe('0');
    expect((await t.reconciler.run()).symbols.map((s) => s.symbol), 'the next pass: only the ignored external position differs').toEqual(['ALGOUSDT']);
    expect(t.risk.states.get('symbol', 'ETHUSDT'), 'HALTED until a person resumes').toBe('HALTED');
    const open = await c.fetchOpenOrders('ALGO/USDT:USDT');
    expect(open.length, 'an order placed by hand is never cancelled').toBe(1);
  });

  it('spot: the dry run counts a missed fill as received (net of its base-asset fee) and calls a position a match only when the figures are equal', async () => {
    // The account holds 0.000005 BTC before the bot: below the lot's minimum quantity (0.00001), and not the bot's.
    ex = await LocalExchange.start({ accounts: [{ ...DEFAULT_ACCOUNT, spot: { USDT: '10000', BTC: '0.000005' } }] });
    ex.setPrice('spot', 'BTCUSDT', new Dec('60000'));
    ws = tradingWorkspace(ex, 'market: spot\n');
    const clock = new LiveClock();
    kernel = await startKernel(ws, clock);
    const t = kernel.trading!;

    // A market buy (the 0.1 % fee is taken in BTC: 0.002 buys 0.001998) and a resting limit that fills while the bot is down.
    candle(kernel, ex, clock, 'spot', 'BTCUSDT', '60000');
    const bought = nextEvent(kernel.bus, 'fill', (f) => f.symbol === 'BTCUSDT');
    t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.002'), source: 'manual', strategy: 'manual', reason: 'buy' });
    await bought;
    const resting = nextEvent(kernel.bus, 'order.update', (u) => u.symbol === 'BTCUSDT' && u.status === 'NEW');
    t.planner.submit({ symbol: 'BTCUSDT', side: 'BUY', quantity: dec('0.002'), price: dec('59900'), source: 'manual', strategy: 'manual', reason: 'rest' });
    await resting;
    expect(t.portfolio.position('BTCUSDT').quantity.toFixed()).toBe('0.001998');
    const pass = await t.reconciler.run();
    expect(pass.symbols.map((s) => [s.symbol, s.position.ours, s.position.external, s.position.venue, s.position.status]), 'less than the lot minimum is still external: the comparison is exact').toEqual([
      ['BTCUSDT', '0.001998', '0.000005', '0.002003', 'external'],
    ]);
    await kernel.stop('deploy');
    kernel = undefined;
    ex.setPrice('spot', 'BTCUSDT', new Dec('59800'));

    const dry = await runCli(['reconcile', '--dry-run', '--json'], { env: ws.env, cwd: ws.dir });
    const d = JSON.parse(dry.stdout) as { symbols: Array<{ symbol: string; fillsAdded: number; position: { ours: string; external: string; venue: string; status: string } }> };
    expect(d.symbols.map((s) => [s.symbol, s.fillsAdded, s.position.ours, s.position.external, s.position.venue, s.position.status]), 'the missed fill counted as received: 0.001998 + 0.001998, plus the external 0.000005').toEqual([
      ['BTCUSDT', 1, '0.003996', '0.000005', '0.004001', 'match'],
    ]);
    for (const s of d.symbols.filter((x) => x.position.status === 'match')) {
      expect(new Dec(s.position.ours).plus(s.position.external).eq(s.position.venue), `a match adds up exactly: ${JSON.stringify(s.position)}`).toBe(true);
    }
    const text = await runCli(['reconcile', '--dry-run'], { env: ws.env, cwd: ws.dir });
    expect(text.stdout.split('\n')[1], 'the text names the external part of a match').toBe('  BTCUSDT: position ours 0.003996, external 0.000005, exchange 0.004001 (match); 1 missed fill(s) to record');

    // Applied at the next start: the same figures.
    kernel = await startKernel(ws, new LiveClock());
    expect(kernel.trading!.portfolio.position('BTCUSDT').quantity.toFixed(), 'as the dry run said').toBe('0.003996');
    expect(kernel.trading!.reconciler.last?.discrepancies, 'nothing left to reconcile').toBe(0);
  });

  it('external: adopt takes over orders and positions placed by hand; external: halt halts their symbol', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'ALGOUSDT', new Dec('0.2'));
    const c = byHand(ex);
    await c.loadMarkets();
    await c.createOrder('ALGO/USDT:USDT', 'market', 'buy', 100);
    await c.createOrder('ALGO/USDT:USDT', 'limit', 'buy', 50, 0.195);

    ws = tradingWorkspace(ex, 'market: futures\nreconcile:\n  external: halt\n');
    kernel = await startKernel(ws, new LiveClock());
    expect(kernel.trading!.risk.states.get('symbol', 'ALGOUSDT')).toBe('HALTED');
    expect(kernel.trading!.risk.states.entry('symbol', 'ALGOUSDT')?.reason).toMatch(/^RECONCILE_EXTERNAL_(ORDER|POSITION)/);
    await kernel.stop('next');
    kernel = undefined;
    ws.cleanup();

    ws = tradingWorkspace(ex, 'market: futures\nreconcile:\n  external: adopt\n');
    const clock = new LiveClock();
    kernel = await startKernel(ws, clock, {});
    // The adoption needs a price for the position: the first pass records the order and waits; a candle, then the next pass adopts.
    candle(kernel, ex, clock, 'futures', 'ALGOUSDT', '0.2');
    await kernel.trading!.reconciler.run();
    const t = kernel.trading!;
    expect(t.portfolio.position('ALGOUSDT').quantity.toFixed(), 'the position is ours now').toBe('100');
    expect(t.risk.states.get('symbol', 'ALGOUSDT')).toBe('ACTIVE');
    const rows = t.execution.openOrders('ALGOUSDT').map((o) => [o.strategy, o.side, o.type, o.quantity, o.status]);
    expect(rows, 'the resting order is tracked as external').toEqual([['external', 'BUY', 'LIMIT', '50', 'NEW']]);
    expect((await t.reconciler.run()).discrepancies, 'a third pass finds nothing').toBe(0);
  });
});

describe('reconciliation while trading', () => {
  it('a fill that lands during a pass is not a mismatch: no HALT, no adjustment, nothing counted twice', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: futures\nreconcile:\n  intervalSec: 86400\n');
    const clock = new LiveClock();
    kernel = await startKernel(ws, clock);
    const t = kernel.trading!;
    candle(kernel, ex, clock, 'futures', 'ETHUSDT', '3000');

    // A first trade: the symbol has an order row, so a pass reads its fills.
    const first = nextEvent(kernel.bus, 'fill', (f) => f.symbol === 'ETHUSDT');
    t.planner.submit({ symbol: 'ETHUSDT', side: 'BUY', quantity: dec('0.05'), source: 'manual', strategy: 'manual', reason: 'before' });
    await first;

    // The pass reads the venue's positions first (0.05), then each symbol's fills. Hold the fills read
    // long enough for a trade to happen in between: the venue's figure is then older than our books.
    ex.faults.delays.push({ count: 1, ms: 1500, pathPrefix: '/fapi/v1/userTrades' });
    const pass = t.reconciler.run();
    for (const deadline = Date.now() + 10_000; ex.faults.delays.length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
    // The fills read is being held: trade now.
    const second = nextEvent(kernel.bus, 'fill', (f) => f.symbol === 'ETHUSDT');
    t.planner.submit({ symbol: 'ETHUSDT', side: 'BUY', quantity: dec('0.05'), source: 'manual', strategy: 'manual', reason: 'during' });
    await second;
    const report = await pass;

    expect(report.halted, 'nothing halted').toEqual([]);
    expect(t.risk.stateList(), 'every scope ACTIVE').toEqual([]);
    const db = new Database(ws.dbFile, { readonly: true });
    try {
      const adjustments = db.prepare("SELECT COUNT(*) AS n FROM fills WHERE trade_id LIKE 'reconcile-%'").get() as { n: number };
      expect(adjustments.n, 'no adjustment fill').toBe(0);
      const fills = db.prepare("SELECT COUNT(*) AS n FROM fills WHERE symbol = 'ETHUSDT'").get() as { n: number };
      expect(fills.n, 'the two real fills, each once').toBe(2);
    } finally {
      db.close();
    }
    expect(t.portfolio.position('ETHUSDT').quantity.toFixed(), "the exchange's 0.1").toBe('0.1');
    const after = await t.reconciler.run();
    expect([after.discrepancies, after.halted], 'the next pass finds everything matching').toEqual([0, []]);
  });
});

describe('reconciliation and stop', () => {
  it('a pass in flight when the bot stops ends quietly (debug, no ERROR); no pass starts once the stop began', async () => {
    ex = await LocalExchange.start();
    ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
    ws = tradingWorkspace(ex, 'market: futures\nreconcile:\n  intervalSec: 1\n');
    const lines: string[] = [];
    let onLine = (): void => undefined;
    kernel = await startKernelLogging(ws, new LiveClock(), lines, () => onLine());
    const t = kernel.trading!;

    // The next periodic pass asks for the open orders first: the exchange holds that answer for 3 s.
    ex.faults.delays.push({ count: 1, ms: 3000, pathPrefix: '/fapi/v1/openOrders' });
    for (const deadline = Date.now() + 10_000; ex.faults.delays.length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
    expect(ex.faults.delays, 'a pass is waiting on the exchange').toEqual([]);

    // The stop begins (system.shutdown) while that pass waits: the timer may still fire, a reconnect may still ask.
    let refused: unknown;
    kernel.bus.on('system.shutdown', () => void t.reconciler.run().catch((err: unknown) => (refused = err)), 'test');
    const k = kernel;
    kernel = undefined;
    await k.stop('test done');
    await new Promise((r) => setImmediate(r));
    expect(refused, 'a pass asked for after the stop began is refused before it reads anything').toMatchObject({ code: 'STOPPING' });

    // The pass ends when the stopping venue cuts its read off (a moment after stop() returns): wait for
    // its line (or an error line), at most 10 s.
    type LogLine = { level: string; msg: string; component?: string };
    const log = (): LogLine[] => lines.map((l) => JSON.parse(l) as LogLine);
    const isError = (l: LogLine): boolean => l.level === 'error' || l.level === 'fatal';
    const isEnd = (l: LogLine): boolean => l.component === 'reconcile' && l.msg === 'reconciliation pass ended by the stop';
    await new Promise<void>((resolve) => {
      setTimeout(resolve, 10_000);
      onLine = () => void (log().some((l) => isError(l) || isEnd(l)) && resolve());
      onLine();
    });
    expect(log().filter(isError).map((l) => l.msg), 'the stop is not an error').toEqual([]);
    expect(log().find(isEnd), 'the pass in flight ended by the stop, at debug').toMatchObject({ level: 'debug' });
  });
});
