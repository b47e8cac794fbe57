/**
 * The local exchange's WebSocket side, laid out like Binance's so a client's
 * URL override is just a base change:
 *
 *   spot market streams   /spot/ws[/<stream>...]  and  /spot/stream?streams=a/b
 *   futures market        /futures/public/(ws|stream)  bookTicker, depth
 *                         /futures/market/(ws|stream)  kline, markPrice, aggTrade, ...
 *   futures user data     /futures/private/ws?listenKey=K&events=A/B
 *                         /futures/private/stream?listenKey=K1&events=A&listenKey=K2&events=B
 *   spot user data        /ws-api/v3 (WebSocket API: userDataStream.subscribe.signature)
 *
 * USD-M routes, per Binance's "Important WebSocket Change Notice"
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice):
 * the legacy root (/futures/ws, /futures/stream) was decommissioned on
 * 2026-04-23, and "any connections not migrated will ONLY be able to receive
 * data from /public. Channels under /market and /private will stop pushing
 * data." So a legacy connection is accepted and kept alive with pings, but only
 * public streams reach it: a market stream or a listenKey on it stays silent,
 * as it does on Binance (the handshake succeeds; nothing arrives). A stream on
 * the wrong route is silent the same way. `events` filters a listenKey's
 * events: only the named ones are pushed (listenKeyExpired included); without
 * `events` all are (the notice's examples always name them).
 *
 * Market data: kline_1m (in-progress x=false updates, then the closed x=true
 * candle), markPrice / markPrice@1s (futures), aggTrade, bookTicker. Control
 * messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY /
 * GET_PROPERTY; server pings; Binance's incoming-message rate limit (5/s spot,
 * 10/s futures) and stream count limit per connection.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Dec } from '../core/decimal.ts';
import type { RawKline } from '../market-data/kline-files.ts';
import type { Market } from '../model/market.ts';
import type { EngineEvent, SimOrder, SimTrade } from '../venues/sim/types.ts';
import { sign } from './auth.ts';
import type { Faults } from './faults.ts';
import type { ListenKeys } from './listen-keys.ts';
import { algoView } from './routes.ts';

type ConnKind = 'market' | 'userFutures' | 'wsApi';

/** Which USD-M route a connection came in on; spot has none ('any'). */
type Route = 'legacy' | 'public' | 'market' | 'any';

/** A listenKey on a /private connection, with its events filter. */
interface UserKey {
  readonly key: string;
  readonly account: string;
  /** Undefined: every event. */
  readonly events: ReadonlySet<string> | undefined;
  dead: boolean;
}

/** The notice's mapping: book tickers and depth are public; every other market stream is market. */
function streamCategory(stream: string): 'public' | 'market' {
  return /(^|@)bookticker$|^!bookticker$|@depth/.test(stream) ? 'public' : 'market';
}

interface Conn {
  ws: WebSocket;
  /** The request path (no query: a listenKey is a credential). */
  path: string;
  kind: ConnKind;
  market: Market;
  route: Route;
  combined: boolean;
  /** Subscribed stream names, lower-cased, mapped to the name as the client wrote it. */
  streams: Map<string, string>;
  /** USD-M user data: the listenKeys of a /private connection. */
  userKeys: UserKey[];
  /** WS API user-data subscriptions: id -> account. */
  subscriptions: Map<number, string>;
  alive: boolean;
  msgTimes: number[];
}

interface RouteSpec {
  kind: ConnKind;
  market: Market;
  route: Route;
  combined: boolean;
  streams: string[];
  keys: Array<{ key: string; events: ReadonlySet<string> | undefined }>;
}

export interface WsHubDeps {
  now(): number;
  faults: Faults;
  listenKeys: ListenKeys;
  accountForKey(apiKey: string): { account: string; secret: string } | undefined;
  pingIntervalMs: Record<Market, number>;
}

const MAX_STREAMS: Record<Market, number> = { spot: 1024, futures: 200 };
const MAX_MSGS_PER_SEC: Record<Market, number> = { spot: 5, futures: 10 };

export class WsHub {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly conns = new Set<Conn>();
  private readonly byStream = new Map<string, Set<Conn>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private nextSubscriptionId = 0;
  private eventId = 1;
  private aggTradeId = new Map<string, number>();

  constructor(private readonly deps: WsHubDeps) {
    for (const market of ['spot', 'futures'] as const) {
      const t = setInterval(() => this.pingAll(market), deps.pingIntervalMs[market]);
      t.unref();
      this.timers.push(t);
    }
    const expiry = setInterval(() => this.expireListenKeys(), 1000);
    expiry.unref();
    this.timers.push(expiry);
  }

  /** Routes an HTTP upgrade; returns false when the path is not a WebSocket route. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string, query: URLSearchParams): boolean {
    const route = this.route(path, query);
    if (!route) return false;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, path, route));
    return true;
  }

  /** Bytes waiting in the slowest client's socket buffer (for "as fast as the client reads"). */
  maxBuffered(): number {
    let max = 0;
    for (const c of this.conns) max = Math.max(max, c.ws.bufferedAmount);
    return max;
  }

  /**
   * Runs fn with every client socket corked, so the frames it sends leave in
   * one write per socket instead of one syscall per frame (the replay sends
   * a minute of candles at a time). `_socket` is ws's underlying net.Socket.
   */
  batch(fn: () => void): void {
    const sockets = [...this.conns].map((c) => (c.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket).filter((s) => s !== undefined);
    for (const s of sockets) s.cork();
    try {
      fn();
    } finally {
      for (const s of sockets) s.uncork();
    }
  }

  /** Test hook: sends text as it is to a stream's subscribers (for malformed-frame tests). */
  sendRaw(market: Market, stream: string, text: string): void {
    for (const c of this.byStream.get(`${market}|${stream.toLowerCase()}`) ?? []) c.ws.send(text);
  }

  connectionCount(): number {
    return this.conns.size;
  }

  /** Tests: the USD-M user-data connections, by path, with the events each key asked for (null: all). */
  userConnections(): Array<{ path: string; keys: number; events: Array<string[] | null> }> {
    return [...this.conns].filter((c) => c.kind === 'userFutures').map((c) => ({ path: c.path, keys: c.userKeys.length, events: c.userKeys.map((k) => (k.events ? [...k.events] : null)) }));
  }

  /** Control API: drop every connection at once (as a network blip would). */
  dropAll(): void {
    for (const c of this.conns) c.ws.terminate();
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.dropAll();
    this.wss.close();
  }

  // ----------------------------------------------------------- market data

  kline(market: Market, k: RawKline, symbol: string, closed: boolean): void {
    const stream = `${symbol.toLowerCase()}@kline_1m`;
    if (!this.hasSubscribers(market, stream)) return;
    this.publish(market, stream, {
      e: 'kline',
      E: this.deps.now(),
      s: symbol,
      k: { t: k.openTime, T: k.closeTime, s: symbol, i: '1m', f: 0, L: Math.max(0, k.trades - 1), o: k.open, c: k.close, h: k.high, l: k.low, v: k.volume, n: k.trades, x: closed, q: k.quoteVolume, V: k.takerBuyVolume, Q: k.takerBuyQuoteVolume, B: '0' },
    });
  }

  markPrice(symbol: string, mark: Dec, fundingRate: Dec, nextFundingTime: number): void {
    const s = symbol.toLowerCase();
    const payload = { e: 'markPriceUpdate', E: this.deps.now(), s: symbol, p: mark.toFixed(8), i: mark.toFixed(8), P: mark.toFixed(8), r: fundingRate.toFixed(8), T: nextFundingTime };
    for (const stream of [`${s}@markprice`, `${s}@markprice@1s`]) if (this.hasSubscribers('futures', stream)) this.publish('futures', stream, payload);
  }

  trade(market: Market, symbol: string, price: Dec, qty: Dec, tick: Dec): void {
    const s = symbol.toLowerCase();
    const now = this.deps.now();
    if (this.hasSubscribers(market, `${s}@aggtrade`)) {
      const id = (this.aggTradeId.get(symbol) ?? 0) + 1;
      this.aggTradeId.set(symbol, id);
      this.publish(market, `${s}@aggtrade`, { e: 'aggTrade', E: now, s: symbol, a: id, p: price.toFixed(), q: qty.toFixed(), f: id, l: id, T: now, m: false, ...(market === 'spot' ? { M: true } : {}) });
    }
    if (this.hasSubscribers(market, `${s}@bookticker`)) {
      const bid = price.minus(tick).toFixed();
      const ask = price.plus(tick).toFixed();
      const body = { u: this.eventId++, s: symbol, b: bid, B: '1', a: ask, A: '1' };
      this.publish(market, `${s}@bookticker`, market === 'spot' ? body : { e: 'bookTicker', ...body, E: now, T: now });
    }
  }

  /** Symbols (upper case) with a markPrice subscriber, for the 1 s mark ticker. */
  markSubscribedSymbols(): string[] {
    const out = new Set<string>();
    for (const [key, set] of this.byStream) {
      if (set.size === 0 || !key.startsWith('futures|')) continue;
      const m = /^futures\|([a-z0-9]+)@markprice/.exec(key);
      if (m) out.add(m[1]!.toUpperCase());
    }
    return [...out];
  }

  // ------------------------------------------------------------- user data

  /** Turns engine events into Binance user-data events for the account's connections. */
  onEngineEvent(e: EngineEvent): void {
    const now = this.deps.now();
    if (e.type === 'order' && e.order.market === 'futures') {
      const o = e.order;
      const conditional = o.type === 'STOP_MARKET' || o.type === 'TAKE_PROFIT_MARKET' || o.type === 'TRAILING_STOP_MARKET';
      if (conditional) {
        const a = algoView(o);
        this.toFutures(e.account, { e: 'ALGO_UPDATE', T: now, E: now, o: { caid: a.clientAlgoId, aid: a.algoId, at: 'CONDITIONAL', o: o.type, s: o.symbol, S: o.side, ps: o.positionSide, f: o.timeInForce, q: o.origQty.toFixed(), X: a.algoStatus, ai: a.actualOrderId, ap: o.avgPrice.toFixed(), aq: o.executedQty.toFixed(), act: '0', tp: o.stopPrice.toFixed(), p: '0', V: 'EXPIRE_MAKER', wt: o.workingType, pm: 'NONE', cp: o.closePosition, pP: false, R: o.reduceOnly, tt: o.triggered ? o.updateTime : 0, gtd: 0, rm: '' } });
        if (!o.triggered) return;
      }
      const t = e.trade;
      this.toFutures(e.account, {
        e: 'ORDER_TRADE_UPDATE',
        E: now,
        T: e.time,
        o: {
          s: o.symbol, c: o.clientOrderId, S: o.side, o: conditional ? 'MARKET' : o.type, f: o.timeInForce, q: o.origQty.toFixed(), p: o.price.toFixed(), ap: o.avgPrice.toFixed(), sp: o.stopPrice.toFixed(),
          x: e.execType, X: o.status, i: o.orderId, l: t ? t.qty.toFixed() : '0', z: o.executedQty.toFixed(), L: t ? t.price.toFixed() : '0',
          ...(t ? { N: t.commissionAsset, n: t.commission.toFixed() } : {}),
          T: e.time, t: t ? t.tradeId : 0, b: '0', a: '0', m: t ? t.isMaker : false, R: o.reduceOnly, wt: o.workingType, ot: o.type, ps: o.positionSide, cp: o.closePosition,
          rp: t ? t.realizedPnl.toFixed() : '0', pP: false, si: 0, ss: 0, V: 'EXPIRE_MAKER', pm: 'NONE', gtd: 0, er: '0',
          // "AP" activation price and "cr" callback rate: only pushed with TRAILING_STOP_MARKET orders.
          ...(o.type === 'TRAILING_STOP_MARKET' ? { AP: (o.activatePrice ?? o.stopPrice).toFixed(), cr: (o.priceRate ?? o.stopPrice).toFixed() } : {}),
        },
      });
      return;
    }
    if (e.type === 'futuresAccount') {
      this.toFutures(e.account, {
        e: 'ACCOUNT_UPDATE',
        E: now,
        T: e.time,
        a: {
          m: e.reason,
          B: [{ a: 'USDT', wb: e.walletBalance.toFixed(), cw: e.crossWalletBalance.toFixed(), bc: e.balanceChange.toFixed() }],
          P: e.positions.map((p) => ({ s: p.symbol, pa: p.positionAmt.toFixed(), ep: p.entryPrice.toFixed(), bep: p.entryPrice.toFixed(), cr: '0', up: p.unrealizedPnl.toFixed(), mt: p.marginType, iw: p.isolatedWallet.toFixed(), ps: p.positionSide })),
        },
      });
      return;
    }
    if (e.type === 'order' && e.order.market === 'spot') {
      this.toSpot(e.account, this.executionReport(e.order, e.execType, e.trade, now));
      return;
    }
    if (e.type === 'spotBalances') {
      this.toSpot(e.account, { e: 'outboundAccountPosition', E: now, u: e.time, B: e.balances.map((b) => ({ a: b.asset, f: b.free.toFixed(8), l: b.locked.toFixed(8) })) });
      return;
    }
    if (e.type === 'orderList') {
      // "If the order is an order list, an event named ListStatus will be sent in addition to the executionReport event."
      const l = e.list;
      this.toSpot(e.account, { e: 'listStatus', E: now, s: l.symbol, g: l.orderListId, c: l.contingencyType, l: l.listStatusType, L: l.listOrderStatus, r: 'NONE', C: l.listClientOrderId, T: l.transactionTime, O: l.orders.map((o) => ({ s: l.symbol, i: o.orderId, c: o.clientOrderId })) });
    }
  }

  /** Sends listenKeyExpired to the connections of keys that expired, which then get nothing more. */
  expireListenKeys(): void {
    const now = this.deps.now();
    for (const { key } of this.deps.listenKeys.takeExpired(now)) {
      for (const c of this.conns) {
        for (const uk of c.userKeys) {
          if (uk.key !== key || uk.dead) continue;
          // Binance has sent E as a string on USD-M; clients must accept both.
          if (!uk.events || uk.events.has('listenKeyExpired')) this.send(c, { e: 'listenKeyExpired', E: String(now), listenKey: key }, key);
          uk.dead = true;
        }
      }
    }
  }

  private executionReport(o: SimOrder, execType: string, t: SimTrade | undefined, now: number): Record<string, unknown> {
    return {
      e: 'executionReport', E: now, s: o.symbol, c: o.clientOrderId, S: o.side, o: o.type, f: o.timeInForce, q: o.origQty.toFixed(8), p: o.price.toFixed(8), P: o.stopPrice.toFixed(8), F: '0.00000000', g: o.orderListId ?? -1,
      C: execType === 'CANCELED' ? o.clientOrderId : '', x: execType, X: o.status, r: 'NONE', i: o.orderId, l: t ? t.qty.toFixed(8) : '0.00000000', z: o.executedQty.toFixed(8), L: t ? t.price.toFixed(8) : '0.00000000',
      n: t ? t.commission.toFixed(8) : '0', N: t ? t.commissionAsset : null, T: o.updateTime, t: t ? t.tradeId : -1, I: this.eventId++, w: o.status === 'NEW' || o.status === 'PARTIALLY_FILLED', m: t ? t.isMaker : false, M: false,
      O: o.time, Z: o.cumQuote.toFixed(8), Y: t ? t.quoteQty.toFixed(8) : '0.00000000', Q: '0.00000000', W: o.time, V: 'NONE',
      // Order Expiry Reason: an OCO leg expires because the other one started working (OCO_TRIGGER).
      ...(execType === 'EXPIRED' && o.orderListId !== undefined ? { eR: 'OCO_TRIGGER' } : {}),
    };
  }

  private toFutures(account: string, event: Record<string, unknown>): void {
    const type = String(event.e);
    for (const c of this.conns) {
      for (const uk of c.userKeys) {
        if (uk.account === account && !uk.dead && (!uk.events || uk.events.has(type)) && !this.deps.faults.isStalled(uk.key)) this.send(c, event, uk.key);
      }
    }
  }

  private toSpot(account: string, event: Record<string, unknown>): void {
    for (const c of this.conns) {
      if (c.kind !== 'wsApi') continue;
      for (const [id, acct] of c.subscriptions) if (acct === account && !this.deps.faults.isStalled('userDataStream')) c.ws.send(JSON.stringify({ subscriptionId: id, event }));
    }
  }

  // ----------------------------------------------------------- connections

  private route(path: string, query: URLSearchParams): RouteSpec | undefined {
    if (path === '/ws-api/v3') return { kind: 'wsApi', market: 'spot', route: 'any', combined: false, streams: [], keys: [] };
    const m = /^\/(spot|futures)(?:\/(public|market|private))?\/(ws|stream)(?:\/(.*))?$/.exec(path);
    if (!m) return undefined;
    const market = m[1] as Market;
    if (market === 'spot' && m[2] !== undefined) return undefined;
    const combined = m[3] === 'stream';
    if (m[2] === 'private') {
      // listenKey and events come in pairs (the stream form may carry several of each).
      const events = query.getAll('events');
      const keys = query.getAll('listenKey').map((key, i) => ({ key, events: events[i] === undefined ? undefined : new Set(events[i]!.split('/').filter(Boolean)) }));
      return { kind: 'userFutures', market, route: 'any', combined, streams: [], keys };
    }
    const fromPath = (m[4] ?? '').split('/').filter(Boolean);
    const fromQuery = (query.get('streams') ?? '').split('/').filter(Boolean);
    // On the legacy root a listenKey is just a name that nothing is published to: silent.
    const route: Route = market === 'spot' ? 'any' : ((m[2] as 'public' | 'market' | undefined) ?? 'legacy');
    return { kind: 'market', market, route, combined, streams: [...fromPath, ...fromQuery], keys: [] };
  }

  private accept(ws: WebSocket, path: string, r: RouteSpec): void {
    const c: Conn = { ws, path, kind: r.kind, market: r.market, route: r.route, combined: r.combined, streams: new Map(), userKeys: [], subscriptions: new Map(), alive: true, msgTimes: [] };
    if (c.kind === 'userFutures') {
      // Binance's answer to a /private connection without a key is not documented; the local
      // exchange closes it with a reason rather than keep a socket that can never carry anything.
      if (r.keys.length === 0) {
        ws.close(4001, 'listenKey required on /private');
        return;
      }
      for (const k of r.keys) {
        const account = this.deps.listenKeys.accountOf(k.key, this.deps.now());
        if (!account) {
          ws.close(4001, 'invalid or expired listenKey');
          return;
        }
        c.userKeys.push({ key: k.key, account, events: k.events, dead: false });
      }
    }
    this.conns.add(c);
    for (const s of r.streams) this.subscribe(c, s);
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data) => this.onMessage(c, data.toString()));
    ws.on('close', () => this.forget(c));
    ws.on('error', () => this.forget(c));
  }

  private forget(c: Conn): void {
    this.conns.delete(c);
    for (const key of c.streams.keys()) this.byStream.get(`${c.market}|${key}`)?.delete(c);
  }

  private pingAll(market: Market): void {
    for (const c of this.conns) {
      if (c.market !== market) continue;
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  private subscribe(c: Conn, name: string): boolean {
    const key = name.toLowerCase();
    if (c.streams.has(key)) return true;
    if (c.streams.size >= MAX_STREAMS[c.market]) return false;
    c.streams.set(key, name);
    const k = `${c.market}|${key}`;
    let set = this.byStream.get(k);
    if (!set) {
      set = new Set();
      this.byStream.set(k, set);
    }
    set.add(c);
    return true;
  }

  private unsubscribe(c: Conn, name: string): void {
    const key = name.toLowerCase();
    c.streams.delete(key);
    this.byStream.get(`${c.market}|${key}`)?.delete(c);
  }

  private hasSubscribers(market: Market, stream: string): boolean {
    const set = this.byStream.get(`${market}|${stream}`);
    return set !== undefined && set.size > 0;
  }

  private publish(market: Market, stream: string, payload: unknown): void {
    const set = this.byStream.get(`${market}|${stream}`);
    if (!set || this.deps.faults.isStalled(stream)) return;
    let raw: string | undefined;
    let combinedCache: Map<string, string> | undefined;
    const category = market === 'futures' ? streamCategory(stream) : undefined;
    for (const c of set) {
      // USD-M: the legacy root carries public streams only; each route its own category.
      if (category !== undefined && c.route !== 'any' && (c.route === 'legacy' ? category !== 'public' : c.route !== category)) continue;
      if (c.combined) {
        const name = c.streams.get(stream) ?? stream;
        combinedCache ??= new Map();
        let text = combinedCache.get(name);
        if (!text) {
          text = JSON.stringify({ stream: name, data: payload });
          combinedCache.set(name, text);
        }
        c.ws.send(text);
      } else {
        raw ??= JSON.stringify(payload);
        c.ws.send(raw);
      }
    }
  }

  private send(c: Conn, payload: unknown, stream: string): void {
    c.ws.send(JSON.stringify(c.combined ? { stream, data: payload } : payload));
  }

  private onMessage(c: Conn, text: string): void {
    // Binance drops a connection that sends more than its incoming-message limit.
    const now = Date.now();
    c.msgTimes = c.msgTimes.filter((t) => now - t < 1000);
    c.msgTimes.push(now);
    if (c.msgTimes.length > MAX_MSGS_PER_SEC[c.market] && c.kind !== 'wsApi') {
      c.ws.close(1008, 'Too many requests');
      return;
    }
    let msg: { method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      c.ws.send(JSON.stringify({ code: 3, msg: 'Invalid JSON: expected value at line 1 column 1' }));
      return;
    }
    if (c.kind === 'wsApi') return this.onWsApi(c, msg);
    const id = msg.id ?? null;
    const params = Array.isArray(msg.params) ? (msg.params as unknown[]) : [];
    switch (msg.method) {
      case 'SUBSCRIBE': {
        for (const p of params) {
          if (typeof p !== 'string') return void c.ws.send(JSON.stringify({ code: 2, msg: 'Invalid request: params must be strings', id }));
          if (!this.subscribe(c, p)) return void c.ws.send(JSON.stringify({ code: 2, msg: `Invalid request: too many streams (max ${MAX_STREAMS[c.market]} per connection)`, id }));
        }
        return void c.ws.send(JSON.stringify({ result: null, id }));
      }
      case 'UNSUBSCRIBE':
        for (const p of params) if (typeof p === 'string') this.unsubscribe(c, p);
        return void c.ws.send(JSON.stringify({ result: null, id }));
      case 'LIST_SUBSCRIPTIONS':
        return void c.ws.send(JSON.stringify({ result: [...c.streams.values()], id }));
      case 'SET_PROPERTY':
        if (params[0] === 'combined' && typeof params[1] === 'boolean') {
          c.combined = params[1];
          return void c.ws.send(JSON.stringify({ result: null, id }));
        }
        return void c.ws.send(JSON.stringify({ code: 0, msg: 'Unknown property', id }));
      case 'GET_PROPERTY':
        if (params[0] === 'combined') return void c.ws.send(JSON.stringify({ result: c.combined, id }));
        return void c.ws.send(JSON.stringify({ code: 0, msg: 'Unknown property', id }));
      default:
        return void c.ws.send(
          JSON.stringify({ code: 2, msg: `Invalid request: unknown variant ${String(msg.method)}, expected one of \`SUBSCRIBE\`, \`UNSUBSCRIBE\`, \`LIST_SUBSCRIPTIONS\`, \`SET_PROPERTY\`, \`GET_PROPERTY\``, id }),
        );
    }
  }

  /** The spot WebSocket API, as much of it as user data needs. */
  private onWsApi(c: Conn, msg: { method?: unknown; params?: unknown; id?: unknown }): void {
    const id = msg.id ?? null;
    const reply = (result: unknown): void => c.ws.send(JSON.stringify({ id, status: 200, result }));
    const fail = (status: number, code: number, m: string): void => c.ws.send(JSON.stringify({ id, status, error: { code, msg: m } }));
    const params = (msg.params && typeof msg.params === 'object' ? msg.params : {}) as Record<string, unknown>;
    switch (msg.method) {
      case 'ping':
        return reply({});
      case 'time':
        return reply({ serverTime: this.deps.now() });
      case 'userDataStream.subscribe.signature': {
        const apiKey = params.apiKey;
        if (typeof apiKey !== 'string') return fail(400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.");
        const acct = this.deps.accountForKey(apiKey);
        if (!acct) return fail(401, -2015, 'Invalid API-key, IP, or permissions for action.');
        const ts = Number(params.timestamp);
        const recv = params.recvWindow === undefined ? 5000 : Number(params.recvWindow);
        const now = this.deps.now();
        if (!Number.isFinite(ts)) return fail(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.");
        if (ts >= now + 1000 || now - ts > recv) return fail(400, -1021, 'Timestamp for this request is outside of the recvWindow.');
        const payload = Object.keys(params)
          .filter((k) => k !== 'signature')
          .sort()
          .map((k) => `${k}=${String(params[k])}`)
          .join('&');
        if (params.signature !== sign(acct.secret, payload)) return fail(400, -1022, 'Signature for this request is not valid.');
        const subscriptionId = this.nextSubscriptionId++;
        c.subscriptions.set(subscriptionId, acct.account);
        return reply({ subscriptionId });
      }
      case 'userDataStream.unsubscribe': {
        if (params.subscriptionId === undefined) c.subscriptions.clear();
        else c.subscriptions.delete(Number(params.subscriptionId));
        return reply({});
      }
      case 'session.subscriptions':
        return reply([...c.subscriptions.keys()].map((subscriptionId) => ({ subscriptionId })));
      default:
        return fail(400, -1020, `Unsupported method ${String(msg.method)} (local exchange)`);
    }
  }
}
