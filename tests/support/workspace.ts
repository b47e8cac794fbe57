/**
 * A throwaway working area for one test: its own data/, status/, logs/,
 * config/ and strategies/ folders, and the env that points the bot at them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Workspace {
  dir: string;
  dbFile: string;
  heartbeatFile: string;
  logDir: string;
  strategiesDir: string;
  configFile: string;
  /** Env for a bot using this workspace (no .env file is read: cwd is the workspace). */
  env: Record<string, string>;
  write(relPath: string, text: string): string;
  cleanup(): void;
}

export function makeWorkspace(extraEnv: Record<string, string> = {}): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'trader-test-'));
  const ws: Workspace = {
    dir,
    dbFile: join(dir, 'data', 'trader.db'),
    heartbeatFile: join(dir, 'status', 'heartbeat.json'),
    logDir: join(dir, 'logs'),
    strategiesDir: join(dir, 'strategies'),
    configFile: join(dir, 'config', 'bot.yaml'),
    env: {},
    write(relPath, text) {
      const p = join(dir, relPath);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  mkdirSync(ws.strategiesDir, { recursive: true });
  ws.env = {
    DB_URL: `sqlite:${ws.dbFile}`,
    HEARTBEAT_PATH: ws.heartbeatFile,
    HEARTBEAT_INTERVAL_MS: '200',
    LOG_DIR: ws.logDir,
    STRATEGIES_DIR: ws.strategiesDir,
    CONFIG_FILE: ws.configFile,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    MODE: 'sim',
    // Tests never reach the internet: no live feed unless a test points it at the local exchange.
    FEED: 'none',
    // Tests run side by side: each bot's control API takes a free port (data/control.json says which).
    CONTROL_PORT: '0',
    ...extraEnv,
  };
  ws.write('config/bot.yaml', 'market: spot\n');
  // Strategies are ES modules: their folder must sit in a "type": "module" package.
  ws.write('package.json', '{ "type": "module" }\n');
  return ws;
}

/**
 * A strategy folder with a minimal real module (it never signals), so YAML
 * files in it are valid. The workspace is outside the repo, so its imports
 * are absolute paths into the checkout.
 */
export function addStrategy(ws: Workspace, name: string, yamls: Record<string, string> = {}): void {
  ws.write(
    `strategies/${name}/index.ts`,
    [
      `import { z } from '${REPO_ROOT}/node_modules/zod/index.js';`,
      `import { defineStrategy } from '${REPO_ROOT}/src/strategy/api.ts';`,
      `export default defineStrategy({ name: '${name}', description: 'test strategy', params: z.object({}).passthrough(), defaultTimeframe: '1m', warmup: () => 1,`,
      `  create() { return { onCandle() {}, reset() {} }; } });`,
      '',
    ].join('\n'),
  );
  for (const [file, text] of Object.entries(yamls)) ws.write(`strategies/${name}/${file}`, text);
}
