/**
 * Writes strategy folders into tests/.tmp/ (inside the repo, so their
 * imports of zod and src/strategy/api.ts resolve) and cleans them up.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './workspace.ts';

export interface StrategyDir {
  dir: string;
  strategiesDir: string;
  write(rel: string, text: string): string;
  cleanup(): void;
}

export function strategyDir(): StrategyDir {
  mkdirSync(join(REPO_ROOT, 'tests', '.tmp'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'tests', '.tmp', 'strat-'));
  const strategiesDir = join(dir, 'strategies');
  mkdirSync(strategiesDir, { recursive: true });
  return {
    dir,
    strategiesDir,
    write(rel, text) {
      const p = join(dir, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Module source: `api` and `zod` imported by absolute path from the repo. */
export function moduleSource(body: string): string {
  return `import { z } from 'zod';\nimport { defineStrategy } from '${REPO_ROOT}/src/strategy/api.ts';\n${body}\n`;
}

/** A breakout strategy with no indicators: enters long when the close makes a new N-candle high. */
export const BREAKOUT = moduleSource(`
export default defineStrategy({
  name: 'breakout',
  description: 'Long on a new high of the last lookback candles, exit on a new low.',
  params: z.object({ lookback: z.number().int().min(2).default(3).describe('candles to look back') }),
  defaultTimeframe: '1m',
  warmup: (p) => p.lookback + 1,
  create(ctx, p) {
    return {
      onCandle(c) {
        const prev = ctx.candles(p.lookback + 1).slice(0, -1);
        if (prev.length < p.lookback) return;
        if (c.close > Math.max(...prev.map((x) => x.high))) ctx.enterLong({ reason: 'new high', stopLoss: c.low });
        else if (c.close < Math.min(...prev.map((x) => x.low))) ctx.exitLong({ reason: 'new low' });
      },
      reset() {},
    };
  },
});`);
