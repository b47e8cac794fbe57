/**
 * `trader order buy|sell --symbol S --quantity Q [--price P] [--reduce-only]`,
 * `trader order cancel --id <clientOrderId>`, `trader order list [--open]`.
 *
 * Through the running bot when it runs (the same risk checks and execution
 * as any order); otherwise a short-lived trading core on the same database
 * sends it to the venue directly, still through risk and the filters, and
 * records it. Prints the outcome; exit 0 when the order went through (or the
 * cancel took effect). A denial (risk, filters) or the exchange's rejection is
 * an answer, not a fault: exit 3 (EXIT.DENIED) with its code and reason; a
 * cancel of an id this database does not hold is 66; an outcome still unknown
 * after the wait is 70.
 */
import { EXIT } from '../core/errors.ts';
import { reasonCode } from '../health/metrics.ts';
import { cancelManual, cancelSchema, listOrders, placeManual, placeSchema, type OrderOutcome } from '../control/order-controls.ts';
import { TradingCore } from '../kernel/trading-core.ts';
import { call, findRunningBot, openOffline } from './bot-access.ts';
import { loadSettingsOrReport } from './run.ts';

export interface OrderOptions {
  symbol?: string;
  quantity?: string;
  price?: string;
  reduceOnly?: boolean;
  id?: string;
  open?: boolean;
  json?: boolean;
}

type Action = 'buy' | 'sell' | 'cancel' | 'list';

export async function orderCommand(action: Action, o: OrderOptions): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  let body: unknown;
  if (action === 'buy' || action === 'sell') {
    const p = placeSchema.safeParse({ symbol: o.symbol, side: action === 'buy' ? 'BUY' : 'SELL', quantity: o.quantity, ...(o.price !== undefined ? { price: o.price } : {}), reduceOnly: o.reduceOnly ?? false });
    if (!p.success) return usage(action, p.error.issues.map((i) => `--${String(i.path[0] ?? 'options')}: ${i.message}${i.path[0] && (o as Record<string, unknown>)[String(i.path[0])] !== undefined ? ` (got ${JSON.stringify((o as Record<string, unknown>)[String(i.path[0])])})` : ''}`).join('; '));
    body = p.data;
  } else if (action === 'cancel') {
    const p = cancelSchema.safeParse({ id: o.id });
    if (!p.success) return usage(action, '--id <clientOrderId> is required (trader order list shows them)');
    body = p.data;
  } else body = { open: o.open ?? false };

  const remote = await findRunningBot(settings);
  if (remote) {
    const path = action === 'cancel' ? '/v1/orders/cancel' : action === 'list' ? '/v1/orders/list' : '/v1/orders';
    let res;
    try {
      res = await call(remote, 'POST', path, body);
    } catch (err) {
      process.stderr.write(`trader order ${action}: the bot's control API at ${remote.url} did not answer: ${(err as Error).message}\n`);
      return EXIT.TEMP_FAIL;
    }
    if (res.status !== 200) {
      process.stderr.write(`trader order ${action}: control API said ${res.status}: ${String(res.body.message ?? JSON.stringify(res.body))}\n`);
      return EXIT.SOFTWARE;
    }
    return report(action, res.body, 'running bot', o.json);
  }
  const code = await openOffline(settings, 'order', async ({ store, bus, clock, logger }) => {
    const core = await TradingCore.start({ settings: () => settings, store, bus, clock, logger, execution: { retryDelayMs: 1000, tries: 3 } });
    try {
      const out: Record<string, unknown> =
        action === 'list' ? { orders: listOrders(core, o.open ?? false) } : action === 'cancel' ? { ...(await cancelManual(core, (body as { id: string }).id)) } : { ...(await placeManual(core, body as never)) };
      await core.execution.idle();
      return report(action, out, 'venue directly (bot not running)', o.json);
    } finally {
      await core.stop();
    }
  });
  return code ?? EXIT.TEMP_FAIL;
}

function usage(action: string, msg: string): number {
  process.stderr.write(`trader order ${action}: ${msg}\n`);
  return EXIT.USAGE;
}

function report(action: Action, body: Record<string, unknown>, via: string, json?: boolean): number {
  if (action === 'list') {
    if (json) process.stdout.write(JSON.stringify({ via, ...body }, null, 2) + '\n');
    const orders = (body.orders as Array<{ createdAt: string; clientOrderId: string; strategy: string; symbol: string; side: string; type: string; quantity: string; price?: string; status: string; filled: string; error?: string }>) ?? [];
    if (!json) {
      process.stdout.write(`${orders.length} order(s) (via ${via})\n`);
      for (const r of orders) process.stdout.write(`  ${r.createdAt}  ${r.clientOrderId}  ${r.strategy.padEnd(12)} ${r.symbol.padEnd(10)} ${r.side.padEnd(4)} ${r.type.padEnd(18)} ${r.quantity}${r.price ? ` @ ${r.price}` : ''}  ${r.status} filled ${r.filled}${r.error ? `  (${r.error})` : ''}\n`);
    }
    return EXIT.OK;
  }
  const out = body as unknown as OrderOutcome;
  const refused = out.status === 'DENIED' || out.status === 'REJECTED';
  // A refusal's reason is "<CODE>: <figures>" (OrderDenied.reason): the code is what a script branches on.
  const code = refused ? reasonCode(out.reason ?? '') : undefined;
  if (json) process.stdout.write(JSON.stringify({ via, ...out, ...(code ? { code } : {}) }, null, 2) + '\n');
  else {
    // "DENIED NOTIONAL_BELOW_MIN: notional=0.5 min=5": the code first, then the figures.
    const why = code ? (out.reason?.startsWith(code) ? ` ${out.reason}` : ` ${code}${out.reason ? ` (${out.reason})` : ''}`) : out.reason ? ` (${out.reason})` : '';
    process.stdout.write(`${action} via ${via}: ${out.status}${out.clientOrderId ? ` ${out.clientOrderId}` : ''}${out.filledQuantity ? ` filled ${out.filledQuantity}` : ''}${out.averagePrice ? ` @ ${out.averagePrice}` : ''}${why}\n`);
  }
  if (refused) return EXIT.DENIED;
  if (out.status === 'NOT_FOUND') return EXIT.NO_INPUT;
  return out.status === 'UNKNOWN' ? EXIT.SOFTWARE : EXIT.OK;
}
