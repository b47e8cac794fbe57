/**
 * `trader config reload`: makes the running bot re-read config/bot.yaml and
 * strategies/ now (it also does so by itself when a strategy file changes).
 * The new configuration is applied whole or not at all: a rejected reload
 * prints every problem (file, field, what is wrong) and the bot keeps the
 * last good one. With the bot stopped there is nothing to reload: the
 * configuration is checked, and read at the next start.
 */
import type { Command } from 'commander';
import { ConfigError, EXIT, formatConfigIssue } from '../core/errors.ts';
import { loadSettings } from '../settings/load-settings.ts';
import { call, findRunningBot } from './bot-access.ts';
import { strategyValidate } from './strategy-command.ts';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('configuration of the running bot');
  config
    .command('reload')
    .description('re-read config/bot.yaml and strategies/ into the running bot (applied whole, or not at all)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await configReload(opts.json === true);
    });
}

export async function configReload(json: boolean): Promise<number> {
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The bot would refuse the same files: nothing is sent, and it keeps what it runs.
    process.stderr.write(`trader config reload: rejected, the bot keeps its last good configuration:\n${err.issues.map((i) => `  ${formatConfigIssue(i)}`).join('\n')}\n`);
    return EXIT.CONFIG;
  }
  const remote = await findRunningBot(settings);
  if (!remote) {
    process.stdout.write('the bot is not running: nothing to reload; the configuration is read at the next start. Checking it now:\n');
    return strategyValidate([]);
  }
  let res;
  try {
    res = await call(remote, 'POST', '/v1/config/reload', {});
  } catch (err) {
    process.stderr.write(`trader config reload: the bot's control API at ${remote.url} did not answer: ${(err as Error).message}\n`);
    return EXIT.TEMP_FAIL;
  }
  if (json) process.stdout.write(JSON.stringify(res.body, null, 2) + '\n');
  if (res.status === 200) {
    const changes = Object.entries((res.body.changes ?? {}) as Record<string, string[]>).filter(([, v]) => v.length > 0);
    if (!json) process.stdout.write(`reloaded: ${changes.map(([k, v]) => `${k} ${v.join(', ')}`).join('; ') || 'no strategy instance changed'}\n`);
    return EXIT.OK;
  }
  if (res.status === 422) {
    const errors = (res.body.errors ?? []) as string[];
    process.stderr.write(`trader config reload: rejected, the bot keeps its last good configuration:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    return EXIT.CONFIG;
  }
  process.stderr.write(`trader config reload: control API said ${res.status}: ${String(res.body.message ?? JSON.stringify(res.body))}\n`);
  return res.status === 401 ? EXIT.CONFIG : EXIT.SOFTWARE;
}
