/**
 * Every environment variable the bot reads, with its default. `.env.example`
 * and the README document exactly this list (a test keeps them in step).
 * Values arrive as strings; an empty value means "use the default".
 */
import { z } from 'zod';

export const MODES = ['sim', 'testnet', 'mainnet'] as const;
export type Mode = (typeof MODES)[number];

const intVar = (min: number, max: number, def: number) => z.coerce.number().int().min(min).max(max).default(def);
const pathVar = (def: string) => z.string().min(1).default(def);

export const envSchema = z.strictObject({
  MODE: z.enum(MODES).default('sim'),
  CONFIRM_MAINNET: z.string().optional(),
  BINANCE_API_KEY: z.string().min(1).optional(),
  BINANCE_API_SECRET: z.string().min(1).optional(),
  DB_URL: z.string().min(1).default('sqlite:data/trader.db'),
  CONFIG_FILE: pathVar('config/bot.yaml'),
  STRATEGIES_DIR: pathVar('strategies'),
  HEARTBEAT_PATH: pathVar('status/heartbeat.json'),
  HEARTBEAT_INTERVAL_MS: intVar(100, 60_000, 2000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  LOG_DIR: pathVar('logs'),
  LOG_RETENTION_DAYS: intVar(1, 3650, 14),
});
export type EnvConfig = z.infer<typeof envSchema>;

/**
 * Secrets that may instead come from a file named by <NAME>_FILE (the
 * Docker-secrets convention). Later issues add their tokens here.
 */
export const SECRET_VARS = ['BINANCE_API_KEY', 'BINANCE_API_SECRET'] as const;

/** Every name a .env file may set: the schema's keys plus the *_FILE forms. */
export const KNOWN_ENV_KEYS: readonly string[] = [...Object.keys(envSchema.shape), ...SECRET_VARS.map((s) => `${s}_FILE`)];

/**
 * Names a .env file may hold for other tools (docker compose reads the same
 * file, Node reads NODE_OPTIONS). Anything else unknown is a typo and an error.
 */
export function isForeignEnvKey(key: string): boolean {
  return ['TZ', 'NODE_ENV', 'NODE_OPTIONS', 'UV_THREADPOOL_SIZE'].includes(key) || /^(COMPOSE|DOCKER)_/.test(key);
}
