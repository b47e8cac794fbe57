/**
 * The trading controls, as plain operations on a trading core: used by the
 * control API routes (bot running) and directly by the CLI (bot stopped).
 *
 *   pause  [--symbol S | --strategy X] [--halt]: REDUCING (no new entries;
 *          exits and stops keep working), or HALTED with --halt
 *   resume [--symbol S | --strategy X]: back to ACTIVE
 *   stop-all [--flatten]: the kill switch
 *   status: trading states, tripped guards, today's PnL and limits
 */
import { z } from 'zod';
import type { TradingCore } from '../kernel/trading-core.ts';
import type { RiskEngine } from '../risk/risk-engine.ts';
import type { RiskScope } from '../model/events.ts';
import { SYMBOL_PATTERN } from '../model/market.ts';
import type { RouteHandler } from './control-server.ts';

export const scopeSchema = z
  .strictObject({
    symbol: z.string().regex(SYMBOL_PATTERN, 'an upper-case symbol such as BTCUSDT').optional(),
    strategy: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a strategy folder name').optional(),
    halt: z.boolean().optional(),
  })
  .refine((b) => !(b.symbol && b.strategy), { message: 'give a symbol or a strategy, not both' });
export const stopAllSchema = z.strictObject({ flatten: z.boolean().default(false) });

export type ScopeRequest = z.infer<typeof scopeSchema>;

function target(risk: RiskEngine, b: ScopeRequest): { scope: RiskScope; key: string } {
  if (b.symbol) return { scope: 'symbol', key: b.symbol };
  if (b.strategy) return { scope: 'strategy', key: b.strategy };
  return { scope: 'account', key: risk.accountKey() };
}

export function pause(risk: RiskEngine, b: ScopeRequest, source: string): Record<string, unknown> {
  const t = target(risk, b);
  const to = b.halt ? 'HALTED' : 'REDUCING';
  const change = risk.setState(t.scope, t.key, to, `PAUSED: by ${source}${b.halt ? ' (halt)' : ''}`, source);
  return { scope: t.scope, key: t.key, state: to, changed: change !== undefined, ...(change ? { from: change.from } : {}) };
}

export function resume(risk: RiskEngine, b: ScopeRequest, source: string): Record<string, unknown> {
  const t = target(risk, b);
  const change = risk.setState(t.scope, t.key, 'ACTIVE', `RESUMED: by ${source}`, source);
  return { scope: t.scope, key: t.key, state: 'ACTIVE', changed: change !== undefined, ...(change ? { from: change.from } : {}) };
}

function parsed<T>(schema: z.ZodType<T>, body: unknown): { ok: true; value: T } | { ok: false; status: number; body: unknown } {
  const r = schema.safeParse(body);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, status: 400, body: { error: 'BAD_REQUEST', message: r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') } };
}

export function tradeRoutes(core: TradingCore): Record<string, RouteHandler> {
  return {
    'GET /v1/trade/status': () => ({ status: 200, body: { running: true, ...core.riskView() } }),
    'POST /v1/trade/pause': (body) => {
      const p = parsed(scopeSchema, body);
      return p.ok ? { status: 200, body: pause(core.risk, p.value, 'operator (control API)') } : p;
    },
    'POST /v1/trade/resume': (body) => {
      const p = parsed(scopeSchema, body);
      return p.ok ? { status: 200, body: resume(core.risk, p.value, 'operator (control API)') } : p;
    },
    'POST /v1/trade/stop-all': async (body) => {
      const p = parsed(stopAllSchema, body);
      if (!p.ok) return p;
      return { status: 200, body: await core.killSwitch.stopAll(p.value.flatten, 'operator (control API)') };
    },
  };
}
