/**
 * The real bot as a child process, as `npm start` runs it: start, heartbeat,
 * graceful stop on SIGINT / SIGTERM, and the refusals (bad config, paths
 * that cannot be written, a second bot on the same database).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { killQuietly, readHeartbeat, runCli, startCli, waitFor, waitForHeartbeat, type RunningCli } from '../support/bot-process.ts';
import { addStrategy, makeWorkspace, type Workspace } from '../support/workspace.ts';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';

let ws: Workspace;
const running: RunningCli[] = [];
afterEach(() => {
  for (const c of running.splice(0)) killQuietly(c);
  ws?.cleanup();
});

function start(env: Record<string, string> = {}): RunningCli {
  const c = startCli(['run'], { env: { ...ws.env, ...env }, cwd: ws.dir });
  running.push(c);
  return c;
}

function logLines(): Array<Record<string, unknown>> {
  if (!existsSync(ws.logDir)) return [];
  return readdirSync(ws.logDir)
    .filter((f) => /^trader-\d{4}-\d{2}-\d{2}\.log$/.test(f))
    .flatMap((f) => readFileSync(join(ws.logDir, f), 'utf8').trim().split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('bot lifecycle (real child process)', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`starts, keeps the heartbeat fresh, and on ${signal} stops cleanly: exit 0, final heartbeat "stopped"`, async () => {
      ws = makeWorkspace();
      addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'timeframe: 1m\n', 'ETHUSDT.yaml': 'enabled: true\n' });
      const bot = start();
      const first = await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running', bot);
      expect(first.pid).toBe(bot.child.pid);
      expect(first).toMatchObject({ mode: 'sim', market: 'spot', symbols: ['BTCUSDT', 'ETHUSDT'], strategies: ['rsi'], healthy: true, intervalMs: 200 });
      expect(first.db.status).toBe('ok');
      // The heartbeat keeps being rewritten.
      await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.tsMs > first.tsMs && hb.state === 'running', bot);

      // One-line banner naming mode, market, symbols, strategies, DB and heartbeat paths.
      const banner = await waitFor('banner', () => bot.stdout().split('\n').find((l) => l.includes('running: mode=')));
      expect(JSON.parse(banner).msg).toBe(
        `trader 0.1.0 running: mode=sim market=spot symbols=BTCUSDT,ETHUSDT strategies=rsi db=data/trader.db heartbeat=status/heartbeat.json (every 0.2 s) pid=${bot.child.pid}`,
      );

      // `trader status` reads it while it runs.
      const status = await runCli(['status'], { env: ws.env, cwd: ws.dir });
      expect(status.code, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).toMatch(/status:\s+HEALTHY/);

      bot.child.kill(signal);
      // The bot's own deadline exits with 70 after 5 s, so 0 also means "within 5 s".
      expect(await bot.exited, bot.output()).toBe(0);
      const last = readHeartbeat(ws.heartbeatFile)!;
      expect(last.state).toBe('stopped');
      expect(last.healthy).toBe(false);
      expect(bot.stdout()).toContain(`"msg":"stopping: received ${signal}"`);

      // The database was created with migrations applied and closed cleanly (WAL checkpointed).
      // (Checked before opening it here: a reader re-creates the -wal file.)
      expect(existsSync(`${ws.dbFile}-wal`), 'WAL folded into the database on close').toBe(false);
      const db = new Database(ws.dbFile, { readonly: true });
      const migrations = db.prepare('SELECT name FROM kysely_migration').all();
      const shutdown = db.prepare("SELECT channel FROM journal WHERE channel = 'system.shutdown'").all();
      db.close();
      expect(migrations).toEqual([{ name: '0001_initial' }, { name: '0002_candle_series' }, { name: '0003_backtests' }, { name: '0004_ledger' }, { name: '0005_sim_account' }, { name: '0006_order_namespace' }]);
      expect(shutdown, 'the stop is in the audit trail').toHaveLength(1);

      // Logs went to logs/trader-<UTC day>.log as JSON lines too.
      expect(logLines().some((l) => String(l.msg).startsWith('trader 0.1.0 running'))).toBe(true);

      const after = await runCli(['status'], { env: ws.env, cwd: ws.dir });
      expect(after.code, 'a stopped bot is not healthy').toBe(1);
    });
  }

  it('bad configuration: exit 78, every problem printed, nothing written', async () => {
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'timeframe: 7m\nparams: {}\nbogus: 1\n' });
    ws.write('strategies/nope/ETHUSDT.yaml', 'enabled: true\n');
    ws.write('config/bot.yaml', 'market: spot\nrisk:\n  maxLeverage: lots\n');
    const bot = start({ HEARTBEAT_INTERVAL_MS: 'often' });
    expect(await bot.exited).toBe(78);
    const err = bot.stderr();
    expect(err).toContain('invalid configuration (5 problems)');
    expect(err).toContain('environment HEARTBEAT_INTERVAL_MS: expected integer from 100 to 60000, got "often"');
    expect(err).toContain('config/bot.yaml:3 risk.maxLeverage: expected integer from 1 to 125, got "lots"');
    expect(err).toContain('strategies/nope: strategy "nope" does not exist');
    expect(err).toContain('strategies/rsi/BTCUSDT.yaml:1 timeframe: expected one of');
    expect(err).toContain('strategies/rsi/BTCUSDT.yaml:3 bogus: unknown key');
    expect(existsSync(ws.dbFile), 'no database created').toBe(false);
    expect(existsSync(join(ws.dir, 'data')), 'no data folder created').toBe(false);
    expect(existsSync(ws.heartbeatFile)).toBe(false);
    expect(existsSync(ws.logDir)).toBe(false);
  });

  it('MODE=mainnet never starts by accident', async () => {
    ws = makeWorkspace();
    const bot = start({ MODE: 'mainnet', BINANCE_API_KEY: 'realkey-0123456789', BINANCE_API_SECRET: 'realsecret-0123456789' });
    expect(await bot.exited).toBe(78);
    expect(bot.stderr()).toContain('set CONFIRM_MAINNET=yes');
    expect(bot.output()).not.toContain('realsecret-0123456789');
    expect(existsSync(ws.dbFile)).toBe(false);
  });

  for (const [name, envKey, what] of [
    ['status folder', 'HEARTBEAT_PATH', 'status folder'],
    ['log folder', 'LOG_DIR', 'log folder'],
    ['database folder', 'DB_URL', 'database folder'],
  ] as const) {
    it(`a ${name} that cannot be written: exit 73 with the path named`, async () => {
      ws = makeWorkspace();
      // A file where the folder should be: cannot be created, even as root.
      const blocker = ws.write('blocker', 'not a folder');
      const target = join(blocker, 'sub');
      const value = envKey === 'DB_URL' ? `sqlite:${target}/trader.db` : envKey === 'HEARTBEAT_PATH' ? `${target}/heartbeat.json` : target;
      const bot = start({ [envKey]: value });
      expect(await bot.exited, bot.output()).toBe(73);
      expect(bot.stderr()).toContain(`${what} ${target} is not writable (`);
    });
  }

  it('a second bot on the same database refuses and names the pid; after kill -9 the lock is taken over', async () => {
    ws = makeWorkspace();
    const a = start();
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running', a);

    const b = start({ HEARTBEAT_PATH: join(ws.dir, 'status', 'b.json'), LOG_DIR: join(ws.dir, 'logs-b') });
    expect(await b.exited).toBe(75);
    expect(b.stderr()).toContain(`another bot is already running on ${ws.dbFile} (pid ${a.child.pid} on `);
    expect(readHeartbeat(ws.heartbeatFile)!.state, 'the first bot is untouched').toBe('running');

    a.child.kill('SIGKILL');
    await a.exited;
    expect(readHeartbeat(ws.heartbeatFile)!.state, 'killed: no chance to say stopped').toBe('running');

    const c = start();
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.pid === c.child.pid, c);
    await waitFor('takeover warning', () => c.stdout().includes(`took over the instance lock left by pid ${a.child.pid}`));
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);

    // A clean stop releases the lock: the next start is not a takeover.
    const d = start();
    await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.pid === d.child.pid, d);
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
    expect(d.stdout()).not.toContain('took over');
  });

  it('secrets never reach stdout, the log files or the heartbeat', async () => {
    ws = makeWorkspace();
    const key = 'KEYvmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgw';
    const secret = 'SECNhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjIn';
    const secretFile = ws.write('run/secrets/binance_secret', secret + '\n');
    // A real signed session (REST and the user-data stream) with these keys, on the local exchange.
    const ex = await LocalExchange.start({ accounts: [{ apiKey: key, secret, spot: { USDT: '1000' } }] });
    try {
      // The exchange's URLs, but this test's own key, and the secret from a file.
      const { BINANCE_API_KEY: _k, BINANCE_API_SECRET: _s, ...urls } = ex.botEnv();
      const bot = start({ ...urls, BINANCE_API_KEY: key, BINANCE_API_SECRET_FILE: secretFile, LOG_LEVEL: 'trace' });
      await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running' && hb.userStream.status === 'ok', bot);
      bot.child.kill('SIGTERM');
      expect(await bot.exited).toBe(0);
      checkNoSecrets(bot);
    } finally {
      await ex.close();
    }
  });
});

function checkNoSecrets(bot: RunningCli): void {
  {
    const key = 'KEYvmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgw';
    const secret = 'SECNhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjIn';
    const everything = bot.output() + JSON.stringify(logLines()) + readFileSync(ws.heartbeatFile, 'utf8');
    expect(everything).toContain('mode=testnet');
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(secret);
  }
}

describe('trader CLI', () => {
  it('--help lists every command group', async () => {
    ws = makeWorkspace();
    const r = await runCli(['--help'], { env: ws.env, cwd: ws.dir });
    expect(r.code).toBe(0);
    for (const g of ['run', 'status', 'db', 'data', 'backtest', 'optimize', 'strategy', 'order', 'trade', 'portfolio', 'reconcile', 'exchange']) {
      expect(r.stdout, g).toMatch(new RegExp(`^  ${g}\\b`, 'm'));
    }
  });

  it('groups not built yet say so and exit 2, whatever the arguments', async () => {
    ws = makeWorkspace();
    for (const args of [] as string[][]) { // none left: portfolio is built (tests/integration/portfolio.test.ts)
      const r = await runCli(args, { env: ws.env, cwd: ws.dir });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^trader ${args[0]}: not available yet`));
      expect(r.stdout).toBe('');
    }
  });

  it('db migrate creates and migrates, then is a no-op; db status reads it; unknown command is a usage error', async () => {
    ws = makeWorkspace();
    const first = await runCli(['db', 'migrate'], { env: ws.env, cwd: ws.dir });
    expect(first.stdout.trim()).toBe('applied 0001_initial, 0002_candle_series, 0003_backtests, 0004_ledger, 0005_sim_account, 0006_order_namespace; schema is at 0006_order_namespace');
    const again = await runCli(['db', 'migrate'], { env: ws.env, cwd: ws.dir });
    expect(again.stdout.trim()).toBe('nothing to apply; schema is at 0006_order_namespace');
    const st = await runCli(['db', 'status'], { env: ws.env, cwd: ws.dir });
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/schema:\s+0006_order_namespace/);
    expect(st.stdout).toMatch(/journal\s+0 rows/);
    const bad = await runCli(['frobnicate'], { env: ws.env, cwd: ws.dir });
    expect(bad.code).toBe(64);
  });

  it('strategy list / info / validate on the shipped strategies, and validate failing on a bad YAML', async () => {
    const { REPO_ROOT } = await import('../support/workspace.ts');
    const env = { ENV_FILE: '/dev/null' };
    const list = await runCli(['strategy', 'list'], { env, cwd: REPO_ROOT });
    expect(list.code).toBe(0);
    for (const s of ['rsi', 'grid', 'macd', 'bollinger', 'ema-cross', 'vwap', 'volume-profile', 'ensemble', 'funding-carry']) expect(list.stdout, s).toMatch(new RegExp(`^${s}\\s`, 'm'));
    const info = await runCli(['strategy', 'info', 'rsi'], { env, cwd: REPO_ROOT });
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^\s+period\s+integer \(>= 2.*default 14/m);
    const ok = await runCli(['strategy', 'validate'], { env, cwd: REPO_ROOT });
    expect([ok.code, ok.stdout.trim()]).toEqual([0, 'ok: 0 instances (none), 9 disabled']);
    ws = makeWorkspace();
    addStrategy(ws, 'rsi', { 'BTCUSDT.yaml': 'timeframe: 5m\n' });
    ws.write('strategies/nope/ETHUSDT.yaml', 'enabled: true\n');
    const bad = await runCli(['strategy', 'validate'], { env: ws.env, cwd: ws.dir });
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('strategies/nope: strategy "nope" does not exist');
    const unknown = await runCli(['strategy', 'info', 'nothing'], { env, cwd: REPO_ROOT });
    expect(unknown.code).toBe(64);
  });

  it('status with no heartbeat exits 1 and says why', async () => {
    ws = makeWorkspace();
    const r = await runCli(['status'], { env: ws.env, cwd: ws.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`no heartbeat at ${ws.heartbeatFile}: is the bot running?`);
  });
});
