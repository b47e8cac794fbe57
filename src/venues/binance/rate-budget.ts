/**
 * Binance's request budgets, kept on our side so that nothing is sent that
 * Binance would refuse with a 429 (and, if repeated, a 418 IP ban).
 *
 * What Binance publishes (the figures come from exchangeInfo `rateLimits`
 * at start; DEFAULT_RATE_LIMITS are used until then, or if it has none):
 *  - REQUEST_WEIGHT per IP, reported in X-MBX-USED-WEIGHT-(n)(letter)
 *    on every response;
 *  - ORDERS per account, reported in X-MBX-ORDER-COUNT-(n)(letter) on
 *    order responses (spot: 10 s and 1 day; USD-M: 10 s and 1 minute);
 *  - RAW_REQUESTS (spot): requests of any weight, no header.
 * Spot: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
 *   and https://github.com/binance/binance-spot-api-docs/blob/master/faqs/order_count_decrement.md
 * USD-M: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits
 *
 * Windows are fixed intervals of server time, as Binance counts them: "a
 * 1 MINUTE interval starts every minute ... 10 SECOND intervals reset at 00,
 * 10, 20... seconds of each minute; 1 DAY at 00:00 UTC"
 * (https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/rate-limits).
 *
 * How a window's use is known: our own reservations (every request reserves
 * its cost before it leaves and holds it until its answer is in) and the
 * counts Binance reports in the headers. Weight and USD-M order counts only
 * grow within a window, so the larger of the two is used. Spot counts
 * *unfilled* orders: a fill takes orders off the count, so there the header
 * is the truth and only requests still in flight are added to it.
 *
 * The budget decides; it never sleeps. admit() answers 'go' (with a ticket
 * to release when the answer is in), 'wait' (a request may go once the
 * window that is full has ended) or 'refuse' (an order: sending it later
 * would act on a stale decision, so it is refused now and never sent).
 * Time comes from the injected `now` (server time).
 */
import { z } from 'zod';
import type { Market } from '../../model/market.ts';

export const RATE_LIMIT_TYPES = ['REQUEST_WEIGHT', 'ORDERS', 'RAW_REQUESTS'] as const;
export type RateLimitType = (typeof RATE_LIMIT_TYPES)[number];
export const RATE_LIMIT_INTERVALS = ['SECOND', 'MINUTE', 'HOUR', 'DAY'] as const;
export type RateLimitInterval = (typeof RATE_LIMIT_INTERVALS)[number];

/** One entry of exchangeInfo `rateLimits`. */
export interface RateLimit {
  readonly rateLimitType: RateLimitType;
  readonly interval: RateLimitInterval;
  readonly intervalNum: number;
  readonly limit: number;
}

/**
 * Used until exchangeInfo says otherwise.
 * Spot: REQUEST_WEIGHT 6,000 / minute (CHANGELOG 2023-08-25), RAW_REQUESTS
 * 300,000 / 5 minutes (CHANGELOG 2026-03-27), ORDERS 100 / 10 s and
 * 200,000 / day (what exchangeInfo returns; the unfilled-order FAQ uses the
 * same 100 / 10 s). https://github.com/binance/binance-spot-api-docs/blob/master/CHANGELOG.md
 * USD-M: REQUEST_WEIGHT 2,400 / minute, ORDERS 1,200 / minute and 300 / 10 s
 * ("Rate Limits on Binance Futures",
 * https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3).
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<Market, readonly RateLimit[]>> = {
  spot: [
    { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 },
    { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 100 },
    { rateLimitType: 'ORDERS', interval: 'DAY', intervalNum: 1, limit: 200_000 },
    { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 300_000 },
  ],
  futures: [
    { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 2400 },
    { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
    { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
  ],
};

const rateLimitEntry = z.object({ rateLimitType: z.enum(RATE_LIMIT_TYPES), interval: z.enum(RATE_LIMIT_INTERVALS), intervalNum: z.number().int().positive(), limit: z.number().int().nonnegative() });

/**
 * exchangeInfo `rateLimits`. Entries the budget cannot use are dropped: types
 * it does not count (the WebSocket API's CONNECTIONS) and anything malformed
 * (the spot docs' example is a placeholder `{}`).
 */
export const rateLimitsSchema = z.array(z.unknown()).transform((xs) => xs.flatMap((x): RateLimit[] => {
  const r = rateLimitEntry.safeParse(x);
  return r.success ? [r.data] : [];
}));

const INTERVAL_MS: Readonly<Record<RateLimitInterval, number>> = { SECOND: 1000, MINUTE: 60_000, HOUR: 3_600_000, DAY: 86_400_000 };

export function intervalMs(l: Pick<RateLimit, 'interval' | 'intervalNum'>): number {
  return INTERVAL_MS[l.interval] * l.intervalNum;
}

/** The response header that reports this limit's count (none for RAW_REQUESTS). */
export function headerOf(l: RateLimit): string | undefined {
  const tail = `${l.intervalNum}${l.interval[0]}`;
  if (l.rateLimitType === 'REQUEST_WEIGHT') return `X-MBX-USED-WEIGHT-${tail}`;
  if (l.rateLimitType === 'ORDERS') return `X-MBX-ORDER-COUNT-${tail}`;
  return undefined;
}

/** What one request costs: its weight, the orders it places (0 for anything else). RAW_REQUESTS counts 1 each. */
export interface Cost {
  readonly weight: number;
  readonly orders: number;
}

export interface Ticket {
  /** The answer is in (or the request failed): its cost stops counting as in flight. Idempotent. */
  done(): void;
}

export type Admission =
  | { readonly kind: 'go'; readonly ticket: Ticket }
  | { readonly kind: 'wait'; readonly ms: number; readonly limit: RateLimit; readonly used: number }
  | { readonly kind: 'refuse'; readonly retryAfterMs: number; readonly limit: RateLimit; readonly used: number };

/** One limit's state in its current window (for usage() and the heartbeat). */
export interface BudgetView {
  readonly rateLimitType: RateLimitType;
  readonly interval: RateLimitInterval;
  readonly intervalNum: number;
  readonly limit: number;
  /** What the budget counts as used in the current window, in flight included. */
  readonly used: number;
  /** Server time the window ends. */
  readonly resetsAt: number;
}

class Counter {
  readonly ms: number;
  readonly header: string | undefined;
  /** Spot ORDERS count unfilled orders: a fill lowers the count, so the header is believed as it is. */
  readonly decrements: boolean;
  window = -1;
  /** Units reserved in this window (in flight included). */
  reserved = 0;
  /** Units reserved and not yet answered (carried into the next window: they may land there, until their answer says). */
  inFlight = 0;
  /** Units answered in this window. */
  answered = 0;
  /** The latest count Binance reported for this window. */
  reported: number | undefined;

  constructor(
    readonly limit: RateLimit,
    market: Market,
  ) {
    this.ms = intervalMs(limit);
    this.header = headerOf(limit);
    this.decrements = market === 'spot' && limit.rateLimitType === 'ORDERS';
  }

  roll(now: number): void {
    const w = Math.floor(now / this.ms) * this.ms;
    if (w === this.window) return;
    this.window = w;
    this.reserved = this.inFlight;
    this.answered = 0;
    this.reported = undefined;
  }

  used(): number {
    if (this.decrements) return (this.reported ?? this.answered) + this.inFlight;
    return Math.max(this.reserved, (this.reported ?? 0) + this.inFlight);
  }

  units(c: Cost): number {
    if (this.limit.rateLimitType === 'REQUEST_WEIGHT') return c.weight;
    if (this.limit.rateLimitType === 'ORDERS') return c.orders;
    return 1;
  }
}

export class RateBudget {
  private counters: Counter[] = [];
  private source: 'default' | 'exchangeInfo' = 'default';

  constructor(
    private readonly market: Market,
    private readonly now: () => number,
    limits: readonly RateLimit[] = DEFAULT_RATE_LIMITS[market],
  ) {
    this.setLimits(limits, 'default');
  }

  /** Where the limits in force came from. */
  get limitsFrom(): 'default' | 'exchangeInfo' {
    return this.source;
  }

  limits(): readonly RateLimit[] {
    return this.counters.map((c) => c.limit);
  }

  /**
   * Takes exchangeInfo's limits (at start). Each replaces the default of the
   * same type and window; a default it does not list stays: the USD-M docs'
   * exchangeInfo example names no 10 s order limit, which Binance's FAQ
   * documents at 300. Counts of a limit that stays are kept.
   */
  setLimits(limits: readonly RateLimit[], from: 'default' | 'exchangeInfo' = 'exchangeInfo'): void {
    const same = (a: RateLimit, b: RateLimit): boolean => a.rateLimitType === b.rateLimitType && intervalMs(a) === intervalMs(b);
    const merged = from === 'default' ? limits : [...limits, ...DEFAULT_RATE_LIMITS[this.market].filter((d) => !limits.some((l) => same(l, d)))];
    this.counters = merged.map((l) => {
      const old = this.counters.find((c) => same(c.limit, l));
      const c = new Counter(l, this.market);
      if (old) Object.assign(c, { window: old.window, reserved: old.reserved, inFlight: old.inFlight, answered: old.answered, reported: old.reported });
      return c;
    });
    this.source = from;
  }

  /**
   * Asks to send one request. A request that places orders is refused when
   * any limit would be exceeded; any other request is told how long to wait.
   * A request larger than a whole (empty) window goes anyway: waiting would
   * not make it fit.
   */
  admit(cost: Cost): Admission {
    const now = this.now();
    let worst: { counter: Counter; used: number; endsIn: number } | undefined;
    for (const c of this.counters) {
      c.roll(now);
      const u = c.units(cost);
      if (u <= 0) continue;
      const used = c.used();
      if (used > 0 && used + u > c.limit.limit) {
        const endsIn = c.window + c.ms - now;
        if (!worst || endsIn > worst.endsIn) worst = { counter: c, used, endsIn };
      }
    }
    if (worst) {
      const { counter, used, endsIn } = worst;
      return cost.orders > 0 ? { kind: 'refuse', retryAfterMs: endsIn, limit: counter.limit, used } : { kind: 'wait', ms: endsIn, limit: counter.limit, used };
    }
    const taken: Array<{ counter: Counter; units: number; window: number }> = [];
    for (const c of this.counters) {
      const u = c.units(cost);
      if (u <= 0) continue;
      c.reserved += u;
      c.inFlight += u;
      taken.push({ counter: c, units: u, window: c.window });
    }
    let open = true;
    return {
      kind: 'go',
      ticket: {
        done: () => {
          if (!open) return;
          open = false;
          const at = this.now();
          for (const { counter, units, window } of taken) {
            counter.roll(at);
            counter.inFlight = Math.max(0, counter.inFlight - units);
            if (window === counter.window) counter.answered += units;
            // Sent in an earlier window and carried into this one: now that it is answered, whether
            // it counted here is what the answer's header said (observed just before this).
            else counter.reserved = Math.max(0, counter.reserved - units);
          }
        },
      },
    };
  }

  /** Reads Binance's counts from a response's headers (any response: weight comes on all of them). */
  observe(headers: Readonly<Record<string, unknown>>): void {
    const now = this.now();
    const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const c of this.counters) {
      if (c.header === undefined) continue;
      const raw = lower.get(c.header.toLowerCase());
      const n = raw === undefined || raw === null ? NaN : Number(raw);
      if (!Number.isFinite(n) || n < 0) continue;
      c.roll(now);
      c.reported = c.decrements ? n : Math.max(c.reported ?? 0, n);
    }
  }

  view(): BudgetView[] {
    const now = this.now();
    return this.counters.map((c) => {
      c.roll(now);
      return { rateLimitType: c.limit.rateLimitType, interval: c.limit.interval, intervalNum: c.limit.intervalNum, limit: c.limit.limit, used: c.used(), resetsAt: c.window + c.ms };
    });
  }
}

/**
 * Binance's documented cost of one REST request, from ccxt's endpoint cost:
 * ccxt writes spot (/api/v3) costs as 0.2 per unit of weight ("Weight(IP):
 * 20 => cost = 0.2 * 20 = 4" in its binance.js) and USD-M (/fapi) costs as
 * the weight itself. Order placement is the exception: ccxt inflates its
 * cost to space orders out (POST /fapi/v1/order costs 4, hence 100 ms between
 * USD-M orders at 25 ms a unit), while Binance charges it to the order
 * count: USD-M New Order is "1 on 10s order rate limit; 1 on 1min order rate
 * limit; 0 on IP rate limit"; New Algo Order "0 on IP rate limit"
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api);
 * spot New order is weight 1, Unfilled Order Count 1, an OCO list weight 1,
 * count 2 (https://github.com/binance/binance-spot-api-docs/blob/master/rest-api.md#new-order-trade;
 * since 2026-04-02 a successful placement is charged weight 0, a failed one
 * still 1: the budget keeps 1, CHANGELOG 2026-03-27).
 */
export function requestCost(market: Market, api: string, method: string, path: string, ccxtCost: number, params: Readonly<Record<string, unknown>> = {}): Cost {
  const placed = ordersPlaced(market, api, method, path, params);
  if (placed !== undefined) return placed;
  const documented = DOCUMENTED_WEIGHT[`${api} ${method.toUpperCase()} ${path}`];
  if (documented !== undefined) return { weight: documented, orders: 0 };
  const spotApi = api === 'public' || api === 'private' || api === 'v3';
  const weight = spotApi ? ccxtCost / 0.2 : ccxtCost;
  return { weight: Math.max(0, Math.round(weight * 100) / 100), orders: 0 };
}

/**
 * Endpoints the bot calls whose ccxt cost is below Binance's documented
 * weight: USD-M Account Information V2/V3, Futures Account Balance V2/V3
 * and Position Information V2/V3 are weight 5 (ccxt: 1)
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api).
 */
const DOCUMENTED_WEIGHT: Readonly<Record<string, number>> = {
  'fapiPrivateV2 GET account': 5,
  'fapiPrivateV3 GET account': 5,
  'fapiPrivateV2 GET balance': 5,
  'fapiPrivateV3 GET balance': 5,
  'fapiPrivateV2 GET positionRisk': 5,
  'fapiPrivateV3 GET positionRisk': 5,
};

/** What the venue's own placements cost: one order, an OCO list (two), a USD-M conditional (algo service: none). */
export function orderCost(market: Market, what: 'order' | 'oco' | 'conditional'): Cost {
  if (market === 'spot') return { weight: 1, orders: what === 'oco' ? 2 : 1 };
  return { weight: 0, orders: what === 'conditional' ? 0 : 1 };
}

/** The orders a request places and its weight, when it is an order placement; undefined otherwise. */
export function ordersPlaced(market: Market, api: string, method: string, path: string, params: Readonly<Record<string, unknown>> = {}): Cost | undefined {
  const m = method.toUpperCase();
  if (market === 'spot') {
    if (api !== 'private' || m !== 'POST') return undefined;
    const SPOT: Readonly<Record<string, number>> = { order: 1, 'sor/order': 1, 'order/cancelReplace': 1, 'order/oco': 2, 'orderList/oco': 2, 'orderList/oto': 2, 'orderList/otoco': 3, 'orderList/opo': 2, 'orderList/opoco': 3 };
    const n = SPOT[path];
    return n === undefined ? undefined : { weight: 1, orders: n };
  }
  if (api !== 'fapiPrivate') return undefined;
  if ((path === 'order' && (m === 'POST' || m === 'PUT')) || (path === 'batchOrders' && (m === 'POST' || m === 'PUT'))) {
    const batch = path === 'batchOrders' ? batchSize(params) : 1;
    return { weight: 0, orders: batch };
  }
  // Conditional orders wait on the algo service; the docs charge them nothing but IP weight 0.
  if (path === 'algoOrder' && m === 'POST') return { weight: 0, orders: 0 };
  return undefined;
}

function batchSize(params: Readonly<Record<string, unknown>>): number {
  const raw = params.batchOrders ?? params.orders;
  if (Array.isArray(raw)) return Math.max(1, raw.length);
  if (typeof raw === 'string') {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed)) return Math.max(1, parsed.length);
    } catch {
      // fall through: count the documented maximum of a batch
    }
  }
  return 5;
}
