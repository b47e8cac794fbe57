/**
 * Backtest metrics: every figure of computeMetrics on small hand-made curves
 * and trade lists, with the arithmetic worked out in comments, plus the daily
 * series (carry-forward, UTC day labels) and a year of 1m points checked
 * against a naive drawdown recomputation.
 */
import { describe, expect, it } from 'vitest';
import { computeMetrics, dailyEquity, dailyReturns, type MetricsInput } from '../../src/backtest/metrics.ts';
import type { BacktestTrade, EquityPoint } from '../../src/backtest/types.ts';

const H = 3_600_000;
const DAY = 24 * H;
const JAN_1_2024 = Date.UTC(2024, 0, 1);

function pt(t: number, equity: string): EquityPoint {
  return { t, equity };
}

function trade(o: Partial<BacktestTrade> = {}): BacktestTrade {
  return {
    symbol: 'BTCUSDT',
    side: 'LONG',
    entryTime: JAN_1_2024,
    exitTime: JAN_1_2024 + H,
    entryPrice: '100',
    exitPrice: '101',
    quantity: '1',
    pnl: '1',
    pnlPct: 1,
    fees: '0',
    funding: '0',
    holdingMs: H,
    ...o,
  };
}

function input(o: Partial<MetricsInput> = {}): MetricsInput {
  return { from: JAN_1_2024, to: JAN_1_2024 + 3 * DAY, startEquity: '1000', equity: [], trades: [], ...o };
}

describe('computeMetrics on a 3-day curve 1000 -> 1100 -> 990 -> 1089', () => {
  // Day 1 has two points (1050 then 1100): only the last one counts for the day.
  const equity = [
    pt(JAN_1_2024 + 6 * H, '1050'),
    pt(JAN_1_2024 + 23 * H, '1100'),
    pt(JAN_1_2024 + DAY + 12 * H, '990'),
    pt(JAN_1_2024 + 2 * DAY + 12 * H, '1089'),
  ];
  const m = computeMetrics(input({ equity }));

  it('takes daily returns 0.1, -0.1, 0.1 from each day last point', () => {
    const r = dailyReturns(equity, 1000, JAN_1_2024, JAN_1_2024 + 3 * DAY);
    expect(r).toHaveLength(3);
    expect(r[0]).toBeCloseTo(0.1, 12); // 1100 / 1000 - 1
    expect(r[1]).toBeCloseTo(-0.1, 12); // 990 / 1100 - 1
    expect(r[2]).toBeCloseTo(0.1, 12); // 1089 / 990 - 1
  });

  it('reports start, end and total return', () => {
    expect(m.startEquity).toBe(1000);
    expect(m.endEquity).toBe(1089);
    expect(m.totalReturn).toBeCloseTo(0.089, 12);
  });

  it('computes Sharpe with the sample stdev, annualized by sqrt(365)', () => {
    // mean = 0.1/3 = 1/30; deviations 2/30, -4/30, 2/30; sum of squares 24/900;
    // sample variance 12/900, stdev sqrt(12)/30; mean/stdev = 1/sqrt(12).
    expect(m.sharpe).toBeCloseTo(Math.sqrt(365 / 12), 12);
  });

  it('computes Sortino with the downside deviation over all days', () => {
    // downside = sqrt(0.1^2 / 3) = 0.1/sqrt(3); mean/downside = (1/30)/(0.1/sqrt(3)) = 1/sqrt(3).
    expect(m.sortino).toBeCloseTo(Math.sqrt(365 / 3), 12);
  });

  it('finds the drawdown from the 1100 peak, never regained', () => {
    // (1100 - 990) / 1100 = 0.1; 1089 < 1100 so it lasts to the last point:
    // (2 days + 12 h) - 23 h = 37 h.
    expect(m.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(m.maxDrawdownDurationMs).toBe(37 * H);
  });

  it('annualizes over the 3-day span and derives Calmar from it', () => {
    // (1089/1000) ^ (365/3) - 1: a huge number, so compare relatively.
    const annual = Math.pow(1.089, 365 / 3) - 1;
    expect(m.annualizedReturn / annual).toBeCloseTo(1, 12);
    expect(m.calmar / (annual / 0.1)).toBeCloseTo(1, 12);
  });

  it('has one monthly row for January', () => {
    expect(m.monthly).toHaveLength(1);
    expect(m.monthly[0]?.month).toBe('2024-01');
    expect(m.monthly[0]?.return).toBeCloseTo(0.089, 12);
  });

  it('has zero trade figures without trades', () => {
    expect(m.trades).toBe(0);
    expect(m.winRate).toBe(0);
    expect(m.profitFactor).toBe(0);
    expect(m.expectancy).toBe(0);
    expect(m.avgWin).toBe(0);
    expect(m.avgLoss).toBe(0);
    expect(m.largestWin).toBe(0);
    expect(m.largestLoss).toBe(0);
    expect(m.avgHoldingMs).toBe(0);
    expect(m.timeInMarket).toBe(0);
    expect(m.feesPaid).toBe(0);
    expect(m.fundingPaid).toBe(0);
  });
});

describe('annualized return and Calmar', () => {
  it('equals the total return over exactly 365 days; Calmar = annual / drawdown', () => {
    const from = Date.UTC(2023, 0, 1);
    const to = from + 365 * DAY;
    // Peak 1250, trough 1000: drawdown 250/1250 = 0.2. End 1200: annual = 0.2 (exponent 1).
    const m = computeMetrics(
      input({
        from,
        to,
        equity: [pt(from + 100 * DAY, '1250'), pt(from + 200 * DAY, '1000'), pt(from + 364 * DAY, '1200')],
      }),
    );
    expect(m.annualizedReturn).toBeCloseTo(0.2, 12);
    expect(m.maxDrawdown).toBeCloseTo(0.2, 12);
    expect(m.calmar).toBeCloseTo(1, 12);
  });

  it('takes the root over two years: 1000 -> 1210 is 10 % a year', () => {
    const from = Date.UTC(2022, 0, 1);
    const to = from + 730 * DAY;
    const m = computeMetrics(input({ from, to, equity: [pt(to - H, '1210')] }));
    expect(m.totalReturn).toBeCloseTo(0.21, 12);
    expect(m.annualizedReturn).toBeCloseTo(0.1, 12); // sqrt(1.21) - 1
    // Never below the running peak: no drawdown, so Calmar is 0.
    expect(m.maxDrawdown).toBe(0);
    expect(m.calmar).toBe(0);
  });

  it('is -1 when the account is wiped out', () => {
    const m = computeMetrics(input({ equity: [pt(JAN_1_2024 + H, '0')] }));
    expect(m.annualizedReturn).toBe(-1);
    expect(m.maxDrawdown).toBe(1);
  });
});

describe('flat and empty curves', () => {
  it('gives Sharpe, Sortino, drawdown and Calmar 0 on a flat curve', () => {
    const equity = [0, 1, 2, 3, 4].map((d) => pt(JAN_1_2024 + d * DAY + H, '1000'));
    const m = computeMetrics(input({ to: JAN_1_2024 + 5 * DAY, equity }));
    expect(m.sharpe).toBe(0);
    expect(m.sortino).toBe(0);
    expect(m.maxDrawdown).toBe(0);
    expect(m.maxDrawdownDurationMs).toBe(0);
    expect(m.calmar).toBe(0);
    expect(m.totalReturn).toBe(0);
    expect(m.annualizedReturn).toBe(0);
  });

  it('uses startEquity as end equity when there is no point', () => {
    const m = computeMetrics(input({ startEquity: '250.5' }));
    expect(m.endEquity).toBe(250.5);
    expect(m.totalReturn).toBe(0);
    expect(m.monthly).toEqual([{ month: '2024-01', return: 0 }]);
  });

  it('gives Sharpe 0 with a single day, while Sortino still sees the loss', () => {
    // One day, return -0.05: n < 2 so Sharpe 0; Sortino = -0.05 / 0.05 * sqrt(365).
    const m = computeMetrics(input({ to: JAN_1_2024 + DAY, equity: [pt(JAN_1_2024 + H, '950')] }));
    expect(m.sharpe).toBe(0);
    expect(m.sortino).toBeCloseTo(-Math.sqrt(365), 12);
  });
});

describe('drawdown duration', () => {
  const t0 = JAN_1_2024;

  it('ends when equity gets back to the peak (equality counts), and keeps the longest', () => {
    // 1200 at 1h is a peak; 900 at 2h (dd 300/1200 = 0.25); back to 1200 at 5h: 4 h underwater.
    // New peak 1300 at 6h; 1250 until the end at 8h: 2 h, shorter.
    const m = computeMetrics(
      input({
        equity: [
          pt(t0 + 1 * H, '1200'),
          pt(t0 + 2 * H, '900'),
          pt(t0 + 5 * H, '1200'),
          pt(t0 + 6 * H, '1300'),
          pt(t0 + 7 * H, '1250'),
          pt(t0 + 8 * H, '1250'),
        ],
      }),
    );
    expect(m.maxDrawdown).toBeCloseTo(0.25, 12);
    expect(m.maxDrawdownDurationMs).toBe(4 * H);
  });

  it('runs to the last point when the peak is never regained', () => {
    // Peak 1300 at 6h, 1250 until 20h: 14 h beats the 4 h of the first dip.
    // Deepest fall is still 300/1200 = 0.25 (1300 -> 1250 is only 1/26).
    const m = computeMetrics(
      input({
        equity: [
          pt(t0 + 1 * H, '1200'),
          pt(t0 + 2 * H, '900'),
          pt(t0 + 5 * H, '1200'),
          pt(t0 + 6 * H, '1300'),
          pt(t0 + 20 * H, '1250'),
        ],
      }),
    );
    expect(m.maxDrawdown).toBeCloseTo(0.25, 12);
    expect(m.maxDrawdownDurationMs).toBe(14 * H);
  });

  it('treats startEquity at from as the first peak', () => {
    // 1000 at from, 900 at 3h (dd 0.1), 1000 again at 5h: 5 h from `from`.
    const m = computeMetrics(input({ equity: [pt(t0 + 3 * H, '900'), pt(t0 + 5 * H, '1000')] }));
    expect(m.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(m.maxDrawdownDurationMs).toBe(5 * H);
  });

  it('counts from the latest time at the peak, not the first', () => {
    // 1100 at 1h and again at 4h (flat at the top), 1000 at 6h, 1100 at 9h: 5 h, not 8 h.
    const m = computeMetrics(
      input({
        equity: [pt(t0 + 1 * H, '1100'), pt(t0 + 4 * H, '1100'), pt(t0 + 6 * H, '1000'), pt(t0 + 9 * H, '1100')],
      }),
    );
    expect(m.maxDrawdownDurationMs).toBe(5 * H);
  });
});

describe('trade statistics', () => {
  const trades = [
    trade({ pnl: '30', fees: '1', funding: '0.1', holdingMs: 1 * H }),
    trade({ pnl: '-10', fees: '1', funding: '-0.3', holdingMs: 2 * H }),
    trade({ pnl: '50', fees: '2', funding: '0', holdingMs: 3 * H }),
    trade({ pnl: '-20', fees: '2', funding: '0.25', holdingMs: 4 * H }),
    trade({ pnl: '0', fees: '0.5', funding: '0', holdingMs: 5 * H }),
  ];
  const m = computeMetrics(input({ trades }));

  it('counts wins over all trades (a zero trade is neither)', () => {
    expect(m.trades).toBe(5);
    expect(m.winRate).toBeCloseTo(0.4, 12); // 2 / 5
  });

  it('computes profit factor, expectancy, averages and extremes', () => {
    expect(m.profitFactor).toBeCloseTo(80 / 30, 12); // (30 + 50) / |-10 - 20|
    expect(m.expectancy).toBeCloseTo(10, 12); // (30 - 10 + 50 - 20 + 0) / 5
    expect(m.avgWin).toBeCloseTo(40, 12); // 80 / 2
    expect(m.avgLoss).toBeCloseTo(-15, 12); // -30 / 2
    expect(m.largestWin).toBe(50);
    expect(m.largestLoss).toBe(-20);
    expect(m.avgHoldingMs).toBe(3 * H); // (1 + 2 + 3 + 4 + 5) h / 5
  });

  it('sums fees and funding', () => {
    expect(m.feesPaid).toBeCloseTo(6.5, 12); // 1 + 1 + 2 + 2 + 0.5
    expect(m.fundingPaid).toBeCloseTo(0.05, 12); // 0.1 - 0.3 + 0 + 0.25 + 0
  });

  it('gives an infinite profit factor with winners and no loser', () => {
    const w = computeMetrics(input({ trades: [trade({ pnl: '5' }), trade({ pnl: '15' })] }));
    expect(w.profitFactor).toBe(Number.POSITIVE_INFINITY);
    expect(w.winRate).toBe(1);
    expect(w.avgWin).toBe(10);
    expect(w.avgLoss).toBe(0);
    expect(w.largestLoss).toBe(0);
  });

  it('gives profit factor 0 with losers and no winner', () => {
    const l = computeMetrics(input({ trades: [trade({ pnl: '-5' }), trade({ pnl: '-15' })] }));
    expect(l.profitFactor).toBe(0);
    expect(l.winRate).toBe(0);
    expect(l.avgWin).toBe(0);
    expect(l.largestWin).toBe(0);
    expect(l.avgLoss).toBe(-10);
    expect(l.largestLoss).toBe(-15);
    expect(l.expectancy).toBe(-10);
  });
});

describe('time in market', () => {
  it('takes the union of intervals over symbols, clipped to [from, to)', () => {
    const from = JAN_1_2024;
    const to = from + 10 * H;
    const trades = [
      // BTC [1h, 4h) and ETH [3h, 6h) overlap: union [1h, 6h) = 5 h.
      trade({ symbol: 'BTCUSDT', entryTime: from + 1 * H, exitTime: from + 4 * H }),
      trade({ symbol: 'ETHUSDT', entryTime: from + 3 * H, exitTime: from + 6 * H }),
      // Inside BTC's interval: adds nothing.
      trade({ symbol: 'BNBUSDT', entryTime: from + 2 * H, exitTime: from + 3 * H }),
      // [8h, 12h) clipped at `to`: [8h, 10h) = 2 h.
      trade({ symbol: 'SOLUSDT', entryTime: from + 8 * H, exitTime: from + 12 * H }),
      // [-2h, 0.5h) clipped at `from`: [0, 0.5h) = 0.5 h.
      trade({ symbol: 'XRPUSDT', entryTime: from - 2 * H, exitTime: from + H / 2 }),
      // Entirely after `to`: nothing.
      trade({ symbol: 'ADAUSDT', entryTime: to + H, exitTime: to + 2 * H }),
    ];
    const m = computeMetrics(input({ from, to, trades }));
    expect(m.timeInMarket).toBeCloseTo(0.75, 12); // (5 + 2 + 0.5) / 10
  });

  it('touching intervals add up without double counting', () => {
    const from = JAN_1_2024;
    const to = from + 4 * H;
    const trades = [
      trade({ entryTime: from + 2 * H, exitTime: from + 3 * H }),
      trade({ entryTime: from, exitTime: from + 2 * H }),
      trade({ entryTime: from, exitTime: from + H }),
    ];
    expect(computeMetrics(input({ from, to, trades })).timeInMarket).toBeCloseTo(0.75, 12); // [0, 3h) / 4h
  });
});

describe('monthly returns', () => {
  it('gives one row per month touched, chained month end to month end', () => {
    // 2024-01-30 to 2024-03-02 (exclusive) touches January, February (29 days) and March.
    const from = Date.UTC(2024, 0, 30);
    const to = Date.UTC(2024, 2, 2);
    const equity = [
      pt(Date.UTC(2024, 0, 30, 12), '1050'),
      pt(Date.UTC(2024, 0, 31, 23), '1100'), // January ends at 1100: 1100/1000 - 1 = 0.1
      pt(Date.UTC(2024, 1, 15), '990'), // February ends at 990: 990/1100 - 1 = -0.1
      // No point in March: 990 carried forward, return 0.
    ];
    const m = computeMetrics(input({ from, to, equity }));
    expect(m.monthly.map((r) => r.month)).toEqual(['2024-01', '2024-02', '2024-03']);
    expect(m.monthly[0]?.return).toBeCloseTo(0.1, 12);
    expect(m.monthly[1]?.return).toBeCloseTo(-0.1, 12);
    expect(m.monthly[2]?.return).toBe(0);
    // 2 January days + 29 February days + 1 March day.
    expect(dailyEquity(equity, 1000, from, to)).toHaveLength(32);
  });

  it('crosses a year boundary', () => {
    const from = Date.UTC(2023, 11, 31);
    const to = Date.UTC(2024, 0, 2);
    const equity = [pt(Date.UTC(2023, 11, 31, 5), '1200'), pt(Date.UTC(2024, 0, 1, 5), '1500')];
    const m = computeMetrics(input({ from, to, equity }));
    expect(m.monthly.map((r) => r.month)).toEqual(['2023-12', '2024-01']);
    expect(m.monthly[0]?.return).toBeCloseTo(0.2, 12); // 1200 / 1000 - 1
    expect(m.monthly[1]?.return).toBeCloseTo(0.25, 12); // 1500 / 1200 - 1
  });
});

describe('dailyEquity and dailyReturns', () => {
  it('carries the previous value forward over days without a point', () => {
    // Five days; points on Jan 2 and Jan 4 only. Jan 1 has none: startEquity.
    const from = JAN_1_2024;
    const to = from + 5 * DAY;
    const equity = [pt(from + DAY + 10 * H, '1010'), pt(from + 3 * DAY + 6 * H, '1030')];
    expect(dailyEquity(equity, 1000, from, to)).toEqual([
      { day: '2024-01-01', equity: 1000 },
      { day: '2024-01-02', equity: 1010 },
      { day: '2024-01-03', equity: 1010 },
      { day: '2024-01-04', equity: 1030 },
      { day: '2024-01-05', equity: 1030 },
    ]);
    const r = dailyReturns(equity, 1000, from, to);
    expect(r).toHaveLength(5);
    expect(r[0]).toBe(0);
    expect(r[1]).toBeCloseTo(0.01, 12);
    expect(r[2]).toBe(0);
    expect(r[3]).toBeCloseTo(20 / 1010, 12); // 1030 / 1010 - 1
    expect(r[4]).toBe(0);
  });

  it('covers partial first and last days of the span', () => {
    // [Jan 1 18:00, Jan 3 06:00) touches three UTC days.
    const from = JAN_1_2024 + 18 * H;
    const to = JAN_1_2024 + 2 * DAY + 6 * H;
    expect(dailyEquity([], 500, from, to).map((d) => d.day)).toEqual(['2024-01-01', '2024-01-02', '2024-01-03']);
    // An exclusive end at midnight does not touch the next day.
    expect(dailyEquity([], 500, JAN_1_2024, JAN_1_2024 + 2 * DAY).map((d) => d.day)).toEqual([
      '2024-01-01',
      '2024-01-02',
    ]);
  });

  it('counts a final mark stamped exactly at `to` for the last day', () => {
    const to = JAN_1_2024 + 2 * DAY;
    const equity = [pt(JAN_1_2024 + H, '1100'), pt(to, '1210')];
    expect(dailyEquity(equity, 1000, JAN_1_2024, to).map((d) => d.equity)).toEqual([1100, 1210]);
  });

  it('is empty for an empty span', () => {
    expect(dailyEquity([], 1000, JAN_1_2024, JAN_1_2024)).toEqual([]);
    expect(dailyReturns([], 1000, JAN_1_2024, JAN_1_2024)).toEqual([]);
  });

  it('labels days like Date does, across leap years and centuries', () => {
    // 1899-12-25 to 2101-03-05: 1900 and 2100 are not leap years, 2000 is.
    const from = Date.UTC(1899, 11, 25);
    const to = Date.UTC(2101, 2, 5);
    const days = dailyEquity([], 1, from, to);
    const expected = Array.from({ length: (to - from) / DAY }, (_, i) =>
      new Date(from + i * DAY).toISOString().slice(0, 10),
    );
    expect(days.map((d) => d.day)).toEqual(expected);
  });
});

describe('a year of 1m points', () => {
  it('completes and matches a naive drawdown recomputation', () => {
    const from = Date.UTC(2023, 0, 1);
    const n = 525_600;
    const to = from + n * 60_000;
    // Deterministic random walk (LCG), rounded to cents like a portfolio would print.
    let seed = 12_345;
    let x = 10_000;
    const equity: EquityPoint[] = new Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
      x *= 1 + (seed / 4_294_967_296 - 0.4999) * 0.002;
      equity[i] = { t: from + i * 60_000, equity: x.toFixed(2) };
    }
    const m = computeMetrics({ from, to, startEquity: '10000', equity, trades: [] });

    let peak = 10_000;
    let naive = 0;
    for (const p of equity) {
      const v = Number(p.equity);
      if (v > peak) peak = v;
      naive = Math.max(naive, (peak - v) / peak);
    }
    expect(naive).toBeGreaterThan(0);
    expect(m.maxDrawdown).toBe(naive);
    expect(m.endEquity).toBe(Number(equity[n - 1]?.equity));
    expect(m.monthly).toHaveLength(12);
    expect(dailyReturns(equity, 10_000, from, to)).toHaveLength(365);
    expect(Number.isFinite(m.sharpe)).toBe(true);
  });
});
