/**
 * GET /health: liveness and readiness in one answer, for a supervisor's
 * probe, a load balancer or uptime monitoring.
 *
 *   live   the process answers (always true when anything answers at all);
 *   ready  it is running and trading can work: the database, the feed, the
 *          user stream and reconciliation are not down, every position with
 *          a stop has it working (protection), and no critical circuit
 *          breaker (the exchange REST API) is OPEN.
 *
 * 200 when ready, 503 when not. A paused or HALTED account is still ready:
 * that is an operator's decision (or a risk limit doing its job), and a
 * probe that restarted the bot for it would undo nothing and help no one.
 * The trading state is reported, as a check of its own.
 *
 * No token is needed, so the answer holds states and reasons only: no
 * balances, positions or PnL.
 */
import type { Heartbeat } from './heartbeat-schema.ts';

export interface HealthAnswer {
  status: 200 | 503;
  body: {
    status: 'ok' | 'unavailable';
    live: true;
    ready: boolean;
    state: Heartbeat['state'];
    ts: string;
    uptimeSec: number;
    problems: string[];
    checks: Record<'feed' | 'userStream' | 'db' | 'reconcile' | 'protection' | 'trading', { status: string; detail?: string }>;
    breakers: Heartbeat['breakers'];
    notifiers: Array<{ channel: string; breaker?: unknown }>;
  };
}

export function healthAnswer(hb: Heartbeat): HealthAnswer {
  const problems = [...hb.problems];
  // The heartbeat already lists a stopping or stopped bot; a starting one is named here, with the step it waits for.
  if (hb.state !== 'running') problems.unshift(`bot is ${hb.state}${hb.detail ? `: ${hb.detail}` : ''}`);
  const ready = hb.state === 'running' && hb.healthy;
  const check = (b: { status: string; detail?: string | undefined }) => ({ status: b.status, ...(b.detail ? { detail: b.detail } : {}) });
  const trading = hb.tradingState;
  return {
    status: ready ? 200 : 503,
    body: {
      status: ready ? 'ok' : 'unavailable',
      live: true,
      ready,
      state: hb.state,
      ts: hb.ts,
      uptimeSec: hb.uptimeSec,
      problems: [...new Set(problems)],
      checks: {
        feed: check(hb.feed),
        userStream: check(hb.userStream),
        db: check(hb.db),
        reconcile: check(hb.reconcile),
        protection: check(hb.protection),
        trading: { status: trading === 'ACTIVE' || trading === 'n/a' ? 'ok' : 'degraded', detail: `account ${trading}` },
      },
      breakers: hb.breakers,
      // Which channels exist and whether they work; their message counts stay behind the token.
      notifiers: hb.notifiers.map((n) => ({ channel: n.channel, ...(n.breaker !== undefined ? { breaker: n.breaker } : {}) })),
    },
  };
}
