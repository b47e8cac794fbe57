/**
 * Shared pieces for tests of the Binance venue against the local exchange:
 * a venue on the test clock, an event log with waits registered before the
 * action (no sleeps), a VenueError matcher, raw frames to the user-data
 * connections, and the documented Binance payloads kept under
 * tests/fixtures/binance/.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { TestClock } from '../../src/core/clock.ts';
import { DEFAULT_ACCOUNT, type LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Market } from '../../src/model/market.ts';
import { BinanceVenue, type BinanceVenueOptions } from '../../src/venues/binance/binance-venue.ts';
import { createFuturesClient, createSpotClient } from '../../src/venues/binance/ccxt-clients.ts';
import { VenueError, type Venue, type VenueErrorKind, type VenueEvent, type VenueFill, type VenueOrder } from '../../src/venues/venue.ts';

export function venueFor(ex: LocalExchange, clock: TestClock, market: Market, o: Partial<BinanceVenueOptions> = {}): BinanceVenue {
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
    timers: { streamStaleMs: 0 },
    reconnect: { baseMs: 500, capMs: 500, random: () => 1 },
    ...o,
  });
}

/**
 * The raw ccxt clients (the project's factory) for requests the venue
 * deliberately never sends; they sign with the test clock, as the venue does.
 */
export function rawClients(ex: LocalExchange, clock: TestClock): { spot: ReturnType<typeof createSpotClient>; futures: ReturnType<typeof createFuturesClient> } {
  const o = { spotBase: ex.url, futuresBase: ex.url, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret, enableRateLimit: false };
  const spot = createSpotClient(o);
  const futures = createFuturesClient(o);
  for (const c of [spot, futures] as Array<{ nonce: () => number }>) c.nonce = () => clock.now();
  return { spot, futures };
}

/** Records every event and resolves waits on them (registered before the action). */
export class EventLog {
  readonly events: VenueEvent[] = [];
  private waiters: Array<{ pred: (e: VenueEvent) => boolean; resolve: (e: VenueEvent) => void }> = [];
  readonly off: () => void;

  constructor(venue: Pick<Venue, 'onEvent'>) {
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

  /** The first order event from now on for clientOrderId with the given status. */
  order(clientOrderId: string, status: VenueOrder['status']): Promise<{ order: VenueOrder; fill?: VenueFill }> {
    return this.next(`${clientOrderId} ${status}`, (e) => e.type === 'order' && e.order.clientOrderId === clientOrderId && e.order.status === status) as Promise<{ order: VenueOrder; fill?: VenueFill }>;
  }

  fillOf(clientOrderId: string): Promise<{ order: VenueOrder; fill: VenueFill }> {
    return this.next(`fill of ${clientOrderId}`, (e) => e.type === 'order' && e.fill !== undefined && e.order.clientOrderId === clientOrderId) as Promise<{ order: VenueOrder; fill: VenueFill }>;
  }
}

export async function expectVenueError(p: Promise<unknown>, kind: VenueErrorKind, code?: number | string): Promise<VenueError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected VenueError ${kind}, but the call succeeded`).toBeInstanceOf(VenueError);
  const e = caught as VenueError;
  expect(e.kind, e.message).toBe(kind);
  if (code !== undefined) expect(e.details.code, e.message).toBe(code);
  return e;
}

/** Awaits p and returns what it threw (a ccxt error carries Binance's JSON in its message). */
export async function thrown(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Sends text as it is to every user-data connection of the local exchange. */
export function sendRawToUserStreams(ex: LocalExchange, text: string): number {
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

/** A documented Binance payload kept as a fixture (tests/fixtures/binance/<path>). */
export function fixture<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/binance/${path}`, import.meta.url), 'utf8')) as T;
}

/** Every key path of a JSON value ("a", "a.b", "list[].c"), for comparing a payload's shape with the documented one. */
export function keyPaths(v: unknown, prefix = ''): string[] {
  if (Array.isArray(v)) return v.length === 0 ? [] : [...new Set(v.flatMap((x) => keyPaths(x, `${prefix}[]`)))].sort();
  if (v === null || typeof v !== 'object') return [];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const p = prefix ? `${prefix}.${k}` : k;
    out.push(p, ...keyPaths(x, p));
  }
  return [...new Set(out)].sort();
}
