/** The control API over HTTP, as a test driving a bot in another process uses it. */
import { afterEach, describe, expect, it } from 'vitest';
import { sign } from '../../src/local-exchange/auth.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';

let ex: LocalExchange | undefined;
afterEach(async () => {
  await ex?.close();
  ex = undefined;
});

async function control(path: string, body: unknown = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${ex!.urls().control}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(res.status, path).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** A signed GET, as a Binance client sends it. */
async function signedGet(path: string, params: Record<string, string> = {}): Promise<Response> {
  const q = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString();
  return fetch(`${ex!.url}${path}?${q}&signature=${sign(DEFAULT_ACCOUNT.secret, q)}`, { headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey } });
}

describe('prices set by hand', () => {
  it('build real candles: open kept, running high and low, the previous minute closed when the next begins', async () => {
    const { TestClock } = await import('../../src/core/clock.ts');
    const { Dec } = await import('../../src/core/decimal.ts');
    const clock = new TestClock(Date.UTC(2024, 0, 1, 12, 0, 10));
    ex = await LocalExchange.start({ clock });
    for (const p of ['100', '110', '90', '105']) ex.setPrice('futures', 'DOTUSDT', new Dec(p));
    clock.advanceBy(60_000);
    ex.setPrice('futures', 'DOTUSDT', new Dec('101'));
    const rows = (await (await fetch(`${ex.urls().futuresRest}/klines?symbol=DOTUSDT&interval=1m&limit=10`)).json()) as unknown[][];
    expect(rows.map((r) => [r[0], r[1], r[2], r[3], r[4]])).toEqual([
      [Date.UTC(2024, 0, 1, 12, 0), '100', '110', '90', '105'],
      [Date.UTC(2024, 0, 1, 12, 1), '101', '101', '101', '101'],
    ]);
  });
});

describe('control API', () => {
  it('sets prices, injects REST failures and delays, skews the clock, and reports state', async () => {
    ex = await LocalExchange.start({});
    await control('/price', { market: 'futures', symbol: 'BTCUSDT', price: '43210.5' });
    const pi = (await (await fetch(`${ex.urls().futuresRest}/premiumIndex?symbol=BTCUSDT`)).json()) as { markPrice: string };
    expect(pi.markPrice).toBe('43210.50000000');

    await control('/rest/fail', { count: 2, status: 503, code: -1001, msg: 'Internal error', pathPrefix: '/fapi/v1/time' });
    const failed = await Promise.all([fetch(`${ex.urls().futuresRest}/time`), fetch(`${ex.urls().futuresRest}/time`)]);
    expect(failed.map((r) => r.status)).toEqual([503, 503]);
    expect(await failed[0]!.json()).toEqual({ code: -1001, msg: 'Internal error' });
    expect((await fetch(`${ex.urls().futuresRest}/time`)).status, 'only the next 2 calls fail').toBe(200);

    // The server runs 2 s behind: the client's timestamp is 2 s in its future.
    await control('/clock/skew', { ms: -2000 });
    const skewed = await signedGet('/fapi/v3/account');
    expect(skewed.status).toBe(400);
    expect(await skewed.json()).toEqual({ code: -1021, msg: "Timestamp for this request was 1000ms ahead of the server's time." });
    await control('/clock/skew', { ms: 0 });
    expect((await signedGet('/fapi/v3/account')).status).toBe(200);

    await control('/rest/429', { count: 1 });
    const limited = await fetch(`${ex.urls().futuresRest}/time`);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-mbx-used-weight-1m')).not.toBeNull();

    await control('/rest/418', { ms: 30_000 });
    const banned = await fetch(`${ex.urls().futuresRest}/time`);
    expect(banned.status).toBe(418);
    expect(Number(banned.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    await control('/reset');
    expect((await fetch(`${ex.urls().futuresRest}/time`)).status).toBe(200);

    const state = (await (await fetch(`${ex.urls().control}/state?market=futures&symbol=BTCUSDT`)).json()) as { openOrders: unknown[]; positions: unknown[] };
    expect(state).toMatchObject({ openOrders: [], positions: [] });
  });

  it('a signed request needs the right key, a fresh timestamp and the right signature', async () => {
    ex = await LocalExchange.start({});
    const q = `timestamp=${Date.now()}`;
    const noKey = await fetch(`${ex.url}/api/v3/account?${q}&signature=${sign(DEFAULT_ACCOUNT.secret, q)}`);
    expect([noKey.status, await noKey.json()]).toEqual([401, { code: -2014, msg: 'API-key format invalid.' }]);
    const badSig = await fetch(`${ex.url}/api/v3/account?${q}&signature=${sign('wrong', q)}`, { headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey } });
    expect([badSig.status, await badSig.json()]).toEqual([400, { code: -1022, msg: 'Signature for this request is not valid.' }]);
    const old = `timestamp=${Date.now() - 6000}`;
    const stale = await fetch(`${ex.url}/api/v3/account?${old}&signature=${sign(DEFAULT_ACCOUNT.secret, old)}`, { headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey } });
    expect(await stale.json()).toEqual({ code: -1021, msg: 'Timestamp for this request is outside of the recvWindow.' });
    // A body-signed POST: the signature covers query + body.
    const body = `symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=10000&timestamp=${Date.now()}`;
    const post = await fetch(`${ex.url}/api/v3/order`, { method: 'POST', headers: { 'X-MBX-APIKEY': DEFAULT_ACCOUNT.apiKey, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `${body}&signature=${sign(DEFAULT_ACCOUNT.secret, body)}` });
    expect(post.status).toBe(200);
    expect(post.headers.get('x-mbx-order-count-10s')).toBe('1');
    expect(((await post.json()) as { status: string }).status).toBe('NEW');
  });
});
