/**
 * The floor for "200 symbols signal in the same minute": how soon 200 order
 * requests can be on the wire at all, measured in the same run as the bot.
 *
 * Binance's published USD-M order limits are 300 orders per 10 s and 1,200
 * per minute per account (src/venues/binance/rate-budget.ts,
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits).
 * 200 orders fit in one 10 s window, so the limits impose no wait: the floor
 * is the time a bare client needs to put 200 signed order requests on the
 * wire. Here that client is the one the bot is built on: ccxt's binanceusdm
 * from createFuturesClient() (no throttle), on its own account of the same
 * local exchange child process, firing 200 createOrder calls at once, timed
 * from the first call to the last request written to a socket (the same
 * net.Socket write stamp as the bot's orders). No frames, no strategy, risk
 * or order rows: only signing, undici and the socket.
 *
 * Spot would differ: 100 orders per 10 s there, so the 101st could go only in
 * the next 10 s window and the floor would include the wait to that window's
 * start (the bot itself refuses such an order rather than sending it late).
 */
import type { LocalAccount } from '../../src/local-exchange/local-exchange.ts';
import { createFuturesClient } from '../../src/venues/binance/ccxt-clients.ts';

/** The floor client's own account, so its orders never count against the bot's budget. */
export const FLOOR_ACCOUNT: LocalAccount = { apiKey: 'bench-floor-api-key', secret: 'bench-floor-api-secret', futures: '100000000' };

export const FLOOR_DEFINITION =
  "USD-M allows 300 orders / 10 s and 1,200 / minute per account (rate-budget.ts; https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits), so 200 orders fit in one window and the limits add no wait. " +
  'floor = the time a bare ccxt binanceusdm client (createFuturesClient, throttle off, markets loaded, its own account on the same local exchange child process) needs from its first createOrder call to the last of 200 concurrent signed order requests written to the socket. ' +
  'bot = from the socket read carrying the first of the 200 closing frames to the last order request written to the socket. ratio = bot / floor (median of the runs; floor and bot runs interleaved). ' +
  'Spot (not measured here) allows 100 orders / 10 s: orders 101-200 could go only in the next 10 s window, which would be added to the floor; the bot refuses those orders instead of sending them late.';

export interface FloorRun {
  /** First createOrder call -> last order request on the wire, ms. */
  ms: number;
  /** Requests seen on the wire / calls answered with an order / calls that failed. */
  onWire: number;
  placed: number;
  failed: number;
  errors: string[];
}

export class FloorClient {
  private readonly ex: ReturnType<typeof createFuturesClient>;
  private runs = 0;
  /** Orders sent per fixed window of the exchange clock, so a run never trips the exchange's own 429. */
  private sent: number[] = [];

  constructor(url: string) {
    this.ex = createFuturesClient({ spotBase: url, futuresBase: url, apiKey: FLOOR_ACCOUNT.apiKey, secret: FLOOR_ACCOUNT.secret });
  }

  async load(): Promise<void> {
    await this.ex.loadMarkets();
  }

  /** Waits until n more orders fit in the account's current 10 s and 1 minute windows (as the exchange counts them). */
  async roomFor(n: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    for (;;) {
      const now = Date.now();
      const in10s = this.sent.filter((t) => Math.floor(t / 10_000) === Math.floor(now / 10_000)).length;
      const in1m = this.sent.filter((t) => Math.floor(t / 60_000) === Math.floor(now / 60_000)).length;
      if (in10s + n <= 300 && in1m + n <= 1200) return;
      await sleep((in1m + n > 1200 ? 60_000 - (now % 60_000) : 10_000 - (now % 10_000)) + 5);
    }
  }

  /**
   * Fires one market order per symbol at once (buys, then sells on the next
   * run, so the account stays near flat). wireAt: the write stamp by client
   * order id (the bench's net.Socket hook fills it).
   */
  async burst(symbols: readonly string[], amount: number, wireAt: ReadonlyMap<string, number>): Promise<FloorRun> {
    const run = ++this.runs;
    const side = run % 2 === 1 ? 'buy' : 'sell';
    const ids = symbols.map((_, i) => `bench-floor-${run}-${i}`);
    const t0 = performance.now();
    const calls = symbols.map((s, i) => this.ex.createOrder(s, 'market', side, amount, undefined, { newClientOrderId: ids[i] }));
    const settled = await Promise.allSettled(calls);
    const now = Date.now();
    for (let i = 0; i < symbols.length; i++) this.sent.push(now);
    this.sent = this.sent.filter((t) => now - t < 60_000);
    const stamps = ids.map((id) => wireAt.get(id)).filter((t): t is number => t !== undefined);
    const errors = [...new Set(settled.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message).slice(0, 160)] : [])))];
    return {
      ms: stamps.length ? Math.max(...stamps) - t0 : NaN,
      onWire: stamps.length,
      placed: settled.filter((r) => r.status === 'fulfilled').length,
      failed: settled.filter((r) => r.status === 'rejected').length,
      errors,
    };
  }

  async close(): Promise<void> {
    const d = (this.ex as unknown as { fetchDispatcher?: { destroy?: () => Promise<void> } }).fetchDispatcher;
    await d?.destroy?.().catch(() => undefined);
  }
}
