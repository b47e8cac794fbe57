/**
 * The outbox of one notification channel (Telegram, Slack).
 *
 * Why it exists: trading must never wait for a chat service. push() only
 * appends to a bounded queue; the sending happens later, one request at a
 * time, on the injected clock:
 *
 *  - at most one message per minIntervalMs: lines that arrive meanwhile are
 *    merged into the next message (joined by newlines, up to the platform's
 *    size limit; what does not fit follows in the next one, announced as
 *    "(+N more)"); a synchronous burst (one bus delivery) becomes one message;
 *  - a failed send is retried `retries` times with exponential backoff (or
 *    after the server's retry_after), then dropped and counted;
 *  - every request goes through the channel's CircuitBreaker: while it is
 *    OPEN nothing is sent and lines wait (the queue drops its oldest lines
 *    when full, counted, so a dead endpoint cannot grow memory);
 *  - every request has a timeout, and stop() aborts the one in flight.
 */
import { CircuitOpenError, type BreakerView, type CircuitBreaker } from '../core/circuit-breaker.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { requestSignal, SendError } from './http.ts';

/** Sends one message over one platform. */
export interface Transport {
  /** Names the channel in logs, /health and the heartbeat ("telegram", "slack"). */
  readonly name: string;
  /** Longest text one message may carry (platform limit). */
  readonly maxChars: number;
  /** Sends text; throws SendError (or anything, treated as a retryable outage). */
  send(text: string, signal: AbortSignal): Promise<void>;
}

export interface ChannelOptions {
  transport: Transport;
  breaker: CircuitBreaker;
  clock: Clock;
  logger: Logger;
  minIntervalMs: number;
  /** Retries after the first failed attempt of a message. */
  retries: number;
  /** Per request (default 10 s). */
  requestTimeoutMs?: number;
  /** Lines kept waiting at most; the oldest go first (default 500). */
  maxQueue?: number;
  /** First retry delay; doubles per retry, capped at 60 s (default 1 s). */
  backoffMs?: number;
  /** First line of every message (e.g. which bot is talking). */
  header?: string;
}

export type WaitReason = 'rate-limit' | 'backoff' | 'breaker';

export interface ChannelView {
  readonly channel: string;
  readonly breaker: BreakerView;
  /** Lines waiting to go (including a message waiting for its retry). */
  readonly queued: number;
  readonly inFlight: boolean;
  readonly waiting?: { readonly reason: WaitReason; readonly until: string };
  /** Messages (HTTP requests) delivered. */
  readonly sent: number;
  /** Lines (events) delivered. */
  readonly delivered: number;
  /** Lines that went out merged into a message with others. */
  readonly merged: number;
  /** Requests that failed. */
  readonly failed: number;
  /** Retries scheduled. */
  readonly retried: number;
  /** Lines given up on: retries exhausted, a 4xx answer, or pushed out of a full queue. */
  readonly dropped: number;
  readonly lastSentAt?: string;
  readonly lastError?: string;
}

interface Batch {
  readonly lines: number;
  readonly text: string;
  attempts: number;
  notBefore: number;
}

const MAX_BACKOFF_MS = 60_000;
/** Room kept at the end of a message for the "(+N more)" line. */
const TAIL_RESERVE = 32;

export class Channel {
  private readonly queue: string[] = [];
  private current: Batch | undefined;
  private inFlight: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private waiting: { reason: WaitReason; until: number } | undefined;
  private scheduled = false;
  private stopped = false;
  private readonly abort = new AbortController();
  /** Earliest time the next message may start (rate limit). */
  private nextSendAt = 0;
  private droppedSinceNote = 0;
  private lastSentAt: number | undefined;
  private lastError: string | undefined;
  private readonly stats = { sent: 0, delivered: 0, merged: 0, failed: 0, retried: 0, dropped: 0 };

  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;

  constructor(private readonly o: ChannelOptions) {
    this.maxQueue = Math.max(1, o.maxQueue ?? 500);
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
    this.backoffMs = o.backoffMs ?? 1000;
  }

  get name(): string {
    return this.o.transport.name;
  }

  /** Queues one entry (an event's text, a command's reply). Never throws, never waits. */
  push(text: string): void {
    if (this.stopped) return;
    // A text longer than one message (a long /positions reply) is split at line ends and follows over several.
    const room = this.o.transport.maxChars - TAIL_RESERVE - (this.o.header ? this.o.header.length + 1 : 0) - 80;
    if (text.length > room) {
      for (const part of splitLines(text, room)) this.add(part);
    } else this.add(text);
    this.schedule();
  }

  private add(text: string): void {
    this.queue.push(text);
    // The bound covers the message waiting for its retry too: that is what memory holds.
    if (this.queue.length + (this.current?.lines ?? 0) > this.maxQueue && this.queue.length > 0) {
      this.queue.shift();
      this.stats.dropped++;
      this.droppedSinceNote++;
    }
  }

  /** Stops sending: cancels the timer, aborts the request in flight and waits for it to unwind. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.waiting = undefined;
    this.abort.abort();
    await this.inFlight;
  }

  view(): ChannelView {
    const waiting = this.waiting;
    return {
      channel: this.name,
      breaker: this.o.breaker.view(),
      queued: this.queue.length + (this.current?.lines ?? 0),
      inFlight: this.inFlight !== undefined,
      ...(waiting ? { waiting: { reason: waiting.reason, until: new Date(waiting.until).toISOString() } } : {}),
      ...this.stats,
      ...(this.lastSentAt !== undefined ? { lastSentAt: new Date(this.lastSentAt).toISOString() } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Runs the pump once the current synchronous work is done, so a burst is merged. */
  private schedule(): void {
    if (this.scheduled || this.inFlight || this.timer || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.safePump();
    });
  }

  /** Sends the next message if it may go now, or arms the one timer that says when. */
  private pump(): void {
    if (this.stopped || this.inFlight || this.timer) return;
    const now = this.o.clock.now();
    if (!this.current) {
      if (this.queue.length === 0) return;
      // Take lines as late as possible: everything queued until the slot opens is merged.
      if (now < this.nextSendAt) return this.wait('rate-limit', this.nextSendAt);
      this.current = this.take();
    }
    const batch = this.current;
    // While OPEN nothing is sent and the lines wait (bounded) until a trial call may go.
    if (this.o.breaker.state() === 'OPEN') {
      const retryAt = this.o.breaker.view().retryAt;
      return this.wait('breaker', Math.max(retryAt ? Date.parse(retryAt) : now + this.o.minIntervalMs, batch.notBefore, now + 1));
    }
    if (now < batch.notBefore) return this.wait('backoff', batch.notBefore);
    try {
      this.o.breaker.acquire();
    } catch (err) {
      // HALF_OPEN here means another caller (Telegram's command polling) holds the trial call: look again soon.
      if (err instanceof CircuitOpenError) return this.wait('breaker', this.o.breaker.state() === 'HALF_OPEN' ? now + this.o.minIntervalMs : Math.max(err.retryAt, now + 1));
      throw err;
    }
    this.nextSendAt = now + this.o.minIntervalMs;
    this.inFlight = this.attempt(batch)
      .catch((err: unknown) => this.o.logger.warn({ channel: this.name, err }, `${this.name}: send attempt failed unexpectedly`))
      .finally(() => {
        this.inFlight = undefined;
        this.safePump();
      });
  }

  /** pump() for callbacks (microtask, timer, promise): a bug here must never surface in trading code. */
  private safePump(): void {
    try {
      this.pump();
    } catch (err) {
      this.o.logger.warn({ channel: this.name, err }, `${this.name}: outbox pump failed`);
    }
  }

  private wait(reason: WaitReason, until: number): void {
    this.waiting = { reason, until };
    this.timer = this.o.clock.after(until - this.o.clock.now(), () => {
      this.timer = undefined;
      this.waiting = undefined;
      this.safePump();
    });
  }

  private async attempt(batch: Batch): Promise<void> {
    const { breaker, clock, logger, transport } = this.o;
    const req = requestSignal(clock, this.timeoutMs, this.abort.signal);
    try {
      await transport.send(batch.text, req.signal);
      breaker.success();
      this.stats.sent++;
      this.stats.delivered += batch.lines;
      this.lastSentAt = clock.now();
      this.current = undefined;
    } catch (raw) {
      // Stopping aborts the request: that is not the endpoint's fault, so the breaker is not told.
      if (this.stopped) return;
      const err = raw instanceof SendError ? raw : new SendError(`${this.name}: send failed (${raw instanceof Error ? raw.name : 'unknown'})`, { retryable: true, outage: true });
      if (err.outage) breaker.failure(err);
      else breaker.success();
      this.stats.failed++;
      this.lastError = err.message;
      batch.attempts++;
      if (!err.retryable || batch.attempts > this.o.retries) {
        this.stats.dropped += batch.lines;
        this.current = undefined;
        // warn, never error: ERROR lines are themselves notified, and a dead notifier must not feed itself.
        logger.warn({ channel: this.name, lines: batch.lines, attempts: batch.attempts, error: err.message }, `${this.name}: message dropped after ${batch.attempts} attempt(s): ${err.message}`);
        return;
      }
      const backoff = Math.min(this.backoffMs * 2 ** (batch.attempts - 1), MAX_BACKOFF_MS);
      batch.notBefore = clock.now() + Math.max(backoff, err.retryAfterMs ?? 0);
      this.stats.retried++;
      logger.debug({ channel: this.name, attempt: batch.attempts, retryInMs: batch.notBefore - clock.now(), error: err.message }, `${this.name}: send failed, will retry`);
    } finally {
      req.dispose();
    }
  }

  /** Takes as many queued lines as fit one message. */
  private take(): Batch {
    const limit = this.o.transport.maxChars - TAIL_RESERVE;
    const parts: string[] = [];
    let size = 0;
    const add = (line: string): void => {
      parts.push(line);
      size += line.length + 1;
    };
    if (this.o.header) add(clip(this.o.header, limit));
    if (this.droppedSinceNote > 0) {
      add(`(${this.droppedSinceNote} older message${this.droppedSinceNote === 1 ? '' : 's'} dropped: ${this.name} queue full)`);
      this.droppedSinceNote = 0;
    }
    let lines = 0;
    while (this.queue.length > 0) {
      const line = clip(this.queue[0]!, limit - size);
      // One line always goes, clipped if it alone is too long; further lines only if whole.
      if (lines > 0 && line !== this.queue[0]) break;
      add(line);
      this.queue.shift();
      lines++;
    }
    if (this.queue.length > 0) parts.push(`(+${this.queue.length} more)`);
    if (lines > 1) this.stats.merged += lines - 1;
    return { lines, text: parts.join('\n'), attempts: 0, notBefore: 0 };
  }
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return text.slice(0, Math.max(0, max - 1)) + '…';
}

/** Cuts text into parts of at most max chars, at line ends where it can (a longer line is clipped). */
function splitLines(text: string, max: number): string[] {
  const parts: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = clip(raw, max);
    if (cur && cur.length + 1 + line.length > max) {
      parts.push(cur);
      cur = line;
    } else cur = cur ? `${cur}\n${line}` : line;
  }
  if (cur) parts.push(cur);
  return parts;
}
