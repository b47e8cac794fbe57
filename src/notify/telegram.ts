/**
 * Telegram: sendMessage for notifications, and getUpdates long polling for
 * the operator's commands (/status, /positions, /pnl, /pause, /resume,
 * /stopall).
 *
 * The bot token is part of every URL (/bot<token>/<method>): it is only put
 * together inside `call()` and never appears in an error, a log line or a
 * view (errors name the method and the HTTP status only).
 *
 * Commands are obeyed only from the configured chat. /stopall is two-step:
 * it answers with a question, and only "/stopall confirm" from the same chat
 * within 60 s stops trading. Commands queued while the bot was down are
 * skipped at start, so an old "/stopall confirm" can never fire on restart.
 */
import { z } from 'zod';
import { CircuitOpenError, type CircuitBreaker } from '../core/circuit-breaker.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { Secret } from '../core/secret.ts';
import type { Transport } from './channel.ts';
import { postJson, requestSignal, retryAfterHeader, retryAfterSeconds, SendError, sleep, statusError } from './http.ts';

export interface TelegramSettings {
  /** Base URL (TELEGRAM_API_URL), e.g. https://api.telegram.org. */
  apiUrl: string;
  token: Secret;
  /** The one chat messages go to and commands are taken from. */
  chatId: string;
}

/** Telegram's limit for one message's text. */
export const TELEGRAM_MAX_CHARS = 4096;

const answerSchema = z.object({
  ok: z.boolean(),
  description: z.string().optional(),
  parameters: z.object({ retry_after: z.number().optional() }).optional(),
  result: z.unknown().optional(),
});

const updateIdSchema = z.object({ update_id: z.number().int() });
const updateSchema = z.object({
  update_id: z.number().int(),
  message: z
    .object({
      chat: z.object({ id: z.union([z.number().int(), z.string()]) }),
      text: z.string().optional(),
    })
    .optional(),
});
export type TelegramUpdate = z.infer<typeof updateSchema>;

/** The Bot API calls we use. */
export class TelegramApi {
  private readonly base: string;

  constructor(private readonly s: TelegramSettings) {
    this.base = s.apiUrl.replace(/\/+$/, '');
  }

  get chatId(): string {
    return this.s.chatId;
  }

  async sendMessage(text: string, signal: AbortSignal, chatId = this.s.chatId): Promise<void> {
    await this.call('sendMessage', { chat_id: chatId, text, disable_web_page_preview: true }, signal);
  }

  /** Returns the raw updates (validated one by one by the caller, so one bad update cannot hide the rest). */
  async getUpdates(offset: number, timeoutSec: number, signal: AbortSignal): Promise<unknown[]> {
    const result = await this.call('getUpdates', { offset, timeout: timeoutSec, allowed_updates: ['message'] }, signal);
    if (!Array.isArray(result)) throw new SendError('telegram getUpdates: result is not a list', { retryable: true, outage: true });
    return result;
  }

  private async call(method: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    const what = `telegram ${method}`;
    const res = await postJson(`${this.base}/bot${this.s.token.reveal()}/${method}`, body, signal, what);
    let parsed: z.infer<typeof answerSchema> | undefined;
    try {
      const r = answerSchema.safeParse(JSON.parse(res.body));
      if (r.success) parsed = r.data;
    } catch {
      // Not JSON: a proxy or an outage page. Classified by status below.
    }
    if (res.status >= 200 && res.status < 300) {
      if (parsed?.ok === true) return parsed.result;
      if (parsed === undefined) throw new SendError(`${what}: HTTP ${res.status} with an unreadable answer`, { retryable: true, outage: true });
      throw new SendError(`${what}: not ok (${(parsed.description ?? 'no description').slice(0, 200)})`, { retryable: false, outage: false });
    }
    const retryAfter = retryAfterSeconds(parsed?.parameters?.retry_after) ?? retryAfterHeader(res.headers);
    throw statusError(what, res.status, parsed?.description, retryAfter);
  }
}

export class TelegramTransport implements Transport {
  readonly name = 'telegram';
  readonly maxChars = TELEGRAM_MAX_CHARS;

  constructor(private readonly api: TelegramApi) {}

  send(text: string, signal: AbortSignal): Promise<void> {
    return this.api.sendMessage(text, signal);
  }
}

/** What each command does; built by the kernel from the running bot. Each returns the reply text. */
export interface BotCommands {
  status(): string | Promise<string>;
  positions(): string | Promise<string>;
  pnl(): string | Promise<string>;
  pause(): string | Promise<string>;
  resume(): string | Promise<string>;
  stopAll(): Promise<string>;
}

export interface CommandPollerOptions {
  api: TelegramApi;
  commands: BotCommands;
  /** Shared with the sending side: both talk to the same service. */
  breaker: CircuitBreaker;
  clock: Clock;
  logger: Logger;
  /** Sends a reply to the configured chat (through the rate-limited outbox). */
  reply: (text: string) => void;
  /** Long-poll wait Telegram holds a getUpdates open for (default 25 s). */
  pollTimeoutSec?: number;
  /** Added to the long-poll wait for the request's own timeout (default 10 s). */
  requestTimeoutMs?: number;
}

export const STOPALL_CONFIRM_MS = 60_000;
const MAX_POLL_BACKOFF_MS = 60_000;
const HELP = [
  'Commands:',
  '/status - bot and trading state',
  '/positions - open positions',
  '/pnl - profit and loss',
  '/pause - no new entries',
  '/resume - trade again',
  '/stopall - kill switch (asks to confirm)',
].join('\n');

export interface CommandPollerView {
  readonly polling: boolean;
  readonly commands: number;
  readonly ignored: number;
  readonly malformed: number;
  readonly lastError?: string;
}

/**
 * Long-polls getUpdates and runs the commands, one at a time in arrival
 * order (so a /pause and a /resume can never interleave), without holding up
 * the polling.
 */
export class CommandPoller {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private offset = 0;
  private stopAllUntil: number | undefined;
  private readonly warnedChats = new Set<string>();
  private readonly counts = { commands: 0, ignored: 0, malformed: 0 };
  private lastError: string | undefined;

  constructor(private readonly o: CommandPollerOptions) {}

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.o.logger.warn({ err }, 'telegram: command polling ended unexpectedly'));
  }

  /**
   * Aborts the long poll and waits for the loop to end. A command already
   * running is not waited for: it belongs to the bot (a stop-all must not be
   * cut short, nor hold up shutdown); its reply is simply not sent.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  view(): CommandPollerView {
    return { polling: this.loop !== undefined && !this.abort.signal.aborted, ...this.counts, ...(this.lastError !== undefined ? { lastError: this.lastError } : {}) };
  }

  private async run(): Promise<void> {
    const { clock, breaker, logger } = this.o;
    const signal = this.abort.signal;
    let skipBacklog = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        breaker.acquire();
      } catch (err) {
        if (!(err instanceof CircuitOpenError)) throw err;
        await sleep(clock, Math.max(1000, err.retryAt - clock.now()), signal);
        continue;
      }
      // The first call only skips what piled up while the bot was down (offset -1: "the last one, forget the rest").
      const timeoutSec = skipBacklog ? 0 : (this.o.pollTimeoutSec ?? 25);
      const req = requestSignal(clock, timeoutSec * 1000 + (this.o.requestTimeoutMs ?? 10_000), signal);
      let raw: unknown[];
      try {
        raw = await this.o.api.getUpdates(skipBacklog ? -1 : this.offset, timeoutSec, req.signal);
        breaker.success();
      } catch (e) {
        if (signal.aborted) break;
        const err = e instanceof SendError ? e : new SendError('telegram getUpdates: failed', { retryable: true, outage: true });
        if (err.outage) breaker.failure(err);
        else breaker.success();
        failures++;
        if (err.message !== this.lastError) logger.warn({ error: err.message }, `telegram: command polling failed: ${err.message}`);
        this.lastError = err.message;
        await sleep(clock, Math.max(err.retryAfterMs ?? 0, Math.min(1000 * 2 ** (failures - 1), MAX_POLL_BACKOFF_MS)), signal);
        continue;
      } finally {
        req.dispose();
      }
      failures = 0;
      const before = this.offset;
      if (skipBacklog) {
        skipBacklog = false;
        const last = this.advance(raw);
        if (last !== undefined) logger.info({ lastUpdateId: last }, 'telegram: skipped commands sent while the bot was not running');
        continue;
      }
      this.handle(raw);
      // Updates we could not even read an id from would come back forever: slow down instead of spinning.
      if (raw.length > 0 && this.offset === before) await sleep(clock, 5000, signal);
    }
  }

  /** Moves the offset past every update with a readable id; returns the last id. */
  private advance(raw: unknown[]): number | undefined {
    let last: number | undefined;
    for (const u of raw) {
      const id = updateIdSchema.safeParse(u);
      if (id.success) {
        last = Math.max(last ?? id.data.update_id, id.data.update_id);
        this.offset = Math.max(this.offset, id.data.update_id + 1);
      }
    }
    return last;
  }

  private handle(raw: unknown[]): void {
    this.advance(raw);
    for (const u of raw) {
      const parsed = updateSchema.safeParse(u);
      if (!parsed.success) {
        this.counts.malformed++;
        this.o.logger.warn({ issues: parsed.error.issues.length }, 'telegram: skipped a malformed update');
        continue;
      }
      const m = parsed.data.message;
      if (!m?.text) continue;
      const chat = String(m.chat.id);
      if (chat !== this.o.api.chatId) {
        this.counts.ignored++;
        // Once per chat: anyone can message a bot, and a stranger must not fill the log.
        if (!this.warnedChats.has(chat) && this.warnedChats.size < 100) {
          this.warnedChats.add(chat);
          this.o.logger.warn({ chat }, `telegram: ignoring messages from chat ${chat} (not the configured TELEGRAM_CHAT_ID)`);
        }
        continue;
      }
      const text = m.text;
      this.chain = this.chain.then(() => this.command(text)).catch((err: unknown) => this.o.logger.warn({ error: err instanceof Error ? err.message : String(err) }, 'telegram: command handling failed'));
    }
  }

  private async command(text: string): Promise<void> {
    const m = /^\/([a-z_]+)(?:@\w+)?(?:\s+(.*))?$/is.exec(text.trim());
    if (!m) return; // Chatter, not a command.
    const name = m[1]!.toLowerCase();
    const arg = (m[2] ?? '').trim().toLowerCase();
    const c = this.o.commands;
    this.counts.commands++;
    this.o.logger.info({ command: name }, `telegram: command /${name}`);
    switch (name) {
      case 'status':
        return this.run1(name, () => c.status());
      case 'positions':
        return this.run1(name, () => c.positions());
      case 'pnl':
        return this.run1(name, () => c.pnl());
      case 'pause':
        return this.run1(name, () => c.pause());
      case 'resume':
        return this.run1(name, () => c.resume());
      case 'stopall':
        return this.stopAll(arg);
      case 'start':
      case 'help':
        return this.o.reply(HELP);
      default:
        return this.o.reply(`Unknown command /${name}.\n${HELP}`);
    }
  }

  private async stopAll(arg: string): Promise<void> {
    const now = this.o.clock.now();
    if (arg === 'confirm') {
      if (this.stopAllUntil === undefined || now > this.stopAllUntil) {
        this.stopAllUntil = undefined;
        return this.o.reply('No /stopall is waiting for confirmation (or it expired). Send /stopall first.');
      }
      this.stopAllUntil = undefined;
      return this.run1('stopall', () => this.o.commands.stopAll());
    }
    this.stopAllUntil = now + STOPALL_CONFIRM_MS;
    this.o.reply('Stop all trading? This halts the account and cancels every open order.\nReply "/stopall confirm" within 60 s to go ahead.');
  }

  private async run1(name: string, fn: () => string | Promise<string>): Promise<void> {
    if (this.abort.signal.aborted) return;
    try {
      this.o.reply(await fn());
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.o.logger.warn({ command: name, error: msg }, `telegram: /${name} failed`);
      this.o.reply(`/${name} failed: ${msg}`);
    }
  }
}
