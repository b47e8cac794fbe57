/**
 * The shared part of the Telegram and Slack stand-ins: a tiny HTTP server on
 * 127.0.0.1 (port 0) that records every request and answers from a script
 * (status, body, headers), or holds the request open ("hang"), or, once
 * closed, refuses connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

export interface RecordedRequest {
  /** The route's name (Telegram: the API method; Slack: "webhook"), or "unknown". */
  readonly route: string;
  readonly path: string;
  readonly body: unknown;
  /** The status answered; undefined while held open or when the client went away first. */
  status?: number;
  /** The client closed the connection before an answer (our timeout or stop()). */
  abortedByClient?: boolean;
}

export type Route = (req: RecordedRequest, res: ServerResponse, http: FakeHttp) => void;

export class FakeHttp {
  readonly requests: RecordedRequest[] = [];
  private readonly held = new Set<ServerResponse>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(route: (path: string) => { name: string; handle: Route } | undefined): Promise<FakeHttp> {
    let self: FakeHttp | undefined;
    const server = createServer((req, res) => void self?.onRequest(req, res, route));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new FakeHttp(server, `http://127.0.0.1:${port}`);
    return self;
  }

  /** Requests held open right now. */
  get holding(): number {
    return this.held.size;
  }

  /** Answers (or holds) one request. */
  reply(rec: RecordedRequest, res: ServerResponse, r: Reply): void {
    if (r === 'hang') {
      this.hold(res);
      return;
    }
    rec.status = r.status;
    const body = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    res.writeHead(r.status, { 'content-type': typeof r.body === 'string' ? 'text/plain' : 'application/json', ...r.headers });
    res.end(body);
  }

  /** Keeps a request open until the client gives up or the server closes. */
  hold(res: ServerResponse, onClose?: () => void): void {
    this.held.add(res);
    res.on('close', () => {
      this.held.delete(res);
      onClose?.();
    });
  }

  /** Stops listening and drops every connection: later requests get "connection refused". */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await done;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse, route: (path: string) => { name: string; handle: Route } | undefined): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // Keep the raw text.
    }
    const path = req.url ?? '/';
    const r = route(path);
    const rec: RecordedRequest = { route: r?.name ?? 'unknown', path, body };
    this.requests.push(rec);
    res.on('close', () => {
      if (rec.status === undefined && !res.writableFinished) rec.abortedByClient = true;
    });
    if (!r) {
      rec.status = 404;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    r.handle(rec, res, this);
  }
}

/**
 * Waits (real time, for real I/O to happen) until probe() is true. Polls
 * every few ms; fails after timeoutMs with what it was waiting for.
 */
export async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets pending I/O and promise callbacks run (a few event-loop turns), for "nothing more happened" checks. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 1));
}
