/**
 * The control API the CLI uses while the bot runs: a small HTTP server on
 * loopback with a bearer token: status, positions, portfolio, orders,
 * pause / resume, stop-all, manual orders, config reload, /metrics
 * (Prometheus), and /health (the one route without a token).
 *
 * Token: CONTROL_TOKEN when set, else one generated on first start into
 * data/control.token (mode 0600, only the bot's user can read it). The port
 * actually bound goes to data/control.json so the CLI finds it (CONTROL_PORT=0
 * picks a free one). A host other than loopback needs an explicit token:
 * a generated one would be readable only on this machine anyway, and an
 * unauthenticated kill switch on a public interface is not an option.
 *
 * Every response is JSON built from explicit fields; no secret is ever part of one.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../core/logger.ts';
import type { Secret } from '../core/secret.ts';

export const CONTROL_FILE = 'control.json';
export const TOKEN_FILE = 'control.token';

export const controlInfoSchema = z.object({ host: z.string(), port: z.number().int(), pid: z.number().int() });
export type ControlInfo = z.infer<typeof controlInfoSchema>;

/** A route's answer: JSON, or (with contentType) the body as text, e.g. Prometheus' format. */
export interface RouteResult {
  status: number;
  body: unknown;
  contentType?: string;
}
export type RouteHandler = (body: unknown) => Promise<RouteResult> | RouteResult;

export interface ControlServerOptions {
  host: string;
  port: number;
  /** Folder for control.json and the generated token (the database's folder). */
  dataDir: string;
  token?: Secret;
  logger: Logger;
  routes: Record<string, RouteHandler>;
  /**
   * Routes answered without the token: only GET /health, which a load
   * balancer or a supervisor's probe must reach. It says whether the bot is
   * up and ready, never a figure about the account.
   */
  publicRoutes?: Record<string, RouteHandler>;
  /** Cuts known secret values out of every response (a last line of defence: responses are built from explicit fields). */
  scrub?: (text: string) => string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Reads or creates the token file (0600). */
export function loadOrCreateToken(dataDir: string): string {
  const file = join(dataDir, TOKEN_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}

export class ControlServer {
  private server: Server | undefined;
  private token = '';
  info: ControlInfo | undefined;

  constructor(private readonly o: ControlServerOptions) {}

  async start(): Promise<ControlInfo> {
    const { o } = this;
    if (!LOOPBACK.has(o.host) && !o.token) {
      throw new Error(`CONTROL_HOST=${o.host} is not loopback: set CONTROL_TOKEN (16+ characters) to expose the control API there`);
    }
    this.token = o.token ? o.token.reveal() : loadOrCreateToken(o.dataDir);
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    this.info = { host: o.host, port, pid: process.pid };
    writeFileSync(join(o.dataDir, CONTROL_FILE), JSON.stringify(this.info) + '\n');
    return this.info;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    rmSync(join(this.o.dataDir, CONTROL_FILE), { force: true });
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) return false;
    const a = Buffer.from(m[1]!);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown, contentType?: string) => {
      const text = contentType !== undefined && typeof body === 'string';
      res.writeHead(status, { 'content-type': text ? contentType : 'application/json', 'cache-control': 'no-store' });
      const out = text ? (body as string) : JSON.stringify(body);
      res.end(this.o.scrub ? this.o.scrub(out) : out);
    };
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      const open = this.o.publicRoutes?.[`${req.method} ${path}`];
      if (open) {
        const out = await open({});
        return send(out.status, out.body, out.contentType);
      }
      if (!this.authorized(req)) {
        res.setHeader('www-authenticate', 'Bearer');
        return send(401, { error: 'UNAUTHORIZED', message: 'missing or wrong bearer token' });
      }
      const route = this.o.routes[`${req.method} ${path}`];
      if (!route) return send(404, { error: 'NOT_FOUND', message: `no route ${req.method} ${path}` });
      let body: unknown = {};
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          body = text ? JSON.parse(text) : {};
        } catch {
          return send(400, { error: 'BAD_JSON', message: 'the body is not JSON' });
        }
      }
      const out = await route(body);
      send(out.status, out.body, out.contentType);
    } catch (err) {
      this.o.logger.error({ err }, `control API ${req.method} ${req.url} failed: ${(err as Error).message}`);
      send(500, { error: 'INTERNAL', message: (err as Error).message });
    }
  }
}
