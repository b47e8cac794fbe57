import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDotenv } from '../settings/dotenv.ts';

/**
 * One variable from the environment or the env file, without validating the
 * rest: `trader status` must work even when the configuration is broken. The
 * file is the one the bot reads (loadSettings): $ENV_FILE when set (process
 * environment only), else .env, relative to cwd; the environment wins over it.
 */
export function peekEnv(key: string, cwd = process.cwd(), env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const fromEnv = env[key];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const name = env.ENV_FILE || '.env';
  const file = resolve(cwd, name);
  if (!existsSync(file)) return undefined;
  const v = parseDotenv(readFileSync(file, 'utf8'), name).entries.get(key)?.value;
  return v === '' ? undefined : v;
}
