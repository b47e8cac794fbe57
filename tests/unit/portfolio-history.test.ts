/**
 * Daily history and the day summary over a real (in-memory, migrated) store:
 * end-of-day equity from the snapshots, day PnL, realized PnL of each day's
 * fills net of fees (worked by hand, and equal to what the portfolio itself
 * computes from the same fills), and the terminal chart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import type { Market } from '../../src/model/market.ts';
import { dailyHistory, daySummary, realizedByDay } from '../../src/portfolio/history.ts';
import { Portfolio, type PortfolioView } from '../../src/portfolio/portfolio.ts';
import { Store } from '../../src/store/store.ts';
import { equityChart, formatHistory } from '../../src/cli/portfolio-command.ts';

const D0 = Date.UTC(2024, 2, 10);
const H = 3_600_000;
const DAY = 86_400_000;

let store: Store | undefined;
afterEach(() => {
  store?.close();
  store = undefined;
});

async function open(): Promise<Store> {
  store = Store.open(':memory:');
  await store.migrate();
  return store;
}

let tradeSeq = 0;
function fill(s: Store, market: Market, symbol: string, side: 'BUY' | 'SELL', qty: string, price: string, fee: string, feeAsset: string, ts: number): void {
  s.sqlite
    .prepare('INSERT INTO fills (market, symbol, trade_id, client_order_id, exchange_order_id, side, price, quantity, fee, fee_asset, realized_pnl, is_maker, ts) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, NULL, 0, ?)')
    .run(market, symbol, `t${++tradeSeq}`, side, price, qty, fee, feeAsset, ts);
}

function snap(s: Store, resolution: string, ts: number, equity: string, unrealized = '0'): void {
  s.sqlite.prepare('INSERT INTO equity_snapshots VALUES (?, ?, ?, ?, ?)').run(resolution, ts, equity, equity, unrealized);
}

/** An instrument whose smallest lot is 0.00001 (dust below it), priced without bounds. */
function testInstrument(market: Market, symbol: string, base: string): Instrument {
  const lot = { minQty: new Dec('0.00001'), maxQty: new Dec(0), stepSize: new Dec('0.00001') };
  return { market, symbol, baseAsset: base, quoteAsset: 'USDT', status: 'TRADING', filters: { price: { minPrice: new Dec(0), maxPrice: new Dec(0), tickSize: new Dec('0.01') }, lot, marketLot: lot, notional: { minNotional: new Dec(0), applyMinToMarket: false, applyMaxToMarket: false }, maxNumOrders: 200, maxNumAlgoOrders: 10 } } as Instrument;
}

function instrument(s: Store, market: Market, symbol: string, base: string): void {
  s.sqlite.prepare("INSERT INTO instruments VALUES (?, ?, ?, 'USDT', 'TRADING', '{}', 0)").run(market, symbol, base);
}

/** The portfolio's own lifetime realized PnL (fees included) per symbol, rebuilt from the same fills. */
function portfolioRealized(s: Store, market: Market, bases: Record<string, string>): Dec {
  const clock = new TestClock(D0 + 10 * DAY);
  const bus = new Bus({ logger: silentLogger(), clock });
  const p = new Portfolio({ bus, store: s, clock, logger: silentLogger(), market, quoteAsset: 'USDT', instrument: (sym) => (bases[sym] ? testInstrument(market, sym, bases[sym]!) : undefined) });
  p.start();
  const total = Object.keys(bases).reduce((acc, sym) => acc.plus(p.position(sym).realizedPnl), ZERO);
  p.stop();
  bus.close();
  return total;
}

describe('realized PnL per day', () => {
  it('spot: a buy fee in the base asset shrinks the position, a fee in a third asset is not valued; equals the portfolio', async () => {
    const s = await open();
    instrument(s, 'spot', 'BTCUSDT', 'BTC');
    fill(s, 'spot', 'BTCUSDT', 'BUY', '0.01', '40000', '0.00001', 'BTC', D0 + 10 * H);
    fill(s, 'spot', 'BTCUSDT', 'BUY', '0.01', '42000', '0.42', 'USDT', D0 + 12 * H);
    fill(s, 'spot', 'BTCUSDT', 'SELL', '0.005', '45000', '0.225', 'USDT', D0 + DAY + 9 * H);
    fill(s, 'spot', 'BTCUSDT', 'SELL', '0.01499', '39000', '0.1', 'BNB', D0 + 2 * DAY + 9 * H);
    const byDay = realizedByDay(s, 'spot', 'USDT');
    // Day 0: no reduction; fees 0.00001 BTC x 40000 = 0.4 and 0.42 USDT.
    expect([byDay.get(D0)!.realized.toFixed(), byDay.get(D0)!.fees.toFixed(), byDay.get(D0)!.fills]).toEqual(['-0.82', '0.82', 2]);
    // Cost of the 0.01999 held: 40000 x 0.00999 + 42000 x 0.01 (the average entry, cost / 0.01999, does not divide evenly).
    // Day 1 sells 0.005 at 45000 and pays 0.225: it realizes the proceeds less its share of the cost (rounded to 20 decimals).
    const cost = new Dec('40000').times('0.00999').plus(new Dec('42000').times('0.01'));
    const share = cost.times('0.005').div('0.01999').toDecimalPlaces(20, Dec.ROUND_HALF_EVEN);
    expect(byDay.get(D0 + DAY)!.realized.toFixed()).toBe(new Dec('45000').times('0.005').minus(share).minus('0.225').toFixed());
    // Day 2: the rest at 39000 closes the line and takes the rest of the cost, so the two days realize exactly the cash
    // that moved (before, (price - average entry) x quantity left a residue in the 37th decimal); the BNB fee is left
    // out (no BNBUSDT price), as the portfolio does.
    expect(byDay.get(D0 + 2 * DAY)!.realized.toFixed()).toBe(new Dec('39000').times('0.01499').minus(cost.minus(share)).toFixed());
    expect([...byDay.values()].reduce((a, d) => a.plus(d.realized).plus(d.fees), ZERO).toFixed(), 'proceeds less cost, to the last unit').toBe(new Dec('45000').times('0.005').plus(new Dec('39000').times('0.01499')).minus(cost).toFixed());
    const sum = [...byDay.values()].reduce((a, d) => a.plus(d.realized), ZERO);
    expect(sum.toFixed(), 'the same arithmetic as the portfolio').toBe(portfolioRealized(s, 'spot', { BTCUSDT: 'BTC' }).toFixed());
  });

  it('futures: a fill that flips the position realizes the old side and opens the new one at its price', async () => {
    const s = await open();
    instrument(s, 'futures', 'ETHUSDT', 'ETH');
    fill(s, 'futures', 'ETHUSDT', 'BUY', '1', '2000', '0.4', 'USDT', D0 + H);
    fill(s, 'futures', 'ETHUSDT', 'SELL', '3', '2100', '1.26', 'USDT', D0 + 2 * H);
    fill(s, 'futures', 'ETHUSDT', 'BUY', '2', '2000', '0.8', 'USDT', D0 + DAY + H);
    const byDay = realizedByDay(s, 'futures', 'USDT');
    // Day 0: +100 on the long, fees 0.4 + 1.26; day 1: the 2 short from 2100 closed at 2000 = +200, fee 0.8.
    expect(byDay.get(D0)!.realized.toFixed()).toBe('98.34');
    expect(byDay.get(D0 + DAY)!.realized.toFixed()).toBe('199.2');
    expect(new Dec('297.54').toFixed()).toBe(portfolioRealized(s, 'futures', { ETHUSDT: 'ETH' }).toFixed());
  });
});

describe('dailyHistory', () => {
  it('end of day from the last intraday snapshot, else the next day start; start from the day before; days without data are left out', async () => {
    const s = await open();
    snap(s, '1d', D0, '1000');
    snap(s, '1h', D0 + 5 * H, '1010');
    snap(s, '1h', D0 + 23 * H, '1020');
    snap(s, '1d', D0 + DAY, '1021');
    snap(s, '1m', D0 + DAY + 60_000, '1022');
    snap(s, '1m', D0 + DAY + 23 * H + 59 * 60_000, '990');
    // Day 2: the bot ran only long enough for its day-start row; day 3 none; day 4 (today) a start and one minute.
    snap(s, '1d', D0 + 2 * DAY, '995');
    snap(s, '1d', D0 + 4 * DAY, '1100');
    snap(s, '1m', D0 + 4 * DAY + 2 * H, '1111');
    fill(s, 'spot', 'BTCUSDT', 'BUY', '0.001', '50000', '0.05', 'USDT', D0 + 3 * H);
    const h = dailyHistory(s, { market: 'spot', quoteAsset: 'USDT', days: 30, now: D0 + 4 * DAY + 3 * H });
    expect(h.days.map((d) => [d.day, d.equity, d.equitySource, d.startEquity, d.pnl, d.pnlPct, d.realized, d.fills])).toEqual([
      ['2024-03-10', '1020', 'snapshot', '1000', '20', '2.00', '-0.05', 1],
      ['2024-03-11', '990', 'snapshot', '1020', '-30', '-2.94', '0', 0],
      // Only a day-start row: the day's end is unknown beyond it; its start is the day before's last snapshot.
      ['2024-03-12', '995', 'day-start', '990', '5', '0.51', '0', 0],
      ['2024-03-14', '1111', 'snapshot', '1100', '11', '1.00', '0', 0],
    ]);
    const short = dailyHistory(s, { market: 'spot', quoteAsset: 'USDT', days: 3, now: D0 + 4 * DAY + 3 * H });
    expect(short.days.map((d) => d.day), '--days 3: today and the two days before').toEqual(['2024-03-12', '2024-03-14']);
    expect(dailyHistory(s, { market: 'spot', quoteAsset: 'USDT', days: 30, now: D0 + 40 * DAY }).days, 'nothing in the window').toEqual([]);
  });

  it('a day with only its own start row takes the next day start as its end', async () => {
    const s = await open();
    snap(s, '1d', D0, '1000');
    snap(s, '1d', D0 + DAY, '1050');
    const h = dailyHistory(s, { market: 'spot', quoteAsset: 'USDT', days: 30, now: D0 + DAY + H });
    expect(h.days.map((d) => [d.day, d.equity, d.equitySource, d.pnl])).toEqual([
      ['2024-03-10', '1050', 'next-day-start', '50'],
      ['2024-03-11', '1050', 'day-start', '0'],
    ]);
  });
});

describe('daySummary', () => {
  it('the shape the daily message reads: equity at the end of the day, realized + change in unrealized, total, fills, positions', async () => {
    const s = await open();
    instrument(s, 'futures', 'ETHUSDT', 'ETH');
    fill(s, 'futures', 'ETHUSDT', 'BUY', '1', '2000', '0.4', 'USDT', D0 - DAY + H);
    fill(s, 'futures', 'ETHUSDT', 'SELL', '0.5', '2100', '0.42', 'USDT', D0 + H);
    snap(s, '1m', D0 - 60_000, '10000', '10');
    snap(s, '1d', D0, '10001', '11');
    snap(s, '1m', D0 + DAY - 60_000, '10080', '25');
    snap(s, '1d', D0 + DAY, '10080', '25');
    const portfolio = {
      market: 'futures',
      quoteAsset: 'USDT',
      equity: () => new Dec('99999'),
      unrealized: () => new Dec('99'),
      positions: () => [{ symbol: 'ETHUSDT', quantity: new Dec('0.5'), entryPrice: new Dec('2000'), realizedPnl: ZERO, unrealizedPnl: new Dec('25') }],
    } as unknown as PortfolioView;
    const sum = daySummary(s, portfolio, D0);
    // dayPnl: realized 50 - 0.42 = 49.58, plus unrealized 25 at the end minus 10 at the start = 64.58.
    // totalPnl: every fill up to the day's end (-0.4 + 49.58) plus the unrealized at the end (25).
    expect(sum).toEqual({
      day: '2024-03-10',
      quoteAsset: 'USDT',
      equity: '10080',
      dayPnl: '64.58',
      totalPnl: '74.18',
      trades: 1,
      openPositions: [{ symbol: 'ETHUSDT', quantity: '0.5', entryPrice: '2000', unrealizedPnl: '25' }],
    });
    // While the day is still current (nothing from the next day yet), the portfolio's figures now are used.
    const today = daySummary(s, portfolio, D0 + DAY);
    expect([today.equity, today.dayPnl, today.trades]).toEqual(['99999', new Dec('99').minus('25').toFixed(), 0]);
  });
});

describe('the terminal view', () => {
  it('the chart: rising points climb, one point or equal points draw a half-height bar, none draw nothing', () => {
    expect(equityChart([])).toEqual([]);
    const rising = equityChart([{ label: '03-10', value: 100 }, { label: '03-11', value: 150 }, { label: '03-12', value: 200 }], 4);
    expect(rising).toEqual([
      '200.00 ┤    ██',
      '       │  ▁▁██',
      '       │  ████',
      '100.00 ┤▁▁████',
      '        03-10 03-12',
    ]);
    const one = equityChart([{ label: '03-10', value: 1234.5 }], 4);
    expect(one).toEqual(['1234.50 ┤', '        │', '        │██', '1234.50 ┤██', '         03-10']);
  });

  it('no data: says so; data: a row per day and the chart', () => {
    expect(formatHistory({ market: 'spot', quoteAsset: 'USDT', from: D0, now: D0, days: [] }, 30)).toMatch(/^no equity snapshots yet/);
    const text = formatHistory(
      { market: 'spot', quoteAsset: 'USDT', from: D0, now: D0 + H, days: [{ day: '2024-03-10', dayStart: D0, equity: '1020.126', equityAt: D0, equitySource: 'snapshot', startEquity: '1000', pnl: '20.126', pnlPct: '2.01', realized: '-0.05', fees: '0.05', fills: 1 }] },
      30,
    );
    expect(text).toContain('2024-03-10        1020.13   +20.13    +2.01 %     -0.05      1');
    expect(text).toContain('1020.13 ┤██');
  });
});
