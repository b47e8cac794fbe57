import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKlineFile, readKlineFile, type KlineFileIssue, type RawKline } from '../../src/market-data/kline-files.ts';
import { crc32, makeZip } from '../support/zip.ts';

const REPO = new URL('../..', import.meta.url);
const DATA = fileURLToPath(new URL('../shared/data/', REPO));

const HEADER = 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
// Three real ALGOUSDT futures minutes (2023-02-01 00:00..00:02), ms times.
const ROWS = [
  '1675209600000,0.2413,0.2418,0.2413,0.2418,283971.0,1675209659999,68569.21705,270,179373.9,43319.35309,0',
  '1675209660000,0.2417,0.2418,0.2415,0.2415,300353.9,1675209719999,72579.20015,301,89283.0,21578.95967,0',
  '1675209720000,0.2415,0.2416,0.2412,0.2413,152873.2,1675209779999,36905.69041,203,50163.8,12111.93018,0',
];
const FIRST: RawKline = {
  openTime: 1675209600000,
  closeTime: 1675209659999,
  open: '0.2413',
  high: '0.2418',
  low: '0.2413',
  close: '0.2418',
  volume: '283971.0',
  quoteVolume: '68569.21705',
  trades: 270,
  takerBuyVolume: '179373.9',
  takerBuyQuoteVolume: '43319.35309',
};

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kline-files-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, content: string | Uint8Array): string {
  const file = join(tmp, name);
  writeFileSync(file, content);
  return file;
}

function lines(...ls: string[]): string {
  return ls.join('\n') + '\n';
}

describe('kline files: real Binance dumps', () => {
  it('reads a whole futures month (header, ms): one row per minute, exact strings', () => {
    const file = join(DATA, 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
    const { klines, issues, intervalMs } = loadKlineFile(file);
    expect(issues, 'a clean Binance dump has no bad rows').toEqual([]);
    expect(klines.length, 'February 2023 has 28 * 1440 minutes').toBe(40320);
    expect(intervalMs).toBe(60_000);
    expect(klines[0], 'values are the exact strings in the file').toEqual(FIRST);
    expect(klines[0]!.openTime, 'first candle opens at the month start').toBe(Date.UTC(2023, 1, 1));
    expect(klines.at(-1)).toEqual({
      openTime: Date.UTC(2023, 1, 28, 23, 59),
      closeTime: 1677628799999,
      open: '0.2438',
      high: '0.2442',
      low: '0.2438',
      close: '0.2442',
      volume: '30747.6',
      quoteVolume: '7501.95245',
      trades: 38,
      takerBuyVolume: '28879.9',
      takerBuyQuoteVolume: '7046.23365',
    });
    const wrong = klines.filter((k, i) => k.openTime !== klines[0]!.openTime + i * 60_000 || k.closeTime !== k.openTime + 59_999);
    expect(wrong, 'every minute in order, close_time = open_time + 59999').toEqual([]);
  });

  it('streams a headerless spot file through the generator, stopping early', () => {
    const file = join(DATA, 'binance-spot', 'BTCUSDT-1h.csv.gz');
    const got: RawKline[] = [];
    for (const k of readKlineFile(file)) {
      got.push(k);
      if (got.length === 1000) break;
    }
    expect(got.length).toBe(1000);
    expect(new Date(got[0]!.openTime).toISOString(), 'spot series starts 2018-01-01').toBe('2018-01-01T00:00:00.000Z');
    expect(got[0]).toEqual({
      openTime: 1514764800000,
      closeTime: 1514768399999,
      open: '13715.65000000',
      high: '13715.65000000',
      low: '13400.01000000',
      close: '13529.01000000',
      volume: '443.35619900',
      quoteVolume: '5993909.83603800',
      trades: 5228,
      takerBuyVolume: '228.52192100',
      takerBuyQuoteVolume: '3090541.10576949',
    });
    expect(got[999]!.openTime, 'the 34 h outage of 2018-02-08 is passed through, not filled').toBe(Date.UTC(2018, 1, 13, 1));
  });
});

describe('kline files: formats', () => {
  it('reads the same rows with or without a header, and with 11 columns', () => {
    const withHeader = loadKlineFile(write('h.csv', lines(HEADER, ...ROWS)));
    const without = loadKlineFile(write('nh.csv', lines(...ROWS)));
    const eleven = loadKlineFile(
      write('h11.csv', lines(HEADER.replace(/,ignore$/, ''), ...ROWS.map((r) => r.replace(/,0$/, '')))),
    );
    expect(withHeader.issues).toEqual([]);
    expect(without.issues).toEqual([]);
    expect(eleven.issues).toEqual([]);
    expect(withHeader.klines.length).toBe(3);
    expect(withHeader.klines[0]).toEqual(FIRST);
    expect(without.klines, 'the header is recognised, not read as a bad row').toEqual(withHeader.klines);
    expect(eleven.klines, 'ignore is optional').toEqual(withHeader.klines);
  });

  it('converts 16-digit microsecond times to ms (per row) and keeps ms rows as they are', () => {
    // Real 2025+ spot dumps end a candle at ...999999 µs, which is ...999 ms.
    const file = write(
      'us.csv',
      lines(
        '1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,1735689659999999,768978.75522470,2631,3.95157000,369757.32652890,0',
        '1735689660000000,93610.93000000,93652.00000000,93606.00000000,93652.00000000,7.00000000,1735689720000000,655000.00000000,100,1.00000000,93600.00000000,0',
        '1735689720000,93652.00000000,93700.00000000,93650.00000000,93690.00000000,1.00000000,1735689779999,93690.00000000,5,0.50000000,46845.00000000,0',
      ),
    );
    const { klines, issues, intervalMs } = loadKlineFile(file);
    expect(issues).toEqual([]);
    expect(klines.map((k) => [k.openTime, k.closeTime])).toEqual([
      [1735689600000, 1735689659999],
      [1735689660000, 1735689720000],
      [1735689720000, 1735689779999],
    ]);
    expect(new Date(klines[0]!.openTime).toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(klines[0]!.open, 'prices are untouched by the time conversion').toBe('93576.00000000');
    expect(intervalMs).toBe(60_000);
  });

  it('reads a gzip file', () => {
    const file = write('k.csv.gz', gzipSync(lines(HEADER, ...ROWS)));
    const { klines, issues } = loadKlineFile(file);
    expect(issues).toEqual([]);
    expect(klines.length).toBe(3);
    expect(klines[0]).toEqual(FIRST);
  });

  it('reads a Binance-style zip (one deflated CSV) and a stored one', () => {
    const csv = lines(HEADER, ...ROWS);
    const deflated = loadKlineFile(write('ALGOUSDT-1m-2023-02.zip', makeZip([{ name: 'ALGOUSDT-1m-2023-02.csv', data: csv }])));
    const stored = loadKlineFile(write('stored.zip', makeZip([{ name: 'x.csv', data: csv, method: 0 }])));
    const plain = loadKlineFile(write('plain.csv', csv));
    expect(deflated.issues).toEqual([]);
    expect(deflated.klines.length).toBe(3);
    expect(deflated.klines).toEqual(plain.klines);
    expect(stored.klines).toEqual(plain.klines);
  });

  it('ignores folder entries in a zip', () => {
    const file = write('dir.zip', makeZip([{ name: 'klines/', data: '', method: 0 }, { name: 'klines/a.csv', data: lines(...ROWS) }]));
    expect(loadKlineFile(file).klines.length).toBe(3);
  });

  it('trims whitespace, accepts CRLF and a BOM, skips blank lines', () => {
    const text = '\ufeff' + HEADER + '\r\n' + ROWS[0]!.replace('0.2413,0.2418', ' 0.2413 ,\t0.2418') + '\r\n\r\n' + ROWS[1] + '\r\n   \r\n';
    const { klines, issues } = loadKlineFile(write('crlf.csv', text));
    expect(issues).toEqual([]);
    expect(klines.length).toBe(2);
    expect(klines[0], 'fields canonicalised by trimming only').toEqual(FIRST);
  });

  it('neither sorts nor dedupes (that is the importer’s job)', () => {
    const { klines, issues, intervalMs } = loadKlineFile(write('order.csv', lines(ROWS[2]!, ROWS[0]!, ROWS[0]!, ROWS[1]!)));
    expect(issues).toEqual([]);
    expect(klines.map((k) => k.openTime)).toEqual([1675209720000, 1675209600000, 1675209600000, 1675209660000]);
    expect(intervalMs, 'only positive steps count').toBe(60_000);
  });

  it('intervalMs is the most common step, and undefined for a single row', () => {
    const t = (i: number): string => ROWS[0]!.replace('1675209600000', String(1675209600000 + i * 60_000)).replace('1675209659999', String(1675209659999 + i * 60_000));
    // Steps: 1, 1, 3 (a gap), 1 minutes.
    const gappy = loadKlineFile(write('gap.csv', lines(t(0), t(1), t(2), t(5), t(6))));
    expect(gappy.intervalMs).toBe(60_000);
    expect(loadKlineFile(write('one.csv', lines(ROWS[0]!))).intervalMs).toBeUndefined();
    expect(loadKlineFile(write('empty.csv', '')).intervalMs).toBeUndefined();
  });
});

describe('kline files: bad rows', () => {
  const G = ROWS[0]!;
  /** Replaces field `i` of the good row. */
  const withField = (i: number, value: string): string => {
    const f = G.split(',');
    f[i] = value;
    return f.join(',');
  };

  it('reports each bad row with file:line and a message naming the field, and keeps the good rows', () => {
    const file = write(
      'bad.csv',
      lines(
        HEADER, // 1
        ROWS[0]!, // 2 good
        withField(1, 'abc'), // 3
        '1675209660000,0.2417,0.2418', // 4
        ROWS[1]!, // 5 good
        withField(0, '1675209600000.5'), // 6
        withField(6, '1675209599999'), // 7
        withField(0, '1735689600000123').replace('1675209659999', '1735689659999999'), // 8
        withField(8, '27x'), // 9
        withField(10, ''), // 10
        G + ',extra', // 11
        ROWS[2]!, // 12 good
        withField(0, '1675209600'), // 13: seconds, not ms
        withField(6, '1675209659999999'), // 14: µs close with ms open
        withField(0, '1735689600000000').replace('1675209659999', '1735689659999500'), // 15
      ),
    );
    const streamed: KlineFileIssue[] = [];
    const rows = [...readKlineFile(file, { onIssue: (i) => streamed.push(i) })];
    const loaded = loadKlineFile(file);

    expect(rows.map((k) => k.openTime), 'good rows still come through, in order').toEqual([1675209600000, 1675209660000, 1675209720000]);
    expect(loaded.klines).toEqual(rows);
    expect(loaded.issues, 'the generator and the loader report the same').toEqual(streamed);
    expect(streamed.every((i) => i.file === file), 'every issue names the file').toBe(true);
    expect(streamed.map((i) => `${i.line}: ${i.message}`)).toEqual([
      '3: open: expected a decimal, got "abc"',
      '4: expected 12 columns (11 without ignore), got 3',
      '6: open_time: expected an integer, got "1675209600000.5"',
      '7: close_time 1675209599999 is before open_time 1675209600000',
      '8: open_time: microsecond time "1735689600000123" is not a whole millisecond',
      '9: count: expected a non-negative integer, got "27x"',
      '10: taker_buy_quote_volume: expected a decimal, got ""',
      '11: expected 12 columns (11 without ignore), got 13',
      '13: open_time: expected epoch milliseconds (13 digits) or microseconds (16 digits), got "1675209600"',
      '14: close_time: expected epoch milliseconds (13 digits) like open_time, got "1675209659999999"',
      '15: close_time: microsecond time "1735689659999500" is neither a whole millisecond nor its last microsecond',
    ]);
  });

  it('uses a strict decimal: digits with an optional fraction, nothing else', () => {
    const bad = ['1.', '.5', '1e-8', '-1', '+1', '1.2.3', '0x10', '1,5', 'NaN', 'Infinity', '١٢', '1 2'];
    const file = write('decimals.csv', lines(...bad.map((v) => withField(2, v)), withField(2, '007.50')));
    const { klines, issues } = loadKlineFile(file);
    // '1,5' adds a column, so that row fails on the column count instead.
    expect(issues.map((i) => i.message)).toEqual(
      bad.map((v) => (v === '1,5' ? 'expected 12 columns (11 without ignore), got 13' : `high: expected a decimal, got ${JSON.stringify(v)}`)),
    );
    expect(klines.map((k) => k.high), 'leading zeros are still a decimal, kept as written').toEqual(['007.50']);
  });

  it('reports a header with unexpected column names', () => {
    const { klines, issues } = loadKlineFile(write('hdr.csv', lines('open_time,o,h,l,c,v,close_time,qv,n,tbv,tbqv,ignore', ROWS[0]!)));
    expect(klines.length).toBe(1);
    expect(issues.length).toBe(1);
    expect(issues[0]!.line).toBe(1);
    expect(issues[0]!.message).toMatch(/^header: expected "open_time,open,high/);
  });

  it('without onIssue, bad rows are skipped quietly', () => {
    const rows = [...readKlineFile(write('quiet.csv', lines('garbage', ROWS[0]!)))];
    expect(rows).toEqual([FIRST]);
  });
});

describe('kline files: unreadable files throw naming the file', () => {
  it('a missing file', () => {
    const file = join(tmp, 'nope.csv.gz');
    expect(() => loadKlineFile(file)).toThrow(file);
    const gen = readKlineFile(file);
    expect(() => gen.next(), 'the generator throws on first use').toThrow(/nope\.csv\.gz.*ENOENT/);
  });

  it('a corrupt or truncated gzip', () => {
    const garbage = write('garbage.csv.gz', 'this is not gzip');
    expect(() => loadKlineFile(garbage)).toThrow(`kline file ${garbage}: not a readable gzip file`);
    const full = gzipSync(lines(HEADER, ...ROWS));
    const truncated = write('truncated.csv.gz', full.subarray(0, full.length - 6));
    expect(() => loadKlineFile(truncated), 'a cut-off download must not lose rows silently').toThrow(truncated);
  });

  it('a zip with more than one file', () => {
    const file = write('multi.zip', makeZip([{ name: 'a.csv', data: lines(...ROWS) }, { name: 'b.csv', data: lines(...ROWS) }]));
    expect(() => loadKlineFile(file)).toThrow(`kline file ${file}: expected a zip holding exactly one file, found 2 (a.csv, b.csv)`);
  });

  it('an encrypted zip', () => {
    const file = write('enc.zip', makeZip([{ name: 'a.csv', data: lines(...ROWS), flags: 1 }]));
    expect(() => loadKlineFile(file)).toThrow(`kline file ${file}: zip entry a.csv is encrypted`);
  });

  it('a zip whose data does not match its CRC-32, or that is not a zip at all', () => {
    const zip = makeZip([{ name: 'a.csv', data: lines(...ROWS), method: 0 }]);
    zip[40] = zip[40]! ^ 0x01; // a byte inside the stored CSV (data starts at 30 + name length)
    const file = write('crc.zip', zip);
    expect(() => loadKlineFile(file)).toThrow(new RegExp(`^kline file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt zip \\(entry a\\.csv CRC-32`));
    const notZip = write('not.zip', 'hello, this is plain text and not a zip archive');
    expect(() => loadKlineFile(notZip)).toThrow(`kline file ${notZip}: not a zip file`);
  });

  it('an unsupported extension', () => {
    const file = write('k.parquet', 'x');
    expect(() => loadKlineFile(file)).toThrow(`kline file ${file}: unsupported file type`);
  });
});

describe('zip fixture helper', () => {
  it('computes the standard CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789')).toString(16)).toBe('cbf43926');
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});
