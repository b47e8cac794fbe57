/**
 * Binance's user-data protocols on the UserStream socket (user-stream.ts):
 *  - USD-M: a listenKey (POST /fapi/v1/listenKey) on the stream base, kept
 *    alive every 30 minutes and created anew when Binance says it expired;
 *    events ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE;
 *  - spot: the WebSocket API, subscribed with userDataStream.subscribe.signature
 *    (HMAC over the sorted parameters); events executionReport, listStatus,
 *    outboundAccountPosition, eventStreamTerminated.
 * Frames are validated with zod and mapped (mappers.ts) into VenueEvents.
 */
import { createHmac } from 'node:crypto';
import type WebSocket from 'ws';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import type { Logger } from '../../core/logger.ts';
import type { Market } from '../../model/market.ts';
import { VenueError, type VenueErrorKind, type VenueEvent, type VenueOrder } from '../venue.ts';
import { AUTH_CODES, parsePayload, type Op } from './errors.ts';
import { fromAccountUpdate, fromAlgoUpdate, fromExecutionReport, fromOrderTradeUpdate, fromOutboundAccountPosition } from './mappers.ts';
import { wsApiResponse, type WsApiResponse } from './payloads.ts';
import { executionReport, listStatus, outboundAccountPosition } from './spot-payloads.ts';
import { algoUpdate, futuresAccountUpdate, futuresOrderUpdate, listenKeyRaw } from './usdm-payloads.ts';
import type { UserStream, UserStreamDeps } from './user-stream.ts';

export interface UserDataContext {
  readonly market: Market;
  /** Futures: the stream base (futuresUserStreamUrl); spot: the WebSocket API URL. */
  readonly wsBase: string;
  readonly apiKey: string;
  readonly secret: string;
  readonly recvWindowMs: number;
  readonly timeoutMs: number;
  readonly staleMs: number;
  readonly listenKeyKeepAliveMs: number;
  readonly backoff: { baseMs: number; capMs: number; random: () => number };
  readonly clock: Clock;
  readonly log: Logger;
  /** A REST call through the venue's gate. */
  call<T>(op: Op, what: string, fn: () => Promise<T>): Promise<T>;
  /** The listenKey endpoints (ccxt's implicit API). */
  listenKeyApi(): { fapiPrivatePostListenKey(): Promise<unknown>; fapiPrivatePutListenKey(): Promise<unknown> };
  serverNow(): number;
  resyncClock(): Promise<number>;
  emit(e: VenueEvent): void;
  /** Spot order lists: remembers a list's client id (listStatus names it; later executionReports do not). */
  rememberList(orderListId: string, listClientOrderId: string): void;
  withListClientId(o: VenueOrder): VenueOrder;
}

/**
 * The events the futures connection asks for: the ones onFuturesFrame reads.
 * The notice's examples always name them; an `events` list is reported to
 * filter exhaustively (an event it does not name is not pushed), so
 * listenKeyExpired is named too, or an expired key could go unnoticed.
 */
export const FUTURES_USER_EVENTS = ['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE', 'ALGO_UPDATE', 'listenKeyExpired'] as const;

/**
 * USD-M user data lives under /private since Binance split the streams
 * ("Important WebSocket Change Notice", https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice):
 * `<base>/private/ws?listenKey=<key>&events=A/B`. The legacy `<base>/ws/<listenKey>`
 * was decommissioned on 2026-04-23: it still connects but pushes nothing.
 * `base` is BINANCE_FUTURES_WS_URL (default wss://fstream.binance.com).
 */
export function futuresUserStreamUrl(base: string, listenKey: string): string {
  return `${base.replace(/\/$/, '')}/private/ws?listenKey=${encodeURIComponent(listenKey)}&events=${FUTURES_USER_EVENTS.join('/')}`;
}

export function userDataDeps(c: UserDataContext): UserStreamDeps {
  const futures = c.market === 'futures';
  let stream: UserStream | undefined;
  let keepAlive: TimerHandle | undefined;
  const pending = new Map<string, { resolve: (r: WsApiResponse) => void; reject: (e: Error) => void }>();
  let nextId = 1;

  const spotSubscribe = async (ws: WebSocket): Promise<void> => {
    const request = (): Promise<WsApiResponse> => {
      const params: Record<string, string | number> = { apiKey: c.apiKey, recvWindow: c.recvWindowMs, timestamp: c.serverNow() };
      // The WebSocket API signs the parameters sorted by name, as key=value joined by &.
      const payload = Object.keys(params)
        .sort()
        .map((k) => `${k}=${params[k]}`)
        .join('&');
      const signature = createHmac('sha256', c.secret).update(payload).digest('hex');
      const reqId = `sub-${nextId++}`;
      return new Promise((resolve, reject) => {
        const timer = c.clock.after(c.timeoutMs, () => {
          pending.delete(reqId);
          reject(new VenueError('RETRYABLE', 'userDataStream.subscribe.signature: no answer'));
        });
        pending.set(reqId, {
          resolve: (r) => (timer.cancel(), resolve(r)),
          reject: (e) => (timer.cancel(), reject(e)),
        });
        ws.send(JSON.stringify({ id: reqId, method: 'userDataStream.subscribe.signature', params: { ...params, signature } }));
      });
    };
    let res = await request();
    if (res.error?.code === -1021) {
      // Our clock drifted while the stream was down: measure again, then retry once.
      await c.resyncClock();
      res = await request();
    }
    if (res.error) throw new VenueError(wsApiErrorKind(res.status, res.error.code), `userDataStream.subscribe.signature: ${res.error.msg}`, { code: res.error.code });
  };

  const onSpotFrame = (msg: Record<string, unknown>, text: string): void => {
    if (msg.id !== undefined && msg.id !== null && 'status' in msg) {
      const r = wsApiResponse.safeParse(msg);
      if (!r.success) return stream!.malformedFrame(text, r.error);
      const p = pending.get(String(r.data.id));
      if (p) {
        pending.delete(String(r.data.id));
        p.resolve(r.data);
      }
      return;
    }
    const event = msg.event as { e?: unknown } | undefined;
    if (!event || typeof event !== 'object') return stream!.malformedFrame(text, 'neither a response nor an event');
    switch (event.e) {
      case 'executionReport': {
        const r = executionReport.safeParse(event);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        const ev = fromExecutionReport(r.data);
        return c.emit(ev.type === 'order' ? { ...ev, order: c.withListClientId(ev.order) } : ev);
      }
      case 'listStatus': {
        const r = listStatus.safeParse(event);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        // Not an event of the port: it names the list, which later executionReports of its legs do not.
        c.rememberList(r.data.g, r.data.C);
        return;
      }
      case 'outboundAccountPosition': {
        const r = outboundAccountPosition.safeParse(event);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        return c.emit(fromOutboundAccountPosition(r.data));
      }
      case 'eventStreamTerminated':
        // The subscription ended (session logged out): connect and subscribe again.
        return stream!.restart('eventStreamTerminated');
      default:
        // balanceUpdate, externalLockUpdate: nothing the venue port carries.
        return;
    }
  };

  const onFuturesFrame = (msg: Record<string, unknown>, text: string): void => {
    switch (msg.e) {
      case 'ORDER_TRADE_UPDATE': {
        const r = futuresOrderUpdate.safeParse(msg);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        return c.emit(fromOrderTradeUpdate(r.data));
      }
      case 'ACCOUNT_UPDATE': {
        const r = futuresAccountUpdate.safeParse(msg);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        const ev = fromAccountUpdate(r.data);
        if (ev) c.emit(ev);
        return;
      }
      case 'ALGO_UPDATE': {
        const r = algoUpdate.safeParse(msg);
        if (!r.success) return stream!.malformedFrame(text, r.error);
        const ev = fromAlgoUpdate(r.data);
        // Triggered / finished: the ORDER_TRADE_UPDATE of the order it became tells the rest.
        if (ev) c.emit(ev);
        return;
      }
      case 'listenKeyExpired':
        return stream!.restart('listenKey expired');
      default:
        // MARGIN_CALL, ACCOUNT_CONFIG_UPDATE, TRADE_LITE, ...: not part of the port.
        return;
    }
  };

  return {
    clock: c.clock,
    log: c.log,
    staleMs: c.staleMs,
    backoff: c.backoff,
    timeoutMs: c.timeoutMs,
    bind(s) {
      stream = s;
    },
    async url() {
      if (!futures) return c.wsBase;
      const res = await c.call('read', 'listenKey', () => c.listenKeyApi().fapiPrivatePostListenKey());
      const key = parsePayload(listenKeyRaw, res, 'listenKey').listenKey;
      return futuresUserStreamUrl(c.wsBase, key);
    },
    async opened(ws) {
      if (!futures) await spotSubscribe(ws);
    },
    frame(msg, text) {
      if (futures) onFuturesFrame(msg, text);
      else onSpotFrame(msg, text);
    },
    closed() {
      for (const p of pending.values()) p.reject(new VenueError('RETRYABLE', 'user-data connection closed'));
      pending.clear();
    },
    status(s, detail) {
      c.emit({ type: 'stream', status: s, ...(detail !== undefined ? { detail } : {}) });
    },
    started() {
      if (!futures) return;
      keepAlive = c.clock.every(c.listenKeyKeepAliveMs, () => {
        c.call('read', 'listenKey keepalive', () => c.listenKeyApi().fapiPrivatePutListenKey())
          .then(() => stream?.keptAlive())
          .catch((e: unknown) => {
            c.log.warn({ err: e }, 'listenKey keepalive failed');
            // -1125: the key is gone; a new one (and a new connection) is the only way back.
            if (e instanceof VenueError && e.details.code === -1125) stream?.restart('listenKey no longer exists');
          });
      });
    },
    stopped() {
      keepAlive?.cancel();
      keepAlive = undefined;
    },
  };
}

/**
 * What a WebSocket API error answer means (binance-spot-api-docs
 * web-socket-api.md "Status codes": 4XX the request is invalid, 403 WAF, 409
 * partial, 418 banned, 429 rate limited, 5XX Binance's side). A refusal of
 * the request itself (a 400-class code other than the clock or the keys) is
 * permanent: retrying it at start would retry forever.
 */
export function wsApiErrorKind(status: number | undefined, code: number): VenueErrorKind {
  if (AUTH_CODES.has(code) || status === 401) return 'AUTH';
  if (code === -1021) return 'CLOCK_SKEW';
  if (status === 418) return 'BANNED';
  if (status === 429 || status === 403 || code === -1003) return 'RATE_LIMITED';
  if (status === undefined || status >= 500 || [-1000, -1001, -1006, -1007, -1008].includes(code)) return 'RETRYABLE';
  return 'REJECTED';
}
