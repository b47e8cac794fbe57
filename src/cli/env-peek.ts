import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDotenv } from '../settings/dotenv.ts';

/**
 * One variable from the environment or .env, without validating the rest:
 * `trader status` must work even when the configuration is broken.
 */
export function peekEnv(key: string, cwd = process.cwd()): string | undefined {
  const fromEnv = process.env[key];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return undefined;
  const v = parseDotenv(readFileSync(file, 'utf8'), '.env').entries.get(key)?.value;
  return v === '' ? undefined : v;
}
