/**
 * A local stand-in for a Slack incoming webhook: POST {"text": ...} to
 * /services/<team>/<bot>/<secret>. Answers from a script (200 "ok", 429 with
 * Retry-After, 500, or hang); any other path gets 404 "no_service", as from
 * Slack for a revoked webhook.
 */
import { FakeHttp, type RecordedRequest, type Reply } from './fake-http.ts';

export const FAKE_SLACK_PATH = '/services/T0FAKE000/B0FAKE000/FakeWebhookSecret0123456789';

export class FakeSlack {
  private readonly script: Reply[] = [];
  /** What the webhook answers once the script is used up. */
  defaultReply: Reply = { status: 200, body: 'ok' };

  private constructor(readonly http: FakeHttp) {}

  static async start(): Promise<FakeSlack> {
    let self: FakeSlack | undefined;
    const http = await FakeHttp.start((path) => (path === FAKE_SLACK_PATH ? { name: 'webhook', handle: (rec, res) => self!.http.reply(rec, res, self!.script.shift() ?? self!.defaultReply) } : undefined));
    self = new FakeSlack(http);
    return self;
  }

  /** SLACK_WEBHOOK_URL for the bot (the secret). */
  get webhookUrl(): string {
    return this.http.url + FAKE_SLACK_PATH;
  }

  get requests(): RecordedRequest[] {
    return this.http.requests;
  }

  /** Webhook posts (every attempt). */
  posts(): RecordedRequest[] {
    return this.requests.filter((r) => r.route === 'webhook');
  }

  /** Texts of the posts answered 200. */
  delivered(): string[] {
    return this.posts()
      .filter((r) => r.status === 200)
      .map((r) => (r.body as { text: string }).text);
  }

  respond(...replies: Reply[]): void {
    this.script.push(...replies);
  }

  /** Every later post is held open. */
  hang(): void {
    this.defaultReply = 'hang';
  }

  static tooMany(retryAfterSec: number): Reply {
    return { status: 429, body: 'rate_limited', headers: { 'retry-after': String(retryAfterSec) } };
  }

  static serverError(): Reply {
    return { status: 500, body: 'internal_error' };
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
