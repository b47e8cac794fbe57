/**
 * REST plumbing of the local exchange: routing, parameters, Binance's
 * security levels, request weights and their headers, and the faults the
 * control API injects. Endpoint behaviour lives in the route tables.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Dec, isDecimalString } from '../core/decimal.ts';
import type { Market } from '../model/market.ts';
import { checkTimestamp, verifySignature } from './auth.ts';
import { ERR, type BinanceError } from './binance-errors.ts';
import { unknownOutcomeDefaults, type Faults, type LateExecuteSpec } from './faults.ts';
import type { OrderCounter, WeightLimiter } from './limits.ts';

export type Security = 'NONE' | 'USER_STREAM' | 'SIGNED';

export interface RouteCtx {
  readonly params: Params;
  /** The account behind X-MBX-APIKEY (USER_STREAM and SIGNED routes). */
  readonly account: string;
  readonly now: number;
}

export type RouteResult = { readonly body: unknown; readonly status?: number } | BinanceError;

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly security: Security;
  readonly weight: number | ((p: Params) => number);
  /** Order placement: counted in X-MBX-ORDER-COUNT-* and subject to reject / black-hole faults. */
  readonly placesOrder?: boolean;
  handler(ctx: RouteCtx): RouteResult;
}

export function isError(r: RouteResult): r is BinanceError {
  return (r as BinanceError).code !== undefined && (r as BinanceError).msg !== undefined && (r as { body?: unknown }).body === undefined;
}

/** Thrown by Params accessors; turned into the error response. */
export class ParamError extends Error {
  constructor(readonly error: BinanceError) {
    super(error.msg);
  }
}

export class Params {
  constructor(readonly raw: Record<string, string>) {}

  has(name: string): boolean {
    return this.raw[name] !== undefined && this.raw[name] !== '';
  }

  str(name: string): string | undefined {
    const v = this.raw[name];
    return v === undefined || v === '' ? undefined : v;
  }

  req(name: string): string {
    const v = this.str(name);
    if (v === undefined) throw new ParamError(ERR.mandatory(name));
    return v;
  }

  dec(name: string): Dec | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!isDecimalString(v) || v.includes('e') || v.includes('E') || v.startsWith('-')) {
      throw new ParamError({ status: 400, code: -1100, msg: `Illegal characters found in parameter '${name}'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.` });
    }
    return new Dec(v);
  }

  int(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^-?\d{1,20}$/.test(v)) throw new ParamError(ERR.illegalChars(name));
    return Number(v);
  }

  bool(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false' && v !== 'TRUE' && v !== 'FALSE') throw new ParamError(ERR.badParam(`Invalid value for parameter '${name}'.`));
    return v.toLowerCase() === 'true';
  }

  enumOf<T extends string>(name: string, values: readonly T[], error: BinanceError): T | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!values.includes(v as T)) throw new ParamError(error);
    return v as T;
  }
}

export interface RestDeps {
  now(): number;
  /** Runs fn ms later on the exchange's clock (late executions). */
  after(ms: number, fn: () => void): { cancel(): void };
  faults: Faults;
  accountForKey(apiKey: string): { account: string; secret: string } | undefined;
  limiter: Record<Market, WeightLimiter>;
  orderCounter(account: string, market: Market): OrderCounter;
}

function marketOf(path: string): Market {
  return path.startsWith('/fapi/') ? 'futures' : 'spot';
}

/** Reads the body of a request (Binance clients send small urlencoded forms). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 1_000_000) req.destroy(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function parseForm(raw: string, into: Record<string, string>): void {
  if (!raw) return;
  for (const [k, v] of new URLSearchParams(raw)) into[k] = v;
}

export class RestApi {
  private readonly routes = new Map<string, Route>();
  private readonly pending = new Set<{ cancel(): void }>();

  constructor(private readonly deps: RestDeps) {}

  add(routes: readonly Route[]): void {
    for (const r of routes) this.routes.set(`${r.method} ${r.path}`, r);
  }

  /** Handles one request under /api/ or /fapi/. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, rawQuery: string): Promise<void> {
    const { faults } = this.deps;
    const market = marketOf(path);
    const rawBody = req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE' ? await readBody(req) : '';
    const send = (status: number, body: unknown, headers: Record<string, string | number> = {}): void => {
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', ...headers });
      res.end(JSON.stringify(body));
    };

    const delay = faults.takeDelay(path);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    const route = this.routes.get(`${req.method} ${path}`);
    const now = this.deps.now();
    const weightHeader = (used: number): Record<string, string> => ({ 'X-MBX-USED-WEIGHT-1M': String(used) });

    // Weight is charged before anything else, as Binance does per IP.
    const forced429 = faults.force429 > 0;
    if (forced429) faults.force429--;
    const params = new Params({});
    parseForm(rawQuery, params.raw);
    parseForm(rawBody, params.raw);
    const w = route ? (typeof route.weight === 'function' ? route.weight(params) : route.weight) : 1;
    const verdict = this.deps.limiter[market].charge(now, w, { force429: forced429, bannedUntil: faults.bannedUntil });
    if (verdict.refuse) {
      const e = verdict.refuse.status === 418 ? ERR.banned(verdict.refuse.until) : ERR.tooMuchWeight(this.deps.limiter[market].limitPerMinute);
      return send(verdict.refuse.status, { code: e.code, msg: e.msg }, { ...weightHeader(verdict.used), 'Retry-After': verdict.refuse.retryAfterSec });
    }

    const injected = faults.takeFail(path);
    if (injected) return send(injected.status, { code: injected.code, msg: injected.msg }, weightHeader(verdict.used));

    if (!route) return send(404, { code: ERR.unknownPath().code, msg: `Unknown endpoint ${req.method} ${path} (local exchange)` }, weightHeader(verdict.used));

    let account = '';
    if (route.security !== 'NONE') {
      const apiKey = req.headers['x-mbx-apikey'];
      if (typeof apiKey !== 'string' || apiKey === '') return this.fail(send, ERR.badApiKeyFormat(), verdict.used);
      const acct = this.deps.accountForKey(apiKey);
      if (!acct) return this.fail(send, ERR.badApiKey(), verdict.used);
      account = acct.account;
      if (route.security === 'SIGNED') {
        const tsErr = checkTimestamp(params.raw, now);
        if (tsErr) return this.fail(send, tsErr, verdict.used);
        const sigErr = verifySignature(acct.secret, rawQuery, rawBody);
        if (sigErr) return this.fail(send, sigErr, verdict.used);
      }
    }

    const headers: Record<string, string> = weightHeader(verdict.used);
    if (route.placesOrder) {
      const late = faults.takeLateExecute(path);
      if (late) {
        this.executeLate(route, path, params, account, late);
        const d = unknownOutcomeDefaults(market);
        const msg = late.msg ?? d.msg;
        const code = late.msg === undefined ? d.code : late.code;
        return send(late.status ?? d.status, code === undefined ? { timestamp: now, path, msg } : { code, msg }, weightHeader(verdict.used));
      }
      if (faults.rejectOrders > 0) {
        faults.rejectOrders--;
        return this.fail(send, ERR.rejectedByTest(), verdict.used);
      }
      const counter = this.deps.orderCounter(account, market);
      const full = counter.refusal(now);
      if (full) return send(full.error.status, { code: full.error.code, msg: full.error.msg }, { ...weightHeader(verdict.used), 'Retry-After': full.retryAfterSec });
      counter.record(now);
      Object.assign(headers, counter.headers(now));
    }

    let result: RouteResult;
    try {
      result = route.handler({ params, account, now });
    } catch (e) {
      if (e instanceof ParamError) return this.fail(send, e.error, verdict.used);
      return this.fail(send, ERR.internal(`local exchange error: ${(e as Error).message}`), verdict.used);
    }
    if (isError(result)) return this.fail(send, result, verdict.used);

    if (route.placesOrder && faults.blackholeOrders > 0) {
      // The exchange accepted the order; the answer never comes back.
      faults.blackholeOrders--;
      setTimeout(() => res.destroy(), faults.blackholeHoldMs).unref();
      return;
    }
    send(result.status ?? 200, result.body, headers);
  }

  /** Cancels late placements still waiting (the exchange is closing). */
  close(): void {
    for (const p of this.pending) p.cancel();
    this.pending.clear();
  }

  /**
   * Places an order that was answered with an unknown outcome, delayMs later,
   * as the matching engine would once it got to it: only while
   * serverTime - timestamp <= recvWindow (Binance's second timing check, made
   * when the request is forwarded to the matching engine; see Faults.lateExecute).
   */
  private executeLate(route: Route, path: string, params: Params, account: string, late: LateExecuteSpec): void {
    const market = marketOf(path);
    const timestamp = Number(params.raw.timestamp);
    const recvWindow = params.raw.recvWindow === undefined ? 5000 : Number(params.raw.recvWindow);
    const clientOrderId = params.str('newClientOrderId') ?? params.str('clientAlgoId') ?? params.str('listClientOrderId');
    const handle = this.deps.after(late.delayMs, () => {
      this.pending.delete(handle);
      const at = this.deps.now();
      const outcome = { path, clientOrderId, at };
      if (at - timestamp > recvWindow) {
        this.deps.faults.lateOutcomes.push({ ...outcome, placed: false, reason: 'RECV_WINDOW' });
        return;
      }
      this.deps.orderCounter(account, market).record(at);
      let result: RouteResult;
      try {
        result = route.handler({ params, account, now: at });
      } catch (e) {
        this.deps.faults.lateOutcomes.push({ ...outcome, placed: false, reason: e instanceof ParamError ? e.error.msg : (e as Error).message });
        return;
      }
      this.deps.faults.lateOutcomes.push(isError(result) ? { ...outcome, placed: false, reason: `${result.code} ${result.msg}` } : { ...outcome, placed: true });
    });
    this.pending.add(handle);
  }

  private fail(send: (s: number, b: unknown, h?: Record<string, string>) => void, e: BinanceError, used: number): void {
    send(e.status, { code: e.code, msg: e.msg }, { 'X-MBX-USED-WEIGHT-1M': String(used) });
  }
}
