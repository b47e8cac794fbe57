/**
 * Control API routes about the running bot as a whole: its status (the
 * heartbeat as of now), positions, a config reload, /metrics, and the
 * public /health. Trading controls, orders and the portfolio have their
 * own files.
 */
import type { HeartbeatWriter } from '../health/heartbeat-writer.ts';
import { healthAnswer } from '../health/health.ts';
import type { Metrics } from '../health/metrics.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { ReloadResult } from '../strategy/reloader.ts';
import type { RouteHandler } from './control-server.ts';

export interface StatusRouteDeps {
  heartbeat: HeartbeatWriter;
  metrics: Metrics;
  portfolio: () => PortfolioView;
  /** Re-reads config/bot.yaml and strategies/ and applies them whole, or changes nothing. Absent: no hot reload in this run. */
  reload?: () => Promise<ReloadResult>;
}

/** Positions as the API and the Telegram /positions command show them (Decimal strings). */
export function positionsView(p: PortfolioView): Array<Record<string, string | undefined>> {
  return p.positions().map((x) => ({
    symbol: x.symbol,
    quantity: x.quantity.toFixed(),
    entryPrice: x.entryPrice.toFixed(),
    markPrice: x.markPrice?.toFixed(),
    unrealizedPnl: x.unrealizedPnl.toFixed(),
    realizedPnl: x.realizedPnl.toFixed(),
    strategy: x.owner,
    openedAt: x.openedAt !== undefined ? new Date(x.openedAt).toISOString() : undefined,
  }));
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
      'GET /v1/positions': () => {
        const p = d.portfolio();
        return { status: 200, body: { quoteAsset: p.quoteAsset, positions: positionsView(p) } };
      },
      'POST /v1/config/reload': async () => {
        if (!d.reload) return { status: 409, body: { error: 'NO_RELOAD', message: 'this run has no hot reload (no strategies folder)' } };
        const r = await d.reload();
        return { status: r.applied ? 200 : 422, body: r };
      },
      'GET /metrics': async () => ({ status: 200, body: await d.metrics.text(), contentType: d.metrics.contentType }),
    },
  };
}
