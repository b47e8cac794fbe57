/**
 * downloadCandles against a scripted fetch and a TestClock: paging, only
 * closed candles, rate-limit pacing and waits, retries, resume. (The CLI
 * tests run it for real against the local exchange.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { dataDownload, parseUtcDate } from '../../src/cli/data-command.ts';
import { downloadCandles, klinesEndpoint, type DownloadReport } from '../../src/market-data/download.ts';
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';

const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;

interface Call {
  url: URL;
  at: number;
}

/**
 * A klines endpoint over a 1m series [T0, T0 + minutes) with `holes`
 * missing; `script` may answer a call (by index) with a status instead.
 */
function fakeExchange(clock: TestClock, minutes: number, opts: { holes?: Set<number>; weight?: (call: number) => number; script?: Record<number, { status: number; retryAfter?: string; body?: unknown }> } = {}) {
  const calls: Call[] = [];
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input));
    const i = calls.length;
    calls.push({ url, at: clock.now() });
    const headers = new Headers({ 'x-mbx-used-weight-1m': String(opts.weight?.(i) ?? 10) });
    const s = opts.script?.[i];
    if (s) {
      if (s.retryAfter !== undefined) headers.set('retry-after', s.retryAfter);
      return new Response(JSON.stringify(s.body ?? { code: -1003, msg: 'Too many requests.' }), { status: s.status, headers });
    }
    const start = Number(url.searchParams.get('startTime'));
    const end = Number(url.searchParams.get('endTime'));
    const limit = Number(url.searchParams.get('limit'));
    const rows: unknown[] = [];
    for (let m = 0; m < minutes && rows.length < limit; m++) {
      const t = T0 + m * MIN;
      if (t < start || t > end || opts.holes?.has(m)) continue;
      const c = (100 + m).toFixed(2);
      rows.push([t, c, (101 + m).toFixed(2), (99 + m).toFixed(2), c, '1.5', t + MIN - 1, '150', 3, '0.7', '70', '0']);
    }
    return new Response(JSON.stringify(rows), { status: 200, headers });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

/** Runs a promise that sleeps on the TestClock, moving the clock while it waits. */
async function drive<T>(clock: TestClock, p: Promise<T>): Promise<T> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    if (!settled && clock.pendingTimers() > 0) clock.advanceBy(100);
  }
  return p;
}

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

async function repo(): Promise<{ store: Store; repo: CandleRepository }> {
  const store = Store.open(':memory:');
  stores.push(store);
  await store.migrate();
  return { store, repo: new CandleRepository(store) };
}

describe('downloadCandles', () => {
  it('pages forward, one transaction per page, stores only closed candles, and reports gaps', async () => {
    const { store, repo: r } = await repo();
    // 3000 minutes of data; "now" is inside minute 2999, so that candle is still open.
    const clock = new TestClock(T0 + 2999 * MIN + 30_000);
    const ex = fakeExchange(clock, 3000, { holes: new Set([100, 101, 102]) });
    const tx = vi.spyOn(store, 'transaction');
    const notices: string[] = [];
    const report = await drive(clock, downloadCandles({ market: 'futures', symbol: 'BTCUSDT', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: ex.fetch, onNotice: (m) => notices.push(m) }));
    expect(ex.calls.map((c) => c.url.searchParams.get('startTime'))).toEqual([String(T0), String(T0 + 1503 * MIN)]);
    expect(ex.calls[0]!.url.pathname).toBe('/fapi/v1/klines');
    expect(ex.calls[0]!.url.searchParams.get('limit'), 'futures pages are 1500').toBe('1500');
    expect(report).toMatchObject<Partial<DownloadReport>>({ pages: 2, received: 2996, inserted: 2996, open: 1, badRows: 0, gaps: 1, missing: 3, first: T0, last: T0 + 2998 * MIN });
    expect(report.firstGaps[0]).toMatchObject({ from: T0 + 100 * MIN, to: T0 + 102 * MIN, missing: 3 });
    expect(tx, 'one transaction per page').toHaveBeenCalledTimes(2);
    expect(r.lastOpenTime('futures', 'BTCUSDT', '1m'), 'the open candle is left for later').toBe(T0 + 2998 * MIN);
    expect(notices).toEqual([]);
  });

  it('slows down past 80% of the minute weight, spreading the rest of the minute', async () => {
    const { repo: r } = await repo();
    const clock = new TestClock(T0 + 5000 * MIN + 30_000);
    // Spot pages are 1000: three pages; after the first the weight reads 95% of 6000.
    const ex = fakeExchange(clock, 2500, { weight: (i) => (i === 0 ? 5700 : 100) });
    const notices: string[] = [];
    await drive(clock, downloadCandles({ market: 'spot', symbol: 'BTCUSDT', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: ex.fetch, onNotice: (m) => notices.push(m) }));
    expect(ex.calls[0]!.url.pathname).toBe('/api/v3/klines');
    expect(ex.calls.map((c) => c.url.searchParams.get('limit'))).toEqual(['1000', '1000', '1000']);
    // 30 s left in the minute, at 95%: (0.95 - 0.8) / 0.2 of it = 22.5 s.
    expect(ex.calls[1]!.at - ex.calls[0]!.at).toBeGreaterThanOrEqual(22_500);
    expect(ex.calls[1]!.at - ex.calls[0]!.at).toBeLessThan(23_000);
    expect(ex.calls[2]!.at - ex.calls[1]!.at, 'back under 80%: no wait').toBeLessThan(200);
    expect(notices).toEqual(['request weight 5700/6000 used this minute: slowing down, next page in 22.5 s']);
  });

  it('waits Retry-After on 429 and 418, retries 5xx with backoff, and asks for the same page again', async () => {
    const { repo: r } = await repo();
    const clock = new TestClock(T0 + 5000 * MIN);
    const ex = fakeExchange(clock, 100, {
      script: { 0: { status: 429, retryAfter: '7' }, 1: { status: 418, retryAfter: '3' }, 2: { status: 503, body: 'busy' } },
    });
    const notices: string[] = [];
    const report = await drive(clock, downloadCandles({ market: 'futures', symbol: 'BTCUSDT', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test/fapi/v1', fetch: ex.fetch, onNotice: (m) => notices.push(m) }));
    expect(new Set(ex.calls.map((c) => c.url.searchParams.get('startTime'))), 'always the same page').toEqual(new Set([String(T0)]));
    expect(ex.calls.map((c) => c.at - ex.calls[0]!.at)).toEqual([0, 7000, 10_000, 11_000]);
    expect(notices).toEqual([
      'rate limited (429): waiting 7 s as Retry-After asks, then continuing',
      'banned for too many requests (418): waiting 3 s as Retry-After asks, then continuing',
      'HTTP 503 from the exchange: retrying in 1 s',
    ]);
    expect(report).toMatchObject({ received: 100, rateLimitWaits: 2, rateLimitWaitMs: 10_000, retries: 1 });
  });

  it('resumes after the last stored candle, and fills in before the first when --from reaches further back', async () => {
    const { repo: r } = await repo();
    const clock = new TestClock(T0 + 5000 * MIN);
    const ex = fakeExchange(clock, 300);
    // Stored already: minutes 100..199.
    const first = await drive(clock, downloadCandles({ market: 'spot', symbol: 'ETHUSDT', interval: '1m', from: T0 + 100 * MIN, to: T0 + 200 * MIN }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: ex.fetch }));
    expect(first).toMatchObject({ received: 100, first: T0 + 100 * MIN, last: T0 + 199 * MIN });
    ex.calls.length = 0;
    const second = await drive(clock, downloadCandles({ market: 'spot', symbol: 'ETHUSDT', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: ex.fetch }));
    expect(ex.calls.map((c) => [c.url.searchParams.get('startTime'), c.url.searchParams.get('endTime')])).toEqual([
      [String(T0), String(T0 + 100 * MIN - 1)],
      [String(T0 + 200 * MIN), String(clock.now() - 1)],
    ]);
    expect(second).toMatchObject({ resumedAfter: T0 + 199 * MIN, received: 200, inserted: 200, gaps: 0 });
    expect(r.summary()[0]).toMatchObject({ rows: 300, gaps: 0 });
  });

  it('an unknown symbol names --symbol; a malformed payload is refused with where it broke', async () => {
    const { repo: r } = await repo();
    const clock = new TestClock(T0 + 5000 * MIN);
    const bad = fakeExchange(clock, 10, { script: { 0: { status: 400, body: { code: -1121, msg: 'Invalid symbol.' } } } });
    await expect(downloadCandles({ market: 'spot', symbol: 'NOPE', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: bad.fetch })).rejects.toMatchObject({ flag: '--symbol', message: 'the exchange refused NOPE: Invalid symbol. (code -1121)' });
    const garbled = fakeExchange(clock, 10, { script: { 0: { status: 200, body: [[T0, 'x', '1', '1', '1', '1', T0 + MIN - 1, '1', 1, '1', '1', '0']] } } });
    await expect(downloadCandles({ market: 'spot', symbol: 'BTCUSDT', interval: '1m', from: T0 }, { repo: r, clock, baseUrl: 'http://ex.test', fetch: garbled.fetch })).rejects.toThrow(/unexpected klines payload at 0\.1: expected a decimal string/);
  });

  it('builds the endpoint from an origin or a base that already has the path', () => {
    expect(klinesEndpoint('https://api.binance.com', 'spot')).toBe('https://api.binance.com/api/v3/klines');
    expect(klinesEndpoint('https://fapi.binance.com/', 'futures')).toBe('https://fapi.binance.com/fapi/v1/klines');
    expect(klinesEndpoint('http://127.0.0.1:9/fapi/v1', 'futures')).toBe('http://127.0.0.1:9/fapi/v1/klines');
  });
});

describe('parseUtcDate (the --from / --to flags)', () => {
  it('takes dates and date-times as UTC and refuses impossible ones', () => {
    expect(parseUtcDate('2024-01-01')).toBe(T0);
    expect(parseUtcDate('2024-01-01T12:30')).toBe(T0 + 12.5 * 3_600_000);
    expect(parseUtcDate('2024-01-01 12:30:15Z')).toBe(T0 + 12.5 * 3_600_000 + 15_000);
    for (const bad of ['2024-02-30', '2024-13-01', '2024-1-1', 'yesterday', '2024-01-01T25:00', '']) expect(parseUtcDate(bad), bad).toBeUndefined();
  });
});

describe('trader data download: flags checked before anything is opened', () => {
  it('exits 64 with a message naming the flag', async () => {
    const clock = new TestClock(T0);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk).trim());
      return true;
    });
    try {
      const ok = { symbol: 'BTCUSDT', market: 'spot', timeframe: '1m', from: '2023-06-01' };
      const cases: Array<[Record<string, string | undefined>, string]> = [
        [{ symbol: undefined }, '--symbol is required, e.g. --symbol BTCUSDT'],
        [{ symbol: 'BTC/USDT' }, '--symbol must be a Binance symbol such as BTCUSDT (letters and digits), got "BTC/USDT"'],
        [{ market: undefined }, '--market is required: spot or futures (USD-M perpetuals)'],
        [{ market: 'margin' }, '--market must be spot or futures, got "margin"'],
        [{ timeframe: '1s' }, '--timeframe must be one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M, got "1s"'],
        [{ from: undefined }, '--from is required, e.g. --from 2024-01-01 (UTC)'],
        [{ from: '01/06/2023' }, '--from: expected a UTC date such as 2024-01-01 or 2024-01-01T12:00, got "01/06/2023"'],
        [{ to: '2023-06-01' }, '--to (2023-06-01) must be after --from (2023-06-01)'],
        [{ to: 'soon' }, '--to: expected a UTC date such as 2024-02-01 or 2024-02-01T12:00, got "soon"'],
        [{ from: '2030-01-01' }, '--from (2030-01-01) is in the future'],
      ];
      for (const [change, message] of cases) {
        lines.length = 0;
        const o = { ...ok, ...change } as Parameters<typeof dataDownload>[0];
        expect(await dataDownload(o, clock), message).toBe(64);
        expect(lines).toEqual([`trader data download: ${message}`]);
      }
    } finally {
      spy.mockRestore();
    }
  });
});
