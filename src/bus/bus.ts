/**
 * The typed in-process bus: the only way engines talk to each other.
 *
 * Rules (DESIGN.md):
 *  - handlers are synchronous; async work goes through the owning
 *    component's own queue, so no rejected promise is ever lost here;
 *  - a throwing handler is caught and logged, the other handlers still run,
 *    and the failure is published as `component.fault`;
 *  - a publish made while handlers run is queued and delivered after the
 *    current event reaches all its handlers (breadth first, FIFO), so the
 *    order of events never depends on handler nesting;
 *  - a command channel has exactly one handler: a second registration is a
 *    wiring bug and throws, as does publishing a command nobody handles.
 */
import { EventEmitter } from 'eventemitter3';
import type { Clock } from '../core/clock.ts';
import { describeError, TraderError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { COMMAND_CHANNELS, type Channel, type Channels, type CommandChannel } from '../model/events.ts';

export type Handler<C extends Channel> = (payload: Channels[C]) => void;

/** Subscribe to this to receive every signal.<strategy> event. */
export const ALL_SIGNALS = 'signal.*' as const;

const COMMANDS: ReadonlySet<string> = new Set(COMMAND_CHANNELS);

export interface BusDeps {
  logger: Logger;
  clock: Clock;
  /**
   * Freeze every payload (default true). Freezing is what turns a handler
   * mutating a shared payload into an immediate, reported error; it costs
   * about 50 ns per event. A throughput-bound run (a backtest or optimizer
   * over code the test suite has already exercised with freezing on) may
   * turn it off.
   */
  freezePayloads?: boolean;
  /**
   * Told how long each event took to reach all its handlers (seconds), for
   * /metrics' event_processing_seconds. Absent: nothing is timed.
   */
  onDispatched?: (channel: string, seconds: number) => void;
}

export class Bus {
  private readonly ee = new EventEmitter();
  /** Pending deliveries as flat [channel, payload, channel, payload, ...]. */
  private readonly queue: unknown[] = [];
  private head = 0;
  private draining = false;
  private closed = false;
  private readonly commandOwners = new Map<string, string>();
  private published = 0;
  private faults = 0;

  private readonly freeze: boolean;

  constructor(private readonly deps: BusDeps) {
    this.freeze = deps.freezePayloads ?? true;
  }

  /**
   * Subscribes `component` to an event channel. Returns the unsubscribe
   * function. `component` names the subscriber in fault reports.
   */
  on<C extends Channel>(channel: C, handler: Handler<C>, component: string): () => void {
    if (COMMANDS.has(channel)) {
      throw new TraderError('BUS_DUPLICATE_HANDLER', `"${channel}" is a command: register its one handler with handle(), not on() (component ${component})`);
    }
    return this.subscribe(channel, handler, component);
  }

  /**
   * Watches any channel, commands included, without handling it: for the
   * journal and metrics, which must see every order request but are not its
   * handler. Observers must never publish commands.
   */
  observe<C extends Channel>(channel: C, handler: Handler<C>, component: string): () => void {
    return this.subscribe(channel, handler, component);
  }

  /** Registers the one handler of a command channel. */
  handle<C extends CommandChannel>(channel: C, handler: Handler<C>, component: string): () => void {
    const owner = this.commandOwners.get(channel);
    if (owner !== undefined) {
      throw new TraderError('BUS_DUPLICATE_HANDLER', `command "${channel}" already has a handler (${owner}); ${component} cannot register a second one`);
    }
    this.commandOwners.set(channel, component);
    const off = this.subscribe(channel, handler, component);
    return () => {
      off();
      this.commandOwners.delete(channel);
    };
  }

  /**
   * Publishes a payload. The payload is frozen: handlers share it and must
   * never change it. Delivery happens before publish returns, unless this
   * publish comes from inside a handler, in which case it is queued behind
   * the events already waiting.
   */
  publish<C extends Channel>(channel: C, payload: Channels[C]): void {
    if (this.closed) {
      this.deps.logger.warn({ channel, kind: payload.kind }, 'bus closed: event dropped');
      return;
    }
    if ((channel as string) === ALL_SIGNALS) throw new TraderError('BUS_NO_HANDLER', `"${ALL_SIGNALS}" is for subscribing; publish on signal.<strategy>`);
    if (COMMANDS.has(channel) && !this.commandOwners.has(channel)) {
      throw new TraderError('BUS_NO_HANDLER', `command "${channel}" has no handler registered`);
    }
    if (this.freeze) Object.freeze(payload);
    if (this.draining) {
      // Published from inside a handler: delivered after the current event.
      this.queue.push(channel, payload);
      return;
    }
    this.draining = true;
    try {
      this.dispatch(channel, payload);
      if (this.queue.length > 0) this.drainQueue();
    } finally {
      this.queue.length = 0;
      this.head = 0;
      this.draining = false;
    }
  }

  /** Stops accepting events; anything published afterwards is logged and dropped. */
  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  listenerCount(channel: Channel): number {
    return this.ee.listenerCount(channel);
  }

  stats(): { published: number; faults: number } {
    return { published: this.published, faults: this.faults };
  }

  private dispatch(channel: string, payload: unknown): void {
    this.published++;
    const timed = this.deps.onDispatched;
    const t0 = timed ? performance.now() : 0;
    this.ee.emit(channel, payload);
    if (channel.startsWith('signal.')) this.ee.emit(ALL_SIGNALS, payload);
    if (timed) timed(channel, (performance.now() - t0) / 1000);
  }

  private drainQueue(): void {
    const q = this.queue;
    while (this.head < q.length) {
      const channel = q[this.head] as string;
      const payload = q[this.head + 1];
      q[this.head] = q[this.head + 1] = undefined;
      this.head += 2;
      this.dispatch(channel, payload);
    }
  }

  private subscribe<C extends Channel>(channel: C, handler: Handler<C>, component: string): () => void {
    const wrapped = (payload: Channels[C]): void => {
      try {
        handler(payload);
      } catch (err) {
        this.onHandlerError(component, channel, err);
      }
    };
    this.ee.on(channel, wrapped);
    return () => {
      this.ee.off(channel, wrapped);
    };
  }

  private onHandlerError(component: string, channel: string, err: unknown): void {
    this.faults++;
    const error = describeError(err);
    this.deps.logger.error({ component, channel, err }, `handler of ${component} threw on ${channel}: ${error.message}`);
    // A fault inside a fault handler is only logged: republishing it could loop forever.
    if (channel === 'component.fault' || this.closed) return;
    this.publish('component.fault', { kind: 'component.fault', ts: this.deps.clock.now(), component, channel, error });
  }
}
