/** A real `ws` client that records what it receives and waits on it (no sleeps). */
import WebSocket from 'ws';

export interface RecordingClient {
  ws: WebSocket;
  messages: unknown[];
  pings: number;
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the first message (from `from` on) matching pred. */
  next<T = Record<string, unknown>>(pred: (m: Record<string, unknown>) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<T>;
  send(obj: unknown): void;
  close(): void;
}

export async function connect(url: string, opts: { autoPong?: boolean } = {}): Promise<RecordingClient> {
  const ws = new WebSocket(url, { autoPong: opts.autoPong ?? true });
  const messages: unknown[] = [];
  const waiters: Array<() => void> = [];
  const client: RecordingClient = {
    ws,
    messages,
    pings: 0,
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    next(pred, o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 10_000);
      let i = o.from ?? 0;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (; i < messages.length; i++) {
            const m = messages[i] as Record<string, unknown>;
            if (pred(m)) return resolve(m as never);
          }
          if (Date.now() > deadline) return reject(new Error(`no matching message within ${o.timeoutMs ?? 10_000} ms; got ${messages.length}: ${JSON.stringify(messages.slice(-3))}`));
          waiters.push(check);
          setTimeout(() => {
            const idx = waiters.indexOf(check);
            if (idx >= 0) {
              waiters.splice(idx, 1);
              check();
            }
          }, 50);
        };
        check();
      });
    },
    send(obj) {
      ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    },
    close() {
      ws.close();
    },
  };
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  ws.on('ping', () => client.pings++);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}
