/**
 * `trader reconcile [--dry-run]`: compares our orders, fills and positions
 * with the exchange's and prints the difference; without --dry-run it also
 * applies it (missed fills recorded, finished orders settled, external orders
 * and positions handled as config reconcile.external says, unexplained
 * differences HALT the symbol). Through the running bot when it runs.
 */
import { Dec } from '../core/decimal.ts';
import { EXIT } from '../core/errors.ts';
import { TradingCore } from '../kernel/trading-core.ts';
import type { ReconcileReport } from '../reconcile/reconciler.ts';
import { call, findRunningBot, openOffline } from './bot-access.ts';
import { loadSettingsOrReport } from './run.ts';

export async function reconcileCommand(o: { dryRun?: boolean; json?: boolean }): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const dryRun = o.dryRun ?? false;
  const remote = await findRunningBot(settings);
  let report: ReconcileReport | undefined;
  let via: string;
  if (remote) {
    via = 'running bot';
    try {
      const res = await call(remote, 'POST', '/v1/reconcile', { dryRun });
      if (res.status !== 200) {
        process.stderr.write(`trader reconcile: control API said ${res.status}: ${String(res.body.message ?? '')}\n`);
        return EXIT.SOFTWARE;
      }
      report = res.body as unknown as ReconcileReport;
    } catch (err) {
      process.stderr.write(`trader reconcile: the bot's control API at ${remote.url} did not answer: ${(err as Error).message}\n`);
      return EXIT.TEMP_FAIL;
    }
  } else {
    via = 'venue directly (bot not running)';
    report = await openOffline(settings, 'reconcile', async ({ store, bus, clock, logger }) => {
      const core = await TradingCore.start({ settings: () => settings, store, bus, clock, logger, reconcile: false, readOnly: dryRun });
      try {
        return await core.reconciler.run({ dryRun });
      } finally {
        await core.stop();
      }
    });
    if (!report) return EXIT.TEMP_FAIL;
  }
  if (o.json) process.stdout.write(JSON.stringify({ via, ...report }, null, 2) + '\n');
  else {
    const lines = [`reconcile${dryRun ? ' --dry-run (nothing changed)' : ''} via ${via}: ${report.discrepancies === 0 ? 'everything matches' : `${report.discrepancies} symbol(s) differ`}${report.halted.length ? `; HALTED ${report.halted.join(', ')}` : ''} (${report.durationMs} ms)`];
    if (report.fillsFromWorkingOrders > 0) lines.push(`  ${report.fillsFromWorkingOrders} fill(s) of working orders recorded`);
    for (const s of report.symbols) {
      // The exchange holds the bot's lines plus the external one: name it, or "match" reads as two different numbers.
      const external = s.position.external !== undefined && !new Dec(s.position.external).isZero() ? `, external ${s.position.external}` : '';
      lines.push(`  ${s.symbol}: position ours ${s.position.ours}${external}, exchange ${s.position.venue} (${s.position.status}${s.position.action ? `: ${s.position.action}` : ''}); ${s.fillsAdded} missed fill(s)${dryRun ? ' to record' : ' recorded'}`);
      for (const e of s.externalOrders) lines.push(`    external order ${e.clientOrderId} ${e.side} ${e.type} ${e.quantity}: ${e.action}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  return report.halted.length > 0 ? EXIT.SOFTWARE : EXIT.OK;
}
