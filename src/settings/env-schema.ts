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
  FEED: z.enum(['live', 'replay', 'none']).default('live'),
  REPLAY_FILES: z.string().optional(),
  REPLAY_SPEED: z.union([z.literal('max'), z.coerce.number().positive()]).default(60),
  BINANCE_SPOT_REST_URL: z.url({ protocol: /^https?$/ }).optional(),
  BINANCE_FUTURES_REST_URL: z.url({ protocol: /^https?$/ }).optional(),
  BINANCE_SPOT_WS_URL: z.url({ protocol: /^wss?$/ }).optional(),
  BINANCE_FUTURES_WS_URL: z.url({ protocol: /^wss?$/ }).optional(),
  BINANCE_SPOT_WS_API_URL: z.url({ protocol: /^wss?$/ }).optional(),
  RECV_WINDOW_MS: intVar(1, 60_000, 5000),
  POSITION_MODE: z.enum(['ONEWAY', 'HEDGE']).default('ONEWAY'),
  ORDER_POLL_SEC: intVar(1, 3600, 5),
  CONTROL_HOST: z.string().min(1).default('127.0.0.1'),
  CONTROL_PORT: intVar(0, 65_535, 7788),
  CONTROL_TOKEN: z.string().min(16).optional(),
  TELEGRAM_BOT_TOKEN: z.string().regex(/^\d+:[A-Za-z0-9_-]{20,}$/, 'a bot token from @BotFather, such as 123456:ABC-...').optional(),
  TELEGRAM_CHAT_ID: z.string().regex(/^-?\d+$/, 'a numeric chat id such as 123456789 or -1001234567890').optional(),
  TELEGRAM_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.telegram.org'),
  SLACK_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  WS_MAX_BACKOFF_SEC: intVar(1, 3600, 60),
  FEED_STALL_SEC: z.coerce.number().int().min(1).max(3600).optional(),
  FEED_RESUME_HOURS: intVar(0, 1_000_000, 24),
});
export type EnvConfig = z.infer<typeof envSchema>;

/**
 * Secrets that may instead come from a file named by <NAME>_FILE (the
 * Docker-secrets convention). Later issues add their tokens here.
 */
export const SECRET_VARS = ['BINANCE_API_KEY', 'BINANCE_API_SECRET', 'CONTROL_TOKEN', 'TELEGRAM_BOT_TOKEN', 'SLACK_WEBHOOK_URL'] as const;

/** Every name a .env file may set: the schema's keys plus the *_FILE forms. */
export const KNOWN_ENV_KEYS: readonly string[] = [...Object.keys(envSchema.shape), ...SECRET_VARS.map((s) => `${s}_FILE`)];

/**
 * Names a .env file may hold for other tools (docker compose reads the same
 * file, Node reads NODE_OPTIONS). Anything else unknown is a typo and an error.
 */
export function isForeignEnvKey(key: string): boolean {
  return ['TZ', 'NODE_ENV', 'NODE_OPTIONS', 'UV_THREADPOOL_SIZE'].includes(key) || /^(COMPOSE|DOCKER)_/.test(key);
}

/** Binance endpoints per mode; every one can be overridden (e.g. to the local exchange). */
export const DEFAULT_ENDPOINTS = {
  mainnet: { spotRest: 'https://api.binance.com', futuresRest: 'https://fapi.binance.com', spotWs: 'wss://stream.binance.com:9443', futuresWs: 'wss://fstream.binance.com', spotWsApi: 'wss://ws-api.binance.com:443/ws-api/v3' },
  testnet: { spotRest: 'https://testnet.binance.vision', futuresRest: 'https://demo-fapi.binance.com', spotWs: 'wss://stream.testnet.binance.vision', futuresWs: 'wss://fstream.binancefuture.com', spotWsApi: 'wss://ws-api.testnet.binance.vision/ws-api/v3' },
} as const;
