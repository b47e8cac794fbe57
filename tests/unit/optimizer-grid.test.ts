import { describe, expect, it } from 'vitest';
import { cartesian, GridError, gridSize, MAX_GRID_SETS, parseGrid } from '../../src/backtest/grid.ts';
import { comparable, isOverfit, rank, scoreOf, type SetResult } from '../../src/backtest/optimizer.ts';
import { addMonthsUtc, parseWalkForward, splitWalkForward } from '../../src/backtest/walk-forward.ts';

const utc = (s: string): number => Date.parse(`${s}Z`);
const day = (t: number): string => new Date(t).toISOString().slice(0, 10);

describe('parseGrid', () => {
  it('parses ranges, lists and single values in the order written', () => {
    const g = parseGrid('period=10..30:10,oversold=20..35:5,allowShort=true|false,mode=a|b,fixed=3');
    expect(g).toEqual({ period: [10, 20, 30], oversold: [20, 25, 30, 35], allowShort: [true, false], mode: ['a', 'b'], fixed: [3] });
    expect(Object.keys(g), 'names keep their order: it decides the grid order').toEqual(['period', 'oversold', 'allowShort', 'mode', 'fixed']);
  });

  it('computes decimal ranges without float drift, end inclusive', () => {
    expect(parseGrid('x=0.5..2:0.25').x, 'start + i*step rounded to the decimals written').toEqual([0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]);
    expect(parseGrid('x=0.1..0.3:0.1').x, '0.1 + 2*0.1 is 0.30000000000000004 in floating point').toEqual([0.1, 0.2, 0.3]);
    expect(parseGrid('x=1..2:0.3').x, 'the end is a bound, not a value that must be hit').toEqual([1, 1.3, 1.6, 1.9]);
    expect(parseGrid('x=-1..1:1').x).toEqual([-1, 0, 1]);
    expect(parseGrid('x=5..5:1').x).toEqual([5]);
  });

  it('accepts the option repeated (commander collects it)', () => {
    expect(parseGrid(['a=1|2', 'b=x'])).toEqual({ a: [1, 2], b: ['x'] });
  });

  it.each([
    ['period=10..30', /"period=10\.\.30".*needs a step/],
    ['period=10..30:0', /step must be a positive number/],
    ['period=10..30:-2', /step must be a positive number/],
    ['period=30..10:2', /ends \(10\) before it starts \(30\)/],
    ['period', /"period": expected name=values/],
    ['period=', /no values after/],
    ['period=1|', /empty value/],
    ['period=1|1', /listed twice/],
    ['1abc=2', /not a parameter name/],
    ['a=1,a=2', /"a=2": a is given twice/],
    ['a=1,,b=2', /empty entry/],
    ['a=1e3..2e3:1', /expected a range such as a=10\.\.30:2/],
  ])('refuses %s naming the token', (spec, message) => {
    expect(() => parseGrid(spec)).toThrow(GridError);
    expect(() => parseGrid(spec)).toThrow(message);
  });

  it(`refuses grids over ${MAX_GRID_SETS} sets before building them`, () => {
    expect(() => parseGrid('a=1..1000:1,b=1..101:1')).toThrow(/more than 100000 parameter sets \(a: 1000, b: 101\)/);
    expect(() => parseGrid('a=0..1:0.000001')).toThrow(/1000001 values/);
    expect(gridSize(parseGrid('a=1..1000:1,b=1..100:1')), 'exactly the limit is allowed').toBe(100_000);
  });
});

describe('cartesian', () => {
  it('is every combination, the last name varying fastest', () => {
    expect(cartesian({ a: [1, 2], b: ['x', 'y', 'z'] })).toEqual([
      { a: 1, b: 'x' },
      { a: 1, b: 'y' },
      { a: 1, b: 'z' },
      { a: 2, b: 'x' },
      { a: 2, b: 'y' },
      { a: 2, b: 'z' },
    ]);
    expect(cartesian({}), 'no names: one empty set (the YAML params as they are)').toEqual([{}]);
  });
});

describe('ranking and the overfit rule', () => {
  const set = (index: number, score: number, trades = 5): SetResult => ({ index, params: { i: index }, objective: score, score: scoreOf('sharpe', { sharpe: score, sortino: 0, calmar: 0, totalReturn: 0, trades }), metrics: { totalReturn: 0, annualizedReturn: 0, sharpe: score, sortino: 0, calmar: 0, maxDrawdown: 0, trades, winRate: 0, profitFactor: 0, feesPaid: 0 } });

  it('ranks by score, ties to the first in grid order, no-trade sets last', () => {
    const ranked = rank([set(0, 1), set(1, 2), set(2, 2), set(3, 0, 0), set(4, -5)]);
    expect(ranked.map((s) => s.index), 'set 1 beats set 2 (same score, earlier in the grid); set 3 made no trade').toEqual([1, 2, 0, 4, 3]);
    expect(ranked.at(-1)!.score, 'a set without trades scores -Infinity').toBe(Number.NEGATIVE_INFINITY);
  });

  it('flags overfit when OOS keeps less than half of a positive IS', () => {
    expect(isOverfit(2, 0.9)).toBe(true);
    expect(isOverfit(2, 1)).toBe(false);
    expect(isOverfit(2, -1), 'negative out-of-sample after a positive in-sample').toBe(true);
    expect(isOverfit(-1, -3), 'no in-sample edge: nothing to overfit').toBe(false);
    expect(isOverfit(0, -3)).toBe(false);
  });

  it('compares returns per day, ratios as they are', () => {
    expect(comparable('return', 0.04, 4 * 86_400_000)).toBeCloseTo(0.01, 12);
    expect(comparable('sharpe', 1.5, 4 * 86_400_000)).toBe(1.5);
  });
});

describe('walk-forward', () => {
  it('parses m, w and d spans', () => {
    expect(parseWalkForward('6m/1m')).toEqual({ inSample: { count: 6, unit: 'm' }, outOfSample: { count: 1, unit: 'm' }, text: '6m/1m' });
    expect(parseWalkForward('90d/30d').text).toBe('90d/30d');
    expect(parseWalkForward('12w/2w').inSample).toEqual({ count: 12, unit: 'w' });
  });

  it.each([
    ['6m', /expected in-sample\/out-of-sample/],
    ['6m/1m/1m', /expected in-sample\/out-of-sample/],
    ['6x/1m', /in-sample length "6x"/],
    ['6m/', /out-of-sample length ""/],
    ['0m/1m', /must be 1 or more/],
  ])('refuses %s', (text, message) => {
    expect(() => parseWalkForward(text)).toThrow(GridError);
    expect(() => parseWalkForward(text)).toThrow(message);
  });

  it('splits by calendar months, rolling by the out-of-sample length', () => {
    const w = splitWalkForward(parseWalkForward('6m/1m'), utc('2023-01-01T00:00'), utc('2024-01-01T00:00'));
    expect(w.length, '12 months: 6 in-sample, then 6 out-of-sample months').toBe(6);
    expect(w.map((x) => [day(x.isFrom), day(x.isTo), day(x.oosTo)])).toEqual([
      ['2023-01-01', '2023-07-01', '2023-08-01'],
      ['2023-02-01', '2023-08-01', '2023-09-01'],
      ['2023-03-01', '2023-09-01', '2023-10-01'],
      ['2023-04-01', '2023-10-01', '2023-11-01'],
      ['2023-05-01', '2023-11-01', '2023-12-01'],
      ['2023-06-01', '2023-12-01', '2024-01-01'],
    ]);
    for (let i = 1; i < w.length; i++) expect(w[i]!.oosFrom, 'out-of-sample windows follow each other without gap or overlap').toBe(w[i - 1]!.oosTo);
    expect(w.map((x) => x.index)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('drops a last window whose out-of-sample would pass the end', () => {
    const w = splitWalkForward(parseWalkForward('4d/1d'), utc('2023-02-01T00:00'), utc('2023-02-07T12:00'));
    expect(w.map((x) => [day(x.isFrom), day(x.oosFrom), day(x.oosTo)])).toEqual([
      ['2023-02-01', '2023-02-05', '2023-02-06'],
      ['2023-02-02', '2023-02-06', '2023-02-07'],
    ]);
  });

  it('clamps month ends from the anchor, never drifting', () => {
    expect(day(addMonthsUtc(utc('2023-01-31T00:00'), 1))).toBe('2023-02-28');
    expect(day(addMonthsUtc(utc('2024-01-31T00:00'), 1)), 'leap year').toBe('2024-02-29');
    const w = splitWalkForward(parseWalkForward('1m/1m'), utc('2023-01-31T00:00'), utc('2023-06-30T00:00'));
    expect(w.map((x) => day(x.oosFrom)), 'boundaries are from + n months, not chained from a clamped Feb 28').toEqual(['2023-02-28', '2023-03-31', '2023-04-30', '2023-05-31']);
    for (let i = 1; i < w.length; i++) expect(w[i]!.oosFrom).toBe(w[i - 1]!.oosTo);
  });

  it('mixes units (months in-sample, weeks out-of-sample)', () => {
    const w = splitWalkForward(parseWalkForward('1m/2w'), utc('2023-01-01T00:00'), utc('2023-03-01T00:00'));
    expect(w.map((x) => [day(x.isFrom), day(x.isTo), day(x.oosTo)])).toEqual([
      ['2023-01-01', '2023-02-01', '2023-02-15'],
      ['2023-01-15', '2023-02-15', '2023-03-01'],
    ]);
  });

  it('says how long a window needs when the range fits none', () => {
    expect(() => splitWalkForward(parseWalkForward('90d/30d'), utc('2023-01-01T00:00'), utc('2023-03-01T00:00'))).toThrow(/fits no window: one window \(in-sample \+ out-of-sample\) needs 120 days/);
  });
});
