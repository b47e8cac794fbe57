/**
 * A user-data stream can be connected, answer pings, and deliver nothing.
 * Binance's notice on the USD-M WebSocket split says connections on the
 * retired URLs stay open while "/market and /private will stop pushing
 * data": pings prove the socket, not the feed, and the bot would ride on its
 * REST poll without knowing (the run did, on a URL that had moved).
 *
 * Our own placements are the probe: an order the exchange acknowledged must
 * come back as a stream event within echoMs. When `limit` acknowledged
 * orders in a row get none while the stream says it is connected, the stream
 * is reported silent (onSilent: the venue reconnects it and logs why). An
 * event that arrives before the REST answer counts (the stream is often the
 * faster of the two).
 */
import type { Clock, TimerHandle } from '../../core/clock.ts';

export interface EchoWatchOptions {
  /** How long an acknowledged order may wait for its first event (default 15 s). */
  echoMs: number;
  /** Orders in a row without an event before the stream counts as silent (default 2). */
  limit: number;
}

export const DEFAULT_ECHO_WATCH: EchoWatchOptions = { echoMs: 15_000, limit: 2 };

export class EchoWatch {
  private readonly opts: EchoWatchOptions;
  /** Acknowledged orders waiting for their first event: client id -> deadline. */
  private readonly waiting = new Map<string, number>();
  /** Client ids seen in events lately (an event may beat the REST answer): id -> when. */
  private readonly seen = new Map<string, number>();
  private misses = 0;
  private timer: TimerHandle | undefined;
  /** How many times the stream was found silent. */
  silences = 0;

  constructor(
    private readonly clock: Clock,
    private readonly connected: () => boolean,
    private readonly onSilent: (missed: number) => void,
    opts: Partial<EchoWatchOptions> = {},
  ) {
    this.opts = { ...DEFAULT_ECHO_WATCH, ...opts };
  }

  start(): void {
    this.timer ??= this.clock.every(Math.max(1000, Math.floor(this.opts.echoMs / 3)), () => this.check());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.waiting.clear();
    this.seen.clear();
  }

  /** The exchange acknowledged this order (REST answer). */
  placed(clientOrderId: string): void {
    if (this.seen.has(clientOrderId)) return this.hit();
    this.waiting.set(clientOrderId, this.clock.now() + this.opts.echoMs);
  }

  /** A stream event about this order arrived. */
  echoed(clientOrderId: string): void {
    if (this.waiting.delete(clientOrderId)) return this.hit();
    this.seen.set(clientOrderId, this.clock.now());
  }

  /** The socket went down: what was waiting is the reconnect's (and the poll's) business, not a silence. */
  reset(): void {
    this.waiting.clear();
    this.misses = 0;
  }

  check(): void {
    const now = this.clock.now();
    for (const [id, at] of this.seen) if (now - at > 2 * this.opts.echoMs) this.seen.delete(id);
    if (!this.connected()) return this.reset();
    let expired = 0;
    for (const [id, deadline] of this.waiting) {
      if (deadline > now) continue;
      this.waiting.delete(id);
      expired++;
    }
    if (expired === 0) return;
    this.misses += expired;
    if (this.misses < this.opts.limit) return;
    const missed = this.misses;
    this.misses = 0;
    this.silences++;
    this.onSilent(missed);
  }

  private hit(): void {
    this.misses = 0;
  }
}
