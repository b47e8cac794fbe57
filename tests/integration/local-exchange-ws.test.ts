/**
 * The local exchange's WebSocket side with the real `ws` client: combined
 * and raw market streams, subscribe / unsubscribe, pings, user data after a
 * fill (futures listenKey, spot WebSocket API), listenKey expiry, and the
 * abuse cases (malformed frames, message rate, stalls, drops).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { sign } from '../../src/local-exchange/auth.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { createFuturesClient, createSpotClient } from '../../src/venues/binance/ccxt-clients.ts';
import { connect, type RecordingClient } from '../support/ws-client.ts';

let ex: LocalExchange | undefined;
const clients: RecordingClient[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await ex?.close();
  ex = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function open(url: string, opts: { autoPong?: boolean } = {}): Promise<RecordingClient> {
  const c = await connect(url, opts);
  clients.push(c);
  return c;
}

/** Five real-looking 1m candles for ALGOUSDT, header row included. */
function candleFile(): string {
  dir = mkdtempSync(join(tmpdir(), 'trader-ws-'));
  const t0 = Date.UTC(2023, 1, 1);
  const rows = [
    ['0.2500', '0.2510', '0.2495', '0.2505'],
    ['0.2505', '0.2506', '0.2480', '0.2490'],
    ['0.2490', '0.2520', '0.2489', '0.2519'],
    ['0.2519', '0.2519', '0.2500', '0.2501'],
    ['0.2501', '0.2530', '0.2501', '0.2528'],
  ].map(([o, h, l, c], i) => [t0 + i * 60_000, o, h, l, c, '1000.0', t0 + i * 60_000 + 59_999, '250.1', 42, '500.0', '125.0', '0'].join(','));
  const file = join(dir, 'ALGOUSDT-1m-2023-02.csv');
  writeFileSync(file, 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n' + rows.join('\n') + '\n');
  return file;
}

describe('market streams', () => {
  it('combined stream: two in-progress updates then the closed candle, closed values exactly the file', async () => {
    const file = candleFile();
    ex = await LocalExchange.start({ replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [file] }], speed: 'max', autoStart: false } });
    const c = await open(`${ex.urls().futuresWs}/market/stream?streams=algousdt@kline_1m/algousdt@markPrice@1s`);
    ex.replay!.start();
    await ex.replay!.done;
    await c.next((m) => (m.data as { k?: { x?: boolean; t?: number } })?.k?.x === true && (m.data as { k: { t: number } }).k.t === Date.UTC(2023, 1, 1, 0, 4));
    const klines = c.messages.filter((m) => (m as { stream: string }).stream === 'algousdt@kline_1m').map((m) => (m as { data: { k: { t: number; x: boolean; o: string; h: string; l: string; c: string; v: string } } }).data.k);
    expect(klines).toHaveLength(15);
    expect(klines.map((k) => k.x)).toEqual([false, false, true, false, false, true, false, false, true, false, false, true, false, false, true]);
    const closed = klines.filter((k) => k.x);
    expect(closed.map((k) => [k.o, k.h, k.l, k.c, k.v])).toEqual([
      ['0.2500', '0.2510', '0.2495', '0.2505', '1000.0'],
      ['0.2505', '0.2506', '0.2480', '0.2490', '1000.0'],
      ['0.2490', '0.2520', '0.2489', '0.2519', '1000.0'],
      ['0.2519', '0.2519', '0.2500', '0.2501', '1000.0'],
      ['0.2501', '0.2530', '0.2501', '0.2528', '1000.0'],
    ]);
    // Up candle: the path visits the low first, so the first update closes at the low.
    expect([klines[0]!.c, klines[1]!.c]).toEqual(['0.2495', '0.251']);
    const marks = c.messages.filter((m) => (m as { stream: string }).stream === 'algousdt@markPrice@1s').map((m) => (m as { data: { e: string; p: string } }).data);
    expect(marks.length, 'a mark price per closed candle').toBeGreaterThanOrEqual(5);
    expect(marks[0]!.e).toBe('markPriceUpdate');
  });

  it('SUBSCRIBE, LIST_SUBSCRIPTIONS, UNSUBSCRIBE on a raw connection', async () => {
    ex = await LocalExchange.start({});
    const c = await open(`${ex.urls().spotWs}/ws`);
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@aggTrade', 'btcusdt@bookTicker'], id: 1 });
    expect(await c.next((m) => m.id === 1)).toEqual({ result: null, id: 1 });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
    expect(await c.next((m) => m.id === 2)).toEqual({ result: ['btcusdt@aggTrade', 'btcusdt@bookTicker'], id: 2 });
    ex.setPrice('spot', 'BTCUSDT', new Dec('50000.12'));
    const trade = await c.next((m) => m.e === 'aggTrade');
    expect(trade).toMatchObject({ s: 'BTCUSDT', p: '50000.12' });
    expect(await c.next((m) => m.b !== undefined)).toMatchObject({ s: 'BTCUSDT', b: '50000.11', a: '50000.13' });
    c.send({ method: 'UNSUBSCRIBE', params: ['btcusdt@aggTrade'], id: 3 });
    await c.next((m) => m.id === 3);
    const before = c.messages.length;
    ex.setPrice('spot', 'BTCUSDT', new Dec('50001'));
    await c.next((m) => m.b === '50000.99', { from: before });
    expect(c.messages.slice(before).some((m) => (m as { e?: string }).e === 'aggTrade'), 'no aggTrade after unsubscribe').toBe(false);
  });

  it('malformed requests get Binance error frames and the connection survives', async () => {
    ex = await LocalExchange.start({});
    const c = await open(`${ex.urls().futuresWs}/market/ws`);
    c.send('this is not json');
    expect(await c.next((m) => m.code === 3)).toMatchObject({ code: 3 });
    c.send({ method: 'FROBNICATE', id: 9 });
    expect(await c.next((m) => m.id === 9)).toMatchObject({ code: 2 });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 10 });
    expect(await c.next((m) => m.id === 10)).toEqual({ result: [], id: 10 });
  });

  it('more than 10 messages a second on a futures connection gets it closed, as Binance does', async () => {
    ex = await LocalExchange.start({});
    const c = await open(`${ex.urls().futuresWs}/market/ws`);
    for (let i = 0; i < 12; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    expect((await c.closed).code).toBe(1008);
  });

  it('server pings keep a ponging client; a client that never pongs is terminated', async () => {
    ex = await LocalExchange.start({ pingIntervalMs: { spot: 100, futures: 100 } });
    const good = await open(`${ex.urls().spotWs}/ws`);
    const silent = await open(`${ex.urls().spotWs}/ws`, { autoPong: false });
    const gone = await silent.closed;
    expect(gone.code, 'terminated without a close frame').toBe(1006);
    expect(good.pings).toBeGreaterThanOrEqual(2);
    expect(good.ws.readyState).toBe(good.ws.OPEN);
  });

  it('control: a stalled stream stays connected but silent; a drop closes every connection', async () => {
    ex = await LocalExchange.start({});
    const c = await open(`${ex.urls().futuresWs}/market/ws/btcusdt@aggTrade`);
    ex.faults.stalled.add('btcusdt@aggtrade');
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    // A second subscriber on another stream proves data flowed meanwhile.
    const other = await open(`${ex.urls().futuresWs}/market/ws/ethusdt@aggTrade`);
    ex.setPrice('futures', 'ETHUSDT', new Dec('2000'));
    await other.next((m) => m.e === 'aggTrade');
    expect(c.messages, 'stalled: nothing delivered').toEqual([]);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    ex.faults.stalled.clear();
    ex.setPrice('futures', 'BTCUSDT', new Dec('30001'));
    await c.next((m) => m.e === 'aggTrade');
    ex.hub.dropAll();
    await Promise.all([c.closed, other.closed]);
  });
});

describe('user data', () => {
  const creds = { apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false };

  async function listenKey(): Promise<string> {
    const res = await fetch(`${ex!.urls().futuresRest}/listenKey`, { method: 'POST', headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey } });
    return ((await res.json()) as { listenKey: string }).listenKey;
  }

  it('futures: ORDER_TRADE_UPDATE and ACCOUNT_UPDATE after a fill, over the listenKey stream', async () => {
    ex = await LocalExchange.start({});
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const key = await listenKey();
    expect(await listenKey(), 'POST returns the active key').toBe(key);
    const c = await open(`${ex.urls().futuresWs}/private/ws?listenKey=${key}`);
    const client = createFuturesClient({ spotBase: ex.url, futuresBase: ex.url, ...creds });
    await client.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.01, undefined, { clientOrderId: 'ud-1' });
    const trade = await c.next<{ o: Record<string, unknown> }>((m) => m.e === 'ORDER_TRADE_UPDATE' && (m.o as { x: string }).x === 'TRADE');
    // 0.01 * 30000 = 300; taker fee 0.15.
    expect(trade.o).toMatchObject({ s: 'BTCUSDT', c: 'ud-1', S: 'BUY', o: 'MARKET', X: 'FILLED', l: '0.01', z: '0.01', L: '30000', n: '0.15', N: 'USDT', m: false, ps: 'BOTH', rp: '0' });
    const acct = await c.next<{ a: { m: string; B: Array<Record<string, string>>; P: Array<Record<string, string>> } }>((m) => m.e === 'ACCOUNT_UPDATE');
    expect(acct.a.m).toBe('ORDER');
    expect(acct.a.B[0]).toMatchObject({ a: 'USDT', wb: '9999.85', bc: '-0.15' });
    expect(acct.a.P[0]).toMatchObject({ s: 'BTCUSDT', pa: '0.01', ep: '30000', ps: 'BOTH', mt: 'cross' });
    const news = c.messages.filter((m) => (m as { e: string; o?: { x: string } }).e === 'ORDER_TRADE_UPDATE').map((m) => (m as { o: { x: string } }).o.x);
    expect(news).toEqual(['NEW', 'TRADE']);
  });

  it('listenKey expiry: listenKeyExpired, then nothing more; keepalive of the dead key fails', async () => {
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ex.setPrice('futures', 'BTCUSDT', new Dec('30000'));
    const key = await listenKey();
    const c = await open(`${ex.urls().futuresWs}/private/ws?listenKey=${key}`);
    // 59 minutes: still valid.
    clock.advanceBy(59 * 60_000);
    ex.hub.expireListenKeys();
    // A keepalive moves expiry to 60 minutes from now.
    const ka = await fetch(`${ex.urls().futuresRest}/listenKey`, { method: 'PUT', headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey } });
    expect(ka.status).toBe(200);
    clock.advanceBy(59 * 60_000);
    ex.hub.expireListenKeys();
    expect(c.messages.some((m) => (m as { e: string }).e === 'listenKeyExpired')).toBe(false);
    clock.advanceBy(60_001);
    ex.hub.expireListenKeys();
    const expired = await c.next((m) => m.e === 'listenKeyExpired');
    expect(expired).toMatchObject({ listenKey: key });
    const account = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
    ex.engine.placeOrder(account, { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: new Dec('0.01') });
    const after = c.messages.length;
    // Prove silence with a second, valid key that does get the next order's events.
    const fresh = await listenKey();
    expect(fresh).not.toBe(key);
    const c2 = await open(`${ex.urls().futuresWs}/private/ws?listenKey=${fresh}`);
    ex.engine.placeOrder(account, { market: 'futures', symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: new Dec('0.01') });
    await c2.next((m) => m.e === 'ORDER_TRADE_UPDATE');
    expect(c.messages.length, 'the expired key gets nothing').toBe(after);
    const dead = await fetch(`${ex.urls().futuresRest}/listenKey`, { method: 'PUT', headers: { 'X-MBX-APIKEY': 'nope' } });
    expect(dead.status).toBe(401);
    // A connection with an unknown key is refused.
    const refused = await open(`${ex.urls().futuresWs}/private/ws?listenKey=not-a-real-key`);
    expect((await refused.closed).code).toBe(4001);
  });

  it('spot: userDataStream.subscribe.signature on the WebSocket API, then executionReport and outboundAccountPosition', async () => {
    ex = await LocalExchange.start({});
    ex.setPrice('spot', 'BTCUSDT', new Dec('50000'));
    const c = await open(ex.urls().spotWsApi);
    const bad = { apiKey: DEFAULT_ACCOUNT.apiKey, timestamp: Date.now(), signature: 'deadbeef' };
    c.send({ id: 'bad', method: 'userDataStream.subscribe.signature', params: bad });
    expect(await c.next((m) => m.id === 'bad')).toMatchObject({ status: 400, error: { code: -1022 } });
    const params = { apiKey: DEFAULT_ACCOUNT.apiKey, recvWindow: 5000, timestamp: Date.now() };
    const signature = sign(DEFAULT_ACCOUNT.secret, `apiKey=${params.apiKey}&recvWindow=${params.recvWindow}&timestamp=${params.timestamp}`);
    c.send({ id: 'sub', method: 'userDataStream.subscribe.signature', params: { ...params, signature } });
    const sub = await c.next<{ result: { subscriptionId: number } }>((m) => m.id === 'sub');
    const client = createSpotClient({ spotBase: ex.url, futuresBase: ex.url, ...creds });
    await client.createOrder('BTC/USDT', 'market', 'buy', 0.01, undefined, { clientOrderId: 'spot-ud-1' });
    const report = await c.next<{ subscriptionId: number; event: Record<string, unknown> }>((m) => (m.event as { e?: string; x?: string })?.e === 'executionReport' && (m.event as { x: string }).x === 'TRADE');
    expect(report.subscriptionId).toBe(sub.result.subscriptionId);
    // 0.01 BTC at 50000; fee 0.00001 BTC.
    expect(report.event).toMatchObject({ s: 'BTCUSDT', c: 'spot-ud-1', S: 'BUY', o: 'MARKET', X: 'FILLED', l: '0.01000000', L: '50000.00000000', n: '0.00001000', N: 'BTC', Z: '500.00000000' });
    const pos = await c.next<{ event: { B: Array<{ a: string; f: string; l: string }> } }>((m) => (m.event as { e?: string })?.e === 'outboundAccountPosition' && (m.event as { B: Array<{ a: string }> }).B.length === 2);
    expect(pos.event.B).toEqual([
      { a: 'BTC', f: '0.00999000', l: '0.00000000' },
      { a: 'USDT', f: '9500.00000000', l: '0.00000000' },
    ]);
  });
});
