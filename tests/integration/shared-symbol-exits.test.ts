/**
 * Exits on a USD-M one-way symbol that several owners share (the venue nets
 * them into one position). Found in `npm run demo` (three strategies on
 * ALGOUSDT): positions of 2.8 to 5.8 ALGO (about 1 USDT) that could neither
 * be closed nor protected, every try refused with -4164 "Order's notional
 * must be no smaller than 5 (unless you choose reduce only)" (USD-M error
 * codes, https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
 *
 *   1. A reversal (exitLong and enterShort on one candle) of an owner whose
 *      stop had to be released first: the exit was re-sized after the
 *      release against the owner's other working SELL orders, and the new
 *      short entry counted as one, so the exit shrank to the difference
 *      (417.5 - 414.7 = 2.8) and the entry closed the long instead of
 *      opening the short.
 *   2. An owner's line worth less than the symbol's minimum notional: its
 *      exit went to the exchange without reduceOnly (the symbol is shared)
 *      and was refused; with the venue's net position on the same side and
 *      at least as large, reduce-only is exactly what the exit does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { SignalAction } from '../../src/model/events.ts';
import { candle, settled, startKernel, tradingWorkspace } from '../support/trading.ts';
import { addStrategy, type Workspace } from '../support/workspace.ts';

let ex: LocalExchange | undefined;
let kernel: Kernel | undefined;
let ws: Workspace | undefined;
afterEach(async () => {
  await kernel?.stop('test done');
  await ex?.close();
  ws?.cleanup();
  kernel = ex = ws = undefined;
});

async function rig(cYaml: string): Promise<{ k: Kernel; clock: TestClock; signal: (s: string, a: SignalAction) => void; venue: () => string; trades: () => string }> {
  ex = await LocalExchange.start();
  ex.setPrice('futures', 'ETHUSDT', new Dec('3000'));
  ws = tradingWorkspace(ex, 'market: futures\n');
  addStrategy(ws, 'a', { 'ETHUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: 0.1\n' });
  addStrategy(ws, 'c', { 'ETHUSDT.yaml': cYaml });
  const clock = new TestClock(Date.now());
  kernel = await startKernel(ws, clock, { pollMs: 3_600_000 });
  const k = kernel;
  const acct = ex.accountOf('local-api-key');
  return {
    k,
    clock,
    signal: (strategy, action) => k.bus.publish(`signal.${strategy}`, { kind: 'signal', ts: clock.now(), strategy, symbol: 'ETHUSDT', action, reason: `test ${action}` }),
    venue: () => ex!.engine.positions(acct).filter((p) => p.symbol === 'ETHUSDT').reduce((s, p) => s.plus(p.positionAmt), new Dec(0)).toFixed(),
    trades: () => ex!.engine.trades(acct, 'futures', 'ETHUSDT', { startTime: 0, limit: 100 }).map((x) => `${x.side} ${x.qty.toFixed()}`).join(', '),
  };
}

describe('exits on a shared USD-M one-way symbol', () => {
  it('a reversal whose stop is released first: the exit closes the whole long and the entry opens the short', async () => {
    const r = await rig('sizing:\n  type: fixed\n  quantity: 0.02\nrisk:\n  stopLossPct: 2\n');
    r.clock.advanceBy(60_000);
    candle(r.k, ex!, r.clock, 'futures', 'ETHUSDT', '3000');
    r.signal('a', 'enterLong');
    r.signal('c', 'enterLong');
    for (let i = 0; i < 4; i++) await settled(r.k);
    expect(r.venue(), 'a 0.1 + c 0.02').toBe('0.12');

    r.clock.advanceBy(60_000);
    candle(r.k, ex!, r.clock, 'futures', 'ETHUSDT', '3000');
    r.signal('c', 'exitLong');
    r.signal('c', 'enterShort');
    for (let i = 0; i < 6; i++) await settled(r.k);
    const c = r.k.trading!.portfolio.ledger.lot('c', 'ETHUSDT');
    expect(c.quantity.toFixed(), `c reversed to short; exchange trades: ${r.trades()}`).toBe('-0.02');
    expect(r.venue(), 'a 0.1 - c 0.02').toBe('0.08');
  }, 60_000);

  it("an owner's line below the minimum notional: its exit goes reduce-only (the net covers it) and fills", async () => {
    // ETHUSDT: step 0.001, minimum notional 20 USDT. c buys 0.01 at 3000 (30 USDT); the price halves: 15 USDT.
    const r = await rig('sizing:\n  type: fixed\n  quantity: 0.01\n');
    r.clock.advanceBy(60_000);
    candle(r.k, ex!, r.clock, 'futures', 'ETHUSDT', '3000');
    r.signal('a', 'enterLong');
    r.signal('c', 'enterLong');
    for (let i = 0; i < 4; i++) await settled(r.k);
    expect(r.venue()).toBe('0.11');

    ex!.setPrice('futures', 'ETHUSDT', new Dec('1500'));
    r.clock.advanceBy(60_000);
    candle(r.k, ex!, r.clock, 'futures', 'ETHUSDT', '1500');
    r.signal('c', 'exitLong');
    for (let i = 0; i < 4; i++) await settled(r.k);
    const c = r.k.trading!.portfolio.ledger.lot('c', 'ETHUSDT');
    expect(c.quantity.toFixed(), `c exited; exchange trades: ${r.trades()}`).toBe('0');
    expect(r.venue(), "a's 0.1 stays").toBe('0.1');
  }, 60_000);
});
