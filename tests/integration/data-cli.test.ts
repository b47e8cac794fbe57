/**
 * `trader data import | list | download` as real child processes (what a
 * user runs), against a temp workspace database and, for download, the
 * local exchange replaying the shipped sample month.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LiveClock, type Clock } from '../../src/core/clock.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { readKlineFile } from '../../src/market-data/kline-files.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { killQuietly, runCli, startCli, waitFor, type RunningCli } from '../support/bot-process.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';

const SAMPLE = join(REPO_ROOT, 'data', 'sample');
const ALGO = join(SAMPLE, 'ALGOUSDT-1m-2023-02.csv.gz');
const FEB_2023_MINUTES = 28 * 1440;

const workspaces: Workspace[] = [];
let cli: RunningCli | undefined;
afterEach(() => {
  killQuietly(cli);
  cli = undefined;
  for (const w of workspaces.splice(0)) w.cleanup();
});

function workspace(env: Record<string, string> = {}): Workspace {
  const w = makeWorkspace(env);
  workspaces.push(w);
  return w;
}

function trader(w: Workspace, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { env: w.env, cwd: w.dir });
}

/** What the workspace database holds for a series, read in this process. */
function stored(w: Workspace, market: 'spot' | 'futures', symbol: string, timeframe: string) {
  const store = Store.open(w.dbFile, { readonly: true });
  try {
    return new CandleRepository(store).range(market, symbol, timeframe, 0, 1e13);
  } finally {
    store.close();
  }
}

describe('trader data import and list', () => {
  it('imports the shipped sample (market from the path), reports per file and in total; again: 0 new; list shows both series', async () => {
    const w = workspace();
    const first = await trader(w, 'data', 'import', SAMPLE);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('ALGOUSDT-1m-2023-02.csv.gz: futures ALGOUSDT 1m, 2023-02-01 00:00 .. 2023-02-28 23:59 UTC: 40,320 rows read, 40,320 new, 0 updated, 0 bad, 0 gaps');
    expect(first.stdout).toContain('BTCUSDT-1h-2024-01-to-03.csv.gz: spot BTCUSDT 1h, 2024-01-01 00:00 .. 2024-03-31 23:00 UTC: 2,184 rows read, 2,184 new, 0 updated, 0 bad, 0 gaps');
    expect(first.stdout).toMatch(/^total: 2 files, 42,504 rows read, 42,504 new, 0 updated, 0 bad, 0 gaps \(/m);

    const again = await trader(w, 'data', 'import', SAMPLE);
    expect(again.code).toBe(0);
    expect(again.stdout, 'importing the same files again changes nothing').toMatch(/^total: 2 files, 42,504 rows read, 0 new, 0 updated, 0 bad, 0 gaps/m);

    const list = await trader(w, 'data', 'list');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^market\s+symbol\s+timeframe\s+first \(UTC\)\s+last \(UTC\)\s+rows\s+gaps$/);
    expect(lines[1]).toMatch(/^futures\s+ALGOUSDT\s+1m\s+2023-02-01 00:00\s+2023-02-28 23:59\s+40,320\s+0$/);
    expect(lines[2]).toMatch(/^spot\s+BTCUSDT\s+1h\s+2024-01-01 00:00\s+2024-03-31 23:00\s+2,184\s+0$/);
  });

  it('reports bad rows as file:line with the field and value, and gaps; imports the good rows', async () => {
    const w = workspace();
    const t = Date.UTC(2024, 0, 1);
    const row = (ts: number, o: string, h: string, l: string, c: string): string => [ts, o, h, l, c, '10', ts + 59_999, '1000', 5, '4', '400', 0].join(',');
    w.write('in/TESTUSDT-1m-2024-01.csv', [row(t, '100', '101', '99', '100.5'), row(t + 60_000, '100.5', '100', '99', '100.2'), row(t + 240_000, '100', '101', '99', '100')].join('\n') + '\n');
    const r = await trader(w, 'data', 'import', 'in', '--market', 'spot');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('in/TESTUSDT-1m-2024-01.csv: spot TESTUSDT 1m, 2024-01-01 00:00 .. 2024-01-01 00:04 UTC: 3 rows read, 2 new, 0 updated, 1 bad, 1 gap (3 missing candles)');
    expect(r.stdout).toContain('  bad row in/TESTUSDT-1m-2024-01.csv:2: high: 100 is below open 100.5');
    expect(r.stdout).toContain('  gap 2024-01-01 00:01 .. 2024-01-01 00:03 UTC: 3 missing');
    expect(stored(w, 'spot', 'TESTUSDT', '1m').map((c) => c.close)).toEqual([100.5, 100]);
  });

  it('refuses bad command lines with exit 64, naming the flag', async () => {
    const w = workspace();
    const cases: Array<[string[], RegExp]> = [
      [['data', 'download', '--symbol', 'BTCUSDT', '--market', 'spot', '--from', '2024-13-01'], /--from: expected a UTC date such as 2024-01-01.*got "2024-13-01"/],
      [['data', 'download', '--symbol', 'BTCUSDT', '--market', 'spot', '--from', '2024-01-01', '--timeframe', '7m'], /--timeframe must be one of 1m, 3m, .*got "7m"/],
      [['data', 'download', '--symbol', 'BTCUSDT', '--market', 'spot', '--from', '2024-02-01', '--to', '2024-01-01'], /--to \(2024-01-01\) must be after --from \(2024-02-01\)/],
      [['data', 'import', 'no/such/folder'], /no such file or folder: no\/such\/folder/],
    ];
    const results = await Promise.all(cases.map(([args]) => trader(w, ...args)));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.stderr}`).toBe(64);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });
});

describe('trader data download (against the local exchange)', () => {
  let ex: LocalExchange;
  const fileRows = [...readKlineFile(ALGO)];

  beforeAll(async () => {
    // The exchange's clock always reads 59 s past the minute, so the
    // Retry-After of a 429 (the seconds left in the weight window) is 1 s
    // and the test does not wait out real minutes.
    const live = new LiveClock();
    const clock: Clock = {
      now: () => {
        const t = Date.now();
        return t - (t % 60_000) + 59_000 + (t % 1000);
      },
      after: (ms, fn) => live.after(ms, fn),
      every: (ms, fn) => live.every(ms, fn),
    };
    ex = await LocalExchange.start({ clock, replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [ALGO] }], speed: 'max' } });
    const done = await ex.replay!.done;
    expect(done.candles).toBe(FEB_2023_MINUTES);
  });
  afterAll(async () => {
    await ex?.close();
  });

  function expectSameAsFile(w: Workspace): void {
    const rows = stored(w, 'futures', 'ALGOUSDT', '1m');
    expect(rows).toHaveLength(fileRows.length);
    const mismatch = rows.findIndex((c, i) => {
      const k = fileRows[i]!;
      return c.openTime !== k.openTime || c.open !== Number(k.open) || c.high !== Number(k.high) || c.low !== Number(k.low) || c.close !== Number(k.close) || c.volume !== Number(k.volume) || c.trades !== k.trades;
    });
    expect(mismatch, 'every stored candle equals the replayed file row').toBe(-1);
  }

  it('downloads every closed candle page by page; run again, it resumes after the last one and fetches nothing new', async () => {
    const w = workspace({ BINANCE_FUTURES_REST_URL: ex.url });
    const first = await trader(w, 'data', 'download', '--symbol', 'ALGOUSDT', '--market', 'futures', '--timeframe', '1m', '--from', '2023-02-01');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^ALGOUSDT futures 1m: 40,320 candles 2023-02-01 00:00 \.\. 2023-02-28 23:59 UTC, 40,320 new, 0 updated; 27 pages from http:\/\/127\.0\.0\.1:\d+ in [\d.]+ s; 0 bad, 0 gaps$/m);
    expect(first.stderr, 'not a TTY: plain progress lines').toMatch(/^ALGOUSDT futures 1m: page 1, 1,500 candles, up to 2023-02-02 00:59 UTC/m);
    expectSameAsFile(w);

    const second = await trader(w, 'data', 'download', '--symbol', 'ALGOUSDT', '--market', 'futures', '--from', '2023-02-01');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('resuming after 2023-02-28 23:59 UTC, the last stored candle');
    expect(second.stdout).toMatch(/^ALGOUSDT futures 1m: nothing new after 2023-02-28 23:59 UTC \(1 page from /m);
    expectSameAsFile(w);

    const list = await trader(w, 'data', 'list');
    expect(list.stdout).toMatch(/^futures\s+ALGOUSDT\s+1m\s+2023-02-01 00:00\s+2023-02-28 23:59\s+40,320\s+0$/m);
  });

  it('waits out a 429 injected mid-download for its Retry-After, then completes', async () => {
    const w = workspace({ BINANCE_FUTURES_REST_URL: ex.url });
    // Slow pages a little so the fault lands while pages are still to come.
    ex.faults.delays.push({ count: 100, ms: 40, pathPrefix: '/fapi/v1/klines' });
    try {
      cli = startCli(['data', 'download', '--symbol', 'ALGOUSDT', '--market', 'futures', '--from', '2023-02-01', '--to', '2023-03-01'], { env: w.env, cwd: w.dir });
      await waitFor('the first page', () => cli!.stderr().includes('page 1,'));
      ex.faults.force429 = 2;
      const code = await cli.exited;
      expect(code, cli.output()).toBe(0);
      expect(cli.stderr().match(/rate limited \(429\): waiting 1 s as Retry-After asks, then continuing/g), 'each 429 waited out').toHaveLength(2);
      expect(cli.stdout()).toMatch(/40,320 candles 2023-02-01 00:00 \.\. 2023-02-28 23:59 UTC, 40,320 new.*waited 2 s for rate limits \(2x\); 0 bad, 0 gaps/);
    } finally {
      ex.faults.delays = [];
      ex.faults.force429 = 0;
    }
    expectSameAsFile(w);
  });

  it('an unknown symbol is a usage error naming --symbol', async () => {
    const w = workspace({ BINANCE_FUTURES_REST_URL: ex.url });
    const r = await trader(w, 'data', 'download', '--symbol', 'NOPEUSDT', '--market', 'futures', '--from', '2023-02-01');
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('trader data download: --symbol: the exchange refused NOPEUSDT: Invalid symbol. (code -1121)');
  });
});
