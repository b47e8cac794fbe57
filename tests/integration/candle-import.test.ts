/**
 * The importer on real Binance dumps (../shared/data) and on synthetic
 * files with known faults, in process.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { formatGap } from '../../src/market-data/candle-checks.ts';
import { expandKlinePaths, importKlineFile, importKlineFiles, marketFromPath, nameParts } from '../../src/market-data/import.ts';
import { readKlineFile } from '../../src/market-data/kline-files.ts';
import { repoFixture } from '../support/candle-repo.ts';
import { REPO_ROOT } from '../support/workspace.ts';

const SHARED = join(REPO_ROOT, '..', 'shared', 'data');
const UM_1M = join(SHARED, 'binance-um-1m');
const SPOT_1H = join(SHARED, 'binance-spot', 'BTCUSDT-1h.csv.gz');
const HEADER = 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';

const repos = repoFixture();
afterEach(() => repos.cleanup());

/** A dump row; t in ms. */
function row(t: number, o: string, h: string, l: string, c: string, v = '10', stepMs = 60_000): string {
  return [t, o, h, l, c, v, t + stepMs - 1, '1000', 5, '4', '400', 0].join(',');
}

describe('file names and paths', () => {
  it('symbol and interval come from SYMBOL-INTERVAL-...; market from the path', () => {
    expect(nameParts('/x/BTCUSDT-1h-2024-01.csv.gz')).toEqual({ symbol: 'BTCUSDT', interval: '1h' });
    expect(nameParts('BTCUSDT-15m.csv.gz')).toEqual({ symbol: 'BTCUSDT', interval: '15m' });
    expect(nameParts('ETHUSDT-1M-2024.zip')).toEqual({ symbol: 'ETHUSDT', interval: '1M' });
    expect(nameParts('ETHUSDT-2024-01.csv'), 'no interval in the name').toEqual({ symbol: 'ETHUSDT' });
    expect(nameParts('prices.csv')).toEqual({});
    expect(marketFromPath('/data/binance-spot/BTCUSDT-1h.csv.gz')).toBe('spot');
    expect(marketFromPath('/data/binance-um-1m/BTCUSDT-1m-2024-01.csv.gz')).toBe('futures');
  });
});

describe('importing real dumps', () => {
  it('all of binance-um-1m: every minute of every month, 0 bad rows, 0 gaps; importing again changes nothing', async () => {
    const { store, repo } = await repos.open();
    const files = expandKlinePaths([UM_1M]);
    if (!Array.isArray(files)) throw new Error(files.error);
    expect(files).toHaveLength(44);
    // Each file is one calendar month: its minutes are the expected row count.
    const expected = files.reduce((sum, f) => {
      const m = /-(\d{4})-(\d{2})\.csv\.gz$/.exec(f)!;
      const days = new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate();
      return sum + days * 1440;
    }, 0);

    const t0 = performance.now();
    const first = await importKlineFiles(repo, files);
    const firstSec = (performance.now() - t0) / 1000;
    expect(first.totals.rowsRead).toBe(expected);
    expect(first.totals.inserted, 'every row is new').toBe(expected);
    expect(first.totals.badRows).toBe(0);
    expect(first.totals.gaps, 'every file is a complete month').toBe(0);
    expect(first.files.every((r) => r.market === 'futures' && r.timeframe === '1m' && !r.error)).toBe(true);
    const stored = store.all<{ n: number }>(store.db.selectFrom('candles').select((eb) => eb.fn.countAll<number>().as('n')))[0]!.n;
    expect(stored).toBe(expected);

    const t1 = performance.now();
    const again = await importKlineFiles(repo, files);
    const againSec = (performance.now() - t1) / 1000;
    expect(again.totals, 'the same files again: 0 new, 0 updated').toMatchObject({ rowsRead: expected, inserted: 0, updated: 0, unchanged: expected, badRows: 0, gaps: 0 });
    console.log(`um-1m import: ${expected} rows in ${firstSec.toFixed(1)} s (${Math.round(expected / firstSec)} rows/s); again in ${againSec.toFixed(1)} s`);

    const summary = repo.summary();
    expect(summary.map((s) => s.symbol)).toEqual(['ALGOUSDT', 'AVAXUSDT', 'DOTUSDT', 'FILUSDT', 'LINKUSDT', 'NEARUSDT']);
    expect(summary.reduce((a, s) => a + s.rows, 0)).toBe(expected);
    expect(summary.find((s) => s.symbol === 'LINKUSDT'), 'one complete month').toMatchObject({ first: Date.UTC(2023, 1, 1), last: Date.UTC(2023, 1, 28, 23, 59), rows: 40_320, gaps: 0 });
  });

  it('spot BTCUSDT 1h (2018-2026): reports the real outages, the 34 hours of 2018-02-08 among them, and stores the rest', async () => {
    const { repo, ws } = await repos.open();
    const r = importKlineFile(repo, SPOT_1H);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ market: 'spot', symbol: 'BTCUSDT', timeframe: '1h', badRows: 0 });
    expect(r.gaps).toBeGreaterThan(10);
    const feb8 = r.firstGaps.find((g) => new Date(g.from).toISOString().startsWith('2018-02-08'));
    expect(feb8, `gaps: ${r.firstGaps.map(formatGap).join('; ')}`).toBeDefined();
    expect(feb8).toMatchObject({ after: Date.UTC(2018, 1, 8, 0), before: Date.UTC(2018, 1, 9, 10), from: Date.UTC(2018, 1, 8, 1), to: Date.UTC(2018, 1, 9, 9), missing: 33 });
    expect(formatGap(feb8!)).toBe('2018-02-08 01:00 .. 2018-02-09 09:00 UTC: 33 missing');
    const rows = [...readKlineFile(SPOT_1H)].length;
    expect(r.inserted).toBe(rows);
    const s = repo.summary()[0]!;
    expect(s.rows).toBe(rows);
    expect(s.gaps, 'the store counts the same missing hours').toBe(r.missing);
  });
});

describe('checks on synthetic files', () => {
  it('reports each bad row with file:line and a reason naming field and value, skips it, and imports the good ones', async () => {
    const { repo, ws } = await repos.open();
    const t = Date.UTC(2024, 0, 1);
    const m = 60_000;
    const lines = [
      HEADER, // 1
      row(t, '100', '101', '99', '100.5'), // 2 good
      row(t + m, '100.5', '100', '99', '100.2'), // 3 high below open
      row(t + 2 * m, '100.4', '101', '100.3', '100.2'), // 4 low above close
      row(t + 3 * m + 30_000, '100', '101', '99', '100'), // 5 not on the 1m grid
      row(t + 4 * m, '100', '101', '99', 'abc'), // 6 not a number (reader)
      '', // 7 blank
      row(t + 5 * m, '100', '101', '99', '100', '-3'), // 8 negative volume (reader)
      row(t + 6 * m, '100', '101', '99', '100.7'), // 9 good
      row(t + 6 * m, '100', '101', '99', '100.7'), // 10 repeated time
      row(t + 2 * m, '100', '101', '99', '100'), // 11 back in time
      row(t + 9 * m, '100', '102', '99', '101'), // 12 good, after a 2-minute gap
    ];
    ws.write('in/TESTUSDT-1m-2024-01.csv', lines.join('\n') + '\n');
    const file = join(ws.dir, 'in', 'TESTUSDT-1m-2024-01.csv');
    const r = importKlineFile(repo, file, { market: 'spot' });
    expect(r.error).toBeUndefined();
    expect(r.issues.map((i) => `${i.line}: ${i.message}`)).toEqual([
      '3: high: 100 is below open 100.5',
      '4: low: 100.3 is above close 100.2',
      `5: open_time: ${t + 3 * m + 30_000} (2024-01-01 00:03:30.000) is not on the 1m grid`,
      '6: close: expected a decimal, got "abc"',
      '8: volume: expected a decimal, got "-3"',
      `10: open_time: ${t + 6 * m} (2024-01-01 00:06) repeats the previous row's`,
      `11: open_time: ${t + 2 * m} (2024-01-01 00:02) is before the previous row's ${t + 6 * m} (2024-01-01 00:06); rows must be in time order`,
    ]);
    expect(r.issues.every((i) => i.file === file), 'issues name the file').toBe(true);
    expect(r, '10 data lines: 3 good, 7 bad').toMatchObject({ rowsRead: 10, badRows: 7, inserted: 3, gaps: 2, missing: 7 });
    expect(r.firstGaps.map(formatGap)).toEqual(['2024-01-01 00:01 .. 2024-01-01 00:05 UTC: 5 missing', '2024-01-01 00:07 .. 2024-01-01 00:08 UTC: 2 missing']);
    expect(repo.range('spot', 'TESTUSDT', '1m', 0, 1e13).map((c) => c.close)).toEqual([100.5, 100.7, 101]);
  });

  it('takes the interval from the data when the name has none; refuses a name that contradicts the data', async () => {
    const { repo, ws } = await repos.open();
    const t = Date.UTC(2024, 0, 1);
    const h = 3_600_000;
    const body = [0, 1, 2, 4].map((i) => row(t + i * h, '1', '2', '0.5', '1.5', '10', h)).join('\n');
    ws.write('x/ABCUSDT-2024.csv.gz', '');
    const gz = join(ws.dir, 'x', 'ABCUSDT-2024.csv.gz');
    (await import('node:fs')).writeFileSync(gz, gzipSync(body));
    const r = importKlineFile(repo, gz);
    expect(r).toMatchObject({ symbol: 'ABCUSDT', timeframe: '1h', market: 'futures', inserted: 4, gaps: 1, missing: 1 });

    const wrong = ws.write('x/ABCUSDT-1m-2024.csv', body);
    expect(importKlineFile(repo, wrong).error).toBe('the file name says 1m but the rows are mostly 1h apart (3600000 ms); rename the file or pass --timeframe');
    const noName = ws.write('x/prices.csv', body);
    expect(importKlineFile(repo, noName).error).toMatch(/cannot tell the symbol from the file name/);
    expect(importKlineFile(repo, noName, { symbol: 'ABCUSDT' }).unchanged, '--symbol names it: same rows, nothing new').toBe(4);
  });

  it('a file that cannot be read is reported and leaves the store as it was; the other files still import', async () => {
    const { repo, ws } = await repos.open();
    const bad = ws.write('y/XUSDT-1m-2024-01.csv.gz', 'not gzip at all');
    const good = ws.write('y/YUSDT-1m-2024-01.csv', row(Date.UTC(2024, 0, 1), '1', '1', '1', '1'));
    const r = await importKlineFiles(repo, [bad, good]);
    expect(r.files[0]!.error).toMatch(/not a readable gzip file/);
    expect(r.totals).toMatchObject({ files: 2, failedFiles: 1, inserted: 1 });
    expect(repo.summary().map((s) => s.symbol)).toEqual(['YUSDT']);
  });
});
