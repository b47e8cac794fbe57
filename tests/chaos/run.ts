/**
 * `npm run chaos [-- --kills 50 --seed 8 --speed 120 --keep]`: the chaos
 * campaign (campaign.ts) and the 50-symbol reconcile timing (reconcile-50.ts);
 * prints one JSON report and exits 1 when any invariant was broken.
 *
 * `npm run chaos -- --campaign multi [--market spot|futures|hedge|all] [--kills 30 --seed 17]`:
 * the multi-strategy campaign (multi-strategy.ts, issue 17): two and three
 * strategies with opposite signals on one symbol, on spot, USD-M one-way and
 * USD-M hedge (all three by default), killed with SIGKILL at random points.
 */
import { parseArgs } from 'node:util';
import { LONG, runCampaign } from './campaign.ts';
import { MULTI_LONG, runMultiCampaign, type MultiReportOut } from './multi-strategy.ts';
import { measureReconcile50 } from './reconcile-50.ts';

const { values } = parseArgs({
  options: {
    campaign: { type: 'string', default: 'orders' },
    market: { type: 'string', default: 'all' },
    kills: { type: 'string' },
    seed: { type: 'string' },
    speed: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'skip-reconcile-50': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const log = values.quiet ? undefined : (l: string) => process.stderr.write(`[chaos] ${l}\n`);
const overrides = {
  ...(values.kills ? { kills: Number(values.kills) } : {}),
  ...(values.seed ? { seed: Number(values.seed) } : {}),
  ...(values.speed ? { speed: Number(values.speed) } : {}),
  keep: values.keep ?? false,
  log,
};

if (values.campaign === 'multi') {
  const all = [
    { name: 'spot', market: 'spot', positionMode: 'ONEWAY' },
    { name: 'futures', market: 'futures', positionMode: 'ONEWAY' },
    { name: 'hedge', market: 'futures', positionMode: 'HEDGE' },
  ] as const;
  const chosen = values.market === 'all' ? all : all.filter((c) => c.name === values.market);
  if (chosen.length === 0) throw new Error(`--market: spot, futures, hedge or all, got ${values.market}`);
  const reports: MultiReportOut[] = [];
  for (const c of chosen) {
    log?.(`multi-strategy campaign: ${c.name}`);
    reports.push(await runMultiCampaign({ ...MULTI_LONG, ...overrides, market: c.market, positionMode: c.positionMode, log: log ? (l) => log(`${c.name}: ${l}`) : undefined }));
  }
  process.stdout.write(JSON.stringify({ multi: reports }, null, 2) + '\n');
  process.exitCode = reports.every((r) => r.discrepancies === 0) ? 0 : 1;
} else if (values.campaign === 'orders') {
  const opts = { ...LONG, ...overrides };
  const campaign = await runCampaign(opts);
  const reconcile50 = values['skip-reconcile-50'] ? undefined : await measureReconcile50({ log: opts.log });
  process.stdout.write(JSON.stringify({ campaign, ...(reconcile50 ? { reconcile50 } : {}) }, null, 2) + '\n');
  process.exitCode = campaign.discrepancies === 0 ? 0 : 1;
} else throw new Error(`--campaign: orders (the default) or multi, got ${values.campaign}`);
