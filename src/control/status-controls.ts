/**
 * Control API routes about the running bot as a whole: its status (the
 * heartbeat as of now), a config reload, /metrics, and the public
 * /health. Trading controls, orders and the portfolio (positions too) have
 * their own files.
 */
import type { HeartbeatWriter } from '../health/heartbeat-writer.ts';
import { healthAnswer } from '../health/health.ts';
import type { Metrics } from '../health/metrics.ts';
import type { ReloadResult } from '../strategy/reloader.ts';
import type { RouteHandler } from './control-server.ts';

export interface StatusRouteDeps {
  heartbeat: HeartbeatWriter;
  metrics: Metrics;
  /** Re-reads config/bot.yaml and strategies/ and applies them whole, or changes nothing. Absent: no hot reload in this run. */
  reload?: () => Promise<ReloadResult>;
}

export function statusRoutes(d: StatusRouteDeps): { routes: Record<string, RouteHandler>; publicRoutes: Record<string, RouteHandler> } {
  return {
    publicRoutes: {
      'GET /health': () => {
        const a = healthAnswer(d.heartbeat.build());
        return { status: a.status, body: a.body };
      },
    },
    routes: {
      'GET /v1/status': () => ({ status: 200, body: d.heartbeat.build() }),
      'POST /v1/config/reload': async () => {
        if (!d.reload) return { status: 409, body: { error: 'NO_RELOAD', message: 'this run has no hot reload (no strategies folder)' } };
        const r = await d.reload();
        return { status: r.applied ? 200 : 422, body: r };
      },
      'GET /metrics': async () => ({ status: 200, body: await d.metrics.text(), contentType: d.metrics.contentType }),
    },
  };
}
