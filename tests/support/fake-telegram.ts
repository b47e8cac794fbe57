/**
 * A local stand-in for the Telegram Bot API (POST /bot<token>/<method>):
 * sendMessage answers from a script (200, 429 with parameters.retry_after,
 * 500, or hang), getUpdates serves queued updates with Telegram's offset
 * rules and long polling. A wrong token gets 401, as from Telegram.
 */
import type { ServerResponse } from 'node:http';
import { FakeHttp, type RecordedRequest, type Reply } from './fake-http.ts';

export const FAKE_TELEGRAM_TOKEN = '123456789:AAFakeTokenForTests_abcdefghijklmnop';

interface PendingPoll {
  rec: RecordedRequest;
  res: ServerResponse;
}

export class FakeTelegram {
  private readonly sendScript: Reply[] = [];
  /** What sendMessage answers once the script is used up. */
  sendDefault: Reply = { status: 200, body: { ok: true, result: { message_id: 1 } } };
  private readonly updates: unknown[] = [];
  private nextUpdateId = 1000;
  private readonly polls = new Set<PendingPoll>();

  private constructor(
    readonly http: FakeHttp,
    readonly token: string,
  ) {}

  static async start(token = FAKE_TELEGRAM_TOKEN): Promise<FakeTelegram> {
    let self: FakeTelegram | undefined;
    const http = await FakeHttp.start((path) => {
      const m = /^\/bot([^/]+)\/(\w+)$/.exec(path);
      if (!m) return undefined;
      return { name: m[2]!, handle: (rec, res) => self!.handle(m[1]!, m[2]!, rec, res) };
    });
    self = new FakeTelegram(http, token);
    return self;
  }

  /** TELEGRAM_API_URL for the bot. */
  get url(): string {
    return this.http.url;
  }

  get requests(): RecordedRequest[] {
    return this.http.requests;
  }

  /** sendMessage requests (every attempt, whatever was answered). */
  sends(): RecordedRequest[] {
    return this.requests.filter((r) => r.route === 'sendMessage');
  }

  /** Texts of the sendMessage requests answered 200. */
  delivered(): string[] {
    return this.sends()
      .filter((r) => r.status === 200)
      .map((r) => (r.body as { text: string }).text);
  }

  /** Answers for the next sendMessage requests, in order. */
  script(...replies: Reply[]): void {
    this.sendScript.push(...replies);
  }

  /** Every later sendMessage is held open (a dead endpoint that accepts connections). */
  hang(): void {
    this.sendDefault = 'hang';
  }

  static tooMany(retryAfterSec: number): Reply {
    return { status: 429, body: { ok: false, error_code: 429, description: `Too Many Requests: retry after ${retryAfterSec}`, parameters: { retry_after: retryAfterSec } } };
  }

  static serverError(): Reply {
    return { status: 500, body: { ok: false, error_code: 500, description: 'Internal Server Error' } };
  }

  /** Queues a text message from a chat, as the update getUpdates will return. */
  message(chatId: string | number, text: string): number {
    const id = this.nextUpdateId++;
    this.raw({ update_id: id, message: { message_id: id, date: 1_700_000_000, chat: { id: Number(chatId), type: 'private' }, from: { id: Number(chatId), is_bot: false, first_name: 'op' }, text } });
    return id;
  }

  /** Queues update objects as they are (malformed ones included), answered together to a waiting poll. */
  raw(...updates: unknown[]): void {
    this.updates.push(...updates);
    for (const p of [...this.polls]) this.answerPoll(p);
  }

  /** Allocates an update id (for raw updates that should look real). */
  nextId(): number {
    return this.nextUpdateId++;
  }

  /** getUpdates calls held open right now (the bot is waiting for commands). */
  get polling(): number {
    return this.polls.size;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private handle(token: string, method: string, rec: RecordedRequest, res: ServerResponse): void {
    if (token !== this.token) return this.http.reply(rec, res, { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
    if (method === 'sendMessage') return this.http.reply(rec, res, this.sendScript.shift() ?? this.sendDefault);
    if (method === 'getUpdates') {
      const body = (rec.body ?? {}) as { offset?: number; timeout?: number };
      const offset = body.offset ?? 0;
      // Telegram: a negative offset keeps the last -offset updates and forgets the rest.
      if (offset < 0) this.updates.splice(0, Math.max(0, this.updates.length + offset));
      else this.keep((u) => idOf(u)! >= offset);
      const p: PendingPoll = { rec, res };
      if (this.updates.length > 0 || !(body.timeout && body.timeout > 0)) return this.answerPoll(p);
      this.polls.add(p);
      this.http.hold(res, () => this.polls.delete(p));
      return;
    }
    this.http.reply(rec, res, { status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } });
  }

  private answerPoll(p: PendingPoll): void {
    this.polls.delete(p);
    this.http.reply(p.rec, p.res, { status: 200, body: { ok: true, result: [...this.updates] } });
    // An update without an id can never be confirmed by an offset: serve it once.
    this.keep((u) => idOf(u) !== undefined);
  }

  private keep(pred: (u: unknown) => boolean): void {
    const kept = this.updates.filter(pred);
    this.updates.splice(0, this.updates.length, ...kept);
  }
}

function idOf(u: unknown): number | undefined {
  const id = (u as { update_id?: unknown } | null)?.update_id;
  return typeof id === 'number' ? id : undefined;
}
