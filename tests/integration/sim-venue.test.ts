/**
 * MODE=sim with the live feed: the paper venue lists what the exchange lists
 * (its public exchangeInfo, no keys), so any streamed symbol can be paper
 * traded, with that symbol's real filters. Here the "exchange" is the local
 * one serving a symbol the shipped catalog does not have.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
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

describe('sim venue with a live feed', () => {
  it("paper-trades a symbol outside the shipped catalog, with the exchange's filters", async () => {
    const algo = catalog('futures').find((i) => i.symbol === 'ALGOUSDT')!;
    // SOLUSDT as the exchange lists it: tick 0.01, step 1 (not the catalog's).
    const sol = { ...algo, symbol: 'SOLUSDT', baseAsset: 'SOL', filters: { ...algo.filters, price: { ...algo.filters.price, tickSize: dec('0.01'), maxPrice: dec('100000') }, lot: { ...algo.filters.lot, minQty: dec('1'), stepSize: dec('1') }, marketLot: { ...algo.filters.marketLot, minQty: dec('1'), stepSize: dec('1') } } };
    ex = await LocalExchange.start({ instruments: [...catalog('futures'), sol] });
    const { MODE: _m, BINANCE_API_KEY: _k, BINANCE_API_SECRET: _s, ...urls } = ex.botEnv();
    ws = tradingWorkspace(ex, 'market: futures\n', { ...urls, MODE: 'sim', FEED: 'live' });
    const clock = new TestClock(Date.now());
    kernel = await startKernel(ws, clock);
    const t = kernel.trading!;
    expect(t.instruments.get('SOLUSDT')?.filters.lot.stepSize.toFixed(), "the exchange's filters").toBe('1');

    candle(kernel, ex, clock, 'futures', 'SOLUSDT', '150');
    const filled = nextEvent(kernel.bus, 'fill');
    t.planner.submit({ symbol: 'SOLUSDT', side: 'BUY', quantity: dec('2.7'), source: 'manual', strategy: 'manual', reason: 'paper' });
    const f = await filled;
    expect([f.quantity.toFixed(), f.price.toFixed()], 'rounded down to the step of 1, filled by the sim engine at the last close').toEqual(['2', '150']);
    expect(t.venue.name).toBe('sim');
  });
});
