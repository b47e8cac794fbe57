/**
 * One combined-stream WebSocket to Binance (or the local exchange):
 * reconnects with exponential backoff and full jitter, declares itself stale
 * when it goes quiet (then forces a reconnect), and rotates to a fresh
 * connection before Binance's 24-hour limit, overlapping old and new until
 * the new one talks, so no frame is missed (duplicates are dropped upstream).
 * Pings from the server are answered by the ws client itself.
 */
import WebSocket from 'ws';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';

export type ConnectionStatus = 'connecting' | 'live' | 'stale' | 'down' | 'closed';

export interface StreamConnectionOptions {
  id: string;
  /** Builds the URL carrying every stream of this connection (used at each (re)connect). */
  url: (streams: readonly string[]) => string;
  streams: readonly string[];
  /** Incoming-message budget of the server (Binance: 5/s spot, 10/s futures); SUBSCRIBEs stay under it. */
  maxMessagesPerSec: number;
  clock: Clock;
  logger: Logger;
  backoff: BackoffOptions;
  /** No message for this long marks the connection stale and forces a reconnect. */
  stallMs: number;
  /** Rotate before this age (Binance closes connections at 24 h). */
  maxLifetimeMs: number;
  onFrame(text: string): void;
  onStatus(status: ConnectionStatus, detail: string): void;
  /** After a connection that had been live is re-established (not the first connect). */
  onReconnected(): void;
}

export class StreamConnection {
  status: ConnectionStatus = 'connecting';
  reconnects = 0;
  /** Planned renewals before the lifetime limit (not failures). */
  rotations = 0;
  lastMessageAt = 0;
  lastError = '';
  /** True once any socket of this connection has received a message. */
  everLive = false;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private connectedAt = 0;
  private retryTimer: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;
  private rotating = false;

  private streamList: string[];
  private readonly outbox: string[] = [];
  private sender: TimerHandle | undefined;
  private nextId = 1;

  constructor(readonly o: StreamConnectionOptions) {
    this.streamList = [...o.streams];
  }

  get streams(): readonly string[] {
    return this.streamList;
  }

  /**
   * Adds streams: a SUBSCRIBE now (paced under the server's message budget)
   * and part of the URL for every later reconnect.
   */
  addStreams(streams: readonly string[]): void {
    const fresh = streams.filter((s) => !this.streamList.includes(s));
    if (fresh.length === 0) return;
    this.streamList.push(...fresh);
    this.outbox.push(JSON.stringify({ method: 'SUBSCRIBE', params: fresh, id: this.nextId++ }));
    this.pump();
  }

  private pump(): void {
    if (this.sender || this.outbox.length === 0) return;
    // One message per interval, below the budget (e.g. 4/s where 5/s is the limit).
    const interval = Math.ceil(1000 / Math.max(1, this.o.maxMessagesPerSec - 1));
    const send = (): void => {
      const msg = this.outbox[0];
      if (msg === undefined || this.stopped) {
        this.sender?.cancel();
        this.sender = undefined;
        return;
      }
      // Not connected: the URL of the next connect carries the streams already.
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(msg);
      this.outbox.shift();
    };
    send();
    this.sender = this.o.clock.every(interval, send);
  }

  start(): void {
    this.watchdog = this.o.clock.every(Math.max(100, Math.min(1000, this.o.stallMs / 4)), () => this.check());
    this.open(false);
  }

  stop(): void {
    this.stopped = true;
    this.retryTimer?.cancel();
    this.watchdog?.cancel();
    this.sender?.cancel();
    this.ws?.removeAllListeners();
    this.ws?.on('error', () => undefined);
    this.ws?.terminate();
    this.setStatus('closed', 'stopped');
  }

  private open(isRotation: boolean): void {
    const ws = new WebSocket(this.o.url(this.streamList), { handshakeTimeout: 10_000 });
    const wasLive = this.everLive;
    let first = true;
    if (!isRotation) {
      // Silence is measured from the open; a connection that opens but never talks is stale.
      ws.on('open', () => (this.lastMessageAt = this.o.clock.now()));
    }
    ws.on('message', (data) => {
      this.lastMessageAt = this.o.clock.now();
      if (first) {
        first = false;
        // Live means data arrives, not merely that the socket opened.
        if (!isRotation) {
          this.attempt = 0;
          this.everLive = true;
          this.setStatus('live', 'receiving');
          if (wasLive) this.o.onReconnected();
        }
        if (isRotation) {
          // The new socket talks: retire the old one.
          const old = this.ws;
          this.ws = ws;
          this.connectedAt = this.o.clock.now();
          this.rotating = false;
          this.rotations++;
          old?.removeAllListeners();
          old?.on('error', () => undefined);
          old?.close();
          this.o.logger.info({ connection: this.o.id }, `connection ${this.o.id} rotated before the 24 h limit`);
        }
      }
      this.o.onFrame(data.toString());
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
    });
    ws.on('close', () => {
      if (this.stopped || (isRotation && this.ws !== ws)) return;
      if (this.ws !== ws) return;
      this.scheduleReconnect();
    });
    if (!isRotation) {
      this.ws = ws;
      this.connectedAt = this.o.clock.now();
      this.lastMessageAt = this.o.clock.now();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++, this.o.backoff);
    this.reconnects++;
    this.setStatus(this.everLive ? 'stale' : 'down', `reconnecting in ${delay} ms${this.lastError ? ` (${this.lastError})` : ''}`);
    this.retryTimer = this.o.clock.after(delay, () => {
      if (this.stopped) return;
      this.setStatus('connecting', `attempt ${this.attempt}`);
      this.open(false);
    });
  }

  /** Watchdog: stall detection and the planned 24 h rotation. */
  private check(): void {
    if (this.stopped || !this.ws) return;
    const now = this.o.clock.now();
    if ((this.status === 'live' || this.status === 'connecting') && this.ws.readyState !== WebSocket.CLOSED && now - this.lastMessageAt > this.o.stallMs) {
      this.o.logger.warn({ connection: this.o.id, silentMs: now - this.lastMessageAt }, `connection ${this.o.id} silent for ${now - this.lastMessageAt} ms: stale, reconnecting`);
      this.setStatus('stale', `no message for ${now - this.lastMessageAt} ms`);
      // terminate() fires 'close', which schedules the reconnect.
      this.ws.terminate();
      return;
    }
    if (this.status === 'live' && !this.rotating && now - this.connectedAt > this.o.maxLifetimeMs) {
      this.rotating = true;
      this.open(true);
    }
  }

  private setStatus(status: ConnectionStatus, detail: string): void {
    if (this.status === status && status !== 'stale') return;
    this.status = status;
    this.o.onStatus(status, detail);
  }
}
