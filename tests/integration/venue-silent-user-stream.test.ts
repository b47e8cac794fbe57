/**
 * A user-data stream that is connected and pinged but delivers nothing.
 * Binance's "Important WebSocket Change Notice" (USD-M,
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice)
 * says connections on the retired URLs stay up while "/market and /private
 * will stop pushing data": the bot's fast path for fills would go quiet
 * with every liveness check green. The local exchange's stall fault keeps
 * the socket and its pings and drops every event, which is that situation.
 * Our acknowledged orders are the probe (src/venues/binance/echo-watch.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { BinanceVenue } from '../../src/venues/binance/binance-venue.ts';
import { venueFor } from '../support/venue-harness.ts';
import type { Market } from '../../src/model/market.ts';
import type { VenueEvent } from '../../src/venues/venue.ts';

const DAY = 86_400_000;
let ex: LocalExchange | undefined;
let venue: BinanceVenue | undefined;
afterEach(async () => {
  await venue?.stop();
  await ex?.close();
  venue = ex = undefined;
});

async function start(market: Market): Promise<{ clock: TestClock; ex: LocalExchange; venue: BinanceVenue; events: VenueEvent[] }> {
  const clock = new TestClock(Date.UTC(2030, 0, 1));
  ex = await LocalExchange.start({ clock, funding: false });
  ex.setPrice(market, 'BTCUSDT', new Dec('50000'));
  venue = venueFor(ex, clock, market, { timers: { streamStaleMs: 0, clockSyncMs: DAY, listenKeyKeepAliveMs: DAY }, reconnect: { baseMs: 100, capMs: 100, random: () => 1 } });
  await venue.start();
  const events: VenueEvent[] = [];
  venue.onEvent((e) => events.push(e));
  return { clock, ex, venue, events };
}

/** Moves the test clock on in steps, letting sockets and timers run in between. */
async function pass(clock: TestClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 500) {
    clock.advanceBy(500);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function until(what: string, pred: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !pred(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a user-data stream that is connected but silent', () => {
  for (const market of ['futures', 'spot'] as const) {
    it(`${market}: two acknowledged orders in a row without an event: reported silent and reconnected; once events flow, no alarm`, async () => {
      const r = await start(market);
      const qty = new Dec(market === 'spot' ? '0.001' : '0.003');
      let n = 0;
      const buy = () => r.venue.place({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: qty, clientOrderId: `echo-${market}-${++n}` });

      // Events flow: every order echoes, nothing is reported.
      await buy();
      await until('the first order event', () => r.events.some((e) => e.type === 'order'));
      await pass(r.clock, 20_000);
      expect(r.venue.userStreamStatus()).toMatchObject({ connected: true, silences: 0 });

      // The feed goes quiet (pings go on): the first order without an event is not yet an alarm...
      r.ex.faults.stalled.add('*');
      const reconnectsBefore = r.venue.userStreamStatus().reconnects;
      await buy();
      await pass(r.clock, 20_000);
      expect(r.venue.userStreamStatus().silences, 'one miss is not a silence').toBe(0);
      // ...the second in a row is: the stream is reconnected.
      await buy();
      await pass(r.clock, 20_000);
      expect(r.venue.userStreamStatus().silences).toBe(1);
      await until('the reconnect', () => r.venue!.userStreamStatus().reconnects > reconnectsBefore && r.venue!.userStreamStatus().connected);

      // Events flow again: the next order echoes and no further alarm is raised.
      r.ex.faults.stalled.clear();
      const seen = r.events.filter((e) => e.type === 'order').length;
      await buy();
      await until('the order event after the reconnect', () => r.events.filter((e) => e.type === 'order').length > seen);
      await pass(r.clock, 40_000);
      expect(r.venue.userStreamStatus().silences).toBe(1);
    });
  }
});
