/**
 * The ccxt client the Binance venue sends through, and what it learns from
 * the responses:
 *  - the clock offset to the server: requests are signed with our injected
 *    clock plus the measured offset (resyncClock());
 *  - Binance's request-weight and order-count headers (usage()), and the
 *    request budget (rate-budget.ts): every request other than an order
 *    placement waits here, before it is signed, until its weight fits the
 *    window (order placements are admitted or refused by the gate); the
 *    limits are the ones exchangeInfo `rateLimits` returns;
 *  - each error tagged with the status, headers and code of the response it
 *    came from (RestGate.tag), so the gate classifies on data.
 *
 * After dispose() (the venue stopped) a renew() builds a fresh client.
 */
import type ccxt from 'ccxt';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/logger.ts';
import type { Market } from '../../model/market.ts';
import { VenueError, type VenueUsage } from '../venue.ts';
import { createFuturesClient, createSpotClient } from './ccxt-clients.ts';
import { binanceBody, header } from './errors.ts';
import { ordersPlaced, rateLimitsSchema, requestCost, type RateBudget } from './rate-budget.ts';
import type { RestGate } from './rest-gate.ts';

export type Client = InstanceType<typeof ccxt.binance>;

export interface BinanceClientOptions {
  readonly market: Market;
  readonly spotBase: string;
  readonly futuresBase: string;
  readonly apiKey: string;
  readonly secret: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly enableRateLimit: boolean;
  readonly timeoutMs: number;
  readonly recvWindowMs: number;
  /** Binance's limits; absent, requests go unbudgeted (ccxt's enableRateLimit is the only throttle). */
  readonly budget?: RateBudget;
}

/** A clock sample whose round trip took longer than this is not trusted over the previous one. */
const MAX_SYNC_RTT_MS = 3000;

export class BinanceClient {
  private exchange: Client;
  private disposed = false;
  private offsetMs = 0;
  private offsetMeasured = false;
  private resyncing: Promise<number> | undefined;
  /** When the latest /time request actually went out (see hook()). */
  private timeSentAt: number | undefined;
  private usageView: VenueUsage = {};

  constructor(
    private readonly o: BinanceClientOptions,
    private readonly gate: RestGate,
  ) {
    this.exchange = this.build();
  }

  get ex(): Client {
    return this.exchange;
  }

  /** A fresh ccxt client if the last one was disposed (start() after stop()). */
  renew(): void {
    if (!this.disposed) return;
    this.exchange = this.build();
    this.disposed = false;
  }

  /** Closes ccxt's undici keep-alive pool, so no open handle is left behind. */
  async dispose(): Promise<void> {
    const dispatcher = (this.exchange as unknown as { fetchDispatcher?: { destroy?: () => Promise<void> } }).fetchDispatcher;
    if (dispatcher?.destroy) await dispatcher.destroy().catch(() => undefined);
    this.disposed = true;
  }

  // ----------------------------------------------------------------- clock

  /** Server time minus our clock, ms (positive: the server runs ahead). */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  serverNow(): number {
    return Math.round(this.o.clock.now() + this.offsetMs);
  }

  /**
   * Measures the offset to the server clock again (call it after a CLOCK_SKEW
   * error); resolves with the offset in use afterwards. Calls that overlap
   * share one measurement.
   */
  resyncClock(): Promise<number> {
    this.resyncing ??= this.measureOffset().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async measureOffset(): Promise<number> {
    const clock = this.o.clock;
    this.timeSentAt = undefined;
    const called = clock.now();
    const server = await this.gate.call('read', 'fetchTime', () => this.exchange.fetchTime());
    const after = clock.now();
    // ccxt's throttle may hold the call before sending: count from when it left.
    const before = this.timeSentAt ?? called;
    if (typeof server !== 'number' || !Number.isFinite(server)) throw new VenueError('RETRYABLE', `fetchTime returned no server time (${String(server)})`);
    const rtt = after - before;
    // The estimate is off by up to half the round trip: a slow sample would make it worse
    // than the offset we have (the first sample is always taken).
    if (this.offsetMeasured && rtt > MAX_SYNC_RTT_MS) {
      this.o.log.warn({ rttMs: rtt, keptOffsetMs: this.offsetMs }, 'clock sync round trip too slow; keeping the previous offset');
      return this.offsetMs;
    }
    // The server read its clock about halfway through the round trip.
    // (+ 0 turns Math.round's -0 into 0.)
    this.offsetMs = Math.round(server - (before + after) / 2) + 0;
    this.offsetMeasured = true;
    return this.offsetMs;
  }

  // ----------------------------------------------------------------- usage

  /** Binance's request-weight and order-count headers from the latest response. */
  usage(): VenueUsage {
    const budget = this.o.budget?.view();
    return budget ? { ...this.usageView, budget } : this.usageView;
  }

  private recordUsage(headers: Record<string, unknown>): void {
    const num = (name: string): number | undefined => {
      const v = header(headers, name);
      const n = v === undefined ? NaN : Number(v);
      return Number.isFinite(n) ? n : undefined;
    };
    const weight = num('X-MBX-USED-WEIGHT-1M');
    const c10s = num('X-MBX-ORDER-COUNT-10S');
    const c1d = num('X-MBX-ORDER-COUNT-1D');
    const c1m = num('X-MBX-ORDER-COUNT-1M');
    if (weight === undefined && c10s === undefined && c1d === undefined && c1m === undefined) return;
    // Order counts come only on placements: keep the last known ones across other calls.
    this.usageView = {
      ...this.usageView,
      ...(weight !== undefined ? { usedWeight1m: weight } : {}),
      ...(c10s !== undefined ? { orderCount10s: c10s } : {}),
      ...(c1d !== undefined ? { orderCount1d: c1d } : {}),
      ...(c1m !== undefined ? { orderCount1m: c1m } : {}),
      updatedAt: this.o.clock.now(),
    };
  }

  /**
   * exchangeInfo's `rateLimits` become the budget's limits (this market's
   * exchangeInfo only: /api/v3 for spot, /fapi/v1 for USD-M).
   */
  private learnLimits(budget: RateBudget, url: string, response: unknown): void {
    const path = new URL(url, 'http://x').pathname;
    if (!path.endsWith(this.o.market === 'spot' ? '/api/v3/exchangeInfo' : '/fapi/v1/exchangeInfo')) return;
    const r = rateLimitsSchema.safeParse((response as { rateLimits?: unknown } | null)?.rateLimits);
    if (!r.success || r.data.length === 0) {
      this.o.log.warn({ problem: r.success ? 'empty' : r.error.issues[0]?.message }, `exchangeInfo rateLimits unusable; keeping ${budget.limitsFrom} limits`);
      return;
    }
    budget.setLimits(r.data);
    this.o.log.debug({ rateLimits: r.data }, 'request budget from exchangeInfo');
  }

  // ----------------------------------------------------------------- build

  private build(): Client {
    const o = this.o;
    const common = { spotBase: o.spotBase, futuresBase: o.futuresBase, apiKey: o.apiKey, secret: o.secret, enableRateLimit: o.enableRateLimit, timeoutMs: o.timeoutMs, recvWindowMs: o.recvWindowMs };
    const ex = (o.market === 'spot' ? createSpotClient(common) : createFuturesClient(common)) as unknown as Client;
    // openOrders() without a symbol is a deliberate, rare call (reconciliation).
    (ex.options as Record<string, unknown>).warnOnFetchOpenOrdersWithoutSymbol = false;
    this.hook(ex);
    return ex;
  }

  /**
   * Hooks into ccxt's request path:
   *  - nonce(): the timestamp ccxt signs with (binance.js: milliseconds() -
   *    options.timeDifference) becomes our clock plus the measured offset, so
   *    the injected clock and the offset are the only sources of time;
   *  - handleErrors(): runs for every response with its status and headers:
   *    the usage headers are recorded, and an error it raises is tagged with
   *    the status, Retry-After and Binance's code, read from this very
   *    response (last_response_headers is shared by concurrent calls);
   *  - handleHttpStatusCode(): the same tag for errors raised on the status alone;
   *  - fetch(): notes when a /time request leaves (after ccxt's throttle), so
   *    the clock offset is measured over the network round trip only.
   */
  private hook(ex: Client): void {
    const raw = ex as unknown as {
      nonce: () => number;
      handleErrors: (code: number, reason: string, url: string, method: string, headers: Record<string, unknown>, body: string, response: unknown, rh: unknown, rb: unknown) => unknown;
      handleHttpStatusCode: (code: number, reason: string, url: string, method: string, body: string) => unknown;
      fetch: (url: string, method?: string, headers?: unknown, body?: unknown) => Promise<unknown>;
      fetch2: (path: string, api: string, method: string, params?: Record<string, unknown>, headers?: unknown, body?: unknown, config?: Record<string, unknown>) => Promise<unknown>;
      calculateRateLimiterCost: (api: string, method: string, path: string, params: Record<string, unknown>, config: Record<string, unknown>) => number;
    };
    raw.nonce = () => this.serverNow();
    const budget = this.o.budget;
    if (budget) {
      const fetch2 = raw.fetch2.bind(ex);
      raw.fetch2 = async (path, api, method, params, headers, body, config) => {
        // Order placements were admitted (or refused) by the gate with their order count.
        if (ordersPlaced(this.o.market, api, method, path, params ?? {})) return fetch2(path, api, method, params, headers, body, config);
        const cost = requestCost(this.o.market, api, method, path, raw.calculateRateLimiterCost(api, method, path, params ?? {}, config ?? {}), params ?? {});
        for (;;) {
          const a = budget.admit(cost);
          if (a.kind === 'go') {
            try {
              return await fetch2(path, api, method, params, headers, body, config);
            } finally {
              a.ticket.done();
            }
          }
          // Only order placements are refused; anything else waits for the window to end, then asks again.
          const ms = a.kind === 'wait' ? a.ms : a.retryAfterMs;
          this.o.log.warn({ path, weight: cost.weight, limit: a.limit, used: a.used, waitMs: ms }, `request weight budget used: ${api} ${method} ${path} waits ${ms} ms`);
          await new Promise<void>((resolve) => this.o.clock.after(Math.max(1, ms), resolve));
        }
      };
    }
    const fetch = raw.fetch.bind(ex);
    raw.fetch = (url, method, headers, body) => {
      if (/\/time$/.test(url.split('?')[0]!)) this.timeSentAt = this.o.clock.now();
      return fetch(url, method, headers, body);
    };
    const handleErrors = raw.handleErrors.bind(ex);
    raw.handleErrors = (code, reason, url, method, headers, body, response, rh, rb) => {
      this.recordUsage(headers);
      if (budget) {
        budget.observe(headers);
        if (code < 400) this.learnLimits(budget, url, response);
      }
      try {
        return handleErrors(code, reason, url, method, headers, body, response, rh, rb);
      } catch (e) {
        this.gate.tag(e, { status: code, headers, ...binanceBody(body) });
        throw e;
      }
    };
    const handleStatus = raw.handleHttpStatusCode.bind(ex);
    raw.handleHttpStatusCode = (code, reason, url, method, body) => {
      try {
        return handleStatus(code, reason, url, method, body);
      } catch (e) {
        this.gate.tag(e, { status: code, ...binanceBody(body) }, false);
        throw e;
      }
    };
  }
}
