/**
 * How a failed Binance call becomes a VenueError: the kind is decided on
 * Binance's error code and the HTTP status of the very response (tagged by
 * the client's hooks, see client.ts), falling back to ccxt's error classes.
 * The kind tells the caller what it may conclude (see VenueErrorKind).
 */
import ccxt from 'ccxt';
import { z } from 'zod';
import { VenueError, type VenueErrorKind } from '../venue.ts';

/** A REST call: writes whose outcome is unknown after a failure are AMBIGUOUS, reads RETRYABLE. */
export type Op = 'place' | 'cancel' | 'read';

/** What one response said, attached to the error ccxt raised for it. */
export interface ResponseTag {
  readonly status: number;
  readonly headers?: Record<string, unknown>;
  readonly code?: number;
  readonly msg?: string;
}

/** details.code of a RATE_LIMITED that our own order budget raised: nothing was sent (rate-budget.ts). */
export { ORDER_BUDGET_CODE } from '../venue.ts';

/** 429 (or 403, 418) without a Retry-After header: wait out the weight window. */
export const RATE_LIMITED_DEFAULT_MS = 60_000;

/** Codes after which Binance says the execution status is unknown (or it failed internally). */
export const UNKNOWN_OUTCOME_CODES = new Set([-1000, -1001, -1006, -1007]);
export const AUTH_CODES = new Set([-1002, -1022, -2014, -2015]);
export const UNKNOWN_ORDER_CODES = new Set([-2011, -2013]);
/** A refusal to connect or resolve: the request never left. */
const NOT_SENT = /ECONNREFUSED|ConnectionRefused|ENOTFOUND|EAI_AGAIN|DNSError|FailedToOpenSocket/;

/** A response header by name, case-insensitively (fetch lower-cases, Binance documents X-MBX-...). */
export function header(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : headers[key];
  return v === undefined || v === null ? undefined : String(v);
}

/** Binance's error body, {"code": -2010, "msg": "..."}, when the body is one. */
export function binanceBody(body: unknown): { code?: number; msg?: string } {
  if (typeof body !== 'string' || body === '') return {};
  try {
    const j = JSON.parse(body) as { code?: unknown; msg?: unknown };
    return { ...(typeof j.code === 'number' ? { code: j.code } : {}), ...(typeof j.msg === 'string' ? { msg: j.msg } : {}) };
  } catch {
    return {};
  }
}

/** Binance's code when ccxt only kept the body in its message. */
export function codeFromText(text: string): number | undefined {
  const m = /"code"\s*:\s*(-?\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The VenueError for a failed call. `serverNow` reads the exchange's clock
 * (a 418's "banned until <ms>" is in server time).
 */
export function classify(e: unknown, tag: ResponseTag | undefined, op: Op, what: string, serverNow: () => number): VenueError {
  if (e instanceof VenueError) return e;
  const text = e instanceof Error ? e.message : String(e);
  const code = tag?.code ?? codeFromText(text);
  const status = tag?.status;
  const write = op !== 'read';
  const make = (kind: VenueErrorKind, extra: { retryAfterMs?: number } = {}): VenueError =>
    new VenueError(kind, `${what}: ${kind}${status !== undefined ? ` (HTTP ${status})` : ''}: ${tag?.msg ?? text}`, { ...(code !== undefined ? { code } : {}), ...extra, cause: e });
  const retryAfter = (): number | undefined => {
    const h = header(tag?.headers, 'Retry-After');
    const s = h === undefined ? NaN : Number(h);
    return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined;
  };

  if (status === 418 || /IP banned until/i.test(text)) {
    const until = /banned until (\d+)/i.exec(tag?.msg ?? text);
    const fromMsg = until ? Math.max(0, Number(until[1]) - serverNow()) : undefined;
    return make('BANNED', { retryAfterMs: retryAfter() ?? fromMsg ?? RATE_LIMITED_DEFAULT_MS });
  }
  if (status === 429 || code === -1003 || e instanceof ccxt.RateLimitExceeded) return make('RATE_LIMITED', { retryAfterMs: retryAfter() ?? RATE_LIMITED_DEFAULT_MS });
  if (code === -1021 || e instanceof ccxt.InvalidNonce) return make('CLOCK_SKEW');
  if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || e instanceof ccxt.AuthenticationError) return make('AUTH');
  if (code === -4116 || (code === -2010 && /duplicate/i.test(tag?.msg ?? text)) || e instanceof ccxt.DuplicateOrderId) return make('DUPLICATE');
  if ((code !== undefined && UNKNOWN_ORDER_CODES.has(code)) || e instanceof ccxt.OrderNotFound) return make('UNKNOWN_ORDER');
  // -1008: the server shed the request before processing it.
  if (code === -1008) return make('RETRYABLE');
  // Binance: a 5xx or one of these codes means the outcome is unknown; it may have executed.
  if ((status !== undefined && status >= 500) || (code !== undefined && UNKNOWN_OUTCOME_CODES.has(code)) || e instanceof ccxt.RequestTimeout || e instanceof ccxt.ExchangeNotAvailable) {
    return make(write ? 'AMBIGUOUS' : 'RETRYABLE');
  }
  if (e instanceof ccxt.NetworkError) return make(write && !NOT_SENT.test(text) ? 'AMBIGUOUS' : 'RETRYABLE');
  // 403: a WAF limit, not a verdict on the request.
  if (status === 403) return make('RATE_LIMITED', { retryAfterMs: retryAfter() ?? RATE_LIMITED_DEFAULT_MS });
  if ((status !== undefined && status >= 400) || e instanceof ccxt.InvalidOrder || e instanceof ccxt.InsufficientFunds || e instanceof ccxt.BadRequest || e instanceof ccxt.ArgumentsRequired || e instanceof ccxt.NotSupported || e instanceof ccxt.OperationRejected) {
    return make('REJECTED');
  }
  // Anything else (an unparseable answer, a bug): for a write we cannot know what happened.
  return make(write ? 'AMBIGUOUS' : 'RETRYABLE');
}

/** Validates a payload; a mismatch is a RETRYABLE VenueError naming the first problem. */
export function parsePayload<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new VenueError('RETRYABLE', `malformed ${what} from binance: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`, { cause: r.error });
}

/** Reads the answer to a write that succeeded: if it cannot be read, the write still happened. */
export function afterWrite<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw new VenueError('AMBIGUOUS', `the request went through but its answer is unreadable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
