/**
 * The HTTP edge of the notifiers: one POST, classified into "delivered" or a
 * SendError that says whether to retry and whether it counts against the
 * circuit breaker.
 *
 * Both credentials live in the URL (Telegram's token is in the path, a Slack
 * webhook URL is the secret itself), so no message built here ever includes
 * the URL or the text of a low-level error (which may quote it): only the
 * operation name, the HTTP status and a network error code.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';

export class SendError extends Error {
  /** Stable code for logs and tests (kept local: the core error tree has no notifier codes yet). */
  readonly code = 'NOTIFY_SEND_FAILED';
  /** Worth trying again (5xx, 429, network, timeout); false for a 4xx answer. */
  readonly retryable: boolean;
  /** The dependency looks down or unusable: counts as a circuit breaker failure. */
  readonly outage: boolean;
  /** The server said how long to wait (429 retry_after / Retry-After). */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, o: { retryable: boolean; outage: boolean; retryAfterMs?: number | undefined }) {
    super(message);
    this.name = 'SendError';
    this.retryable = o.retryable;
    this.outage = o.outage;
    this.retryAfterMs = o.retryAfterMs;
  }
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/** Longest body read from a notifier's answer; they are tiny, anything bigger is not theirs. */
const MAX_BODY = 64 * 1024;

/**
 * POSTs JSON and returns the answer, whatever its status. Network failures
 * and aborts become SendError (retryable, outage).
 */
export async function postJson(url: string, body: unknown, signal: AbortSignal, what: string): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
      // A redirect would send the credential-bearing body somewhere else.
      redirect: 'error',
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text.length > MAX_BODY ? text.slice(0, MAX_BODY) : text };
  } catch (err) {
    throw networkError(what, err, signal);
  }
}

function networkError(what: string, err: unknown, signal: AbortSignal): SendError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return new SendError(`${what}: ${reason instanceof SendError ? reason.message : 'request aborted'}`, { retryable: true, outage: true });
  }
  // undici puts the system error (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET...) in cause.code.
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.name : 'unknown';
  return new SendError(`${what}: connection failed (${code})`, { retryable: true, outage: true });
}

/** The usual classification of a non-2xx answer. */
export function statusError(what: string, status: number, detail: string | undefined, retryAfterMs: number | undefined): SendError {
  const text = `${what}: HTTP ${status}${detail ? ` (${detail.slice(0, 200)})` : ''}`;
  if (status === 429) return new SendError(text, { retryable: true, outage: false, retryAfterMs });
  if (status >= 500) return new SendError(text, { retryable: true, outage: true, retryAfterMs });
  // 401/403/404: a wrong or revoked token or webhook. Retrying will not help,
  // but the breaker should open so /health shows it and we stop calling.
  const broken = status === 401 || status === 403 || status === 404;
  return new SendError(text, { retryable: false, outage: broken });
}

/** Longest wait a server may ask for before we treat the answer as odd and cap it. */
const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** Retry-After in seconds (the only form Telegram and Slack use). */
export function retryAfterHeader(headers: Headers): number | undefined {
  const v = headers.get('retry-after');
  if (v === null) return undefined;
  const s = Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, MAX_RETRY_AFTER_MS) : undefined;
}

export function retryAfterSeconds(s: number | undefined): number | undefined {
  return s !== undefined && Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, MAX_RETRY_AFTER_MS) : undefined;
}

export interface RequestSignal {
  readonly signal: AbortSignal;
  /** Cancels the timers; call when the request is over. */
  dispose(): void;
}

/**
 * The signal for one request: aborted by stop (`parent`), by the injected
 * clock after timeoutMs (deterministic under a TestClock), or, as a backstop
 * when the injected clock is not the wall clock, by a real timer a little
 * later. (One plain controller per request rather than AbortSignal.any: a
 * listener on the long-lived parent is removed on dispose, so nothing
 * accumulates over days of sending.)
 */
export function requestSignal(clock: Clock, timeoutMs: number, parent: AbortSignal): RequestSignal {
  const ctl = new AbortController();
  const onStop = (): void => ctl.abort(parent.reason);
  if (parent.aborted) onStop();
  else parent.addEventListener('abort', onStop, { once: true });
  const timedOut = (): void => ctl.abort(new SendError(`timed out after ${timeoutMs} ms`, { retryable: true, outage: true }));
  const timer: TimerHandle = clock.after(timeoutMs, timedOut);
  const backstop = setTimeout(timedOut, timeoutMs + 20_000);
  backstop.unref();
  return {
    signal: ctl.signal,
    dispose: () => {
      timer.cancel();
      clearTimeout(backstop);
      parent.removeEventListener('abort', onStop);
    },
  };
}

/** Waits ms on the injected clock; resolves early (never rejects) when signal aborts. */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      timer.cancel();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.after(ms, done);
    signal.addEventListener('abort', done, { once: true });
  });
}
