/**
 * `npm run demo`, both ways, as a newcomer runs it (the real CLI in a child
 * process, offline, no keys): the bot trades the bundled sample and the
 * summary shows signals, orders, fills and PnL; the heartbeat it leaves
 * behind says what it traded.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/bot-process.ts';
import { makeWorkspace } from '../support/workspace.ts';

function figures(stdout: string): { signals: number; orders: number; fills: number; folder: string } {
  const done = /\[demo\] done: signals (\d+), orders (\d+), fills (\d+);/.exec(stdout);
  const folder = /folder (\S+) /.exec(stdout);
  expect(done, `a final summary line; got:\n${stdout.slice(-2000)}`).not.toBeNull();
  return { signals: Number(done![1]), orders: Number(done![2]), fills: Number(done![3]), folder: folder![1]! };
}

describe('npm run demo', () => {
  for (const mode of ['testnet', 'sim'] as const) {
    it(`--mode ${mode}: signals, orders, fills and PnL within seconds, offline`, async () => {
      const ws = makeWorkspace();
      try {
        const r = await runCli(['demo', '--mode', mode, '--seconds', '15', '--speed', '600'], { env: ws.env, cwd: ws.dir });
        expect(r.code, r.stderr).toBe(0);
        const f = figures(r.stdout);
        // On failure, say why from what the demo printed (denials name their reason).
        const why = `\n${r.stdout.split('\n').filter((l) => /denied|ERROR|WARN|\[demo\]/.test(l)).slice(-15).join('\n')}`;
        expect(f.signals, `strategies signalled${why}`).toBeGreaterThan(0);
        expect(f.orders, `signals became orders${why}`).toBeGreaterThan(0);
        expect(f.fills, `orders filled${why}`).toBeGreaterThan(0);
        expect(r.stdout).toMatch(/fill ALGOUSDT (BUY|SELL) [\d.]+ @ [\d.]+ fee [\d.]+ USDT/);
        expect(r.stdout).toMatch(/position ALGOUSDT/);
        const hb = JSON.parse(readFileSync(join(f.folder, 'status/heartbeat.json'), 'utf8')) as { state: string; mode: string; symbols: string[]; risk: { realizedToday: string } };
        expect([hb.state, hb.mode, hb.symbols]).toEqual(['stopped', mode, ['ALGOUSDT']]);
        expect(hb.risk.realizedToday, 'PnL in the heartbeat').toMatch(/^-?\d+\.\d\d$/);
        rmSync(f.folder, { recursive: true, force: true });
      } finally {
        ws.cleanup();
      }
    }, 60_000);
  }
});
