/**
 * Notifications against local stand-ins for the Telegram Bot API and a Slack
 * webhook: real HTTP on 127.0.0.1, time on a TestClock (rate limit, backoff,
 * timeouts, the breaker's open time, the 00:00 UTC summary), so nothing here
 * sleeps; the tests only wait for real I/O to happen.
 */
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { Secret } from '../../src/core/secret.ts';
import type { OrderUpdate, RiskStateChanged, Signal } from '../../src/model/events.ts';
import type { ChannelView } from '../../src/notify/channel.ts';
import type { DailySummary } from '../../src/notify/messages.ts';
import { Notifications, type BotCommands, type NotificationsDeps } from '../../src/notify/notifications.ts';
import { NOTIFY_EVENTS, type BotConfig } from '../../src/settings/bot-config.ts';
import { settle, until } from '../support/fake-http.ts';
import { FakeSlack } from '../support/fake-slack.ts';
import { FakeTelegram } from '../support/fake-telegram.ts';

const START = Date.UTC(2024, 2, 10, 12, 0, 0);
const CHAT = '424242';
const DAY = 86_400_000;

interface Rig {
  clock: TestClock;
  bus: Bus;
  n: Notifications;
  logs: string[];
  telegram?: FakeTelegram;
  slack?: FakeSlack;
}

const cleanups: Array<() => Promise<void>> = [];
/** Every secret any test used, and every log line any test wrote: checked after each test. */
const secrets: string[] = [];
let allLogs: string[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const s of secrets) for (const line of allLogs) expect(line.includes(s), `a log line leaks a secret: ${line}`).toBe(false);
  allLogs = [];
});

/** A debug-level logger whose lines land in `logs` (and in allLogs, for the secrets check). */
function captureLogger(logs: string[]): Logger {
  const write = (line: string): void => {
    logs.push(line);
    allLogs.push(line);
  };
  return pino({ level: 'debug' }, { write });
}

async function rig(o: {
  telegram?: boolean;
  slack?: boolean;
  config?: Partial<BotConfig['notifications']>;
  breaker?: Partial<BotConfig['circuitBreaker']>;
  commands?: BotCommands;
  summary?: NotificationsDeps['summary'];
  tuning?: NotificationsDeps['tuning'];
  clock?: TestClock;
}): Promise<Rig> {
  const clock = o.clock ?? new TestClock(START);
  const logs: string[] = [];
  const logger = captureLogger(logs);
  const bus = new Bus({ logger, clock });
  const telegram = o.telegram ? await FakeTelegram.start() : undefined;
  const slack = o.slack ? await FakeSlack.start() : undefined;
  if (telegram) secrets.push(telegram.token);
  if (slack) secrets.push(slack.webhookUrl, slack.webhookUrl.slice(slack.http.url.length));
  const n = new Notifications({
    bus,
    clock,
    logger,
    config: { events: [...NOTIFY_EVENTS], minIntervalMs: 1000, retries: 3, commands: true, ...o.config },
    breaker: { failures: 5, openSec: 30, ...o.breaker },
    telegram: telegram ? { apiUrl: telegram.url, token: new Secret(telegram.token), chatId: CHAT } : undefined,
    slack: slack ? { webhookUrl: new Secret(slack.webhookUrl) } : undefined,
    commands: o.commands,
    summary: o.summary,
    tuning: o.tuning,
  });
  n.start();
  cleanups.push(async () => {
    await n.stop();
    await telegram?.close();
    await slack?.close();
  });
  return { clock, bus, n, logs, ...(telegram ? { telegram } : {}), ...(slack ? { slack } : {}) };
}

const signal = (i: number): Signal => ({ kind: 'signal', ts: START, strategy: 'rsi', symbol: 'BTCUSDT', action: 'enterLong', reason: evt(i) });
const evt = (i: number): string => `evt-${String(i).padStart(4, '0')}`;
const publishSignals = (bus: Bus, from: number, to: number): void => {
  for (let i = from; i < to; i++) bus.publish('signal.rsi', signal(i));
};

function channel(n: Notifications, name: string): ChannelView {
  const v = n.view().channels.find((c) => c.channel === name);
  if (!v) throw new Error(`no channel ${name}`);
  return v;
}

/** Waits until the channel has nothing in flight and waits on a timer; returns that timer's reason and time. */
async function waitingOf(n: Notifications, name: string): Promise<{ reason: string; until: number }> {
  await until(`${name} waiting on the clock`, () => {
    const v = channel(n, name);
    return !v.inFlight && v.waiting !== undefined;
  });
  const w = channel(n, name).waiting!;
  return { reason: w.reason, until: Date.parse(w.until) };
}

/** Waits for cond, moving the clock to the next channel timer whenever nothing is in flight. */
async function drive(n: Notifications, clock: TestClock, what: string, cond: () => boolean): Promise<void> {
  await until(what, () => {
    if (cond()) return true;
    const views = n.view().channels;
    if (views.some((v) => v.inFlight)) return false;
    const next = Math.min(...views.map((v) => (v.waiting ? Date.parse(v.waiting.until) : Infinity)));
    if (Number.isFinite(next) && next > clock.now()) clock.advanceTo(next);
    return false;
  });
}

async function idle(n: Notifications, name: string): Promise<void> {
  await until(`${name} idle`, () => {
    const v = channel(n, name);
    return !v.inFlight && v.queued === 0;
  });
}

function occurrences(texts: string[], needle: string): number {
  return texts.reduce((sum, t) => sum + t.split(needle).length - 1, 0);
}

describe('notifications: rate limit and merging', () => {
  it('sends the first message at once, then at most one per minIntervalMs, merging what arrived meanwhile', async () => {
    const { clock, bus, n, telegram, slack } = await rig({ telegram: true, slack: true });
    const tg = telegram!;
    const sl = slack!;

    publishSignals(bus, 0, 1);
    await until('first message on both', () => channel(n, 'telegram').sent === 1 && channel(n, 'slack').sent === 1);
    expect(tg.sends()[0]!.body, 'to the configured chat').toMatchObject({ chat_id: CHAT, text: `SIGNAL rsi BTCUSDT enterLong: ${evt(0)}` });

    // A burst of 19 while the slot is taken: nothing goes until minIntervalMs has passed.
    publishSignals(bus, 1, 20);
    const w = await waitingOf(n, 'telegram');
    expect(w, 'the next slot is one interval after the first send').toEqual({ reason: 'rate-limit', until: START + 1000 });
    clock.advanceBy(999);
    await settle();
    expect(tg.sends().length, 'nothing before the interval is over').toBe(1);
    clock.advanceBy(1);
    await until('the merged message', () => channel(n, 'telegram').sent === 2 && channel(n, 'slack').sent === 2);
    expect(tg.delivered()[1]!.split('\n'), 'the 19 events in one message, in order').toEqual(Array.from({ length: 19 }, (_, i) => `SIGNAL rsi BTCUSDT enterLong: ${evt(i + 1)}`));
    expect(channel(n, 'telegram')).toMatchObject({ sent: 2, delivered: 20, merged: 18, queued: 0, dropped: 0 });

    // A trickle: one event every 100 ms for 5 s of clock time.
    const t0 = clock.now();
    for (let i = 20; i < 70; i++) {
      bus.publish('signal.rsi', signal(i));
      clock.advanceBy(100);
      await until('no request in flight', () => !channel(n, 'telegram').inFlight && !channel(n, 'slack').inFlight);
    }
    clock.advanceBy(1000);
    await idle(n, 'telegram');
    await idle(n, 'slack');
    const elapsed = clock.now() - t0;
    for (const fake of [tg.sends(), sl.posts()]) {
      expect(fake.length - 2, 'at most one message per interval of clock time').toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 1);
    }
    for (const texts of [tg.delivered(), sl.delivered()]) {
      for (let i = 0; i < 70; i++) expect(occurrences(texts, evt(i)), `${evt(i)} delivered exactly once`).toBe(1);
    }
  });

  it('20 events in one synchronous burst (one bus delivery) go out as one message', async () => {
    const { bus, n, telegram } = await rig({ telegram: true });
    publishSignals(bus, 0, 20);
    await until('sent', () => channel(n, 'telegram').sent === 1);
    await settle();
    expect(telegram!.sends().length, 'one request').toBe(1);
    expect(telegram!.delivered()[0]!.split('\n')).toEqual(Array.from({ length: 20 }, (_, i) => `SIGNAL rsi BTCUSDT enterLong: ${evt(i)}`));
    expect(channel(n, 'telegram')).toMatchObject({ sent: 1, delivered: 20, merged: 19 });
  });

  it('a reply longer than one message is split at line ends over several', async () => {
    const commands = { status: () => Array.from({ length: 200 }, (_, i) => `line ${evt(i)} ${'y'.repeat(40)}`).join('\n'), positions: () => '', pnl: () => '', pause: () => '', resume: () => '', stopAll: async () => '' };
    const { clock, n, telegram } = await rig({ telegram: true, commands, tuning: { requestTimeoutMs: 3_600_000 } });
    await until('long poll waiting', () => telegram!.polling === 1);
    telegram!.message(CHAT, '/status');
    await drive(n, clock, 'all parts sent', () => channel(n, 'telegram').sent >= 2 && channel(n, 'telegram').queued === 0 && !channel(n, 'telegram').inFlight);
    const texts = telegram!.delivered();
    for (const t of texts) expect(t.length).toBeLessThanOrEqual(4096);
    for (let i = 0; i < 200; i++) expect(occurrences(texts, evt(i)), `${evt(i)} once`).toBe(1);
  });

  it('a synchronous burst goes as one message; what does not fit the size limit follows, announced as "(+N more)"', async () => {
    const { clock, bus, n, telegram } = await rig({ telegram: true });
    const tg = telegram!;
    const long = (i: number): Signal => ({ ...signal(i), reason: `${evt(i)} ${'x'.repeat(90)}` });
    for (let i = 0; i < 120; i++) bus.publish('signal.rsi', long(i));
    await until('first message', () => tg.delivered().length === 1);
    const first = tg.delivered()[0]!;
    expect(first.length, 'within Telegram\'s 4096').toBeLessThanOrEqual(4096);
    const inFirst = occurrences([first], 'evt-');
    expect(first.endsWith(`(+${120 - inFirst} more)`), 'announces what follows').toBe(true);
    for (let k = 0; k < 5 && channel(n, 'telegram').queued > 0; k++) {
      const w = await waitingOf(n, 'telegram');
      clock.advanceTo(w.until);
      await until('next message', () => !channel(n, 'telegram').inFlight);
    }
    await idle(n, 'telegram');
    for (let i = 0; i < 120; i++) expect(occurrences(tg.delivered(), evt(i)), `${evt(i)} exactly once`).toBe(1);
    for (const t of tg.delivered()) expect(t.length).toBeLessThanOrEqual(4096);
  });
});

describe('notifications: retries', () => {
  it('500 twice then 200: delivered once after 3 requests, with backoff on the clock', async () => {
    const { clock, bus, n, slack } = await rig({ slack: true });
    const sl = slack!;
    sl.respond(FakeSlack.serverError(), FakeSlack.serverError());
    publishSignals(bus, 0, 1);
    let w = await waitingOf(n, 'slack');
    expect(w, 'first retry after 1 s').toEqual({ reason: 'backoff', until: START + 1000 });
    clock.advanceTo(w.until);
    w = await waitingOf(n, 'slack');
    expect(w, 'second retry after 2 s more').toEqual({ reason: 'backoff', until: START + 3000 });
    clock.advanceTo(w.until);
    await idle(n, 'slack');
    expect(sl.posts().map((p) => p.status)).toEqual([500, 500, 200]);
    expect(sl.delivered()).toEqual([`SIGNAL rsi BTCUSDT enterLong: ${evt(0)}`]);
    expect(channel(n, 'slack')).toMatchObject({ sent: 1, failed: 2, retried: 2, dropped: 0, breaker: { state: 'CLOSED', consecutiveFailures: 0 } });
  });

  it('Telegram 429 retry_after is honoured (and Slack\'s Retry-After)', async () => {
    const { clock, bus, n, telegram, slack } = await rig({ telegram: true, slack: true });
    telegram!.script(FakeTelegram.tooMany(7));
    slack!.respond(FakeSlack.tooMany(4));
    publishSignals(bus, 0, 1);
    expect(await waitingOf(n, 'telegram'), 'waits the 7 s Telegram asked for').toEqual({ reason: 'backoff', until: START + 7000 });
    expect(await waitingOf(n, 'slack'), 'waits the 4 s Slack asked for').toEqual({ reason: 'backoff', until: START + 4000 });
    clock.advanceTo(START + 6999);
    await until('slack retried', () => slack!.delivered().length === 1);
    await settle();
    expect(telegram!.sends().length, 'no retry before retry_after').toBe(1);
    clock.advanceBy(1);
    await until('telegram retried', () => telegram!.delivered().length === 1);
    expect(telegram!.sends().map((s) => s.status)).toEqual([429, 200]);
    expect(channel(n, 'telegram').breaker.state, 'a 429 is an answer, not an outage').toBe('CLOSED');
  });

  it('after `retries` failed retries the message is dropped and counted; the next one still goes', async () => {
    const { clock, bus, n, slack } = await rig({ slack: true, config: { retries: 3 } });
    const sl = slack!;
    sl.defaultReply = FakeSlack.serverError();
    publishSignals(bus, 0, 1);
    for (let i = 0; i < 3; i++) clock.advanceTo((await waitingOf(n, 'slack')).until);
    await until('dropped', () => channel(n, 'slack').dropped === 1);
    expect(sl.posts().length, '1 try + 3 retries').toBe(4);
    expect(channel(n, 'slack')).toMatchObject({ sent: 0, failed: 4, retried: 3, dropped: 1, queued: 0, lastError: 'slack webhook: HTTP 500 (internal_error)' });
    sl.defaultReply = { status: 200, body: 'ok' };
    publishSignals(bus, 1, 2);
    const w = await waitingOf(n, 'slack');
    expect(w.reason, 'still one message per interval').toBe('rate-limit');
    clock.advanceTo(w.until);
    await until('next delivered', () => sl.delivered().length === 1);
    expect(sl.delivered()).toEqual([`SIGNAL rsi BTCUSDT enterLong: ${evt(1)}`]);
  });

  it('a 4xx answer (revoked webhook) is not retried', async () => {
    const { bus, n, slack } = await rig({ slack: true });
    slack!.respond({ status: 404, body: 'no_service' });
    publishSignals(bus, 0, 1);
    await until('dropped', () => channel(n, 'slack').dropped === 1);
    expect(slack!.posts().length).toBe(1);
    expect(channel(n, 'slack').lastError).toBe('slack webhook: HTTP 404 (no_service)');
  });
});

describe('notifications: a dead endpoint does not slow trading', () => {
  it('requests held open: publishing stays synchronous, the breaker opens after N failures, nothing is called until openSec passes, stop() unwinds at once', async () => {
    const { clock, bus, n, telegram, slack } = await rig({
      telegram: true,
      slack: true,
      breaker: { failures: 3, openSec: 30 },
      config: { retries: 3 },
      tuning: { requestTimeoutMs: 10_000, maxQueue: 100 },
    });
    const tg = telegram!;
    const sl = slack!;
    tg.hang();
    sl.hang();
    let delivered = 0;
    bus.on('signal.*', () => delivered++, 'strategy-watcher');

    publishSignals(bus, 0, 1000);
    // Synchronous: the loop above returned with every event delivered to the other subscriber,
    // and the notifier only queued (bounded: the oldest 900 were dropped and counted).
    expect(delivered, 'every event reached the other subscriber').toBe(1000);
    for (const name of ['telegram', 'slack']) expect(channel(n, name), name).toMatchObject({ queued: 100, dropped: 900, inFlight: false });

    const fakes = [tg.http, sl.http];
    const calls = (): number[] => [tg.sends().length, sl.posts().length];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await until(`attempt ${attempt} held open`, () => fakes.every((f) => f.holding === 1));
      expect(calls()).toEqual([attempt, attempt]);
      clock.advanceBy(10_000); // the request timeout, on the clock
      const ws = [await waitingOf(n, 'telegram'), await waitingOf(n, 'slack')];
      if (attempt < 3) {
        expect(ws.map((w) => w.reason)).toEqual(['backoff', 'backoff']);
        clock.advanceTo(ws[0]!.until);
      } else {
        expect(ws.map((w) => w.reason), 'OPEN: no call until the trial').toEqual(['breaker', 'breaker']);
      }
    }
    const openedAt = clock.now();
    for (const name of ['telegram', 'slack']) {
      expect(channel(n, name).breaker, name).toMatchObject({ state: 'OPEN', consecutiveFailures: 3, opened: 1, lastError: `${name === 'telegram' ? 'telegram sendMessage' : 'slack webhook'}: timed out after 10000 ms` });
    }
    expect(await waitingOf(n, 'slack')).toEqual({ reason: 'breaker', until: openedAt + 30_000 });

    // More events while OPEN: queued (bounded), no request.
    publishSignals(bus, 1000, 1100);
    clock.advanceTo(openedAt + 30_000 - 1);
    await settle();
    expect(calls(), 'no request while OPEN').toEqual([3, 3]);
    expect(channel(n, 'slack').queued).toBeLessThanOrEqual(100);

    clock.advanceBy(1);
    await until('the HALF_OPEN trial call', () => fakes.every((f) => f.holding === 1));
    expect(calls()).toEqual([4, 4]);
    expect(channel(n, 'slack').breaker.state).toBe('HALF_OPEN');

    // stop() aborts the held requests: it resolves without the clock moving.
    await n.stop();
    await until('the stand-ins saw the requests go away', () => fakes.every((f) => f.holding === 0));
    expect(tg.sends().at(-1)!.abortedByClient).toBe(true);
    expect(sl.posts().at(-1)!.abortedByClient).toBe(true);
    expect(clock.pendingTimers(), 'no timer left behind').toBe(0);
    expect(delivered).toBe(1100);
  });

  it('connection refused: fails fast, opens the breaker, then waits without calling', async () => {
    const { clock, bus, n, slack } = await rig({ slack: true, breaker: { failures: 3, openSec: 30 } });
    await slack!.close();
    publishSignals(bus, 0, 5);
    for (let i = 0; i < 2; i++) clock.advanceTo((await waitingOf(n, 'slack')).until);
    const w = await waitingOf(n, 'slack');
    expect(w.reason).toBe('breaker');
    expect(channel(n, 'slack')).toMatchObject({ failed: 3, breaker: { state: 'OPEN' }, lastError: 'slack webhook: connection failed (ECONNREFUSED)' });
    clock.advanceBy(29_000);
    await settle();
    expect(channel(n, 'slack').failed, 'no attempt while OPEN').toBe(3);
  });
});

describe('notifications: Telegram commands', () => {
  function fakeCommands(): BotCommands & { calls: string[] } {
    const calls: string[] = [];
    const reply = (name: string) => () => {
      calls.push(name);
      return `${name}: ok`;
    };
    return {
      calls,
      status: reply('status'),
      positions: reply('positions'),
      pnl: reply('pnl'),
      pause: reply('pause'),
      resume: reply('resume'),
      stopAll: async () => {
        calls.push('stopAll');
        return 'stopped: account HALTED, 2 orders cancelled';
      },
    };
  }

  it('obeys only the configured chat, replies there, and /stopall needs "/stopall confirm" within 60 s', async () => {
    const commands = fakeCommands();
    const clock = new TestClock(START);
    // Commands only: the long poll is held open by the stand-in, so its timeout (on the clock) must outlast the test's clock moves.
    const { n, telegram, logs } = await rig({ telegram: true, commands, clock, tuning: { pollTimeoutSec: 25, requestTimeoutMs: 3_600_000 } });
    const tg = telegram!;
    await until('long poll waiting', () => tg.polling === 1);
    expect(tg.requests.filter((r) => r.route === 'getUpdates')[0]!.body, 'the first poll skips the backlog').toMatchObject({ offset: -1, timeout: 0 });

    /** Sends a command and waits for its reply, moving the clock past the rate limit if needed. */
    const ask = async (text: string, from = CHAT): Promise<string | undefined> => {
      const before = tg.delivered().length;
      const calls = commands.calls.length;
      tg.message(from, text);
      await until('the update consumed', () => tg.polling === 1 && tg.requests.filter((r) => r.route === 'getUpdates').length > 0);
      await settle();
      if (from !== CHAT) return undefined;
      await until(`a reply to ${text}`, () => {
        const v = channel(n, 'telegram');
        if (v.waiting && !v.inFlight) clock.advanceTo(Date.parse(v.waiting.until));
        return tg.delivered().length > before;
      });
      expect(commands.calls.length - calls).toBeLessThanOrEqual(1);
      return tg.delivered().at(-1);
    };

    expect(await ask('/status')).toBe('status: ok');
    expect(tg.sends().at(-1)!.body).toMatchObject({ chat_id: CHAT });
    expect(await ask('/positions')).toBe('positions: ok');
    expect(await ask('/pnl@trader_bot')).toBe('pnl: ok');
    expect(await ask('/pause')).toBe('pause: ok');
    expect(await ask('/resume')).toBe('resume: ok');
    expect(commands.calls).toEqual(['status', 'positions', 'pnl', 'pause', 'resume']);

    // Another chat: ignored, warned once.
    await ask('/pause', '999');
    await ask('/stopall', '999');
    await settle();
    expect(commands.calls, 'nothing run for another chat').toHaveLength(5);
    expect(logs.filter((l) => l.includes('ignoring messages from chat 999')), 'warned once').toHaveLength(1);
    expect(n.view().commands).toMatchObject({ ignored: 2 });

    // /stopall: a question first; "/stopall confirm" alone (nothing pending) does nothing.
    expect(await ask('/stopall confirm')).toMatch(/No \/stopall is waiting/);
    expect(await ask('/stopall')).toMatch(/Reply "\/stopall confirm" within 60 s/);
    expect(commands.calls).not.toContain('stopAll');
    clock.advanceBy(61_000);
    expect(await ask('/stopall confirm'), 'expired after 60 s').toMatch(/No \/stopall is waiting/);
    expect(await ask('/stopall')).toMatch(/confirm/);
    clock.advanceBy(30_000);
    expect(await ask('/stopall confirm')).toBe('stopped: account HALTED, 2 orders cancelled');
    expect(commands.calls.filter((c) => c === 'stopAll'), 'stopAll ran once').toHaveLength(1);

    // Malformed updates are skipped; polling goes on.
    tg.raw({ update_id: tg.nextId(), message: { chat: 'not-an-object', text: '/pause' } }, { nonsense: true }, 'a string');
    expect(await ask('/status')).toBe('status: ok');
    expect(n.view().commands!.malformed).toBeGreaterThanOrEqual(2);
    expect(commands.calls.filter((c) => c === 'pause'), 'the malformed /pause was not run').toHaveLength(1);
    expect(await ask('/help')).toMatch(/\/stopall - kill switch/);
  });

  it('skips commands queued before the start', async () => {
    const commands = fakeCommands();
    const tg0 = await FakeTelegram.start();
    // Queued before Notifications exists: start a rig that points at this stand-in instead.
    tg0.message(CHAT, '/stopall');
    tg0.message(CHAT, '/stopall confirm');
    tg0.message(CHAT, '/pause');
    const clock = new TestClock(START);
    const logs: string[] = [];
    const logger = captureLogger(logs);
    const bus = new Bus({ logger, clock });
    secrets.push(tg0.token);
    const n = new Notifications({
      bus,
      clock,
      logger,
      config: { events: [...NOTIFY_EVENTS], minIntervalMs: 1000, retries: 3, commands: true },
      breaker: { failures: 5, openSec: 30 },
      telegram: { apiUrl: tg0.url, token: new Secret(tg0.token), chatId: CHAT },
      commands,
    });
    n.start();
    cleanups.push(async () => {
      await n.stop();
      await tg0.close();
    });
    await until('long poll waiting', () => tg0.polling === 1);
    await settle();
    expect(commands.calls, 'nothing from the backlog ran').toEqual([]);
    tg0.message(CHAT, '/status');
    await until('status ran', () => commands.calls.length === 1);
    expect(commands.calls).toEqual(['status']);
  });

  it('a command that throws answers with its error; commands are off when config.commands is false', async () => {
    const commands = { ...fakeCommands(), status: () => Promise.reject(new Error('store locked')) };
    const { telegram } = await rig({ telegram: true, commands });
    await until('long poll waiting', () => telegram!.polling === 1);
    telegram!.message(CHAT, '/status');
    await until('the error reply', () => telegram!.delivered().length === 1);
    expect(telegram!.delivered()[0]).toBe('/status failed: store locked');

    const off = await rig({ telegram: true, commands: fakeCommands(), config: { commands: false } });
    await settle();
    expect(off.telegram!.requests.filter((r) => r.route === 'getUpdates'), 'no polling').toHaveLength(0);
  });
});

describe('notifications: events', () => {
  it('sends fills, failures (not cancels), risk halts and resumes, the kill switch; each fill once; only the configured events', async () => {
    const { bus, n, slack } = await rig({ slack: true });
    const fill: OrderUpdate = { kind: 'order.update', ts: START, clientOrderId: 'x-rsi-1', symbol: 'BTCUSDT', status: 'FILLED', side: 'BUY', filledQuantity: dec('0.01'), averagePrice: dec('42000.5'), strategy: 'rsi' };
    const state = (from: RiskStateChanged['from'], to: RiskStateChanged['to'], reason: string): RiskStateChanged => ({ kind: 'risk.state', ts: START, scope: 'account', key: 'main', from, to, reason, source: 'test' });
    bus.publish('order.update', fill);
    bus.publish('order.update', fill); // the REST poll re-applying the same fill
    bus.publish('order.update', { ...fill, clientOrderId: 'x-rsi-2', status: 'CANCELED' });
    bus.publish('order.update', { ...fill, clientOrderId: 'x-rsi-3', status: 'REJECTED', reason: 'MIN_NOTIONAL' });
    bus.publish('order.update', { ...fill, clientOrderId: 'x-rsi-4', status: 'PARTIALLY_FILLED' });
    bus.publish('order.denied', { kind: 'order.denied', ts: START, intent: { intentId: 'i', seq: 1, source: 'strategy', strategy: 'rsi', market: 'spot', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec(1) }, reason: 'NOTIONAL_BELOW_MIN', source: 'risk' });
    bus.publish('risk.state', state('ACTIVE', 'HALTED', 'DAILY_LOSS: -5%'));
    bus.publish('risk.state', state('HALTED', 'ACTIVE', 'RESUMED: by cli'));
    bus.publish('risk.state', state('ACTIVE', 'HALTED', 'KILL_SWITCH: stop-all by telegram'));
    await until('delivered', () => channel(n, 'slack').sent === 1);
    expect(slack!.delivered()[0]!.split('\n')).toEqual([
      'FILLED BTCUSDT BUY 0.01 @ 42000.5 (rsi)',
      'ORDER REJECTED BTCUSDT BUY (rsi): MIN_NOTIONAL (x-rsi-3)',
      'RISK account HALTED (ACTIVE -> HALTED): DAILY_LOSS: -5% [test]',
      'RISK account RESUMED (HALTED -> ACTIVE): RESUMED: by cli [test]',
      'KILL SWITCH: account HALTED (was ACTIVE): KILL_SWITCH: stop-all by telegram',
    ]);
    expect(channel(n, 'slack').delivered).toBe(5);

    const only = await rig({ slack: true, config: { events: ['orderFilled'] } });
    publishSignals(only.bus, 0, 3);
    only.bus.publish('order.update', fill);
    only.n.onErrorLog({ msg: 'boom' });
    await until('delivered', () => only.slack!.delivered().length === 1);
    await settle();
    expect(only.slack!.delivered()).toEqual(['FILLED BTCUSDT BUY 0.01 @ 42000.5 (rsi)']);
  });

  it('with no channel configured it does nothing and says so', async () => {
    const { bus, n } = await rig({});
    publishSignals(bus, 0, 3);
    expect(n.view()).toMatchObject({ enabled: false, channels: [] });
  });
});

describe('notifications: daily summary', () => {
  it('fires at each 00:00 UTC on the clock, once per day, for the day that ended', async () => {
    const days: number[] = [];
    const summary = (dayStart: number): DailySummary => {
      days.push(dayStart);
      return { day: new Date(dayStart).toISOString().slice(0, 10), quoteAsset: 'USDT', equity: '10234.5', dayPnl: '-12.25', totalPnl: '234.5', trades: 7, openPositions: [] };
    };
    const { clock, n, slack } = await rig({ slack: true, summary });
    const midnight = Date.UTC(2024, 2, 11);
    clock.advanceTo(midnight - 1);
    expect(days, 'not before midnight').toEqual([]);
    clock.advanceTo(midnight);
    expect(days).toEqual([Date.UTC(2024, 2, 10)]);
    await until('summary delivered', () => channel(n, 'slack').sent === 1);
    expect(slack!.delivered()[0]!.split('\n').slice(0, 4)).toEqual(['DAILY SUMMARY 2024-03-10 (UTC)', 'Equity: 10234.5 USDT', 'PnL day: -12.25 USDT | total: 234.5 USDT', 'Trades: 7']);
    clock.advanceTo(midnight + DAY - 1);
    expect(days, 'once per day').toHaveLength(1);
    // Two and a half days in one jump: one summary per midnight crossed.
    clock.advanceTo(midnight + 3.5 * DAY);
    expect(days).toEqual([Date.UTC(2024, 2, 10), Date.UTC(2024, 2, 11), Date.UTC(2024, 2, 12), Date.UTC(2024, 2, 13)]);
    await n.stop();
    clock.advanceTo(midnight + 10 * DAY);
    expect(days, 'no summary after stop').toHaveLength(4);
  });

  it('a summary that throws is logged, not thrown', async () => {
    const { clock, logs } = await rig({
      slack: true,
      summary: () => {
        throw new Error('store closed');
      },
    });
    expect(() => clock.advanceTo(Date.UTC(2024, 2, 11))).not.toThrow();
    await until('logged', () => logs.some((l) => l.includes('daily summary: could not build the figures')));
  });
});

describe('notifications: ERROR logs', () => {
  it('sends an error once per 15 min window; repeats (ids and numbers masked) are counted and reported', async () => {
    const { clock, n, slack } = await rig({ slack: true });
    const sl = slack!;
    for (let i = 0; i < 50; i++) n.onErrorLog({ msg: `order ab${100 + i}cd failed: HTTP 50${i % 4}`, component: 'execution' });
    n.onErrorLog({ msg: 'telegram: message dropped', component: 'notifications' }); // its own: never notified
    n.onErrorLog({ msg: 'feed down', component: 'market-data' });
    await until('first', () => channel(n, 'slack').sent === 1);
    expect(sl.delivered()[0]!.split('\n')).toEqual(['ERROR [execution] order ab100cd failed: HTTP 500', 'ERROR [market-data] feed down']);
    expect(n.view().errorsMerged).toBe(49);

    clock.advanceBy(15 * 60_000);
    await until('the repeat count', () => channel(n, 'slack').sent === 2);
    expect(sl.delivered()[1]).toBe('ERROR [execution] order ab149cd failed: HTTP 501 (repeated 49 times)');
    // A quiet window ends quietly; the next occurrence afterwards goes out at once.
    clock.advanceBy(15 * 60_000);
    await settle();
    expect(sl.delivered()).toHaveLength(2);
    clock.advanceBy(15 * 60_000);
    n.onErrorLog({ msg: 'order zz999 failed: HTTP 500', component: 'execution' });
    await until('new window', () => sl.delivered().length === 3);
    expect(sl.delivered()[2]).toBe('ERROR [execution] order zz999 failed: HTTP 500');
  });
});

describe('notifications: secrets', () => {
  it('no token or webhook URL in any log line, view(), error or message text', async () => {
    const { clock, bus, n, telegram, slack, logs } = await rig({ telegram: true, slack: true, breaker: { failures: 2, openSec: 30 }, config: { retries: 1 } });
    const tg = telegram!;
    const sl = slack!;
    tg.script(FakeTelegram.serverError(), { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
    sl.respond(FakeSlack.serverError(), { status: 403, body: 'invalid_token' });
    // A log line carrying both secrets (a library error quoting the URL).
    n.onErrorLog({ msg: `request to ${tg.url}/bot${tg.token}/sendMessage and ${sl.webhookUrl} failed`, component: 'x' });
    publishSignals(bus, 0, 1);
    await drive(n, clock, 'both dropped the message', () => channel(n, 'telegram').dropped > 0 && channel(n, 'slack').dropped > 0);
    tg.sendDefault = { status: 200, body: { ok: true, result: {} } };
    sl.defaultReply = { status: 200, body: 'ok' };
    await tg.close(); // connection refused from now on
    publishSignals(bus, 1, 2);
    clock.advanceBy(60_000);
    await settle();

    const view = JSON.stringify(n.view());
    const sentTexts = [...tg.sends(), ...sl.posts()].map((r) => JSON.stringify(r.body));
    expect(sentTexts.some((t) => t.includes('[REDACTED]')), 'the secret in the error line was cut out').toBe(true);
    for (const secret of [tg.token, sl.webhookUrl, sl.webhookUrl.slice(sl.http.url.length)]) {
      expect(view.includes(secret), 'view()').toBe(false);
      for (const t of sentTexts) expect(t.includes(secret), 'message text').toBe(false);
      for (const line of logs) expect(line.includes(secret), `log: ${line}`).toBe(false);
    }
    expect(channel(n, 'telegram').breaker.lastError).toMatch(/^telegram sendMessage: /);
    expect(channel(n, 'slack').breaker.lastError).toMatch(/^slack webhook: /);
  });
});
