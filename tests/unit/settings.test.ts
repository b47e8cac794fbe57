import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, formatConfigIssue } from '../../src/core/errors.ts';
import { Secret } from '../../src/core/secret.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { addStrategy, makeWorkspace, type Workspace } from '../support/workspace.ts';

let ws: Workspace;
afterEach(() => ws?.cleanup());

/** Loads settings for the workspace: cwd is the workspace, so .env there is read. */
function load(env: Record<string, string> = {}) {
  return loadSettings({ cwd: ws.dir, env: { ...env } });
}

/** Every problem, formatted as the user sees it. */
function problems(env: Record<string, string> = {}): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err, 'only ConfigError signals bad configuration').toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map(formatConfigIssue);
  }
  throw new Error('expected the configuration to be rejected');
}

describe('settings: defaults', () => {
  it('starts with no .env, no bot.yaml and no strategies (MODE=sim)', () => {
    ws = makeWorkspace();
    ws.cleanup();
    ws = makeWorkspace();
    // No config/bot.yaml at all: defaults apply.
    ws.write('config/.keep', '');
    const s = loadSettings({ cwd: ws.dir, env: {}, envFile: false });
    expect(s.mode).toBe('sim');
    expect(s.market).toBe('spot');
    expect(s.heartbeatIntervalMs).toBe(2000);
    expect(s.paths.dbFile).toBe(`${ws.dir}/data/trader.db`);
    expect(s.paths.heartbeatFile).toBe(`${ws.dir}/status/heartbeat.json`);
    expect(s.bot.risk.maxLeverage, 'nested defaults apply when risk is absent').toBe(5);
    expect(s.symbols).toEqual([]);
    expect(Object.isFrozen(s) && Object.isFrozen(s.bot.risk) && Object.isFrozen(s.paths), 'settings are deeply frozen').toBe(true);
  });

  it('reads strategy YAML, lists enabled symbols and strategies', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'timeframe: 5m\nparams:\n  period: 14\n', 'ETHUSDT.yaml': 'enabled: false\n' });
    addStrategy(ws, 'ema-cross', { 'SOLUSDT.yaml': 'sizing:\n  type: quote\n  amount: "25.5"\n' });
    addStrategy(ws, 'idle');
    const s = load(ws.env);
    expect(s.symbols).toEqual(['BTCUSDT', 'SOLUSDT']);
    expect(s.activeStrategies).toEqual(['ema-cross', 'rsi']);
    expect(s.strategyModules).toEqual(['ema-cross', 'idle', 'rsi']);
    const sol = s.strategies.find((e) => e.symbol === 'SOLUSDT')!;
    expect(sol.config.sizing?.type).toBe('quote');
    expect(sol.config.sizing?.type === 'quote' && sol.config.sizing.amount.toFixed(), 'money in YAML becomes an exact Dec').toBe('25.5');
    expect(sol.config.order).toEqual({ type: 'market' });
    expect(s.strategies.find((e) => e.symbol === 'BTCUSDT')!.file).toBe('strategies/rsi/BTCUSDT.yaml');
  });

  it('process environment wins over .env', () => {
    ws = makeWorkspace();
    ws.write('.env', 'HEARTBEAT_INTERVAL_MS=5000\nLOG_LEVEL=debug\n');
    const s = load({ HEARTBEAT_INTERVAL_MS: '300' });
    expect(s.heartbeatIntervalMs).toBe(300);
    expect(s.env.LOG_LEVEL).toBe('debug');
  });
});

describe('settings: every error class is reported with where and what', () => {
  it('bad .env value names file, line, variable, expected and found', () => {
    ws = makeWorkspace();
    ws.write('.env', '# comment\nMODE=sim\nHEARTBEAT_INTERVAL_MS=fast\n');
    expect(problems()).toEqual(['.env:3 HEARTBEAT_INTERVAL_MS: expected integer from 100 to 60000, got "fast"']);
  });

  it('bad value from the process environment says "environment"', () => {
    ws = makeWorkspace();
    expect(problems({ LOG_FORMAT: 'xml' })).toEqual(['environment LOG_FORMAT: expected one of "json" | "pretty", got "xml"']);
  });

  it('unknown .env variable is an error, with a suggestion', () => {
    ws = makeWorkspace();
    ws.write('.env', 'HEARTBEAT_INTERVL_MS=1000\nCOMPOSE_PROJECT_NAME=trader\n');
    const p = problems();
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^\.env:1 HEARTBEAT_INTERVL_MS: unknown variable, did you mean "HEARTBEAT_INTERVAL_MS"\?/);
  });

  it('malformed .env line', () => {
    ws = makeWorkspace();
    ws.write('.env', 'MODE=sim\nthis is not an assignment\n');
    expect(problems()).toEqual(['.env:2: expected KEY=VALUE, got "this is not an assignment"']);
  });

  it('malformed YAML names file and line', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'enabled: true\nparams:\n  period: [14\n' });
    const p = problems(ws.env);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^strategies\/rsi\/BTCUSDT\.yaml:\d+: invalid YAML: /);
  });

  it('duplicate YAML keys are an error, not last-one-wins', () => {
    ws = makeWorkspace();
    ws.write('config/bot.yaml', 'market: spot\nmarket: futures\n');
    const p = problems(ws.env);
    expect(p[0]).toMatch(/^config\/bot\.yaml:2: invalid YAML: .*unique/i);
  });

  it('wrong type in YAML names line, field path, expected and found', () => {
    ws = makeWorkspace();
    ws.write('config/bot.yaml', 'market: spot\nrisk:\n  maxOpenPositions: "five"\n  maxLeverage: 0\n');
    expect(problems(ws.env)).toEqual([
      'config/bot.yaml:3 risk.maxOpenPositions: expected integer from 1 to 1000, got "five"',
      'config/bot.yaml:4 risk.maxLeverage: expected integer from 1 to 125, got 0',
    ]);
  });

  it('unknown YAML key is an error on its own line, with a suggestion and the allowed keys', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'enabled: true\ntimeframe: 1h\nsizng:\n  type: quote\n  amount: 10\n' });
    expect(problems(ws.env)).toEqual([
      'strategies/rsi/BTCUSDT.yaml:3 sizng: unknown key, did you mean "sizing"? (allowed here: enabled, timeframe, params, sizing, risk, order, regime, onDisable)',
    ]);
  });

  it('invalid choice inside a discriminated union names the options', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'sizing:\n  type: everything\n' });
    const p = problems(ws.env);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^strategies\/rsi\/BTCUSDT\.yaml:2 sizing\.type: expected one of "fixed" \| "quote" \| "percent-equity" \| "risk" \| "kelly" \| "volatility", got "everything"$/);
  });

  it('bad decimal and cross-field rule', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'sizing:\n  type: fixed\n  quantity: "-0.5"\n' });
    ws.write('config/bot.yaml', 'risk:\n  maxLeverage: 3\nsymbols:\n  BTCUSDT:\n    leverage: 10\n');
    expect(problems(ws.env)).toEqual([
      'config/bot.yaml:5 symbols.BTCUSDT.leverage: leverage 10 is above risk.maxLeverage 3',
      'strategies/rsi/BTCUSDT.yaml:3 sizing.quantity: expected a decimal > 0, got "-0.5"',
    ]);
  });

  it('a YAML folder naming a strategy that does not exist', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi');
    ws.write('strategies/rsl/BTCUSDT.yaml', 'enabled: true\n');
    expect(problems(ws.env)).toEqual([
      'strategies/rsl: strategy "rsl" does not exist: strategies/rsl/index.ts not found, did you mean "rsi"? (known strategies: rsi)',
    ]);
  });

  it('a strategy YAML whose name is not a symbol', () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'btcusdt.yaml': 'enabled: true\n' });
    expect(problems(ws.env)).toEqual(['strategies/rsi/btcusdt.yaml: file name must be an upper-case symbol such as BTCUSDT.yaml, got "btcusdt.yaml"']);
  });

  it('unsupported DB_URL scheme names what is supported', () => {
    ws = makeWorkspace();
    const p = problems({ ...ws.env, DB_URL: 'postgres://localhost/trader' });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^environment DB_URL: scheme "postgres" is not supported; supported: sqlite:<path>/);
  });

  it('MODE=mainnet refuses without keys and without CONFIRM_MAINNET=yes', () => {
    ws = makeWorkspace();
    expect(problems({ ...ws.env, MODE: 'mainnet' })).toEqual([
      'environment BINANCE_API_KEY: MODE=mainnet needs BINANCE_API_KEY (or BINANCE_API_KEY_FILE)',
      'environment BINANCE_API_SECRET: MODE=mainnet needs BINANCE_API_SECRET (or BINANCE_API_SECRET_FILE)',
      'environment CONFIRM_MAINNET: MODE=mainnet trades real money: set CONFIRM_MAINNET=yes to confirm, got nothing',
    ]);
    expect(problems({ ...ws.env, MODE: 'mainnet', BINANCE_API_KEY: 'k'.repeat(64), BINANCE_API_SECRET: 's'.repeat(64), CONFIRM_MAINNET: 'true' })).toEqual([
      'environment CONFIRM_MAINNET: MODE=mainnet trades real money: set CONFIRM_MAINNET=yes to confirm, got "true"',
    ]);
    const ok = load({ ...ws.env, MODE: 'mainnet', BINANCE_API_KEY: 'k'.repeat(64), BINANCE_API_SECRET: 's'.repeat(64), CONFIRM_MAINNET: 'yes' });
    expect(ok.mode).toBe('mainnet');
  });

  it('lists every problem at once, across .env, bot.yaml and strategy files', () => {
    ws = makeWorkspace();
    ws.write('.env', 'LOG_RETENTION_DAYS=0\n');
    ws.write('config/bot.yaml', 'market: margin\n');
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'timeframe: 2m\n', 'ETHUSDT.yaml': 'enabled: maybe\n' });
    const p = problems({ STRATEGIES_DIR: ws.strategiesDir, CONFIG_FILE: ws.configFile });
    expect(p).toEqual([
      '.env:1 LOG_RETENTION_DAYS: expected integer from 1 to 3650, got "0"',
      'config/bot.yaml:1 market: expected one of "spot" | "futures", got "margin"',
      'strategies/rsi/BTCUSDT.yaml:1 timeframe: expected one of "1m" | "3m" | "5m" | "15m" | "30m" | "1h" | "4h" | "1d", got "2m"',
      'strategies/rsi/ETHUSDT.yaml:1 enabled: expected true or false, got "maybe"',
    ]);
  });
});

describe('settings: secrets', () => {
  it('reads secrets from *_FILE and wraps them so they never print', () => {
    ws = makeWorkspace();
    const keyFile = ws.write('secrets/key', 'AKIAKEY1234567890\n');
    const secretFile = ws.write('secrets/secret', 'TOPSECRETVALUE987654\n');
    const s = load({ ...ws.env, MODE: 'testnet', BINANCE_API_KEY_FILE: keyFile, BINANCE_API_SECRET_FILE: secretFile });
    expect(s.secrets.binanceApiKey).toBeInstanceOf(Secret);
    expect(s.secrets.binanceApiKey!.reveal(), 'trailing newline of the file is trimmed').toBe('AKIAKEY1234567890');
    const printed = JSON.stringify(s) + String(s.secrets.binanceApiSecret) + `${s.secrets.binanceApiSecret}`;
    expect(printed).not.toContain('TOPSECRETVALUE987654');
    expect(printed).not.toContain('AKIAKEY1234567890');
  });

  it('both VAR and VAR_FILE, or an unreadable file, are errors', () => {
    ws = makeWorkspace();
    expect(problems({ ...ws.env, BINANCE_API_KEY: 'abcdefgh', BINANCE_API_KEY_FILE: '/nonexistent/key' })).toEqual([
      'environment BINANCE_API_KEY_FILE: both BINANCE_API_KEY and BINANCE_API_KEY_FILE are set; keep one',
    ]);
    expect(problems({ ...ws.env, BINANCE_API_SECRET_FILE: '/nonexistent/secret' })).toEqual([
      'environment BINANCE_API_SECRET_FILE: cannot read /nonexistent/secret: ENOENT',
    ]);
  });

  it('an error message never echoes a secret value', () => {
    ws = makeWorkspace();
    // MODE is invalid; the secrets are fine and must not appear anywhere.
    try {
      load({ ...ws.env, MODE: 'live', BINANCE_API_KEY: 'VISIBLEKEY123456', BINANCE_API_SECRET: 'VISIBLESECRET123456' });
      throw new Error('should have failed');
    } catch (err) {
      expect((err as Error).message).toContain('MODE');
      expect((err as Error).message).not.toContain('VISIBLESECRET123456');
    }
  });
});
