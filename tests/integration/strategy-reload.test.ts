/**
 * Hot reload in a real bot process: edits to strategies/ apply without a
 * restart; an invalid edit is rejected with the precise error (log and
 * heartbeat) while the last good configuration keeps running.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { killQuietly, readHeartbeat, startCli, waitFor, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { BREAKOUT, moduleSource, strategyDir, type StrategyDir } from '../support/strategy-fixtures.ts';

let sd: StrategyDir | undefined;
let bot: RunningCli | undefined;
afterEach(() => {
  killQuietly(bot);
  sd?.cleanup();
  sd = undefined;
});

const instances = (hb: Heartbeat) => hb.instances.map((i) => `${i.strategy}/${i.symbol} ${i.state} ${i.warm}`);

describe('strategy hot reload (real bot process)', () => {
  it('applies valid edits live, rejects invalid ones whole, follows enable/disable, deletions and new folders', async () => {
    sd = strategyDir();
    sd.write('strategies/breakout/index.ts', BREAKOUT);
    const yaml = sd.write('strategies/breakout/BTCUSDT.yaml', 'enabled: true\nparams:\n  lookback: 3\n');
    sd.write('config/bot.yaml', 'market: spot\n');
    const hbFile = join(sd.dir, 'status', 'heartbeat.json');
    const env = { HEARTBEAT_INTERVAL_MS: '100', LOG_LEVEL: 'info', ENV_FILE: '/dev/null', FEED: 'none', CONTROL_PORT: '0' };
    bot = startCli(['run'], { env, cwd: sd.dir });
    await waitForHeartbeat(hbFile, (hb) => hb.state === 'running' && instances(hb).join() === 'breakout/BTCUSDT warming 0/4', bot);

    // A valid change: rebuilt with the new warm-up, no restart.
    const pid = readHeartbeat(hbFile)!.pid;
    const { writeFileSync } = await import('node:fs');
    const t0 = Date.now();
    writeFileSync(yaml, 'enabled: true\nparams:\n  lookback: 5\n');
    await waitForHeartbeat(hbFile, (hb) => instances(hb).join() === 'breakout/BTCUSDT warming 0/6', bot);
    const applied = await waitFor('reload log line', () => logLines(sd!).find((l) => String(l.msg).startsWith('strategies reloaded: rebuilt breakout:BTCUSDT')));
    const latencyMs = Date.parse(String(applied.time)) - t0;
    expect(latencyMs, `applied ${latencyMs} ms after the edit`).toBeLessThan(2000);
    expect(readHeartbeat(hbFile)!.pid, 'same process').toBe(pid);

    // An invalid change: rejected with the precise error; the last good config keeps running.
    writeFileSync(yaml, 'enabled: true\nparams:\n  lookback: "five"\n');
    const rejected = await waitForHeartbeat(hbFile, (hb) => hb.configErrors.length > 0, bot);
    expect(rejected.configErrors).toEqual(['strategies/breakout/BTCUSDT.yaml:3 params.lookback: expected integer >= 2, got "five"']);
    expect(instances(rejected)).toEqual(['breakout/BTCUSDT warming 0/6']);
    expect(logLines(sd).some((l) => String(l.msg).includes('strategy change rejected') && String(l.msg).includes('params.lookback: expected integer >= 2, got "five"'))).toBe(true);

    // Fixed again, then disabled: the instance stops; errors clear.
    writeFileSync(yaml, 'enabled: false\nparams:\n  lookback: 5\n');
    const off = await waitForHeartbeat(hbFile, (hb) => hb.instances.length === 0, bot);
    expect(off.configErrors).toEqual([]);

    // A new strategy folder, dropped in while running, starts with no build step.
    sd.write('strategies/momentum/index.ts', moduleSource(`
export default defineStrategy({ name: 'momentum', description: 'x', params: z.object({}), defaultTimeframe: '5m', warmup: () => 2,
  create() { return { onCandle() {}, reset() {} }; } });`));
    sd.write('strategies/momentum/ETHUSDT.yaml', 'timeframe: 15m\n');
    await waitForHeartbeat(hbFile, (hb) => instances(hb).join() === 'momentum/ETHUSDT warming 0/2' && hb.instances[0]!.timeframe === '15m', bot);

    // Deleting the file stops the instance.
    rmSync(join(sd.strategiesDir, 'momentum', 'ETHUSDT.yaml'));
    await waitForHeartbeat(hbFile, (hb) => hb.instances.length === 0, bot);

    bot.child.kill('SIGTERM');
    expect(await bot.exited).toBe(0);
  });

  it('bad strategy params at start: exit 78 with every problem, nothing written', async () => {
    sd = strategyDir();
    sd.write('strategies/breakout/index.ts', BREAKOUT);
    sd.write('strategies/breakout/BTCUSDT.yaml', 'params:\n  lookback: 1\n');
    sd.write('strategies/breakout/ETHUSDT.yaml', 'enabled: false\nparams:\n  lookbak: 3\n');
    bot = startCli(['run'], { env: { ENV_FILE: '/dev/null', FEED: 'none', CONTROL_PORT: '0' }, cwd: sd.dir });
    expect(await bot.exited).toBe(78);
    expect(bot.stderr()).toContain('strategies/breakout/BTCUSDT.yaml:2 params.lookback: expected integer >= 2, got 1');
    expect(bot.stderr()).toContain('strategies/breakout/ETHUSDT.yaml:3 params.lookbak: unknown key');
    expect(existsSync(join(sd.dir, 'data', 'trader.db'))).toBe(false);
  });
});

function logLines(sd: StrategyDir): Array<Record<string, unknown>> {
  const dir = join(sd.dir, 'logs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}
