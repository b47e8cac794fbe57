/**
 * `npm run chaos [-- --kills 50 --seed 8 --speed 120 --keep]`: the chaos
 * campaign (campaign.ts) and the 50-symbol reconcile timing (reconcile-50.ts);
 * prints one JSON report and exits 1 when any invariant was broken.
 */
import { parseArgs } from 'node:util';
import { LONG, runCampaign } from './campaign.ts';
import { measureReconcile50 } from './reconcile-50.ts';

const { values } = parseArgs({
  options: {
    kills: { type: 'string' },
    seed: { type: 'string' },
    speed: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'skip-reconcile-50': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const opts = {
  ...LONG,
  ...(values.kills ? { kills: Number(values.kills) } : {}),
  ...(values.seed ? { seed: Number(values.seed) } : {}),
  ...(values.speed ? { speed: Number(values.speed) } : {}),
  keep: values.keep ?? false,
  log: values.quiet ? undefined : (l: string) => process.stderr.write(`[chaos] ${l}\n`),
};
const campaign = await runCampaign(opts);
const reconcile50 = values['skip-reconcile-50'] ? undefined : await measureReconcile50({ log: opts.log });
process.stdout.write(JSON.stringify({ campaign, ...(reconcile50 ? { reconcile50 } : {}) }, null, 2) + '\n');
process.exitCode = campaign.discrepancies === 0 ? 0 : 1;
