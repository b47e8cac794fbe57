/**
 * `trader trade stop-all [--flatten] | pause | resume [--symbol S | --strategy X] [--halt] | status`.
 *
 * When the bot runs, the command goes through its control API (data/control.json
 * names the port; the token is CONTROL_TOKEN or data/control.token), so the
 * running risk engine changes state and its own execution engine cancels and
 * closes. When it does not run, the command takes the instance lock (so the
 * bot cannot start half-way through) and acts on the same database and the
 * venue directly, through the same trading core. Either way the result is
 * printed, and a stop-all leaves the account HALTED until someone resumes.
 */
import { EXIT } from '../core/errors.ts';
import { pause, resume, scopeSchema, type ScopeRequest } from '../control/trade-controls.ts';
import { InstrumentBook } from '../execution/instrument-book.ts';
import { TradingCore } from '../kernel/trading-core.ts';
import { Portfolio } from '../portfolio/portfolio.ts';
import type { KillSwitchReport } from '../risk/kill-switch.ts';
import { RiskEngine } from '../risk/risk-engine.ts';
import type { Settings } from '../settings/settings.ts';
import { loadSettingsOrReport } from './run.ts';
import { call, findRunningBot, openOffline } from './bot-access.ts';

export type TradeAction = 'stop-all' | 'pause' | 'resume' | 'status';

export interface TradeOptions {
  flatten?: boolean;
  symbol?: string;
  strategy?: string;
  halt?: boolean;
  json?: boolean;
}

export async function tradeCommand(action: TradeAction, o: TradeOptions): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const scope = scopeSchema.safeParse({ ...(o.symbol ? { symbol: o.symbol } : {}), ...(o.strategy ? { strategy: o.strategy } : {}), ...(o.halt ? { halt: true } : {}) });
  if (!scope.success) {
    process.stderr.write(`trader trade ${action}: ${scope.error.issues.map((i) => `${i.path.join('.') ? `--${i.path.join('.')}` : 'options'}: ${i.message}`).join('; ')}\n`);
    return EXIT.USAGE;
  }

  const remote = await findRunningBot(settings);
  if (remote) {
    let res;
    try {
      res =
        action === 'status'
          ? await call(remote, 'GET', '/v1/trade/status')
          : await call(remote, 'POST', `/v1/trade/${action}`, action === 'stop-all' ? { flatten: o.flatten ?? false } : scope.data);
    } catch (err) {
      process.stderr.write(`trader trade ${action}: the bot's control API at ${remote.url} did not answer: ${(err as Error).message}\n`);
      return EXIT.TEMP_FAIL;
    }
    if (res.status !== 200) {
      process.stderr.write(`trader trade ${action}: control API said ${res.status}: ${String(res.body.message ?? JSON.stringify(res.body))}\n`);
      return res.status === 401 ? EXIT.CONFIG : EXIT.SOFTWARE;
    }
    print(action, { via: 'running bot', ...res.body }, o.json);
    return action === 'stop-all' && !clean(res.body as unknown as KillSwitchReport) ? EXIT.SOFTWARE : EXIT.OK;
  }
  return offline(settings, action, o, scope.data);
}

/** Bot not running: the same operations on the database (and the venue, for stop-all). */
async function offline(settings: Settings, action: TradeAction, o: TradeOptions, scope: ScopeRequest): Promise<number> {
  const code = await openOffline(settings, 'trade', async ({ store, bus, clock, logger }) => {
    const source = 'operator (CLI, bot stopped)';
    if (action === 'stop-all') {
      const core = await TradingCore.start({ settings: () => settings, store, bus, clock, logger, execution: { retryDelayMs: 1000, tries: 3 } });
      try {
        const report = await core.killSwitch.stopAll(o.flatten ?? false, source);
        print(action, { via: 'venue directly (bot not running)', ...report }, o.json);
        return clean(report) ? EXIT.OK : EXIT.SOFTWARE;
      } finally {
        await core.stop();
      }
    }
    // pause / resume / status need no venue: states and today's figures live in the database.
    const instruments = new InstrumentBook({ venue: { instruments: async () => Promise.reject(new Error('offline')) }, store, clock, logger, market: settings.market });
    await instruments.load().catch(() => undefined);
    instruments.stop();
    const portfolio = new Portfolio({
      bus,
      store,
      clock,
      logger,
      market: settings.market,
      quoteAsset: settings.bot.quoteAsset,
      instrument: (sym) => instruments.get(sym),
    });
    portfolio.start();
    const risk = new RiskEngine({ bus, store, clock, logger, market: settings.market, portfolio, ledger: portfolio.ledger, instrument: (sym) => instruments.get(sym), config: { risk: () => settings.bot.risk, strategy: () => undefined, leverage: () => 1 } });
    risk.start();
    try {
      const dayStart = clock.now() - (clock.now() % 86_400_000);
      const out =
        action === 'pause'
          ? pause(risk, scope, source)
          : action === 'resume'
            ? resume(risk, scope, source)
            : {
                running: false,
                states: risk.stateList().map((x) => ({ scope: x.scope, key: x.key, state: x.state, reason: x.reason, source: x.source, since: new Date(x.since).toISOString(), ...(x.until !== undefined ? { until: new Date(x.until).toISOString() } : {}) })),
                realizedToday: portfolio.realizedToday().toFixed(2),
                dailyLossLimitPct: settings.bot.risk.maxDailyLossPct,
                deniedToday: store.all(store.db.selectFrom('risk_events').select(['reason', 'ts']).where('kind', '=', 'denied').where('ts', '>=', dayStart).orderBy('ts', 'desc').limit(20)).map((r) => ({ reason: r.reason, at: new Date(r.ts).toISOString() })),
              };
      print(action, { via: 'database (bot not running)', ...out }, o.json);
      return EXIT.OK;
    } finally {
      risk.stop();
      portfolio.stop();
    }
  });
  return code ?? EXIT.TEMP_FAIL;
}

function clean(r: KillSwitchReport): boolean {
  return r.failures.length === 0 && r.remaining.openOrders === 0 && r.remaining.positions.length === 0;
}

function print(action: TradeAction, body: Record<string, unknown>, json?: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    return;
  }
  const lines: string[] = [];
  if (action === 'stop-all') {
    const r = body as unknown as KillSwitchReport & { via: string };
    lines.push(`stop-all via ${r.via}: account HALTED${r.halted.changed ? '' : ' (it already was)'}`);
    lines.push(`cancelled ${r.cancelled.length} order(s)${r.cancelled.length ? ':' : ''}`);
    for (const c of r.cancelled) lines.push(`  ${c.symbol.padEnd(12)} ${c.clientOrderId}  ${c.status}`);
    lines.push(`closed ${r.closed.length} position(s)${r.closed.length ? ':' : ''}`);
    for (const c of r.closed) lines.push(`  ${c.symbol.padEnd(12)} ${c.side} ${c.quantity}  ${c.status}${c.detail ? ` (${c.detail})` : ''}`);
    for (const f of r.failures) lines.push(`FAILED: ${f}`);
    lines.push(`still open: ${r.remaining.openOrders} order(s), ${r.remaining.positions.length} position(s)${r.remaining.positions.map((p) => ` ${p.symbol}=${p.quantity}`).join('')}`);
    lines.push('resume with: trader trade resume');
  } else if (action === 'status') {
    const states = (body.states as Array<{ scope: string; key: string; state: string; reason: string; until?: string }>) ?? [];
    lines.push(`trading (${String(body.via)}): ${states.length === 0 ? 'everything ACTIVE' : `${states.length} restriction(s)`}`);
    for (const s of states) lines.push(`  ${s.scope}${s.scope === 'account' ? '' : ` ${s.key}`}: ${s.state} (${s.reason})${s.until ? ` until ${s.until}` : ''}`);
    for (const k of ['equity', 'peakEquity', 'dayStartEquity', 'realizedToday', 'unrealized', 'dailyLossLimit', 'approvals', 'denials']) if (body[k] !== undefined) lines.push(`  ${k}: ${String(body[k])}`);
    const tripped = (body.tripped as Array<{ reason: string; count: number; at: string }>) ?? (body.deniedToday as Array<{ reason: string; at: string }>) ?? [];
    if (tripped.length) lines.push('  tripped guards:');
    for (const t of tripped) lines.push(`    ${t.reason}${'count' in t ? ` (x${t.count})` : ''} at ${t.at}`);
  } else {
    lines.push(`${action} via ${String(body.via)}: ${String(body.scope)}${body.scope === 'account' ? '' : ` ${String(body.key)}`} is ${String(body.state)}${body.changed ? ` (was ${String(body.from)})` : ' (unchanged)'}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
