/**
 * The user-data WebSocket's lifecycle, whatever the protocol on it:
 * user-data.ts supplies the URL, the subscription and the frame handling
 * (UserStreamDeps).
 */
import WebSocket from 'ws';
import { z } from 'zod';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import type { Logger } from '../../core/logger.ts';
import { backoffDelay } from '../../market-data/backoff.ts';
import { VenueError, type UserStreamStatus } from '../venue.ts';

export interface UserStreamDeps {
  clock: Clock;
  log: Logger;
  staleMs: number;
  backoff: { baseMs: number; capMs: number; random: () => number };
  timeoutMs: number;
  bind(stream: UserStream): void;
  /** The URL to connect to (futures: creates or extends the listenKey first). */
  url(): Promise<string>;
  /** After the socket opened (spot: subscribe and await the answer). */
  opened(ws: WebSocket): Promise<void>;
  frame(msg: Record<string, unknown>, text: string): void;
  /** The socket closed: fail whatever waited on it. */
  closed(): void;
  status(s: 'connected' | 'disconnected' | 'reconnected', detail?: string): void;
  started(): void;
  stopped(): void;
}

/**
 * One user-data WebSocket that stays up: reconnects with backoff (full
 * jitter), reports disconnected once per outage and reconnected when back,
 * forces a reconnect when nothing (not even a ping) arrived for staleMs,
 * and can be restarted at once (listenKey expired).
 */
export class UserStream {
  connected = false;
  reconnects = 0;
  malformed = 0;
  lastFrameAt: number | undefined;
  lastKeepAliveAt: number | undefined;
  private ws: WebSocket | undefined;
  private stopped = true;
  private everConnected = false;
  private down = false;
  private attempt = 0;
  /** Bumped by stop() and restart(): a connect that started before is abandoned. */
  private generation = 0;
  private retry: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;

  constructor(private readonly d: UserStreamDeps) {
    d.bind(this);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect(this.generation);
    // stop() during the first connect: set nothing up.
    if (this.stopped) return;
    this.d.started();
    if (this.d.staleMs > 0) {
      this.watchdog = this.d.clock.every(Math.max(1000, Math.min(60_000, Math.floor(this.d.staleMs / 4))), () => {
        const last = this.lastFrameAt;
        if (this.connected && last !== undefined && this.d.clock.now() - last > this.d.staleMs) this.restart(`no frame or ping for ${this.d.staleMs} ms`);
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.retry?.cancel();
    this.retry = undefined;
    this.watchdog?.cancel();
    this.watchdog = undefined;
    this.d.stopped();
    const ws = this.ws;
    this.ws = undefined;
    this.connected = false;
    if (ws) await terminate(ws);
    this.d.closed();
  }

  /** Drops the connection and connects anew without waiting (a planned replacement). */
  restart(reason: string): void {
    if (this.stopped) return;
    this.generation++;
    this.retry?.cancel();
    this.retry = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws) void terminate(ws);
    this.d.closed();
    this.lost(reason, 0);
  }

  keptAlive(): void {
    this.lastKeepAliveAt = this.d.clock.now();
  }

  malformedFrame(text: string, problem: unknown): void {
    this.malformed++;
    const detail = problem instanceof z.ZodError ? problem.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) : String(problem);
    this.d.log.warn({ frame: text.slice(0, 300), problem: detail, malformed: this.malformed }, 'dropping a malformed user-data frame');
  }

  private lost(reason: string, delayMs?: number): void {
    this.connected = false;
    if (this.stopped) return;
    if (!this.down) {
      this.down = true;
      this.d.log.warn({ reason }, 'user-data stream disconnected');
      this.d.status('disconnected', reason);
    }
    if (this.retry) return;
    const delay = delayMs ?? backoffDelay(this.attempt++, this.d.backoff);
    const attempt = (): void => {
      this.retry = undefined;
      const gen = this.generation;
      this.connect(gen).catch((e: unknown) => {
        if (gen !== this.generation || this.stopped) return;
        this.d.log.warn({ err: e, attempt: this.attempt }, 'user-data reconnect failed');
        this.lost(e instanceof Error ? e.message : String(e));
      });
    };
    // A planned replacement goes at once (no timer, so it does not wait on a test clock either).
    if (delay <= 0) attempt();
    else this.retry = this.d.clock.after(delay, attempt);
  }

  /** One connection attempt; returns quietly when stop() or restart() made it obsolete. */
  private async connect(gen: number): Promise<void> {
    const url = await this.d.url();
    if (gen !== this.generation) return;
    const ws = await open(url, this.d.clock, this.d.timeoutMs);
    if (gen !== this.generation) {
      void terminate(ws);
      return;
    }
    this.ws = ws;
    let live = false;
    ws.on('message', (data) => {
      if (this.ws === ws) this.onMessage(data.toString());
    });
    ws.on('ping', () => {
      if (this.ws === ws) this.lastFrameAt = this.d.clock.now();
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.connected = false;
      this.d.closed();
      // A socket that closes while still subscribing fails its connect(), which reports it.
      if (live) this.lost(`closed by the server (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`);
    });
    try {
      await this.d.opened(ws);
    } catch (e) {
      if (this.ws === ws) this.ws = undefined;
      void terminate(ws);
      throw e;
    }
    if (gen !== this.generation || this.ws !== ws) {
      if (this.ws === ws) this.ws = undefined;
      void terminate(ws);
      return;
    }
    live = true;
    this.connected = true;
    this.attempt = 0;
    this.lastFrameAt = this.d.clock.now();
    if (!this.everConnected) {
      this.everConnected = true;
      this.d.status('connected');
    } else if (this.down) {
      this.down = false;
      this.reconnects++;
      this.d.log.info({ reconnects: this.reconnects }, 'user-data stream reconnected');
      this.d.status('reconnected', 'events may have been missed while down: reconcile');
    }
  }

  private onMessage(text: string): void {
    this.lastFrameAt = this.d.clock.now();
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.malformedFrame(text, 'not JSON');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.malformedFrame(text, 'not a JSON object');
    try {
      this.d.frame(msg as Record<string, unknown>, text);
    } catch (e) {
      // A parse that passed zod but still broke (e.g. an odd decimal) is dropped like any bad frame.
      this.malformedFrame(text, e instanceof Error ? e.message : String(e));
    }
  }
}

export function open(url: string, clock: Clock, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    // Always listen for errors: an unhandled 'error' event would crash the process.
    ws.on('error', (e) => {
      if (ws.readyState !== WebSocket.OPEN) done(e);
    });
    const timer = clock.after(timeoutMs, () => done(new Error(`user-data connect timed out after ${timeoutMs} ms`)));
    let settled = false;
    function done(e?: Error): void {
      if (settled) return;
      settled = true;
      timer.cancel();
      if (e) {
        void terminate(ws);
        reject(new VenueError('RETRYABLE', `user-data connect to ${url.replace(/\/ws\/[^/?]+$/, '/ws/<listenKey>').replace(/listenKey=[^&]*/g, 'listenKey=<listenKey>')} failed: ${e.message}`, { cause: e }));
      } else resolve(ws);
    }
    ws.once('open', () => done());
    ws.once('close', (code) => done(new Error(`closed before open (code ${code})`)));
  });
}

/** Closes a socket at once and resolves when it is gone. */
export function terminate(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}

/** What the venue port reports about the stream (userStreamStatus()). */
export function userStreamStatus(s: UserStream | undefined): UserStreamStatus {
  if (!s) return { enabled: false, connected: false, reconnects: 0, malformedFrames: 0 };
  return {
    enabled: true,
    connected: s.connected,
    reconnects: s.reconnects,
    malformedFrames: s.malformed,
    ...(s.lastFrameAt !== undefined ? { lastFrameAt: s.lastFrameAt } : {}),
    ...(s.lastKeepAliveAt !== undefined ? { lastKeepAliveAt: s.lastKeepAliveAt } : {}),
  };
}
