/**
 * The Binance venue adapter against the local exchange on 127.0.0.1, through
 * the real ccxt and a real `ws` user-data stream, for spot and USD-M futures.
 *
 * Both sides run on one TestClock (the exchange's server time and the
 * venue's signing clock), so nothing depends on the wall clock; waits are on
 * events, never sleeps. Hand computations use the catalog and the engine's
 * fees: spot 0.1% taker charged in the received asset; futures 0.05% taker
 * in USDT; a market order fills at the last price (no slippage).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import * as S from '../../src/local-exchange/serialize.ts';
import type { Market } from '../../src/model/market.ts';
import { BinanceVenue, type BinanceVenueOptions } from '../../src/venues/binance/binance-venue.ts';
import { ExchangeInfoError, instrumentFromBinance } from '../../src/venues/binance/exchange-info.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { VenueError, type VenueErrorKind, type VenueEvent, type VenueFill, type VenueOrder } from '../../src/venues/venue.ts';

const d = (s: string): Dec => new Dec(s);
type AccountEvent = Extract<VenueEvent, { type: 'account' }>;
const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);

function venueFor(ex: LocalExchange, clock: TestClock, market: Market, o: Partial<BinanceVenueOptions> = {}): BinanceVenue {
  const urls = ex.urls();
  return new BinanceVenue({
    market,
    spotBase: ex.url,
    futuresBase: ex.url,
    wsBase: market === 'spot' ? urls.spotWsApi : urls.futuresWs,
    apiKey: DEFAULT_ACCOUNT.apiKey,
    secret: DEFAULT_ACCOUNT.secret,
    clock,
    enableRateLimit: false,
    timeoutMs: 5000,
    // The test clock jumps minutes at a time in a few tests; the stale watchdog has its own test.
    timers: { streamStaleMs: 0 },
    reconnect: { baseMs: 500, capMs: 500, random: () => 1 },
    ...o,
  });
}

/** Records every event and resolves waits on them (registered before the action). */
class EventLog {
  readonly events: VenueEvent[] = [];
  private waiters: Array<{ pred: (e: VenueEvent) => boolean; resolve: (e: VenueEvent) => void }> = [];
  readonly off: () => void;

  constructor(venue: BinanceVenue) {
    this.off = venue.onEvent((e) => {
      this.events.push(e);
      for (const w of [...this.waiters]) {
        if (w.pred(e)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
  }

  /** The first event from now on matching pred. */
  next<T extends VenueEvent = VenueEvent>(what: string, pred: (e: VenueEvent) => boolean, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: VenueEvent) => (clearTimeout(timer), resolve(e as T)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms; last events: ${JSON.stringify(this.events.slice(-3))}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  fillOf(clientOrderId: string): Promise<{ order: VenueOrder; fill: VenueFill }> {
    return this.next(`fill of ${clientOrderId}`, (e) => e.type === 'order' && e.fill !== undefined && e.order.clientOrderId === clientOrderId) as Promise<{ order: VenueOrder; fill: VenueFill }>;
  }

  stream(status: 'connected' | 'disconnected' | 'reconnected'): Promise<VenueEvent> {
    return this.next(`stream ${status}`, (e) => e.type === 'stream' && e.status === status);
  }
}

async function expectVenueError(p: Promise<unknown>, kind: VenueErrorKind): Promise<VenueError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected VenueError ${kind}, but the call succeeded`).toBeInstanceOf(VenueError);
  const e = caught as VenueError;
  expect(e.kind, e.message).toBe(kind);
  return e;
}

/**
 * Sends text as it is to every user-data connection. ws-hub's sendRaw only
 * reaches market-stream subscribers (user-data connections carry no stream
 * names), so this goes through its connection set.
 */
function sendRawToUserStreams(ex: LocalExchange, text: string): number {
  const conns = (ex.hub as unknown as { conns: Set<{ kind: string; ws: { send(t: string): void } }> }).conns;
  let n = 0;
  for (const c of conns) {
    if (c.kind === 'userFutures' || c.kind === 'wsApi') {
      c.ws.send(text);
      n++;
    }
  }
  return n;
}

/** Exact comparison of instruments: Decimals as their canonical strings. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const bySymbol = <T extends { symbol: string }>(xs: readonly T[]): T[] => [...xs].sort((a, b) => a.symbol.localeCompare(b.symbol));

// ================================================================ exchangeInfo

describe('instrumentFromBinance', () => {
  it('round-trips every catalog instrument exactly (spot /api/v3 and futures /fapi/v1 shapes)', () => {
    for (const market of ['spot', 'futures'] as const) {
      const instruments = catalog(market);
      const info = (market === 'spot' ? S.spotExchangeInfo(instruments, T0, 6000) : S.futuresExchangeInfo(instruments, T0, 2400)) as { symbols: unknown[] };
      const back = info.symbols.map((raw, i) => instrumentFromBinance(raw, market, market === 'futures' ? { maintMarginRate: instruments[i]!.maintMarginRate! } : {}));
      expect(plain(back), `${market}: every filter exact`).toEqual(plain(instruments));
    }
  });

  it('keeps tick 0.01 / 0.1 / 0.0001 / 0.001 and step 0.00001 / 0.001 / 0.1 / 1 exactly, with the precisions they imply', () => {
    const fut = (S.futuresExchangeInfo(catalog('futures'), T0, 2400) as { symbols: Array<{ symbol: string }> }).symbols;
    const get = (s: string) => instrumentFromBinance(fut.find((x) => x.symbol === s), 'futures');
    const row = (i: ReturnType<typeof get>) => [i.filters.price.tickSize.toFixed(), i.filters.lot.stepSize.toFixed(), i.pricePrecision, i.quantityPrecision, i.filters.notional.minNotional.toFixed()];
    expect(row(get('BTCUSDT'))).toEqual(['0.1', '0.001', 1, 3, '100']);
    expect(row(get('ETHUSDT'))).toEqual(['0.01', '0.001', 2, 3, '20']);
    expect(row(get('ALGOUSDT'))).toEqual(['0.0001', '0.1', 4, 1, '5']);
    expect(row(get('AVAXUSDT'))).toEqual(['0.001', '1', 3, 0, '5']);
    expect(get('ALGOUSDT').liquidationFee?.toFixed()).toBe('0.0125');
    const spot = (S.spotExchangeInfo(catalog('spot'), T0, 6000) as { symbols: Array<{ symbol: string }> }).symbols;
    const btc = instrumentFromBinance(spot.find((x) => x.symbol === 'BTCUSDT'), 'spot');
    // Spot prints 8 decimals ("0.01000000"): the value, and the precision derived from it, are unchanged.
    expect([btc.filters.price.tickSize.toFixed(), btc.filters.lot.stepSize.toFixed(), btc.pricePrecision, btc.quantityPrecision]).toEqual(['0.01', '0.00001', 2, 5]);
    expect(btc.filters.marketLot.stepSize.isZero(), 'spot MARKET_LOT_SIZE step 0 stays 0').toBe(true);
  });

  it('a malformed symbol is refused with the symbol and the field named', () => {
    const raw = (S.futuresExchangeInfo(catalog('futures'), T0, 2400) as { symbols: Array<Record<string, unknown>> }).symbols[0]!;
    const filters = raw.filters as Array<Record<string, unknown>>;
    const badTick = { ...raw, filters: filters.map((f) => (f.filterType === 'PRICE_FILTER' ? { ...f, tickSize: 0.1 } : f)) };
    expect(() => instrumentFromBinance(badTick, 'futures')).toThrow(ExchangeInfoError);
    expect(() => instrumentFromBinance(badTick, 'futures')).toThrow(/BTCUSDT: filters\.PRICE_FILTER\.tickSize: .*got 0\.1/);
    const noLot = { ...raw, filters: filters.filter((f) => f.filterType !== 'LOT_SIZE') };
    expect(() => instrumentFromBinance(noLot, 'futures')).toThrow(/BTCUSDT: filters\.LOT_SIZE: missing/);
    expect(() => instrumentFromBinance({ ...raw, pricePrecision: '1' }, 'futures')).toThrow(/BTCUSDT: pricePrecision/);
    expect(() => instrumentFromBinance({ ...raw, symbol: undefined }, 'futures')).toThrow(/\(unnamed\): symbol/);
  });
});

// ======================================================================= spot

describe('BinanceVenue spot against the local exchange', () => {
  const clock = new TestClock(T0);
  let ex: LocalExchange;
  let venue: BinanceVenue;
  let log: EventLog;

  beforeAll(async () => {
    ex = await LocalExchange.start({ clock, funding: false });
    ex.setPrice('spot', 'BTCUSDT', d('20000'));
    venue = venueFor(ex, clock, 'spot');
    log = new EventLog(venue);
    const connected = log.stream('connected');
    await venue.start();
    await connected;
  });
  afterAll(async () => {
    await venue.stop();
    await ex.close();
  });

  it('start(): markets, clock offset 0, the stream subscribed; start() again is a no-op', async () => {
    expect(venue.clockOffsetMs).toBe(0);
    expect(venue.userStreamStatus()).toMatchObject({ enabled: true, connected: true, reconnects: 0 });
    await venue.start();
    expect(log.events.filter((e) => e.type === 'stream')).toEqual([{ type: 'stream', status: 'connected' }]);
  });

  it('instruments() equals the catalog exactly (raw exchangeInfo through ccxt market.info)', async () => {
    expect(plain(await venue.instruments())).toEqual(plain(bySymbol(catalog('spot'))));
  });

  let marketFill: VenueFill;

  it('MARKET buy: FILLED at once; the stream brings the fill with exact price, qty and fee', async () => {
    const fill = log.fillOf('s-mkt-1');
    const balances = log.next<AccountEvent>('outboundAccountPosition', (e) => e.type === 'account' && e.account.balances.length === 2);
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.001'), clientOrderId: 's-mkt-1' });
    expect(o).toMatchObject({ symbol: 'BTCUSDT', clientOrderId: 's-mkt-1', side: 'BUY', type: 'MARKET', status: 'FILLED', reduceOnly: false });
    expect([o.quantity.toFixed(), o.filledQuantity.toFixed(), o.averagePrice?.toFixed(), o.price]).toEqual(['0.001', '0.001', '20000', undefined]);
    const ev = await fill;
    marketFill = ev.fill;
    // 0.001 BTC at 20000; fee 0.1% of the BTC received = 0.000001 BTC.
    expect([ev.fill.price.toFixed(), ev.fill.quantity.toFixed(), ev.fill.fee.toFixed(), ev.fill.feeAsset, ev.fill.isMaker, ev.fill.side]).toEqual(['20000', '0.001', '0.000001', 'BTC', false, 'BUY']);
    expect(ev.fill.exchangeOrderId).toBe(o.exchangeOrderId);
    expect(ev.order.status).toBe('FILLED');
    expect(ev.order.averagePrice?.toFixed()).toBe('20000');
    const bal = await balances;
    expect(bal.account.balances.map((b) => [b.asset, b.free.toFixed()])).toEqual([
      ['BTC', '0.000999'],
      ['USDT', '9980'],
    ]);
  });

  it('fetchOrder by client id; fills(symbol, since) returns the same trade id as the stream', async () => {
    const o = await venue.fetchOrder('BTCUSDT', 's-mkt-1');
    expect(o).toMatchObject({ clientOrderId: 's-mkt-1', status: 'FILLED' });
    expect(o!.averagePrice?.toFixed()).toBe('20000');
    const fills = await venue.fills('BTCUSDT', T0);
    expect(fills.map((f) => f.tradeId)).toEqual([marketFill.tradeId]);
    expect([fills[0]!.price.toFixed(), fills[0]!.quantity.toFixed(), fills[0]!.fee.toFixed(), fills[0]!.feeAsset, fills[0]!.time]).toEqual(['20000', '0.001', '0.000001', 'BTC', T0]);
    expect(await venue.fills('BTCUSDT', T0 + 1), 'since is inclusive, and later means none').toEqual([]);
    expect((await venue.fills('BTCUSDT')).map((f) => f.tradeId)).toEqual([marketFill.tradeId]);
  });

  it('positions() and account(): the base asset held and exact balances', async () => {
    const pos = await venue.positions(['BTCUSDT']);
    expect(pos.map((p) => [p.symbol, p.positionSide, p.quantity.toFixed()])).toEqual([['BTCUSDT', 'BOTH', '0.000999']]);
    expect(await venue.positions(['ETHUSDT'])).toEqual([]);
    const acct = await venue.account();
    expect(acct.balances.map((b) => [b.asset, b.free.toFixed(), b.locked.toFixed()])).toEqual([
      ['BTC', '0.000999', '0'],
      ['USDT', '9980', '0'],
    ]);
  });

  it('LIMIT: place, fetch, listed open, cancel (twice: the second returns the final order)', async () => {
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('19000'), clientOrderId: 's-lim-1' });
    expect(o).toMatchObject({ status: 'NEW', type: 'LIMIT' });
    expect(o.price?.toFixed()).toBe('19000');
    expect((await venue.fetchOrder('BTCUSDT', 's-lim-1'))?.status).toBe('NEW');
    expect((await venue.openOrders('BTCUSDT')).map((x) => x.clientOrderId)).toEqual(['s-lim-1']);
    expect((await venue.openOrders()).map((x) => x.clientOrderId), 'all symbols').toEqual(['s-lim-1']);
    const canceledEvent = log.next('CANCELED report', (e) => e.type === 'order' && e.order.status === 'CANCELED');
    const c = await venue.cancel('BTCUSDT', 's-lim-1');
    expect(c).toMatchObject({ clientOrderId: 's-lim-1', status: 'CANCELED' });
    expect(((await canceledEvent) as { order: VenueOrder }).order.clientOrderId, 'the stream names our id, not the cancel request id').toBe('s-lim-1');
    expect((await venue.cancel('BTCUSDT', 's-lim-1')).status).toBe('CANCELED');
    expect(await venue.openOrders('BTCUSDT')).toEqual([]);
  });

  it('STOP_LOSS_LIMIT rests with its trigger; STOP_MARKET is refused (spot has none here)', async () => {
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_LOSS_LIMIT', quantity: d('0.0005'), price: d('19400'), stopPrice: d('19500'), clientOrderId: 's-sl-1' });
    expect(o).toMatchObject({ status: 'NEW', type: 'STOP_LOSS_LIMIT' });
    expect([o.price?.toFixed(), o.stopPrice?.toFixed()]).toEqual(['19400', '19500']);
    expect((await venue.cancel('BTCUSDT', 's-sl-1')).status).toBe('CANCELED');
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_MARKET', quantity: d('0.0005'), stopPrice: d('19500'), clientOrderId: 's-sm-1' }), 'REJECTED');
  });

  it('unknown client id: fetchOrder undefined, cancel UNKNOWN_ORDER; duplicate id DUPLICATE; a filter failure REJECTED', async () => {
    expect(await venue.fetchOrder('BTCUSDT', 'never-sent')).toBeUndefined();
    const unknown = await expectVenueError(venue.cancel('BTCUSDT', 'never-sent'), 'UNKNOWN_ORDER');
    expect(unknown.details.code).toBe(-2011);
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('19000'), clientOrderId: 's-dup' });
    const dup = await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('19000'), clientOrderId: 's-dup' }), 'DUPLICATE');
    expect(dup.details.code).toBe(-2010);
    await venue.cancel('BTCUSDT', 's-dup');
    // 0.0001 * 19000 = 1.9 < min notional 5.
    const small = await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.0001'), price: d('19000'), clientOrderId: 's-small' }), 'REJECTED');
    expect(small.details.code).toBe(-1013);
    await expectVenueError(venue.place({ symbol: 'NOPEUSDT', side: 'BUY', type: 'MARKET', quantity: d('1'), clientOrderId: 's-nope' }), 'REJECTED');
  });

  it('usage(): weight and order-count headers of the latest responses', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('19000'), clientOrderId: 's-usage' });
    const u = venue.usage();
    expect(u.usedWeight1m).toBeGreaterThan(0);
    expect(u.orderCount10s).toBeGreaterThan(0);
    expect(u.orderCount1d).toBeGreaterThanOrEqual(u.orderCount10s!);
    await venue.cancel('BTCUSDT', 's-usage');
  });

  it('a black-holed order: AMBIGUOUS, and the lookup by client id then finds exactly one order', async () => {
    const impatient = venueFor(ex, clock, 'spot', { timeoutMs: 1000, userStream: false });
    await impatient.start();
    try {
      ex.faults.blackholeOrders = 1;
      await expectVenueError(impatient.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('19000'), clientOrderId: 's-bh-1' }), 'AMBIGUOUS');
      const found = await venue.fetchOrder('BTCUSDT', 's-bh-1');
      expect(found).toMatchObject({ clientOrderId: 's-bh-1', status: 'NEW' });
      expect((await venue.openOrders('BTCUSDT')).filter((o) => o.clientOrderId === 's-bh-1')).toHaveLength(1);
      await venue.cancel('BTCUSDT', 's-bh-1');
    } finally {
      ex.faults.reset();
      await impatient.stop();
    }
  });

  it('429 -> RATE_LIMITED with Retry-After, and nothing more is sent until it passes; 418 -> BANNED until its end', async () => {
    // Own venues: a 429 or 418 holds back every later call of the venue that received it.
    const limitedVenue = venueFor(ex, clock, 'spot', { userStream: false });
    const bannedVenue = venueFor(ex, clock, 'spot', { userStream: false });
    await limitedVenue.start();
    await bannedVenue.start();
    try {
      ex.faults.force429 = 2;
      const limited = await expectVenueError(limitedVenue.account(), 'RATE_LIMITED');
      expect([limited.details.code, limited.details.retryAfterMs! > 0]).toEqual([-1003, true]);
      // Held back at the venue: not sent (the second forced 429 is still unused), a place neither.
      const held = await expectVenueError(limitedVenue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.001'), clientOrderId: 's-429' }), 'RATE_LIMITED');
      expect(held.message).toMatch(/not sent: rate limited until \d{4}-/);
      expect(held.details.retryAfterMs).toBeLessThanOrEqual(limited.details.retryAfterMs!);
      expect(ex.faults.force429, 'nothing reached the exchange').toBe(2 - 1);
      // Once Retry-After has passed, calls go out again.
      clock.advanceBy(limited.details.retryAfterMs!);
      await expectVenueError(limitedVenue.account(), 'RATE_LIMITED');
      expect(ex.faults.force429).toBe(0);
      clock.advanceBy(60_000);
      expect(await venue.fetchOrder('BTCUSDT', 's-429'), 'the held place never reached the exchange').toBeUndefined();
      expect((await limitedVenue.account()).balances.length).toBeGreaterThan(0);

      ex.faults.bannedUntil = ex.now() + 120_000;
      const banned = await expectVenueError(bannedVenue.account(), 'BANNED');
      expect(banned.details.retryAfterMs).toBe(120_000);
      ex.faults.bannedUntil = 0;
      const stillBanned = await expectVenueError(bannedVenue.openOrders('BTCUSDT'), 'BANNED');
      expect(stillBanned.message).toMatch(/not sent: the IP is banned until/);
      clock.advanceBy(120_000);
      expect(await bannedVenue.openOrders('BTCUSDT')).toEqual([]);
    } finally {
      ex.faults.reset();
      await limitedVenue.stop();
      await bannedVenue.stop();
    }
  });

  it('a 5xx is AMBIGUOUS for a place and RETRYABLE for a read', async () => {
    ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.', pathPrefix: '/api/v3/order' });
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.001'), clientOrderId: 's-503' }), 'AMBIGUOUS');
    expect(await venue.fetchOrder('BTCUSDT', 's-503'), 'this 503 came before the engine: nothing placed').toBeUndefined();
    ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.', pathPrefix: '/api/v3/account' });
    await expectVenueError(venue.account(), 'RETRYABLE');
    expect((await venue.account()).balances.length).toBeGreaterThan(0);
  });

  it('clock 2000 ms ahead of the server -> CLOCK_SKEW (-1021); resyncClock() makes the next call succeed', async () => {
    ex.faults.clockSkewMs = -2000;
    try {
      const skew = await expectVenueError(venue.account(), 'CLOCK_SKEW');
      expect(skew.details.code).toBe(-1021);
      expect(await venue.resyncClock()).toBe(-2000);
      expect(venue.clockOffsetMs).toBe(-2000);
      expect((await venue.account()).balances.length).toBeGreaterThan(0);
    } finally {
      ex.faults.clockSkewMs = 0;
      await venue.resyncClock();
    }
  });

  it('wrong secret: AUTH on a signed call, and start() of a stream venue fails with AUTH', async () => {
    const bad = venueFor(ex, clock, 'spot', { secret: 'not-the-secret', userStream: false });
    await bad.start();
    expect((await expectVenueError(bad.account(), 'AUTH')).details.code).toBe(-1022);
    await bad.stop();
    const badStream = venueFor(ex, clock, 'spot', { secret: 'not-the-secret' });
    expect((await expectVenueError(badStream.start(), 'AUTH')).details.code).toBe(-1022);
    await badStream.stop();
  });

  it('malformed frames are dropped, counted, and later events still arrive', async () => {
    const before = venue.userStreamStatus().malformedFrames;
    expect(sendRawToUserStreams(ex, '{not json')).toBeGreaterThanOrEqual(1);
    sendRawToUserStreams(ex, JSON.stringify({ subscriptionId: 0, event: { e: 'executionReport', s: 'BTCUSDT', q: 'lots' } }));
    const fill = log.fillOf('s-after-bad');
    await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.0005'), clientOrderId: 's-after-bad' });
    // 0.0005 * 20000 = 10 USDT; fee 0.1% = 0.01 USDT.
    const ev = await fill;
    expect([ev.fill.price.toFixed(), ev.fill.quantity.toFixed(), ev.fill.fee.toFixed(), ev.fill.feeAsset]).toEqual(['20000', '0.0005', '0.01', 'USDT']);
    expect(venue.userStreamStatus().malformedFrames - before).toBe(2);
  });

  it('a dropped connection: disconnected, reconnect after the backoff, then events again', async () => {
    const down = log.stream('disconnected');
    const back = log.stream('reconnected');
    ex.hub.dropAll();
    await down;
    expect(venue.userStreamStatus().connected).toBe(false);
    // The backoff runs on the injected clock: 500 ms.
    clock.advanceBy(500);
    await back;
    expect(venue.userStreamStatus()).toMatchObject({ connected: true, reconnects: 1 });
    const fill = log.fillOf('s-after-drop');
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.0005'), clientOrderId: 's-after-drop' });
    expect((await fill).fill.quantity.toFixed()).toBe('0.0005');
  });

  it('stop() closes the socket and cancels every timer it set', async () => {
    const v = venueFor(ex, clock, 'spot', { timers: { streamStaleMs: 60_000 } });
    const conns = ex.hub.connectionCount();
    const pending = clock.pendingTimers();
    await v.start();
    expect(clock.pendingTimers()).toBeGreaterThan(pending);
    await v.stop();
    expect(clock.pendingTimers()).toBe(pending);
    await vi.waitFor(() => expect(ex.hub.connectionCount()).toBe(conns));
  });
});

// ==================================================================== futures

describe('BinanceVenue futures against the local exchange', () => {
  const clock = new TestClock(T0);
  let ex: LocalExchange;
  let venue: BinanceVenue;
  let log: EventLog;

  beforeAll(async () => {
    ex = await LocalExchange.start({ clock, funding: false });
    ex.setPrice('futures', 'BTCUSDT', d('50000'));
    ex.setPrice('futures', 'ETHUSDT', d('3000'));
    venue = venueFor(ex, clock, 'futures');
    log = new EventLog(venue);
    await venue.start();
  });
  afterAll(async () => {
    await venue.stop();
    await ex.close();
  });

  it('instruments() equals the catalog exactly, maintenance margin from leverageBracket included', async () => {
    const got = await venue.instruments();
    expect(plain(got)).toEqual(plain(bySymbol(catalog('futures'))));
    expect(got.find((i) => i.symbol === 'AVAXUSDT')?.maintMarginRate?.toFixed()).toBe('0.0065');
  });

  let marketFill: VenueFill;

  it('MARKET buy: FILLED; the stream fill has exact price, qty, fee and realized PnL', async () => {
    const fill = log.fillOf('f-mkt-1');
    const account = log.next<AccountEvent>('ACCOUNT_UPDATE', (e) => e.type === 'account');
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 'f-mkt-1' });
    expect(o).toMatchObject({ clientOrderId: 'f-mkt-1', status: 'FILLED', type: 'MARKET', reduceOnly: false });
    expect([o.filledQuantity.toFixed(), o.averagePrice?.toFixed()]).toEqual(['0.01', '50000']);
    const ev = await fill;
    marketFill = ev.fill;
    // 0.01 * 50000 = 500 USDT notional; taker 0.05% = 0.25 USDT; opening: realized 0.
    expect([ev.fill.price.toFixed(), ev.fill.quantity.toFixed(), ev.fill.fee.toFixed(), ev.fill.feeAsset, ev.fill.realizedPnl?.toFixed(), ev.fill.isMaker]).toEqual(['50000', '0.01', '0.25', 'USDT', '0', false]);
    const acct = await account;
    expect(acct.account.walletBalance?.toFixed()).toBe('9999.75');
  });

  it('fetchOrder, fills(symbol, since) with the stream trade id, positions() and account()', async () => {
    expect((await venue.fetchOrder('BTCUSDT', 'f-mkt-1'))?.status).toBe('FILLED');
    const fills = await venue.fills('BTCUSDT', T0);
    expect(fills.map((f) => f.tradeId)).toEqual([marketFill.tradeId]);
    expect([fills[0]!.fee.toFixed(), fills[0]!.realizedPnl?.toFixed(), fills[0]!.side]).toEqual(['0.25', '0', 'BUY']);
    const pos = await venue.positions(['BTCUSDT']);
    expect(pos.map((p) => [p.symbol, p.positionSide, p.quantity.toFixed(), p.entryPrice?.toFixed()])).toEqual([['BTCUSDT', 'BOTH', '0.01', '50000']]);
    expect(await venue.positions(['ETHUSDT'])).toEqual([]);
    const acct = await venue.account();
    expect([acct.walletBalance?.toFixed(), acct.balances.map((b) => [b.asset, b.free.toFixed()])]).toEqual(['9999.75', [['USDT', '9999.75']]]);
  });

  it('LIMIT: place, fetch, listed open, cancel (twice)', async () => {
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.01'), price: d('49000'), clientOrderId: 'f-lim-1' });
    expect(o).toMatchObject({ status: 'NEW', type: 'LIMIT' });
    expect(o.price?.toFixed()).toBe('49000');
    expect((await venue.openOrders('BTCUSDT')).map((x) => x.clientOrderId)).toEqual(['f-lim-1']);
    expect((await venue.cancel('BTCUSDT', 'f-lim-1')).status).toBe('CANCELED');
    expect((await venue.cancel('BTCUSDT', 'f-lim-1')).status).toBe('CANCELED');
    expect(await venue.openOrders()).toEqual([]);
  });

  it('STOP_MARKET goes to the algo service: place, fetch, listed open, cancel; ALGO_UPDATE on the stream', async () => {
    const newEvent = log.next('ALGO_UPDATE NEW', (e) => e.type === 'order' && e.order.clientOrderId === 'f-sl-1' && e.order.status === 'NEW');
    const o = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_MARKET', quantity: d('0.01'), stopPrice: d('48000'), reduceOnly: true, clientOrderId: 'f-sl-1' });
    expect(o).toMatchObject({ clientOrderId: 'f-sl-1', type: 'STOP_MARKET', status: 'NEW', reduceOnly: true });
    expect(o.stopPrice?.toFixed()).toBe('48000');
    await newEvent;
    expect((await venue.fetchOrder('BTCUSDT', 'f-sl-1'))?.status).toBe('NEW');
    expect((await venue.openOrders('BTCUSDT')).map((x) => [x.clientOrderId, x.type])).toEqual([['f-sl-1', 'STOP_MARKET']]);
    expect((await venue.cancel('BTCUSDT', 'f-sl-1')).status).toBe('CANCELED');
    expect((await venue.fetchOrder('BTCUSDT', 'f-sl-1'))?.status).toBe('CANCELED');
    expect((await venue.cancel('BTCUSDT', 'f-sl-1')).status, 'already final').toBe('CANCELED');
    expect(await venue.openOrders()).toEqual([]);
  });

  it('a STOP_MARKET that triggers: its fill arrives on the stream and fetchOrder shows it FILLED', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'STOP_MARKET', quantity: d('0.01'), stopPrice: d('49000'), reduceOnly: true, clientOrderId: 'f-sl-2' });
    const fill = log.fillOf('f-sl-2');
    ex.setPrice('futures', 'BTCUSDT', d('48900'));
    const ev = await fill;
    // The path 50000 -> 48900 runs through the trigger, so it fills there: 0.01 at 49000 closes
    // the long: realized (49000 - 50000) * 0.01 = -10; fee 490 * 0.05% = 0.245.
    expect([ev.fill.price.toFixed(), ev.fill.quantity.toFixed(), ev.fill.fee.toFixed(), ev.fill.realizedPnl?.toFixed(), ev.fill.side]).toEqual(['49000', '0.01', '0.245', '-10', 'SELL']);
    const o = await venue.fetchOrder('BTCUSDT', 'f-sl-2');
    expect(o).toMatchObject({ clientOrderId: 'f-sl-2', status: 'FILLED', type: 'STOP_MARKET' });
    expect([o!.filledQuantity.toFixed(), o!.averagePrice?.toFixed()]).toEqual(['0.01', '49000']);
    expect(await venue.positions()).toEqual([]);
    // 9999.75 - 10 - 0.245
    expect((await venue.account()).walletBalance?.toFixed()).toBe('9989.505');
  });

  it('unknown, duplicate and refused orders', async () => {
    expect(await venue.fetchOrder('BTCUSDT', 'never-sent')).toBeUndefined();
    await expectVenueError(venue.cancel('BTCUSDT', 'never-sent'), 'UNKNOWN_ORDER');
    await venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.1'), price: d('2900'), clientOrderId: 'f-dup' });
    expect((await expectVenueError(venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.1'), price: d('2900'), clientOrderId: 'f-dup' }), 'DUPLICATE')).details.code).toBe(-4116);
    await venue.cancel('ETHUSDT', 'f-dup');
    // 0.001 * 2900 = 2.9 < min notional 20.
    expect((await expectVenueError(venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.001'), price: d('2900'), clientOrderId: 'f-small' }), 'REJECTED')).details.code).toBe(-4164);
    await expectVenueError(venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'STOP_LOSS_LIMIT', quantity: d('0.1'), price: d('2900'), stopPrice: d('2950'), clientOrderId: 'f-sll' }), 'REJECTED');
    expect(venue.usage().orderCount1m).toBeGreaterThan(0);
  });

  it('a black-holed order: AMBIGUOUS, then exactly one order under that client id', async () => {
    const impatient = venueFor(ex, clock, 'futures', { timeoutMs: 1000, userStream: false });
    await impatient.start();
    try {
      ex.faults.blackholeOrders = 1;
      await expectVenueError(impatient.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: d('0.01'), price: d('47000'), clientOrderId: 'f-bh-1' }), 'AMBIGUOUS');
      expect(await venue.fetchOrder('BTCUSDT', 'f-bh-1')).toMatchObject({ clientOrderId: 'f-bh-1', status: 'NEW' });
      expect((await venue.openOrders()).filter((o) => o.clientOrderId === 'f-bh-1')).toHaveLength(1);
      await venue.cancel('BTCUSDT', 'f-bh-1');
    } finally {
      ex.faults.reset();
      await impatient.stop();
    }
  });

  it('429 -> RATE_LIMITED; 418 -> BANNED; 503 on a place -> AMBIGUOUS', async () => {
    const limitedVenue = venueFor(ex, clock, 'futures', { userStream: false });
    const bannedVenue = venueFor(ex, clock, 'futures', { userStream: false });
    await limitedVenue.start();
    await bannedVenue.start();
    try {
      ex.faults.force429 = 1;
      expect((await expectVenueError(limitedVenue.positions(), 'RATE_LIMITED')).details.retryAfterMs).toBeGreaterThan(0);
      ex.faults.bannedUntil = ex.now() + 120_000;
      expect((await expectVenueError(bannedVenue.openOrders('BTCUSDT'), 'BANNED')).details.retryAfterMs).toBe(120_000);
      ex.faults.bannedUntil = 0;
      // Each venue holds back its own calls; the shared one was never limited.
      await expectVenueError(bannedVenue.positions(), 'BANNED');
      expect(await venue.openOrders('BTCUSDT')).toBeInstanceOf(Array);
    } finally {
      ex.faults.reset();
      await limitedVenue.stop();
      await bannedVenue.stop();
    }
    ex.faults.fails.push({ count: 1, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.', pathPrefix: '/fapi/v1/order' });
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 'f-503' }), 'AMBIGUOUS');
    expect(await venue.fetchOrder('BTCUSDT', 'f-503')).toBeUndefined();
  });

  it('clock 2000 ms ahead -> CLOCK_SKEW; resyncClock() fixes it', async () => {
    ex.faults.clockSkewMs = -2000;
    try {
      await expectVenueError(venue.account(), 'CLOCK_SKEW');
      await venue.resyncClock();
      expect(venue.clockOffsetMs).toBe(-2000);
      expect((await venue.account()).walletBalance?.toFixed()).toBe('9989.505');
    } finally {
      ex.faults.clockSkewMs = 0;
      await venue.resyncClock();
    }
  });

  it('malformed frames are dropped and counted; the next events still arrive', async () => {
    const before = venue.userStreamStatus().malformedFrames;
    expect(sendRawToUserStreams(ex, 'garbage')).toBeGreaterThanOrEqual(1);
    sendRawToUserStreams(ex, JSON.stringify({ e: 'ORDER_TRADE_UPDATE', E: 1, o: { s: 'BTCUSDT', X: 'NOT_A_STATUS' } }));
    sendRawToUserStreams(ex, JSON.stringify({ e: 'SOMETHING_NEW', E: 1 }));
    const fill = log.fillOf('f-after-bad');
    await venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'f-after-bad' });
    // 0.1 * 3000 = 300; fee 0.15.
    expect((await fill).fill.fee.toFixed()).toBe('0.15');
    expect(venue.userStreamStatus().malformedFrames - before, 'an unknown event type is ignored, not malformed').toBe(2);
  });

  it('listenKey keepalive every 30 minutes keeps the key alive past its 60-minute life', async () => {
    const disconnectsBefore = log.events.filter((e) => e.type === 'stream' && e.status === 'disconnected').length;
    clock.advanceBy(30 * 60_000);
    await vi.waitFor(() => expect(venue.userStreamStatus().lastKeepAliveAt).toBe(clock.now()));
    clock.advanceBy(45 * 60_000);
    ex.hub.expireListenKeys();
    const fill = log.fillOf('f-kept');
    await venue.place({ symbol: 'ETHUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'f-kept' });
    await fill;
    expect(log.events.filter((e) => e.type === 'stream' && e.status === 'disconnected').length).toBe(disconnectsBefore);
  });

  it('listenKey expiry: a new key, reported as disconnected -> reconnected, and events keep arriving', async () => {
    const down = log.stream('disconnected');
    const back = log.stream('reconnected');
    ex.listenKeys.expire(undefined, ex.now());
    ex.hub.expireListenKeys();
    expect((await down) as unknown).toMatchObject({ detail: 'listenKey expired' });
    await back;
    const fill = log.fillOf('f-after-expiry');
    await venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'f-after-expiry' });
    expect((await fill).fill.quantity.toFixed()).toBe('0.1');
  });

  it('funding: ACCOUNT_UPDATE m=FUNDING_FEE becomes an account event carrying the balance change (the ledger adds it)', async () => {
    ex.setPrice('futures', 'ETHUSDT', d('3000'));
    await venue.place({ symbol: 'ETHUSDT', side: 'BUY', type: 'MARKET', quantity: d('1'), clientOrderId: 'f-fund-1' });
    const held = (await venue.positions(['ETHUSDT']))[0]!.quantity;
    const account = log.next<AccountEvent>('ACCOUNT_UPDATE', (e) => e.type === 'account' && e.account.reason === 'FUNDING_FEE');
    ex.engine.setFundingRate('ETHUSDT', d('0.0001'));
    ex.settleFunding('ETHUSDT');
    const ev = await account;
    // Long at mark 3000, rate 0.01 %: pays held * 0.3 USDT.
    expect([ev.account.reason, ev.account.balanceChange?.toFixed()]).toEqual(['FUNDING_FEE', held.times('-0.3').toFixed()]);
    expect(held.gte(1)).toBe(true);
    await venue.place({ symbol: 'ETHUSDT', side: 'SELL', type: 'MARKET', quantity: d('1'), reduceOnly: true, clientOrderId: 'f-fund-2' });
  });

  it('a silent connection (no frame, no ping) is replaced after streamStaleMs', async () => {
    const v = venueFor(ex, clock, 'futures', { timers: { streamStaleMs: 120_000 } });
    const vlog = new EventLog(v);
    await v.start();
    try {
      const down = vlog.stream('disconnected');
      const back = vlog.stream('reconnected');
      clock.advanceBy(180_000);
      expect((await down) as unknown).toMatchObject({ detail: 'no frame or ping for 120000 ms' });
      await back;
      const fill = vlog.fillOf('f-after-stale');
      await v.place({ symbol: 'ETHUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.1'), clientOrderId: 'f-after-stale' });
      await fill;
    } finally {
      vlog.off();
      await v.stop();
    }
  });
});
