/**
 * Slack through an incoming webhook: POST {"text": ...} to the webhook URL.
 *
 * The webhook URL is the credential (anyone holding it can post to the
 * channel), so it is revealed only for the request itself and never appears
 * in an error, a log line or a view.
 */
import type { Secret } from '../core/secret.ts';
import type { Transport } from './channel.ts';
import { postJson, retryAfterHeader, statusError } from './http.ts';

export interface SlackSettings {
  /** SLACK_WEBHOOK_URL. */
  webhookUrl: Secret;
}

/** Slack truncates a message's text at 40,000 characters; stay clear of it. */
export const SLACK_MAX_CHARS = 39_000;

export class SlackTransport implements Transport {
  readonly name = 'slack';
  readonly maxChars = SLACK_MAX_CHARS;

  constructor(private readonly s: SlackSettings) {}

  async send(text: string, signal: AbortSignal): Promise<void> {
    const what = 'slack webhook';
    const res = await postJson(this.s.webhookUrl.reveal(), { text }, signal, what);
    if (res.status >= 200 && res.status < 300) return;
    // Slack answers errors in plain text ("invalid_payload", "no_service", ...): short, safe codes.
    const detail = /^[a-z_]{1,60}$/.test(res.body.trim()) ? res.body.trim() : undefined;
    throw statusError(what, res.status, detail, retryAfterHeader(res.headers));
  }
}
