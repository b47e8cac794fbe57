/**
 * Notifications: bus events, ERROR logs and a daily summary out to Telegram
 * and Slack (each optional), and the operator's Telegram commands in.
 *
 * Trading never waits for this component: bus handlers only format a line
 * and queue it on each channel's outbox (see channel.ts for rate limit,
 * merging, retries, circuit breaker and the bounded queue), and nothing here
 * throws into the caller.
 *
 * Every text is scrubbed of known secret values before it is queued; the
 * Telegram token and the Slack webhook URL are always among them.
 */
import { ALL_SIGNALS, type Bus } from '../bus/bus.ts';
import { CircuitBreaker } from '../core/circuit-breaker.ts';
import { utcDayStart, type Clock, type TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { ValueScrubber } from '../core/redact.ts';
import type { Secret } from '../core/secret.ts';
import type { OrderUpdate, RiskStateChanged } from '../model/events.ts';
import type { BotConfig, NotifyEvent } from '../settings/bot-config.ts';
import { Channel, type ChannelView, type Transport } from './channel.ts';
import { ErrorDeduper, type ErrorEntry } from './error-dedup.ts';
import { dailySummaryMessage, killSwitchMessage, orderFailedMessage, orderFilledMessage, riskMessage, signalMessage, type DailySummary } from './messages.ts';
import { SlackTransport } from './slack.ts';
import { CommandPoller, TelegramApi, TelegramTransport, type BotCommands, type CommandPollerView } from './telegram.ts';

export type { BotCommands } from './telegram.ts';
export type { DailySummary } from './messages.ts';

export interface NotificationsDeps {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  config: BotConfig['notifications'];
  breaker: BotConfig['circuitBreaker'];
  telegram?: { apiUrl: string; token: Secret; chatId: string } | undefined;
  slack?: { webhookUrl: Secret } | undefined;
  /** What Telegram commands do (each returns the reply text); without it, no polling. */
  commands?: BotCommands | undefined;
  /** Figures for the 00:00 UTC summary of the day that just ended (dayStart = its 00:00 UTC, ms). */
  summary?: ((dayStart: number) => DailySummary | Promise<DailySummary>) | undefined;
  /** Cuts known secret values out of text before it leaves (ValueScrubber.scrub). */
  scrub?: ((text: string) => string) | undefined;
  /** First line of every message, e.g. "trader testnet": tells bots sharing a chat apart. */
  title?: string | undefined;
  /** Knobs for tests and unusual setups; the defaults suit production. */
  tuning?: NotificationsTuning | undefined;
}

export interface NotificationsTuning {
  /** Per HTTP request (default 10 s). */
  requestTimeoutMs?: number;
  /** Lines an outbox keeps waiting (default 500). */
  maxQueue?: number;
  /** First retry delay, doubling (default 1 s). */
  backoffMs?: number;
  /** Telegram long-poll wait (default 25 s). */
  pollTimeoutSec?: number;
  /** Window in which repeats of one ERROR line are merged (default 15 min). */
  errorWindowMs?: number;
}

export interface NotificationsView {
  /** False when no channel is configured (the component then does nothing). */
  readonly enabled: boolean;
  readonly events: readonly NotifyEvent[];
  readonly channels: readonly ChannelView[];
  readonly commands?: CommandPollerView;
  /** ERROR lines merged into an earlier one since start. */
  readonly errorsMerged: number;
}

const DAY_MS = 86_400_000;
/** Order ids remembered to notify each fill or failure once (an update can be re-applied by polling or reconciliation). */
const SEEN_ORDERS = 2000;
/** Components whose own ERROR lines are not notified (a failing notifier must not feed itself). */
const SELF = 'notifications';

export class Notifications {
  private readonly channels: Channel[] = [];
  private readonly telegramChannel: Channel | undefined;
  private readonly poller: CommandPoller | undefined;
  private readonly events: ReadonlySet<NotifyEvent>;
  private readonly errors: ErrorDeduper;
  private readonly scrubber: ValueScrubber;
  private readonly log: Logger;
  private readonly seenOrders = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private dailyTimer: TimerHandle | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly deps: NotificationsDeps) {
    const { clock, config, tuning = {} } = deps;
    this.log = deps.logger.child({ component: SELF });
    this.events = new Set(config.events);
    const secrets: string[] = [];
    if (deps.telegram) secrets.push(deps.telegram.token.reveal());
    if (deps.slack) secrets.push(deps.slack.webhookUrl.reveal());
    this.scrubber = new ValueScrubber(secrets);

    const channel = (transport: Transport, breaker: CircuitBreaker): Channel => {
      const c = new Channel({
        transport,
        breaker,
        clock,
        logger: this.log.child({ channel: transport.name }),
        minIntervalMs: config.minIntervalMs,
        retries: config.retries,
        requestTimeoutMs: tuning.requestTimeoutMs,
        maxQueue: tuning.maxQueue,
        backoffMs: tuning.backoffMs,
        header: deps.title,
      });
      this.channels.push(c);
      return c;
    };

    if (deps.telegram) {
      const api = new TelegramApi(deps.telegram);
      const breaker = this.breaker('telegram');
      this.telegramChannel = channel(new TelegramTransport(api), breaker);
      if (config.commands && deps.commands) {
        this.poller = new CommandPoller({
          api,
          commands: deps.commands,
          breaker,
          clock,
          logger: this.log.child({ channel: 'telegram' }),
          reply: (text) => this.telegramChannel?.push(this.clean(text)),
          pollTimeoutSec: tuning.pollTimeoutSec,
          requestTimeoutMs: tuning.requestTimeoutMs,
        });
      }
    }
    if (deps.slack) channel(new SlackTransport(deps.slack), this.breaker('slack'));

    this.errors = new ErrorDeduper(clock, tuning.errorWindowMs ?? 15 * 60_000, (text) => this.emit('error', text));
  }

  /** True when at least one channel is configured. */
  get enabled(): boolean {
    return this.channels.length > 0;
  }

  /** Subscribes to the bus, arms the daily summary and starts Telegram command polling. */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    if (!this.enabled) return;
    const { bus } = this.deps;
    this.unsubscribe.push(
      bus.on(ALL_SIGNALS, (s) => this.guard('signal', () => this.emit('signal', signalMessage(s))), SELF),
      bus.on('order.update', (u) => this.guard('order.update', () => this.onOrder(u)), SELF),
      bus.on('risk.state', (c) => this.guard('risk.state', () => this.onRisk(c)), SELF),
    );
    if (this.events.has('dailySummary') && this.deps.summary) this.armDaily();
    this.poller?.start();
    this.log.info({ channels: this.channels.map((c) => c.name), commands: this.poller !== undefined, events: [...this.events] }, `notifications on: ${this.channels.map((c) => c.name).join(', ')}`);
  }

  /** Unsubscribes, cancels every timer and aborts requests in flight; resolves once they have unwound. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const off of this.unsubscribe.splice(0)) off();
    this.dailyTimer?.cancel();
    this.dailyTimer = undefined;
    this.errors.stop();
    await Promise.all([this.poller?.stop(), ...this.channels.map((c) => c.stop())]);
  }

  /**
   * Called for every ERROR/FATAL log line (already scrubbed). Repeats are
   * merged (see ErrorDeduper). Lines from this component itself are ignored
   * (it only logs at warn anyway), so a dead notifier cannot feed itself.
   * Never throws.
   */
  onErrorLog(entry: ErrorEntry): void {
    // Accepted before start() too: an error while the bot starts (reconciliation failed) is worth a message.
    if (this.state === 'stopped' || !this.events.has('error') || entry.component === SELF) return;
    this.guard('error log', () => this.errors.add({ msg: entry.msg, component: entry.component }));
  }

  /** For /health and the heartbeat: per-channel counters and breaker state; no secrets. */
  view(): NotificationsView {
    return {
      enabled: this.enabled,
      events: [...this.events],
      channels: this.channels.map((c) => c.view()),
      ...(this.poller ? { commands: this.poller.view() } : {}),
      errorsMerged: this.errors.suppressedTotal,
    };
  }

  private onOrder(u: OrderUpdate): void {
    const event: NotifyEvent | undefined = u.status === 'FILLED' ? 'orderFilled' : u.status === 'REJECTED' || u.status === 'EXPIRED' ? 'orderFailed' : undefined;
    if (event === undefined || !this.events.has(event)) return;
    // A terminal update can be applied twice (user stream, then the REST poll): notify once.
    const key = `${u.clientOrderId}|${u.status}`;
    if (this.seenOrders.has(key)) return;
    this.seenOrders.add(key);
    if (this.seenOrders.size > SEEN_ORDERS) this.seenOrders.delete(this.seenOrders.values().next().value!);
    this.emit(event, event === 'orderFilled' ? orderFilledMessage(u) : orderFailedMessage(u));
  }

  private onRisk(c: RiskStateChanged): void {
    if (c.reason.startsWith('KILL_SWITCH')) return this.emit('killSwitch', killSwitchMessage(c));
    // Halts, pauses (REDUCING) and the way back to ACTIVE; ACTIVE -> ACTIVE is not news.
    if (c.to !== 'ACTIVE' || c.from !== 'ACTIVE') this.emit('risk', riskMessage(c));
  }

  private armDaily(): void {
    const { clock } = this.deps;
    const now = clock.now();
    this.dailyTimer = clock.after(utcDayStart(now) + DAY_MS - now, () => {
      this.dailyTimer = undefined;
      this.sendDaily(utcDayStart(clock.now()) - DAY_MS);
      if (this.state === 'running') this.armDaily();
    });
  }

  private sendDaily(dayStart: number): void {
    const summary = this.deps.summary;
    if (!summary) return;
    const failed = (err: unknown): void => this.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'daily summary: could not build the figures');
    // summary() may be async (it reads the store): its failure is logged, never thrown.
    let figures: DailySummary | Promise<DailySummary>;
    try {
      figures = summary(dayStart);
    } catch (err) {
      return failed(err);
    }
    void Promise.resolve(figures).then((s) => this.emit('dailySummary', dailySummaryMessage(s)), failed);
  }

  /** Queues one line on every channel, if the event is switched on. */
  private emit(event: NotifyEvent, text: string): void {
    if (this.state === 'stopped' || !this.events.has(event)) return;
    const clean = this.clean(text);
    for (const c of this.channels) c.push(clean);
  }

  private clean(text: string): string {
    const scrubbed = this.deps.scrub ? this.deps.scrub(text) : text;
    return this.scrubber.scrub(scrubbed);
  }

  private breaker(name: string): CircuitBreaker {
    return new CircuitBreaker({
      name,
      clock: this.deps.clock,
      failureThreshold: this.deps.breaker.failures,
      openMs: this.deps.breaker.openSec * 1000,
      onChange: (ch) => {
        const fields = { breaker: ch.name, from: ch.from, to: ch.to, reason: ch.reason };
        if (ch.to === 'OPEN') this.log.warn(fields, `${ch.name}: circuit OPEN (${ch.reason})`);
        else this.log.info(fields, `${ch.name}: circuit ${ch.to} (${ch.reason})`);
      },
    });
  }

  /** Bus handlers and the log hook: a bug here is logged (at warn, see SELF) and swallowed. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ error: err instanceof Error ? err.message : String(err) }, `notifications: ${what} not queued`);
    }
  }
}
