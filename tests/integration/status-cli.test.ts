/**
 * `trader status` finds the heartbeat where the bot writes it: HEARTBEAT_PATH
 * from the environment, else from the env file the bot reads (ENV_FILE when
 * set, else .env). The real CLI as child processes, the bot in MODE=sim.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killQuietly, runCli, startCli, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

let ws: Workspace | undefined;
let bot: RunningCli | undefined;
afterEach(async () => {
  killQuietly(bot);
  await bot?.exited;
  ws?.cleanup();
  bot = ws = undefined;
});

describe('trader status', () => {
  it('reads HEARTBEAT_PATH from the ENV_FILE the bot runs with, not from .env', async () => {
    ws = makeWorkspace();
    const { HEARTBEAT_PATH: _fromEnv, ...env } = ws.env;
    // The bot's file names the heartbeat; a .env beside it names another one, which ENV_FILE overrides.
    ws.write('deploy/bot.env', 'HEARTBEAT_PATH=status/bot-a.json\n');
    ws.write('.env', 'HEARTBEAT_PATH=status/other.json\n');
    const withFile = { ...env, ENV_FILE: 'deploy/bot.env' };

    bot = startCli(['run'], { env: withFile, cwd: ws.dir });
    await waitForHeartbeat(join(ws.dir, 'status', 'bot-a.json'), (hb) => hb.state === 'running', bot);

    const status = await runCli(['status', '--json'], { env: withFile, cwd: ws.dir });
    expect(status.code, `the bot's own heartbeat, found through ENV_FILE: ${status.stdout}`).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ healthy: true, heartbeat: { pid: bot.child.pid, state: 'running' } });

    const plain = await runCli(['status'], { env, cwd: ws.dir });
    expect([plain.code, plain.stdout], 'without ENV_FILE: .env names a file nobody writes').toEqual([1, expect.stringContaining(`no heartbeat at ${join(ws.dir, 'status', 'other.json')}`)]);
  });
});
