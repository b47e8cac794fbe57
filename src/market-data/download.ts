/**
 * Downloads kline history over Binance REST into the candle store.
 *
 * Pages GET {base}/api/v3/klines (spot, 1000 a page) or {base}/fapi/v1/klines
 * (USD-M futures, 1500 a page) forward from the start, writing each page in
 * one transaction as it arrives, so an interrupted download keeps what it
 * got and the next run resumes after the last stored candle. Only closed
 * candles are stored (one whose close time is not yet past is still moving).
 *
 * Rate limits, as Binance asks: the X-MBX-USED-WEIGHT-1M header is watched
 * and the pace slows past 80% of the minute's budget; a 429 or 418 is waited
 * out for its Retry-After, then the same page is asked again. Network errors
 * and 5xx are retried with backoff. Every page is validated (zod) before use,
 * and every candle goes through the same checks as an import.
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.ts';
import type { Market } from '../model/market.ts';
import { CandleColumns, type CandleRepository } from '../store/candle-repository.ts';
import { SeriesChecker, type CandleGap } from './candle-checks.ts';
import { alignUp, formatUtc, nextOpenTime, type Interval } from './intervals.ts';
import type { RawKline } from './kline-files.ts';

export const DEFAULT_REST_BASE: Readonly<Record<Market, string>> = {
  spot: 'https://api.binance.com',
  futures: 'https://fapi.binance.com',
};

/** Rows per request: the most each endpoint returns. */
export const PAGE_LIMIT: Readonly<Record<Market, number>> = { spot: 1000, futures: 1500 };

/** Binance's default REQUEST_WEIGHT budget per minute (exchangeInfo rateLimits). */
export const DEFAULT_WEIGHT_LIMIT: Readonly<Record<Market, number>> = { spot: 6000, futures: 2400 };

/** Past this share of the minute's weight, requests are spread over what is left of the minute. */
const SLOW_DOWN_AT = 0.8;
/** Attempts for one page on network errors and 5xx (backoff 1, 2, 4, 8 s between). */
const MAX_ATTEMPTS = 5;
/** Rate-limit waits in a row before giving up on one page. */
const MAX_RATE_LIMIT_WAITS = 10;
const REQUEST_TIMEOUT_MS = 30_000;

export interface DownloadRequest {
  market: Market;
  symbol: string;
  interval: Interval;
  /** First open time wanted (ms); aligned up to the interval's grid. */
  from: number;
  /** Candles opening before this (ms); default: now. */
  to?: number;
}

export interface DownloadProgress {
  readonly pages: number;
  /** Candles received and stored so far in this run. */
  readonly candles: number;
  /** Open time reached, and the span the run covers. */
  readonly position: number;
  readonly start: number;
  readonly end: number;
  readonly elapsedMs: number;
}

export interface DownloadDeps {
  repo: CandleRepository;
  clock: Clock;
  /** REST origin (https://api.binance.com); a base already ending in /api/v3 or /fapi/v1 works too. */
  baseUrl: string;
  fetch?: typeof fetch;
  /** The minute's weight budget; default Binance's (6000 spot, 2400 futures). */
  weightLimit?: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Things a person should see as they happen: waits, retries, bad rows. */
  onNotice?: (message: string) => void;
}

export interface DownloadReport {
  market: Market;
  symbol: string;
  interval: Interval;
  /** The span asked for: [start, end). */
  start: number;
  end: number;
  /** Set when stored candles were found: the run continued after this open time. */
  resumedAfter?: number;
  pages: number;
  received: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Candles not stored because they had not closed yet. */
  open: number;
  badRows: number;
  gaps: number;
  missing: number;
  firstGaps: CandleGap[];
  /** Open times of the first and last candle received. */
  first?: number;
  last?: number;
  rateLimitWaits: number;
  rateLimitWaitMs: number;
  retries: number;
  seconds: number;
}

/** A download that cannot go on; what was stored stays, and a re-run resumes. */
export class DownloadError extends Error {
  constructor(
    message: string,
    /** The flag at fault when the exchange refused what was asked (e.g. an unknown symbol). */
    readonly flag?: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'expected a decimal string');
const time = z.number().int().nonnegative();
/** One kline as both klines endpoints send it: [openTime, o, h, l, c, v, closeTime, quoteVolume, trades, takerBuyBase, takerBuyQuote, ignore]. */
const klineRowSchema = z.tuple([time, decimal, decimal, decimal, decimal, decimal, time, decimal, z.number().int().nonnegative(), decimal, decimal]).rest(z.unknown());
const klinePageSchema = z.array(klineRowSchema);
const binanceErrorSchema = z.object({ code: z.number(), msg: z.string() });

export async function downloadCandles(req: DownloadRequest, deps: DownloadDeps): Promise<DownloadReport> {
  const { repo, clock } = deps;
  const t0 = clock.now();
  const endpoint = klinesEndpoint(deps.baseUrl, req.market);
  const limit = PAGE_LIMIT[req.market];
  const budget = deps.weightLimit ?? DEFAULT_WEIGHT_LIMIT[req.market];
  const doFetch = deps.fetch ?? fetch;
  const notice = deps.onNotice ?? (() => undefined);
  const sleep = (ms: number): Promise<void> => new Promise((r) => clock.after(ms, r));

  const start = alignUp(req.interval, req.from);
  // Nothing after now can be closed: a later --to only stretches the progress bar.
  const end = Math.min(req.to ?? Infinity, clock.now());
  const report: DownloadReport = {
    market: req.market,
    symbol: req.symbol,
    interval: req.interval,
    start,
    end,
    pages: 0,
    received: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    open: 0,
    badRows: 0,
    gaps: 0,
    missing: 0,
    firstGaps: [],
    rateLimitWaits: 0,
    rateLimitWaitMs: 0,
    retries: 0,
    seconds: 0,
  };

  // What to fetch: after the last stored candle (resume), plus the part
  // before the first stored one when --from reaches further back.
  const first = repo.firstOpenTime(req.market, req.symbol, req.interval);
  const last = repo.lastOpenTime(req.market, req.symbol, req.interval);
  const segments: Array<{ from: number; to: number; previous?: number }> = [];
  if (last === undefined || last < start || first === undefined) segments.push({ from: start, to: end });
  else {
    if (first > start) segments.push({ from: start, to: first });
    report.resumedAfter = last;
    segments.push({ from: Math.max(start, nextOpenTime(req.interval, last)), to: end, previous: last });
  }

  const seriesId = repo.seriesId(req.market, req.symbol, req.interval);
  let weightUsed = 0;
  let weightSeenAt = 0;

  /** Spreads requests over the rest of the minute once most of its weight is used. */
  const pace = async (): Promise<void> => {
    const now = clock.now();
    if (Math.floor(now / 60_000) !== Math.floor(weightSeenAt / 60_000)) return; // a new minute, a new budget
    const share = weightUsed / budget;
    if (share <= SLOW_DOWN_AT) return;
    const toMinuteEnd = 60_000 - (now % 60_000);
    const wait = Math.min(toMinuteEnd, Math.ceil((toMinuteEnd * (share - SLOW_DOWN_AT)) / (1 - SLOW_DOWN_AT)));
    if (wait >= 1000) notice(`request weight ${weightUsed}/${budget} used this minute: slowing down, next page in ${(wait / 1000).toFixed(1)} s`);
    await sleep(wait);
  };

  const fetchPage = async (url: string): Promise<z.infer<typeof klinePageSchema>> => {
    let attempt = 0;
    let limited = 0;
    for (;;) {
      await pace();
      let res: Response;
      try {
        res = await doFetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (err) {
        if (++attempt >= MAX_ATTEMPTS) throw new DownloadError(`${url}: ${errorText(err)} (gave up after ${attempt} attempts)`, undefined, true);
        const wait = 1000 * 2 ** (attempt - 1);
        report.retries++;
        notice(`request failed (${errorText(err)}): retrying in ${wait / 1000} s`);
        await sleep(wait);
        continue;
      }
      const used = Number(res.headers.get('x-mbx-used-weight-1m'));
      if (Number.isFinite(used) && res.headers.has('x-mbx-used-weight-1m')) {
        weightUsed = used;
        weightSeenAt = clock.now();
      }
      if (res.status === 429 || res.status === 418) {
        const body = await res.text();
        if (++limited > MAX_RATE_LIMIT_WAITS) throw new DownloadError(`still rate limited (${res.status}) after ${MAX_RATE_LIMIT_WAITS} waits: ${body.slice(0, 200)}`, undefined, true);
        const retryAfter = Number(res.headers.get('retry-after'));
        const waitSec = Number.isFinite(retryAfter) && retryAfter >= 0 && res.headers.has('retry-after') ? retryAfter : 60;
        report.rateLimitWaits++;
        report.rateLimitWaitMs += waitSec * 1000;
        notice(`${res.status === 418 ? 'banned for too many requests (418)' : 'rate limited (429)'}: waiting ${waitSec} s as Retry-After asks, then continuing`);
        await sleep(waitSec * 1000);
        continue;
      }
      if (res.status >= 500) {
        const body = await res.text();
        if (++attempt >= MAX_ATTEMPTS) throw new DownloadError(`${url}: HTTP ${res.status} ${body.slice(0, 200)} (gave up after ${attempt} attempts)`, undefined, true);
        const wait = 1000 * 2 ** (attempt - 1);
        report.retries++;
        notice(`HTTP ${res.status} from the exchange: retrying in ${wait / 1000} s`);
        await sleep(wait);
        continue;
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new DownloadError(`${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
      }
      if (!res.ok) {
        const e = binanceErrorSchema.safeParse(json);
        const what = e.success ? `${e.data.msg} (code ${e.data.code})` : text.slice(0, 200);
        // -1121 Invalid symbol, -1120 Invalid interval: the command line asked for something that does not exist.
        const flag = e.success ? (e.data.code === -1121 ? '--symbol' : e.data.code === -1120 ? '--timeframe' : undefined) : undefined;
        if (flag) throw new DownloadError(`the exchange refused ${flag === '--symbol' ? req.symbol : req.interval}: ${what}`, flag);
        throw new DownloadError(`the exchange refused ${url}: HTTP ${res.status} ${what}`);
      }
      const page = klinePageSchema.safeParse(json);
      if (!page.success) {
        const i = page.error.issues[0];
        throw new DownloadError(`${url}: unexpected klines payload at ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
      }
      return page.data;
    }
  };

  for (const seg of segments) {
    if (seg.from >= seg.to) continue;
    const checker = new SeriesChecker(req.interval, seg.previous);
    let cursor = seg.from;
    while (cursor < seg.to) {
      const url = `${endpoint}?symbol=${encodeURIComponent(req.symbol)}&interval=${req.interval}&startTime=${cursor}&endTime=${seg.to - 1}&limit=${limit}`;
      const rows = await fetchPage(url);
      report.pages++;
      if (rows.length === 0) break;
      const now = clock.now();
      const good = new CandleColumns(rows.length);
      let stillOpen = false;
      let lastSeen = cursor;
      for (const r of rows) {
        const k = toRawKline(r);
        if (k.openTime < cursor || k.openTime >= seg.to) continue;
        lastSeen = k.openTime;
        if (k.closeTime >= now) {
          report.open++;
          stillOpen = true;
          break;
        }
        const problem = checker.check(k, good);
        if (problem !== undefined) {
          report.badRows++;
          notice(`skipped ${req.symbol} ${req.interval} candle at ${formatUtc(k.openTime)} UTC: ${problem}`);
        }
      }
      if (good.length > 0) {
        const counts = repo.transaction(() => repo.writeSeries(seriesId, good));
        report.inserted += counts.inserted;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        report.received += good.length;
        report.first ??= good.openTime[0]!;
        report.last = good.openTime[good.length - 1]!;
      }
      deps.onProgress?.({ pages: report.pages, candles: report.received, position: lastSeen, start, end, elapsedMs: clock.now() - t0 });
      // Fewer rows than asked for: nothing more in this window yet.
      if (stillOpen || rows.length < limit) break;
      const next = nextOpenTime(req.interval, lastSeen);
      if (next <= cursor) break;
      cursor = next;
    }
    report.gaps += checker.gapCount;
    report.missing += checker.missing;
    for (const g of checker.gaps) if (report.firstGaps.length < 10) report.firstGaps.push(g);
  }
  report.seconds = (clock.now() - t0) / 1000;
  return report;
}

/** {base}/api/v3/klines or {base}/fapi/v1/klines, from an origin or a base that already has the path. */
export function klinesEndpoint(baseUrl: string, market: Market): string {
  const path = market === 'spot' ? '/api/v3' : '/fapi/v1';
  let base = baseUrl.replace(/\/+$/, '');
  if (base.endsWith(path)) base = base.slice(0, -path.length);
  return `${base}${path}/klines`;
}

function toRawKline(r: z.infer<typeof klineRowSchema>): RawKline {
  return { openTime: r[0], open: r[1], high: r[2], low: r[3], close: r[4], volume: r[5], closeTime: r[6], quoteVolume: r[7], trades: r[8], takerBuyVolume: r[9], takerBuyQuoteVolume: r[10] };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
