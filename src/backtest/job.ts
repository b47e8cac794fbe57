/**
 * A backtest request: what `trader backtest run`, the optimizer's workers and
 * the scheduled re-optimizer all hand to the runner. It is plain JSON (it
 * crosses worker-thread boundaries and is stored with every run), checked
 * with zod, and turned into strategy instances the same way the bot builds
 * them from its YAML (same schema, same strict params).
 *
 * Which YAML an instance takes its sizing, risk and order style from:
 *   strategies/<strategy>/<SYMBOL>.yaml when it exists; otherwise the
 *   strategy's first YAML (another symbol's settings as a template); otherwise
 *   the defaults. The YAML's `enabled` is ignored: a backtest of a disabled
 *   example is the normal way to try it before switching it on.
 */
import { z } from 'zod';
import { Dec } from '../core/decimal.ts';
import { ConfigError, type ConfigIssue } from '../core/errors.ts';
import { MARKETS, SYMBOL_PATTERN, TIMEFRAMES } from '../model/market.ts';
import type { Settings, StrategyEntry } from '../settings/settings.ts';
import { strategyConfigSchema } from '../settings/strategy-config.ts';
import { loadStrategyModules, resolveInstances, type InstanceSpec } from '../strategy/loader.ts';
import type { BacktestConfig } from './runner.ts';

const decimalString = z.string().regex(/^\d+(\.\d+)?$/, 'a non-negative decimal number such as 10 or 0.5');

export const backtestRequestSchema = z.strictObject({
  strategy: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a strategy folder name such as rsi'),
  symbols: z.array(z.string().regex(SYMBOL_PATTERN, 'a Binance symbol such as BTCUSDT')).min(1),
  /** Default: config/bot.yaml's market. */
  market: z.enum(MARKETS).optional(),
  /** Default: the YAML's timeframe, else the strategy's. */
  timeframe: z.enum(TIMEFRAMES).optional(),
  /** [from, to) in ms UTC. */
  from: z.number().int().nonnegative(),
  to: z.number().int().positive(),
  /** Over the YAML's params (the strategy's schema checks the result). */
  params: z.record(z.string(), z.unknown()).default({}),
  /** Starting quote balance. Default: config/bot.yaml sim.balance. */
  balance: decimalString.optional(),
  feeBps: decimalString.optional(),
  slippageBps: decimalString.optional(),
  latencyMs: z.number().int().min(0).max(3_600_000).optional(),
  /** Futures: funding rate per 8 h settlement (fraction, may be negative). Default 0.0001 (Binance's baseline), stated in the report. */
  fundingRate: z.string().regex(/^-?\d+(\.\d+)?$/).optional(),
}).refine((r) => r.to > r.from, { message: '--to must be after --from', path: ['to'] });

export type BacktestRequest = z.input<typeof backtestRequestSchema>;
export type CheckedRequest = z.output<typeof backtestRequestSchema>;

/** Checks a request; a problem names the option it came from. */
export function checkRequest(req: unknown, source = 'backtest'): CheckedRequest {
  const r = backtestRequestSchema.safeParse(req);
  if (r.success) return r.data;
  throw new ConfigError(r.error.issues.map((i) => ({ source, field: `--${i.path.map(String).join('.').replace(/^symbols.*/, 'symbol')}`, message: i.message })));
}

/**
 * Builds the runner's config: loads the strategy module, picks each symbol's
 * YAML, applies the params and checks them. Throws ConfigError listing every
 * problem (unknown strategy, a param the schema refuses, a market the
 * strategy does not trade).
 */
export async function prepareBacktest(request: BacktestRequest, settings: Settings): Promise<{ config: BacktestConfig; request: CheckedRequest; sources: Record<string, string> }> {
  const req = checkRequest(request);
  const market = req.market ?? settings.market;
  const loaded = await loadStrategyModules(settings.paths.strategiesDir, [req.strategy], settings.paths.cwd);
  if (!settings.strategyModules.includes(req.strategy) && loaded.modules.size === 0) {
    throw new ConfigError([{ source: 'backtest', field: '--strategy', message: `no strategy "${req.strategy}" (have: ${settings.strategyModules.join(', ') || 'none'})` }]);
  }
  if (loaded.issues.length > 0) throw new ConfigError(loaded.issues);

  const own = settings.strategies.filter((e) => e.strategy === req.strategy);
  const sources: Record<string, string> = {};
  const entries: StrategyEntry[] = req.symbols.map((symbol) => {
    const exact = own.find((e) => e.symbol === symbol);
    const template = exact ?? own[0];
    sources[symbol] = exact ? exact.file : template ? `${template.file} (template)` : 'defaults';
    const config = template ? template.config : strategyConfigSchema.parse({});
    return {
      strategy: req.strategy,
      symbol,
      file: exact?.file ?? template?.file ?? `strategies/${req.strategy}/${symbol}.yaml`,
      config: { ...config, enabled: true, ...(req.timeframe ? { timeframe: req.timeframe } : {}) },
    };
  });
  const overrides = new Map([[req.strategy, req.params]]);
  const resolved = resolveInstances({ market, paths: settings.paths }, entries, loaded.modules, overrides);
  if (resolved.issues.length > 0) throw new ConfigError(resolved.issues as ConfigIssue[]);
  const specs: InstanceSpec[] = resolved.specs;
  return {
    request: req,
    sources,
    config: {
      market,
      specs,
      from: req.from,
      to: req.to,
      balance: new Dec(req.balance ?? settings.bot.sim.balance),
      ...(req.feeBps !== undefined ? { feeBps: new Dec(req.feeBps) } : {}),
      ...(req.slippageBps !== undefined ? { slippageBps: new Dec(req.slippageBps) } : {}),
      ...(req.latencyMs !== undefined ? { latencyMs: req.latencyMs } : {}),
      ...(req.fundingRate !== undefined ? { fundingRate: new Dec(req.fundingRate) } : {}),
    },
  };
}
