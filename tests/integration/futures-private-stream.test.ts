/**
 * USD-M user data on /private, as Binance's "Important WebSocket Change
 * Notice" lays it out
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice):
 *  - user data: <base>/private/ws?listenKey=<key>&events=A/B, or the stream form
 *    <base>/private/stream?listenKey=<k1>&events=A&listenKey=<k2>&events=B;
 *  - the legacy root (<base>/ws, <base>/stream) was decommissioned on 2026-04-23:
 *    "any connections not migrated will ONLY be able to receive data from
 *    /public. Channels under /market and /private will stop pushing data."
 *    A legacy connection opens and stays open; a listenKey or market stream on
 *    it gets nothing (the local exchange does the same);
 *  - /public carries book tickers and depth, /market the rest (klines, mark prices, aggTrade).
 *
 * Silence is proven without waiting: the connection that must stay silent
 * gets a control reply (LIST_SUBSCRIPTIONS) after the events went out on the
 * other one, so anything sent to it before would have arrived first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { FUTURES_USER_EVENTS, futuresUserStreamUrl } from '../../src/venues/binance/user-data.ts';
import type { VenueEvent } from '../../src/venues/venue.ts';
import { connect, type RecordingClient } from '../support/ws-client.ts';

let ex: LocalExchange | undefined;
let venue: BinanceVenue | undefined;
const clients: RecordingClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await venue?.stop();
  venue = undefined;
  await ex?.close();
  ex = undefined;
});

async function open(url: string): Promise<RecordingClient> {
  const c = await connect(url);
  clients.push(c);
  return c;
}

async function listenKey(apiKey = DEFAULT_ACCOUNT.apiKey): Promise<string> {
  const res = await fetch(`${ex!.urls().futuresRest}/listenKey`, { method: 'POST', headers: { 'X-MBX-APIKEY': apiKey } });
  return ((await res.json()) as { listenKey: string }).listenKey;
}

/** Everything sent to c so far has arrived once this resolves (a control round trip on the same socket). */
async function flushed(c: RecordingClient, id: number): Promise<unknown[]> {
  c.send({ method: 'LIST_SUBSCRIPTIONS', id });
  await c.next((m) => m.id === id);
  return c.messages.filter((m) => (m as { id?: unknown }).id === undefined);
}

function marketBuy(x: LocalExchange, qty = '0.01', apiKey = DEFAULT_ACCOUNT.apiKey): void {
  const r = x.engine.placeOrder(x.accountOf(apiKey), { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: new Dec(qty) });
  expect(r.ok).toBe(true);
}

describe("the bot's futures user stream", () => {
  it('connects to <BINANCE_FUTURES_WS_URL>/private/ws?listenKey=..&events=.. and its fills arrive over it', async () => {
    const clock = new TestClock(Date.UTC(2030, 0, 1, 0, 0, 30));
    ex = await LocalExchange.start({ clock, funding: false });
    ex.setPrice('futures', 'BTCUSDT', new Dec('50000'));
    venue = new BinanceVenue({
      market: 'futures',
      spotBase: ex.url,
      futuresBase: ex.url,
      // The base override (BINANCE_FUTURES_WS_URL); the venue adds /private/ws.
      wsBase: ex.urls().futuresWs,
      apiKey: DEFAULT_ACCOUNT.apiKey,
      secret: DEFAULT_ACCOUNT.secret,
      clock,
      enableRateLimit: false,
      timeoutMs: 5000,
      timers: { streamStaleMs: 0 },
    });
    const events: VenueEvent[] = [];
    const fill = new Promise<VenueEvent>((resolve) => venue!.onEvent((e) => (events.push(e), e.type === 'order' && e.fill !== undefined && resolve(e))));
    await venue.start();
    expect(ex.hub.userConnections(), 'one user-data connection, on the /private route, asking for the events the venue reads').toEqual([
      { path: '/futures/private/ws', keys: 1, events: [['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE', 'ALGO_UPDATE', 'listenKeyExpired']] },
    ]);
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: new Dec('0.002'), clientOrderId: 'priv-1' });
    const e = (await fill) as Extract<VenueEvent, { type: 'order' }>;
    // On 7756276 the venue connected to /futures/ws/<listenKey>, which pushes nothing: this fill never came.
    expect([e.order.clientOrderId, e.fill?.quantity.toFixed(), e.fill?.price.toFixed()]).toEqual(['priv-1', '0.002', '50000']);
  });

  it('futuresUserStreamUrl: the documented form on a base with or without a trailing slash, the key encoded', () => {
    expect(futuresUserStreamUrl('wss://fstream.binance.com', 'abc')).toBe('wss://fstream.binance.com/private/ws?listenKey=abc&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE/listenKeyExpired');
    expect(futuresUserStreamUrl('ws://127.0.0.1:9/futures/', 'a+b/c')).toBe(`ws://127.0.0.1:9/futures/private/ws?listenKey=a%2Bb%2Fc&events=${FUTURES_USER_EVENTS.join('/')}`);
  });
});

describe('the local exchange refuses what Binance no longer serves', () => {
  it('legacy /futures/ws/<listenKey> and /futures/stream?streams=<listenKey>: open, pinged, and silent while /private gets the events', async () => {
    ex = await LocalExchange.start({});
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const key = await listenKey();
    const legacyWs = await open(`${ex.urls().futuresWs}/ws/${key}`);
    const legacyStream = await open(`${ex.urls().futuresWs}/stream?streams=${key}`);
    const priv = await open(`${ex.urls().futuresWs}/private/ws?listenKey=${key}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE`);
    marketBuy(ex);
    await priv.next((m) => m.e === 'ORDER_TRADE_UPDATE' && (m.o as { X: string }).X === 'FILLED');
    await priv.next((m) => m.e === 'ACCOUNT_UPDATE');
    expect(await flushed(legacyWs, 1), 'legacy /ws/<listenKey>: nothing').toEqual([]);
    expect(await flushed(legacyStream, 2), 'legacy /stream?streams=<listenKey>: nothing').toEqual([]);
    expect([legacyWs.ws.readyState, legacyStream.ws.readyState], 'still open: the failure is silent, as on Binance').toEqual([legacyWs.ws.OPEN, legacyStream.ws.OPEN]);
    expect(ex.hub.userConnections().map((c) => c.path)).toEqual(['/futures/private/ws']);
  });

  it('market streams: /market carries klines and aggTrade, the legacy root and /public do not; book tickers on /public and the legacy root, not on /market', async () => {
    ex = await LocalExchange.start({});
    const base = ex.urls().futuresWs;
    const market = await open(`${base}/market/ws/btcusdt@aggTrade/btcusdt@bookTicker`);
    const pub = await open(`${base}/public/ws/btcusdt@aggTrade/btcusdt@bookTicker`);
    const legacy = await open(`${base}/ws/btcusdt@aggTrade/btcusdt@bookTicker`);
    const legacyCombined = await open(`${base}/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker`);
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const kinds = (ms: unknown[]): string[] => ms.map((m) => String((m as { e?: string; data?: { e?: string } }).e ?? (m as { data: { e: string } }).data.e));
    expect(kinds(await flushed(market, 1))).toEqual(['aggTrade']);
    expect(kinds(await flushed(pub, 2))).toEqual(['bookTicker']);
    expect(kinds(await flushed(legacy, 3))).toEqual(['bookTicker']);
    expect(kinds(await flushed(legacyCombined, 4))).toEqual(['bookTicker']);
  });

  it('events filters exhaustively: an event not named is not pushed, listenKeyExpired included', async () => {
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const key = await listenKey();
    const base = ex.urls().futuresWs;
    const ordersOnly = await open(`${base}/private/ws?listenKey=${key}&events=ORDER_TRADE_UPDATE`);
    const withExpiry = await open(`${base}/private/ws?listenKey=${key}&events=ACCOUNT_UPDATE/listenKeyExpired`);
    const all = await open(`${base}/private/ws?listenKey=${key}`);
    marketBuy(ex);
    await all.next((m) => m.e === 'ACCOUNT_UPDATE');
    clock.advanceBy(60 * 60_000 + 1);
    ex.hub.expireListenKeys();
    await all.next((m) => m.e === 'listenKeyExpired');
    await withExpiry.next((m) => m.e === 'listenKeyExpired');
    const types = (ms: unknown[]): string[] => ms.map((m) => String((m as { e: string }).e));
    expect(types(await flushed(ordersOnly, 1))).toEqual(['ORDER_TRADE_UPDATE', 'ORDER_TRADE_UPDATE']);
    expect(types(await flushed(withExpiry, 2))).toEqual(['ACCOUNT_UPDATE', 'listenKeyExpired']);
    expect(types(await flushed(all, 3))).toEqual(['ORDER_TRADE_UPDATE', 'ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE', 'listenKeyExpired']);
  });

  it('the stream form takes several listenKeys, each with its events, and wraps frames as { stream: <listenKey>, data }', async () => {
    ex = await LocalExchange.start({});
    ex.addAccount({ apiKey: 'second-key', secret: 'second-secret', futures: '10000' });
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const k1 = await listenKey();
    const k2 = await listenKey('second-key');
    const c = await open(`${ex.urls().futuresWs}/private/stream?listenKey=${k1}&events=ORDER_TRADE_UPDATE&listenKey=${k2}&events=ACCOUNT_UPDATE`);
    expect(ex.hub.userConnections()).toEqual([{ path: '/futures/private/stream', keys: 2, events: [['ORDER_TRADE_UPDATE'], ['ACCOUNT_UPDATE']] }]);
    marketBuy(ex, '0.01');
    marketBuy(ex, '0.02', 'second-key');
    await c.next((m) => m.stream === k2);
    const got = c.messages.map((m) => [(m as { stream: string }).stream === k1 ? 'k1' : 'k2', (m as { data: { e: string } }).data.e]);
    expect(got).toEqual([
      ['k1', 'ORDER_TRADE_UPDATE'],
      ['k1', 'ORDER_TRADE_UPDATE'],
      ['k2', 'ACCOUNT_UPDATE'],
    ]);
  });

  it('/private without a listenKey, or with an unknown one, is closed (4001)', async () => {
    ex = await LocalExchange.start({});
    const none = await open(`${ex.urls().futuresWs}/private/ws`);
    const bad = await open(`${ex.urls().futuresWs}/private/ws?listenKey=nope&events=ORDER_TRADE_UPDATE`);
    expect([(await none.closed).code, (await bad.closed).code]).toEqual([4001, 4001]);
  });
});
