/**
 * The one settings loader: .env + environment, config/bot.yaml and every
 * strategies/<strategy>/<SYMBOL>.yaml. It returns a frozen Settings, or
 * throws one ConfigError listing every problem found (never just the first),
 * each naming file, line where known, field, expected and found. It reads
 * files and nothing else: no directory is created and no database touched,
 * so a bad configuration changes nothing.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../core/errors.ts';
import { deepFreeze } from '../core/freeze.ts';
import { Secret } from '../core/secret.ts';
import { SYMBOL_PATTERN } from '../model/market.ts';
import { botConfigSchema, type BotConfig } from './bot-config.ts';
import { parseDbUrl } from './db-url.ts';
import { describeIssues, suggestion } from './describe-issues.ts';
import { parseDotenv, type EnvEntry } from './dotenv.ts';
import { DEFAULT_ENDPOINTS, envSchema, isForeignEnvKey, KNOWN_ENV_KEYS, SECRET_VARS, type EnvConfig } from './env-schema.ts';
import type { Settings, StrategyEntry } from './settings.ts';
import { strategyConfigSchema } from './strategy-config.ts';
import { readYamlFile } from './yaml-file.ts';

export interface LoadSettingsOptions {
  /** Base for relative paths (default: process.cwd()). */
  cwd?: string;
  /** The process environment (default: process.env). It wins over .env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The .env file, relative to cwd; false to read none (default: $ENV_FILE or ".env"). */
  envFile?: string | false;
}

const STRATEGY_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export function loadSettings(opts: LoadSettingsOptions = {}): Settings {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const procEnv = opts.env ?? process.env;
  const issues: ConfigIssue[] = [];
  const display = (p: string): string => {
    const rel = relative(cwd, p);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
  };

  // 1. .env file, then the process environment on top (the usual precedence).
  // ENV_FILE (process environment only) points at another file, e.g. /dev/null for none.
  const envFileName = opts.envFile === undefined ? (procEnv.ENV_FILE || '.env') : opts.envFile;
  const fileEntries = new Map<string, EnvEntry>();
  let envSource = '.env';
  if (envFileName !== false) {
    const envPath = resolve(cwd, envFileName);
    envSource = display(envPath);
    if (existsSync(envPath)) {
      const parsed = parseDotenv(readFileSync(envPath, 'utf8'), envSource);
      issues.push(...parsed.issues);
      for (const [k, v] of parsed.entries) {
        if (!KNOWN_ENV_KEYS.includes(k) && !isForeignEnvKey(k)) {
          issues.push({ source: envSource, line: v.line, field: k, message: `unknown variable${suggestion(k, KNOWN_ENV_KEYS)} (see .env.example for the full list)` });
        } else fileEntries.set(k, v);
      }
    }
  }
  const raw: Record<string, string> = {};
  const origin = (key: string): { source: string; line?: number } => {
    if (procEnv[key] !== undefined && procEnv[key] !== '') return { source: 'environment' };
    const f = fileEntries.get(key);
    return f ? { source: envSource, line: f.line } : { source: 'environment' };
  };
  for (const key of KNOWN_ENV_KEYS) {
    const v = procEnv[key] !== undefined && procEnv[key] !== '' ? procEnv[key] : fileEntries.get(key)?.value;
    if (v !== undefined && v !== '') raw[key] = v;
  }

  // 2. Secrets from *_FILE (Docker secrets).
  for (const name of SECRET_VARS) {
    const fileVar = `${name}_FILE`;
    const path = raw[fileVar];
    if (path === undefined) continue;
    delete raw[fileVar];
    if (raw[name] !== undefined) {
      issues.push({ ...origin(fileVar), field: fileVar, message: `both ${name} and ${fileVar} are set; keep one` });
      continue;
    }
    try {
      const value = readFileSync(resolve(cwd, path), 'utf8').trim();
      if (value === '') issues.push({ ...origin(fileVar), field: fileVar, message: `file ${path} is empty` });
      else raw[name] = value;
    } catch (err) {
      issues.push({ ...origin(fileVar), field: fileVar, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  }

  // 3. Validate the environment.
  let env: EnvConfig | undefined;
  const parsedEnv = envSchema.safeParse(raw);
  if (parsedEnv.success) env = parsedEnv.data;
  else {
    for (const i of describeIssues(envSchema, raw, parsedEnv.error.issues, { source: 'environment' })) {
      const o = origin(i.field);
      issues.push({ ...i, source: o.source, ...(o.line !== undefined ? { line: o.line } : {}) });
    }
  }

  if (env) {
    // 4. Rules across variables: real money needs keys and an explicit yes.
    if (env.MODE !== 'sim') {
      for (const name of ['BINANCE_API_KEY', 'BINANCE_API_SECRET'] as const) {
        if (env[name] === undefined) {
          issues.push({ source: 'environment', field: name, message: `MODE=${env.MODE} needs ${name} (or ${name}_FILE)${env.MODE === 'testnet' ? ': testnet keys come from testnet.binance.vision and the futures demo site' : ''}` });
        }
      }
    }
    if (env.MODE === 'mainnet' && env.CONFIRM_MAINNET !== 'yes') {
      issues.push({ ...origin('CONFIRM_MAINNET'), field: 'CONFIRM_MAINNET', message: `MODE=mainnet trades real money: set CONFIRM_MAINNET=yes to confirm, got ${env.CONFIRM_MAINNET === undefined ? 'nothing' : JSON.stringify(env.CONFIRM_MAINNET)}` });
    }
    const db = parseDbUrl(env.DB_URL);
    if (!db.ok) issues.push({ ...origin('DB_URL'), field: 'DB_URL', message: db.message });
    if (env.FEED === 'replay' && !env.REPLAY_FILES) issues.push({ ...origin('REPLAY_FILES'), field: 'REPLAY_FILES', message: 'FEED=replay needs REPLAY_FILES (comma-separated kline dump files or folders), got nothing' });
  }

  // 5. config/bot.yaml (optional unless CONFIG_FILE names it explicitly).
  const configFile = resolve(cwd, env?.CONFIG_FILE ?? 'config/bot.yaml');
  let bot: BotConfig | undefined;
  if (existsSync(configFile) || raw.CONFIG_FILE !== undefined) {
    const read = readYamlFile(configFile, display(configFile));
    if (!read.ok) issues.push(...read.issues);
    else {
      const data = read.file.data ?? {};
      const parsed = botConfigSchema.safeParse(data);
      if (parsed.success) bot = parsed.data;
      else issues.push(...describeIssues(botConfigSchema, data, parsed.error.issues, { source: display(configFile), lineOf: read.file.lineOf }));
    }
  } else {
    bot = botConfigSchema.parse({});
  }

  // 6. strategies/<strategy>/<SYMBOL>.yaml
  const strategiesDir = resolve(cwd, env?.STRATEGIES_DIR ?? 'strategies');
  const { entries: strategies, modules } = loadStrategyFiles(strategiesDir, raw.STRATEGIES_DIR !== undefined, display, issues);

  if (issues.length > 0 || !env || !bot) throw new ConfigError(issues);

  const enabled = strategies.filter((s) => s.config.enabled);
  const { BINANCE_API_KEY, BINANCE_API_SECRET, CONTROL_TOKEN, TELEGRAM_BOT_TOKEN, SLACK_WEBHOOK_URL, ...publicEnv } = env;
  const dbUrl = parseDbUrl(env.DB_URL);
  const dbFile = dbUrl.ok && dbUrl.target.file !== ':memory:' ? resolve(cwd, dbUrl.target.file) : ':memory:';
  const settings: Settings = {
    mode: env.MODE,
    market: bot.market,
    env: publicEnv,
    paths: {
      cwd,
      dbFile,
      heartbeatFile: resolve(cwd, env.HEARTBEAT_PATH),
      logDir: resolve(cwd, env.LOG_DIR),
      configFile,
      strategiesDir,
    },
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    endpoints: (() => {
      const d = DEFAULT_ENDPOINTS[env.MODE === 'testnet' ? 'testnet' : 'mainnet'];
      return {
        spotRest: env.BINANCE_SPOT_REST_URL ?? d.spotRest,
        futuresRest: env.BINANCE_FUTURES_REST_URL ?? d.futuresRest,
        spotWs: env.BINANCE_SPOT_WS_URL ?? d.spotWs,
        futuresWs: env.BINANCE_FUTURES_WS_URL ?? d.futuresWs,
        spotWsApi: env.BINANCE_SPOT_WS_API_URL ?? d.spotWsApi,
      };
    })(),
    secrets: {
      ...(BINANCE_API_KEY !== undefined ? { binanceApiKey: new Secret(BINANCE_API_KEY) } : {}),
      ...(BINANCE_API_SECRET !== undefined ? { binanceApiSecret: new Secret(BINANCE_API_SECRET) } : {}),
      ...(CONTROL_TOKEN !== undefined ? { controlToken: new Secret(CONTROL_TOKEN) } : {}),
      ...(TELEGRAM_BOT_TOKEN !== undefined ? { telegramBotToken: new Secret(TELEGRAM_BOT_TOKEN) } : {}),
      ...(SLACK_WEBHOOK_URL !== undefined ? { slackWebhookUrl: new Secret(SLACK_WEBHOOK_URL) } : {}),
    },
    bot,
    strategies,
    strategyModules: modules,
    symbols: [...new Set(enabled.map((s) => s.symbol))].sort(),
    activeStrategies: [...new Set(enabled.map((s) => s.strategy))].sort(),
  };
  return deepFreeze(settings);
}

function loadStrategyFiles(
  dir: string,
  explicit: boolean,
  display: (p: string) => string,
  issues: ConfigIssue[],
): { entries: StrategyEntry[]; modules: string[] } {
  const entries: StrategyEntry[] = [];
  const modules: string[] = [];
  if (!existsSync(dir)) {
    if (explicit) issues.push({ source: 'environment', field: 'STRATEGIES_DIR', message: `folder ${display(dir)} does not exist` });
    return { entries, modules };
  }
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !d.name.startsWith('_'))
    .map((d) => d.name)
    .sort();
  const known = folders.filter((f) => existsSync(join(dir, f, 'index.ts')));
  for (const name of folders) {
    const folder = join(dir, name);
    const yamls = readdirSync(folder).filter((f) => /\.ya?ml$/i.test(f) && statSync(join(folder, f)).isFile()).sort();
    const hasModule = known.includes(name);
    if (!STRATEGY_NAME.test(name)) {
      issues.push({ source: display(folder), field: '', message: `strategy folder names are lower-case letters, digits and dashes (e.g. ema-cross), got ${JSON.stringify(name)}` });
      continue;
    }
    if (hasModule) modules.push(name);
    if (yamls.length === 0) continue;
    if (!hasModule) {
      issues.push({
        source: display(folder),
        field: '',
        message: `strategy "${name}" does not exist: ${display(join(folder, 'index.ts'))} not found${suggestion(name, known)} (known strategies: ${known.join(', ') || 'none'})`,
      });
      continue;
    }
    for (const file of yamls) {
      const path = join(folder, file);
      const shown = display(path);
      const symbol = file.replace(/\.ya?ml$/i, '');
      if (!SYMBOL_PATTERN.test(symbol)) {
        issues.push({ source: shown, field: '', message: `file name must be an upper-case symbol such as BTCUSDT.yaml, got ${JSON.stringify(file)}` });
        continue;
      }
      const read = readYamlFile(path, shown);
      if (!read.ok) {
        issues.push(...read.issues);
        continue;
      }
      const data = read.file.data ?? {};
      const parsed = strategyConfigSchema.safeParse(data);
      if (!parsed.success) {
        issues.push(...describeIssues(strategyConfigSchema, data, parsed.error.issues, { source: shown, lineOf: read.file.lineOf }));
        continue;
      }
      entries.push({ strategy: name, symbol, file: shown, config: parsed.data });
    }
  }
  return { entries, modules };
}
