/**
 * A Binance-compatible exchange on 127.0.0.1: REST (spot /api/v3, USD-M
 * /fapi), WebSocket market and user-data streams, and a control API for
 * tests, all around the same matching engine the sim venue and the
 * backtester use. Tests start it in-process on port 0; `trader exchange`
 * runs it standalone for offline demos.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LiveClock, type Clock } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { KlineFileIssue, RawKline } from '../market-data/kline-files.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import { fullCatalog } from '../venues/sim/catalog.ts';
import { MatchingEngine } from '../venues/sim/engine.ts';
import type { FillModelConfig } from '../venues/sim/fill-model.ts';
import type { PriceStep } from '../venues/sim/types.ts';
import { CandleStore } from './candle-store.ts';
import { Faults } from './faults.ts';
import { DEFAULT_ORDER_LIMITS, OrderCounter, WeightLimiter, type OrderLimit } from './limits.ts';
import { ListenKeys } from './listen-keys.ts';
import { KlineReplay, type ReplaySource, type ReplaySpeed } from '../market-data/replay.ts';
import { readBody, RestApi } from './rest.ts';
import { futuresRoutes, spotRoutes, type RouteDeps } from './routes.ts';
import { WsHub } from './ws-hub.ts';

export interface LocalAccount {
  readonly apiKey: string;
  readonly secret: string;
  /** Spot balances by asset, e.g. { USDT: '10000' }. */
  readonly spot?: Record<string, string>;
  /** USDT in the futures wallet. */
  readonly futures?: string;
}

export interface LocalExchangeOptions {
  /** Always loopback unless a test says otherwise; port 0 picks a free port. */
  host?: string;
  port?: number;
  clock?: Clock;
  instruments?: readonly Instrument[];
  fillModel?: FillModelConfig;
  accounts?: readonly LocalAccount[];
  replay?: { sources: readonly ReplaySource[]; speed: ReplaySpeed; autoStart?: boolean };
  weightLimit?: Partial<Record<Market, number>>;
  /** ORDERS limits served in exchangeInfo and enforced (429, -1015); default Binance's (limits.ts). */
  orderLimits?: Partial<Record<Market, readonly OrderLimit[]>>;
  pingIntervalMs?: Partial<Record<Market, number>>;
  /** Settle funding on the server clock at 00:00, 08:00 and 16:00 UTC (default true). */
  funding?: boolean;
  onIssue?: (issue: KlineFileIssue) => void;
}

export const DEFAULT_ACCOUNT: LocalAccount = { apiKey: 'local-api-key', secret: 'local-api-secret', spot: { USDT: '10000' }, futures: '10000' };

export interface ExchangeUrls {
  /** Base for ccxt's urls.api.public / private (spot). */
  spotRest: string;
  /** Base for ccxt's urls.api.fapiPublic / fapiPrivate. */
  futuresRest: string;
  futuresRestV2: string;
  futuresRestV3: string;
  spotWs: string;
  futuresWs: string;
  spotWsApi: string;
  control: string;
}

export class LocalExchange {
  readonly engine: MatchingEngine;
  readonly faults = new Faults();
  readonly candles = new CandleStore();
  readonly listenKeys = new ListenKeys();
  readonly hub: WsHub;
  replay: KlineReplay | undefined;
  private readonly clock: Clock;
  private readonly accounts = new Map<string, { account: string; secret: string }>();
  private readonly counters = new Map<string, OrderCounter>();
  private readonly fundingHistory: RouteDeps['fundingHistory'] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private server!: Server;
  private rest: RestApi | undefined;
  private baseUrl = '';

  private constructor(private readonly opts: LocalExchangeOptions) {
    this.clock = opts.clock ?? new LiveClock();
    this.engine = new MatchingEngine({ clock: { now: () => this.now(), after: this.clock.after.bind(this.clock), every: this.clock.every.bind(this.clock) }, instruments: opts.instruments ?? fullCatalog(), ...(opts.fillModel ? { fillModel: opts.fillModel } : {}) });
    for (const a of opts.accounts ?? [DEFAULT_ACCOUNT]) this.addAccount(a);
    this.hub = new WsHub({
      now: () => this.now(),
      faults: this.faults,
      listenKeys: this.listenKeys,
      accountForKey: (k) => this.accounts.get(k),
      pingIntervalMs: { spot: opts.pingIntervalMs?.spot ?? 20_000, futures: opts.pingIntervalMs?.futures ?? 180_000 },
    });
    this.engine.onEvent((e) => this.hub.onEngineEvent(e));
  }

  static async start(opts: LocalExchangeOptions = {}): Promise<LocalExchange> {
    const ex = new LocalExchange(opts);
    await ex.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
    if (opts.replay) ex.startReplay(opts.replay.sources, opts.replay.speed, opts.replay.autoStart ?? true);
    ex.startTimers();
    return ex;
  }

  /** Server time: the clock plus any skew the control API set. */
  now(): number {
    return this.clock.now() + this.faults.clockSkewMs;
  }

  get url(): string {
    return this.baseUrl;
  }

  urls(): ExchangeUrls {
    const http = this.baseUrl;
    const ws = http.replace(/^http/, 'ws');
    return {
      spotRest: `${http}/api/v3`,
      futuresRest: `${http}/fapi/v1`,
      futuresRestV2: `${http}/fapi/v2`,
      futuresRestV3: `${http}/fapi/v3`,
      spotWs: `${ws}/spot`,
      futuresWs: `${ws}/futures`,
      spotWsApi: `${ws}/ws-api/v3`,
      control: `${http}/control`,
    };
  }

  /**
   * The environment that points a bot at this exchange with the default
   * account: MODE=testnet, the keys, and every REST and WS base URL.
   */
  botEnv(): Record<string, string> {
    const u = this.urls();
    return {
      MODE: 'testnet',
      BINANCE_API_KEY: DEFAULT_ACCOUNT.apiKey,
      BINANCE_API_SECRET: DEFAULT_ACCOUNT.secret,
      BINANCE_SPOT_REST_URL: this.url,
      BINANCE_FUTURES_REST_URL: this.url,
      BINANCE_SPOT_WS_URL: u.spotWs,
      BINANCE_FUTURES_WS_URL: u.futuresWs,
      BINANCE_SPOT_WS_API_URL: u.spotWsApi,
    };
  }

  addAccount(a: LocalAccount): void {
    if (this.accounts.has(a.apiKey)) throw new Error(`API key ${a.apiKey} already exists`);
    const id = `acct-${this.accounts.size + 1}`;
    this.engine.createAccount(id, { ...(a.spot ? { spot: a.spot } : {}), ...(a.futures ? { futures: a.futures } : {}) });
    this.accounts.set(a.apiKey, { account: id, secret: a.secret });
  }

  /** The engine account behind an API key (for tests that inspect the exchange's own records). */
  accountOf(apiKey: string): string {
    const a = this.accounts.get(apiKey);
    if (!a) throw new Error(`unknown API key ${apiKey}`);
    return a.account;
  }

  startReplay(sources: readonly ReplaySource[], speed: ReplaySpeed, autoStart = true): KlineReplay {
    this.replay?.stop();
    this.replay = new KlineReplay(sources, speed, {
      onKline: (market, symbol, k, closed, step) => this.onKline(market, symbol, k, closed, step),
      batch: (fn) => this.hub.batch(fn),
      backpressure: async () => {
        // "As fast as the client reads": wait while any client has more than 1 MB unread.
        while (this.hub.maxBuffered() > 1 << 20) await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setImmediate(r));
      },
      ...(this.opts.onIssue ? { onIssue: this.opts.onIssue } : {}),
    });
    if (autoStart) this.replay.start();
    return this.replay;
  }

  /** Sets a price as if a trade printed there (control API, tests). */
  setPrice(market: Market, symbol: string, price: Dec, volume?: Dec): void {
    const prev = this.engine.price(market, symbol).last ?? price;
    const minute = Math.floor(this.now() / 60_000) * 60_000;
    const p = price.toFixed();
    const v = volume ?? new Dec(0);
    // Prices set by hand build real candles: the minute's candle keeps its open and
    // running high/low; a price in a new minute first closes the previous candle.
    let cur = this.candles.current(market, symbol);
    if (cur && cur.openTime < minute) {
      this.candles.update(market, symbol, cur, true);
      this.hub.kline(market, cur, symbol, true);
      cur = undefined;
    }
    const k: RawKline = cur
      ? { ...cur, high: Dec.max(new Dec(cur.high), price).toFixed(), low: Dec.min(new Dec(cur.low), price).toFixed(), close: p, volume: v.plus(cur.volume).toFixed(), trades: cur.trades + 1 }
      : { openTime: minute, closeTime: minute + 59_999, open: p, high: p, low: p, close: p, volume: v.toFixed(), quoteVolume: '0', trades: 1, takerBuyVolume: '0', takerBuyQuoteVolume: '0' };
    this.onKline(market, symbol, k, false, { open: prev, high: Dec.max(prev, price), low: Dec.min(prev, price), last: price, ...(volume ? { volume } : {}) });
  }

  async close(): Promise<void> {
    this.replay?.stop();
    for (const t of this.timers) clearInterval(t);
    this.hub.close();
    this.rest?.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ------------------------------------------------------------- internals

  private onKline(market: Market, symbol: string, k: RawKline, closed: boolean, step: PriceStep): void {
    this.candles.update(market, symbol, k, closed);
    this.engine.step(market, symbol, step);
    this.hub.kline(market, k, symbol, closed);
    const inst = this.engine.instrument(market, symbol);
    if (inst) this.hub.trade(market, symbol, step.last, step.volume ?? new Dec(0), inst.filters.price.tickSize);
    if (market === 'futures' && closed) {
      const px = this.engine.price('futures', symbol);
      this.hub.markPrice(symbol, px.mark ?? step.last, px.fundingRate, this.nextFundingTime());
    }
  }

  private nextFundingTime(): number {
    return Math.floor(this.now() / 28_800_000) * 28_800_000 + 28_800_000;
  }

  private startTimers(): void {
    // markPrice@1s keeps talking between candles, as Binance's does.
    const mark = setInterval(() => {
      for (const symbol of this.hub.markSubscribedSymbols()) {
        const px = this.engine.price('futures', symbol);
        const m = px.mark ?? px.last;
        if (m) this.hub.markPrice(symbol, m, px.fundingRate, this.nextFundingTime());
      }
    }, 1000);
    mark.unref();
    this.timers.push(mark);
    if (this.opts.funding ?? true) {
      let next = this.nextFundingTime();
      const funding = setInterval(() => {
        if (this.now() < next) return;
        next = this.nextFundingTime();
        this.settleFunding();
      }, 1000);
      funding.unref();
      this.timers.push(funding);
    }
  }

  /** Settles funding for every futures symbol at its current mark (also the control API's "fund now"). */
  settleFunding(symbol?: string): void {
    const now = this.now();
    for (const inst of this.engine.instruments('futures')) {
      if (symbol && inst.symbol !== symbol) continue;
      const px = this.engine.price('futures', inst.symbol);
      const mark = px.mark ?? px.last;
      if (!mark) continue;
      this.engine.applyFunding(inst.symbol);
      this.fundingHistory.push({ symbol: inst.symbol, fundingRate: px.fundingRate, fundingTime: now, markPrice: mark });
    }
  }

  private async listen(host: string, port: number): Promise<void> {
    const deps: RouteDeps = { engine: this.engine, candles: this.candles, listenKeys: this.listenKeys, weightLimit: { spot: this.opts.weightLimit?.spot ?? 6000, futures: this.opts.weightLimit?.futures ?? 2400 }, orderLimits: { spot: this.opts.orderLimits?.spot ?? DEFAULT_ORDER_LIMITS.spot, futures: this.opts.orderLimits?.futures ?? DEFAULT_ORDER_LIMITS.futures }, fundingHistory: this.fundingHistory, now: () => this.now() };
    const rest = new RestApi({
      now: () => this.now(),
      after: (ms, fn) => this.clock.after(ms, fn),
      faults: this.faults,
      accountForKey: (k) => this.accounts.get(k),
      limiter: { spot: new WeightLimiter(deps.weightLimit.spot), futures: new WeightLimiter(deps.weightLimit.futures) },
      orderCounter: (account, market) => {
        const key = `${account}:${market}`;
        let c = this.counters.get(key);
        if (!c) {
          c = new OrderCounter(deps.orderLimits[market]);
          this.counters.set(key, c);
        }
        return c;
      },
    });
    this.rest = rest;
    rest.add(spotRoutes(deps));
    rest.add(futuresRoutes(deps));
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://local');
      const path = url.pathname;
      const rawQuery = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?') + 1) : '';
      if (path.startsWith('/control/')) {
        void this.control(req, res, path, url.searchParams);
        return;
      }
      if (path.startsWith('/api/') || path.startsWith('/fapi/')) {
        rest.handle(req, res, path, rawQuery).catch((e: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ code: -1000, msg: `local exchange error: ${(e as Error).message}` }));
        });
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ code: -1000, msg: `Unknown path ${path} (local exchange)` }));
    });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://local');
      if (!this.hub.handleUpgrade(req, socket, head, url.pathname, url.searchParams)) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.baseUrl = `http://${host}:${addr.port}`;
  }

  /**
   * Control API (loopback only): fault injection and state for tests that
   * run the bot in another process. Every route is POST with a JSON body,
   * except GET /control/state.
   */
  private async control(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const remote = req.socket.remoteAddress ?? '';
    if (!/^(127\.|::1$|::ffff:127\.)/.test(remote)) return reply(403, { error: 'control API is loopback only' });
    let body: Record<string, unknown> = {};
    if (req.method === 'POST') {
      const text = await readBody(req);
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        return reply(400, { error: 'body must be JSON' });
      }
    }
    const num = (k: string, d: number): number => (typeof body[k] === 'number' ? (body[k] as number) : d);
    const str = (k: string): string | undefined => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    const f = this.faults;
    switch (path) {
      case '/control/ws/drop':
        this.hub.dropAll();
        return reply(200, { dropped: true });
      case '/control/ws/stall':
        for (const s of (body.streams as string[] | undefined) ?? ['*']) f.stalled.add(s.toLowerCase());
        return reply(200, { stalled: [...f.stalled] });
      case '/control/ws/resume':
        f.stalled.clear();
        return reply(200, { stalled: [] });
      case '/control/rest/fail':
        f.fails.push({ count: num('count', 1), status: num('status', 503), code: num('code', -1001), msg: str('msg') ?? 'Internal error; unable to process your request. Please try again.', ...(str('pathPrefix') ? { pathPrefix: str('pathPrefix')! } : {}) });
        return reply(200, { ok: true });
      case '/control/rest/delay':
        f.delays.push({ count: num('count', 1), ms: num('ms', 1000), ...(str('pathPrefix') ? { pathPrefix: str('pathPrefix')! } : {}) });
        return reply(200, { ok: true });
      case '/control/rest/429':
        f.force429 += num('count', 1);
        return reply(200, { ok: true });
      case '/control/rest/418':
        f.bannedUntil = this.now() + num('ms', 120_000);
        return reply(200, { bannedUntil: f.bannedUntil });
      case '/control/clock/skew':
        f.clockSkewMs = num('ms', 0);
        return reply(200, { skewMs: f.clockSkewMs });
      case '/control/listenKey/expire':
        this.listenKeys.expire(str('listenKey'), this.now());
        this.hub.expireListenKeys();
        return reply(200, { ok: true });
      case '/control/order/reject':
        f.rejectOrders += num('count', 1);
        return reply(200, { ok: true });
      case '/control/order/late-execute': {
        // Answer 5xx now, place the order delayMs later (see Faults.lateExecute).
        const code = typeof body.code === 'number' ? body.code : undefined;
        f.lateExecute({ count: num('count', 1), delayMs: num('delayMs', 2000), ...(typeof body.status === 'number' ? { status: body.status } : {}), ...(code !== undefined ? { code } : {}), ...(str('msg') ? { msg: str('msg')! } : {}), ...(str('pathPrefix') ? { pathPrefix: str('pathPrefix')! } : {}) });
        return reply(200, { ok: true });
      }
      case '/control/order/late-outcomes':
        return reply(200, { outcomes: f.lateOutcomes });
      case '/control/order/blackhole':
        f.blackholeOrders += num('count', 1);
        f.blackholeHoldMs = num('holdMs', f.blackholeHoldMs);
        return reply(200, { ok: true });
      case '/control/price': {
        const market = (str('market') ?? 'futures') as Market;
        const symbol = str('symbol');
        const price = str('price');
        if (!symbol || !price) return reply(400, { error: 'symbol and price (string) are required' });
        this.setPrice(market, symbol, new Dec(price));
        return reply(200, { ok: true });
      }
      case '/control/mark': {
        const symbol = str('symbol');
        const price = str('price');
        if (!symbol || !price) return reply(400, { error: 'symbol and price (string) are required' });
        this.engine.setMarkPrice(symbol, new Dec(price));
        return reply(200, { ok: true });
      }
      case '/control/funding': {
        const symbol = str('symbol');
        if (str('rate') && symbol) this.engine.setFundingRate(symbol, new Dec(str('rate')!));
        if (body.settle === true) this.settleFunding(symbol);
        return reply(200, { ok: true });
      }
      case '/control/account': {
        const apiKey = str('apiKey');
        const secret = str('secret');
        if (!apiKey || !secret) return reply(400, { error: 'apiKey and secret are required' });
        this.addAccount({ apiKey, secret, ...(body.spot ? { spot: body.spot as Record<string, string> } : {}), ...(str('futures') ? { futures: str('futures')! } : {}) });
        return reply(200, { ok: true });
      }
      case '/control/reset':
        f.reset();
        return reply(200, { ok: true });
      case '/control/state': {
        const apiKey = q.get('apiKey') ?? DEFAULT_ACCOUNT.apiKey;
        const acct = this.accounts.get(apiKey);
        if (!acct) return reply(404, { error: `unknown apiKey ${apiKey}` });
        const market = (q.get('market') ?? 'futures') as Market;
        const symbol = q.get('symbol') ?? undefined;
        return reply(200, {
          openOrders: this.engine.openOrders(acct.account, market, symbol),
          positions: market === 'futures' ? this.engine.positions(acct.account, symbol) : [],
          balances: market === 'spot' ? this.engine.spotBalances(acct.account) : this.engine.futuresAccount(acct.account),
          trades: symbol ? this.engine.trades(acct.account, market, symbol, { limit: 100000 }) : [],
          replayCandles: this.replay?.candles ?? 0,
        });
      }
      default:
        return reply(404, { error: `unknown control route ${path}` });
    }
  }
}
