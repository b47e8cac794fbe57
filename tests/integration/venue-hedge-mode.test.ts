/**
 * USD-M hedge mode (POSITION_MODE=HEDGE) at the venue edge: BinanceVenue
 * through the real ccxt and a real user-data socket against the local
 * exchange, and the sim venue on the same engine.
 *
 * Binance documentation relied on (developers.binance.com, USDⓈ-M Futures):
 *  - "Change Position Mode (TRADE)", POST /fapi/v1/positionSide/dual,
 *    dualSidePosition "true" = Hedge Mode, "false" = One-way Mode; refused
 *    while orders (-4067) or positions (-4068) are open; "No need to change
 *    position side." (-4059) when already set.
 *  - "New Order (TRADE)" and "New Algo Order (TRADE)": positionSide "Default
 *    BOTH for One-way Mode; LONG or SHORT for Hedge Mode. It must be sent in
 *    Hedge Mode."; reduceOnly "Cannot be sent in Hedge Mode".
 *  - Error Codes: -4061 POSITION_SIDE_NOT_MATCH "Order's position side does
 *    not match user's setting."; -1106 PARAM_NOT_REQUIRED (Binance's text
 *    for reduceOnly in hedge mode: "Parameter 'reduceonly' sent when not
 *    required."); -2022 REDUCE_ONLY_REJECT "ReduceOnly Order is rejected.".
 *  - "Position Information V3 (USER_DATA)": one row per position side,
 *    SHORT amounts negative.
 *  - "Event: Order Update" (ORDER_TRADE_UPDATE): "ps" is the position side
 *    (fixture tests/fixtures/binance/usdm/order-trade-update.json).
 *
 * Exchange and venue share one TestClock; waits are on events, never sleeps.
 * BTCUSDT trades at 50000, taker fee 0.05 %, no slippage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { catalog } from '../../src/venues/sim/catalog.ts';
import { SimVenue } from '../../src/venues/sim/sim-venue.ts';
import type { Venue, VenueEvent, VenuePosition } from '../../src/venues/venue.ts';
import { EventLog, expectVenueError, fixture, rawClients, sendRawToUserStreams, thrown, venueFor } from '../support/venue-harness.ts';

const d = (s: string): Dec => new Dec(s);
const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);
type OrderEvent = Extract<VenueEvent, { type: 'order' }>;

const legs = (ps: readonly VenuePosition[]): string[][] =>
  ps.map((p) => [p.symbol, p.positionSide, p.quantity.toFixed()]).sort((a, b) => (a.join() < b.join() ? -1 : 1));

describe('BinanceVenue USD-M hedge mode against the local exchange', () => {
  const clock = new TestClock(T0);
  let ex: LocalExchange;
  let venue: BinanceVenue;
  let log: EventLog;
  const dual = (): boolean => ex.engine.futuresAccount(ex.accountOf(DEFAULT_ACCOUNT.apiKey)).dualSidePosition;

  beforeAll(async () => {
    ex = await LocalExchange.start({ clock, funding: false });
    ex.setPrice('futures', 'BTCUSDT', d('50000'));
    venue = venueFor(ex, clock, 'futures');
    log = new EventLog(venue);
    await venue.start();
  });
  afterAll(async () => {
    await venue.stop();
    await ex.close();
  });

  it('configureFutures HEDGE sets dualSidePosition=true ("Change Position Mode (TRADE)"); again, -4059 "No need to change position side." counts as unchanged', async () => {
    expect(dual(), 'a new account is one-way').toBe(false);
    const first = await venue.configureFutures({ positionMode: 'HEDGE', symbols: [{ symbol: 'BTCUSDT', leverage: 10 }] });
    expect(first).toEqual({ positionMode: 'set', symbols: [{ symbol: 'BTCUSDT', leverage: 10, marginType: 'unchanged' }] });
    expect(dual(), 'the exchange is in hedge mode').toBe(true);
    expect((await venue.configureFutures({ positionMode: 'HEDGE', symbols: [] })).positionMode, '-4059 is not an error').toBe('unchanged');
  });

  it('opens a LONG and a SHORT leg on one symbol: positionSide on the answer, the lookup and the stream; positions() reports the legs apart, SHORT negative', async () => {
    const longFill = log.fillOf('h-long-1');
    const long = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), positionSide: 'LONG', clientOrderId: 'h-long-1' });
    expect(long).toMatchObject({ status: 'FILLED', positionSide: 'LONG' });
    expect((await longFill).order.positionSide, 'ORDER_TRADE_UPDATE "ps"').toBe('LONG');
    const short = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.02'), positionSide: 'SHORT', clientOrderId: 'h-short-1' });
    expect(short).toMatchObject({ status: 'FILLED', positionSide: 'SHORT' });
    expect((await venue.fetchOrder('BTCUSDT', 'h-short-1'))?.positionSide, 'GET /fapi/v1/order positionSide').toBe('SHORT');
    expect(legs(await venue.positions(['BTCUSDT'])), 'two legs, not one net position of -0.01').toEqual([
      ['BTCUSDT', 'LONG', '0.01'],
      ['BTCUSDT', 'SHORT', '-0.02'],
    ]);
  });

  it('a protective STOP_MARKET on the SHORT leg goes to the algo service with positionSide SHORT, and reduceOnly is not sent', async () => {
    const algoNew = log.next<OrderEvent>('ALGO_UPDATE NEW', (e) => e.type === 'order' && e.order.clientOrderId === 'h-sl-short' && e.order.status === 'NEW');
    const sl = await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'STOP_MARKET', quantity: d('0.02'), stopPrice: d('52000'), reduceOnly: true, positionSide: 'SHORT', clientOrderId: 'h-sl-short' });
    expect(sl).toMatchObject({ status: 'NEW', type: 'STOP_MARKET', positionSide: 'SHORT' });
    expect((await algoNew).order.positionSide, 'ALGO_UPDATE "ps"').toBe('SHORT');
    expect((await venue.openOrders('BTCUSDT')).map((o) => [o.clientOrderId, o.positionSide])).toEqual([['h-sl-short', 'SHORT']]);
    expect((await venue.cancel('BTCUSDT', 'h-sl-short')).status).toBe('CANCELED');
  });

  it('closing a leg: SELL LONG asked reduce-only goes out without reduceOnly and closes the LONG leg alone', async () => {
    const close = await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.01'), reduceOnly: true, positionSide: 'LONG', clientOrderId: 'h-long-close' });
    expect(close).toMatchObject({ status: 'FILLED', positionSide: 'LONG' });
    expect(legs(await venue.positions(['BTCUSDT'])), 'the SHORT leg is untouched').toEqual([['BTCUSDT', 'SHORT', '-0.02']]);
  });

  it('refusals as Binance makes them in hedge mode: no positionSide or BOTH -4061, reduceOnly -1106, closing a flat leg -2022, switching mode with a position open -4068', async () => {
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), clientOrderId: 'h-no-side' }), 'REJECTED', -4061);
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), positionSide: 'BOTH', clientOrderId: 'h-both' }), 'REJECTED', -4061);
    // The venue never sends reduceOnly with LONG/SHORT; a raw client that does is refused.
    const { futures } = rawClients(ex, clock);
    const e = await thrown(futures.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.01, undefined, { positionSide: 'SHORT', reduceOnly: true }));
    expect(e.message).toContain(`"code":-1106,"msg":"Parameter 'reduceonly' sent when not required."`);
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.01'), positionSide: 'LONG', clientOrderId: 'h-flat-close' }), 'REJECTED', -2022);
    await expectVenueError(venue.configureFutures({ positionMode: 'ONEWAY', symbols: [] }), 'REJECTED', -4068);
    expect(dual(), 'still hedge mode').toBe(true);
  });

  it('one-way mode: LONG or SHORT is refused (-4061); BOTH or no positionSide trade the one net position', async () => {
    await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.02'), positionSide: 'SHORT', clientOrderId: 'h-short-close' });
    expect(await venue.positions(['BTCUSDT'])).toEqual([]);
    expect((await venue.configureFutures({ positionMode: 'ONEWAY', symbols: [] })).positionMode).toBe('set');
    expect(dual()).toBe(false);
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), positionSide: 'LONG', clientOrderId: 'o-long' }), 'REJECTED', -4061);
    await expectVenueError(venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.01'), positionSide: 'SHORT', clientOrderId: 'o-short' }), 'REJECTED', -4061);
    expect(await venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), positionSide: 'BOTH', clientOrderId: 'o-both' })).toMatchObject({ status: 'FILLED', positionSide: 'BOTH' });
    expect(await venue.place({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: d('0.01'), reduceOnly: true, clientOrderId: 'o-close' })).toMatchObject({ status: 'FILLED', reduceOnly: true, positionSide: 'BOTH' });
    expect(await venue.positions(['BTCUSDT'])).toEqual([]);
  });

  it('the documented ORDER_TRADE_UPDATE ("Event: Order Update") maps "ps" to positionSide', async () => {
    const doc = fixture<{ payload: { o: { c: string } } }>('usdm/order-trade-update.json').payload;
    const got = log.next<OrderEvent>('the documented ORDER_TRADE_UPDATE', (e) => e.type === 'order' && e.order.clientOrderId === doc.o.c);
    expect(sendRawToUserStreams(ex, JSON.stringify(doc))).toBe(1);
    const { order } = await got;
    expect([order.positionSide, order.type, order.status, order.stopPrice?.toFixed(), order.quantity.toFixed()]).toEqual(['LONG', 'TRAILING_STOP_MARKET', 'NEW', '7103.04', '0.001']);
  });
});

describe('SimVenue USD-M hedge mode (the same engine rules, in process)', () => {
  const clock = new TestClock(T0);
  let venue: SimVenue;

  beforeAll(async () => {
    venue = new SimVenue({ market: 'futures', clock, instruments: catalog('futures'), quoteAsset: 'USDT', balance: d('10000') });
    await venue.start();
    venue.engine.setLastPrice('futures', 'BTCUSDT', d('50000'));
  });

  const place = (v: Venue, o: Partial<Parameters<Venue['place']>[0]> & { clientOrderId: string }) =>
    v.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: d('0.01'), ...o });

  it('configureFutures HEDGE switches the paper account; the legs trade apart; reduceOnly is dropped with LONG/SHORT', async () => {
    expect((await venue.configureFutures({ positionMode: 'HEDGE', symbols: [] })).positionMode).toBe('set');
    expect((await venue.configureFutures({ positionMode: 'HEDGE', symbols: [] })).positionMode).toBe('unchanged');
    expect(await place(venue, { positionSide: 'LONG', clientOrderId: 's-long' })).toMatchObject({ status: 'FILLED', positionSide: 'LONG' });
    expect(await place(venue, { side: 'SELL', quantity: d('0.02'), positionSide: 'SHORT', clientOrderId: 's-short' })).toMatchObject({ status: 'FILLED', positionSide: 'SHORT' });
    expect(legs(await venue.positions())).toEqual([
      ['BTCUSDT', 'LONG', '0.01'],
      ['BTCUSDT', 'SHORT', '-0.02'],
    ]);
    expect(await place(venue, { side: 'SELL', reduceOnly: true, positionSide: 'LONG', clientOrderId: 's-long-close' })).toMatchObject({ status: 'FILLED' });
    expect(legs(await venue.positions())).toEqual([['BTCUSDT', 'SHORT', '-0.02']]);
  });

  it('refuses what Binance refuses: no positionSide in hedge mode, a flat leg closed, a mode switch with a position open', async () => {
    await expectVenueError(place(venue, { clientOrderId: 's-no-side' }), 'REJECTED', 'POSITION_SIDE_MISMATCH');
    await expectVenueError(place(venue, { side: 'SELL', positionSide: 'LONG', clientOrderId: 's-flat' }), 'REJECTED', 'REDUCE_ONLY_REJECTED');
    await expectVenueError(venue.configureFutures({ positionMode: 'ONEWAY', symbols: [] }), 'REJECTED', 'POSITION_EXISTS');
    await place(venue, { quantity: d('0.02'), positionSide: 'SHORT', clientOrderId: 's-short-close' });
    expect((await venue.configureFutures({ positionMode: 'ONEWAY', symbols: [] })).positionMode).toBe('set');
    await expectVenueError(place(venue, { positionSide: 'LONG', clientOrderId: 's-oneway-long' }), 'REJECTED', 'POSITION_SIDE_MISMATCH');
  });
});
