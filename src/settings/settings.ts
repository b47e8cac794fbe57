/** The loaded, validated, frozen configuration every component receives. */
import type { Secret } from '../core/secret.ts';
import type { Market } from '../model/market.ts';
import type { BotConfig } from './bot-config.ts';
import type { EnvConfig, Mode } from './env-schema.ts';
import type { StrategyConfig } from './strategy-config.ts';

export interface StrategyEntry {
  readonly strategy: string;
  readonly symbol: string;
  /** The YAML file, relative to the working directory when inside it. */
  readonly file: string;
  readonly config: StrategyConfig;
}

export interface Settings {
  readonly mode: Mode;
  readonly market: Market;
  readonly env: Readonly<Omit<EnvConfig, 'BINANCE_API_KEY' | 'BINANCE_API_SECRET' | 'CONTROL_TOKEN' | 'TELEGRAM_BOT_TOKEN' | 'SLACK_WEBHOOK_URL'>>;
  readonly paths: {
    readonly cwd: string;
    /** Absolute paths. */
    readonly dbFile: string;
    readonly heartbeatFile: string;
    readonly logDir: string;
    readonly configFile: string;
    readonly strategiesDir: string;
  };
  readonly heartbeatIntervalMs: number;
  /** REST and WebSocket bases for the mode (sim reads mainnet's public market data). */
  readonly endpoints: { readonly spotRest: string; readonly futuresRest: string; readonly spotWs: string; readonly futuresWs: string; readonly spotWsApi: string };
  readonly secrets: {
    readonly binanceApiKey?: Secret;
    readonly binanceApiSecret?: Secret;
    readonly controlToken?: Secret;
    readonly telegramBotToken?: Secret;
    /** A Slack incoming-webhook URL is itself the credential. */
    readonly slackWebhookUrl?: Secret;
  };
  readonly bot: BotConfig;
  /** Every strategy YAML, enabled or not. */
  readonly strategies: readonly StrategyEntry[];
  /** Strategy folders found (with an index.ts), whether or not they trade anything. */
  readonly strategyModules: readonly string[];
  /** Symbols with at least one enabled strategy, sorted. */
  readonly symbols: readonly string[];
  /** Strategies with at least one enabled symbol, sorted. */
  readonly activeStrategies: readonly string[];
}

/** The raw secret values, for the log scrubber. */
export function secretValues(settings: Settings): string[] {
  return Object.values(settings.secrets)
    .filter((s): s is Secret => s !== undefined)
    .map((s) => s.reveal());
}
