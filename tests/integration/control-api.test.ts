/**
 * The control API of a running bot: the bearer token (missing, wrong,
 * right), the public /health and what it may say, /metrics read back as
 * Prometheus text format with figures that match what happened, the
 * exchange circuit breaker going OPEN and back through HALF_OPEN, a config
 * reload, and no secret in any answer. The bot is the real kernel trading
 * on the local exchange through the real ccxt and ws clients; its clock is
 * a test clock, so the breaker's timeout is crossed without waiting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { ControlServer } from '../../src/control/control-server.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { runCli, startCli, waitForHeartbeat } from '../support/bot-process.ts';
import { parsePrometheusText, sampleValue } from '../support/prom-text.ts';
import { candle, nextEvent, startKernel, tradingWorkspace } from '../support/trading.ts';
import { addStrategy, makeWorkspace, type Workspace } from '../support/workspace.ts';
import { FakeTelegram } from '../support/fake-telegram.ts';
import { FakeSlack } from '../support/fake-slack.ts';
import { until } from '../support/fake-http.ts';

let ex: LocalExchange | undefined;
let ws: Workspace | undefined;
let kernel: Kernel | undefined;

afterEach(async () => {
  await kernel?.stop('test over');
  kernel = undefined;
  await ex?.close();
  ex = undefined;
  ws?.cleanup();
  ws = undefined;
});

// No periodic reconciliation: the tests move the clock by minutes, and the passes they would start are not what is tested here.
const BOT_YAML = 'market: spot\ncircuitBreaker:\n  failures: 3\n  openSec: 30\nreconcile:\n  intervalSec: 86400\n';

function startBot(w: Workspace, clock: TestClock): Promise<Kernel> {
  return startKernel(w, clock, { hotReload: true, tries: 1, retryDelayMs: 20 });
}

interface Http {
  status: number;
  text: string;
  type: string;
}

async function get(k: Kernel, path: string, token?: string, method = 'GET', body?: unknown): Promise<Http> {
  const info = k.control!.info!;
  const res = await fetch(`http://${info.host}:${info.port}${path}`, {
    method,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

function tokenOf(w: Workspace): string {
  return readFileSync(join(w.dir, 'data', 'control.token'), 'utf8').trim();
}

describe('control API', () => {
  it('needs the bearer token for everything but /health, which says up and ready and nothing about money', async () => {
    // The exchange runs on the bot's test clock: requests are signed with it, so the two must agree.
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ws = tradingWorkspace(ex, BOT_YAML);
    kernel = await startBot(ws, clock);
    const token = tokenOf(ws);
    expect(token.length, 'a generated token, 32 random bytes').toBeGreaterThanOrEqual(40);

    for (const path of ['/v1/status', '/v1/positions', '/v1/portfolio', '/metrics', '/v1/trade/status']) {
      expect((await get(kernel, path)).status, `${path} without a token`).toBe(401);
      expect((await get(kernel, path, 'wrong-token')).status, `${path} with a wrong token`).toBe(401);
      expect((await get(kernel, path, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).status, `${path} with a token one character off`).toBe(401);
      expect((await get(kernel, path, token)).status, `${path} with the token`).toBe(200);
    }
    expect((await get(kernel, '/v1/trade/pause', undefined, 'POST', {})).status, 'a control without a token changes nothing').toBe(401);
    expect(kernel.trading!.riskView().states, 'still ACTIVE').toEqual([]);

    const health = await get(kernel, '/health');
    expect(health.status, health.text).toBe(200);
    const h = JSON.parse(health.text);
    expect([h.status, h.live, h.ready, h.state], 'live and ready').toEqual(['ok', true, true, 'running']);
    expect(Object.keys(h.checks).sort()).toEqual(['db', 'feed', 'protection', 'reconcile', 'trading', 'userStream']);
    expect(h.breakers, 'the exchange breaker is reported').toEqual([expect.objectContaining({ name: 'exchange-rest', state: 'CLOSED' })]);
    expect(health.text, 'no balance or equity in the public answer').not.toMatch(/10000|equity|balance|pnl/i);

    // No secret in any answer: the token, the exchange keys.
    for (const path of ['/v1/status', '/v1/positions', '/metrics', '/health']) {
      const r = await get(kernel, path, token);
      for (const secret of [token, DEFAULT_ACCOUNT.apiKey, DEFAULT_ACCOUNT.secret]) expect(r.text.includes(secret), `${path} leaks a secret`).toBe(false);
    }
  });

  it('/metrics is Prometheus text format, with figures that match what happened', async () => {
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ws = tradingWorkspace(ex, BOT_YAML);
    kernel = await startBot(ws, clock);
    const token = tokenOf(ws);
    for (const price of ['2000', '2010', '2020']) {
      candle(kernel, ex, clock, 'spot', 'ETHUSDT', price);
      clock.advanceBy(60_000);
    }
    candle(kernel, ex, clock, 'spot', 'BTCUSDT', '30000');
    // The order's FILLED status and its fill arrive separately: the position exists once the fill is booked.
    const booked = nextEvent(kernel.bus, 'position.changed', (e) => e.symbol === 'ETHUSDT');
    const filled = JSON.parse((await get(kernel, '/v1/orders', token, 'POST', { symbol: 'ETHUSDT', side: 'BUY', quantity: '0.01' })).text);
    expect(filled.status, JSON.stringify(filled)).toBe('FILLED');
    await booked;
    const denied = JSON.parse((await get(kernel, '/v1/orders', token, 'POST', { symbol: 'ETHUSDT', side: 'BUY', quantity: '0.001' })).text);
    expect(denied.status).toBe('DENIED');
    candle(kernel, ex, clock, 'spot', 'ETHUSDT', '2030');

    const r = await get(kernel, '/metrics', token);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheusText(r.text);
    const want: Record<string, string> = {
      service_up: 'gauge',
      errors_total: 'counter',
      event_processing_seconds: 'histogram',
      candles_received_total: 'counter',
      ws_reconnections_total: 'counter',
      signals_generated_total: 'counter',
      strategy_execution_seconds: 'histogram',
      orders_total: 'counter',
      risk_rejections_total: 'counter',
      portfolio_value: 'gauge',
      unrealized_pnl: 'gauge',
      rate_limit_weight_used: 'gauge',
      event_loop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(want)) {
      expect(m.get(name)?.type, `${name} is a ${type}`).toBe(type);
      expect(m.get(name)?.help, `${name} has help text`).not.toBe('');
    }
    expect(sampleValue(m, 'service_up')).toBe(1);
    expect(sampleValue(m, 'candles_received_total', { symbol: 'ETHUSDT' }), 'four ETHUSDT candles').toBe(4);
    expect(sampleValue(m, 'candles_received_total', { symbol: 'BTCUSDT' })).toBe(1);
    expect(sampleValue(m, 'orders_total', { status: 'FILLED', side: 'BUY' }), 'the one manual buy').toBe(1);
    expect(sampleValue(m, 'orders_total', { status: 'PENDING', side: 'BUY' }), 'its row, written before sending').toBe(1);
    expect(sampleValue(m, 'risk_rejections_total', { reason: denied.reason.split(':')[0] }), `the denial (${denied.reason})`).toBe(1);
    const p = kernel.trading!.portfolio;
    expect(sampleValue(m, 'portfolio_value'), 'equity, as a float').toBeCloseTo(p.equity().toNumber(), 6);
    expect(p.position('ETHUSDT').unrealizedPnl.toNumber(), 'bought at 2020, marked at 2030').toBeGreaterThan(0);
    expect(sampleValue(m, 'unrealized_pnl', { symbol: 'ETHUSDT' }), 'the position at the last close').toBeCloseTo(p.position('ETHUSDT').unrealizedPnl.toNumber(), 6);
    expect(sampleValue(m, 'unrealized_pnl', { symbol: 'BTCUSDT' }), 'no position, no series').toBeUndefined();
    expect(sampleValue(m, 'rate_limit_weight_used'), "the exchange's weight header").toBeGreaterThan(0);
    expect(sampleValue(m, 'event_processing_seconds_count', { channel: 'candle.closed' }), 'every candle was timed').toBe(5);
    const buckets = m.get('event_processing_seconds')!.samples.filter((s) => s.name === 'event_processing_seconds_bucket' && s.labels.channel === 'candle.closed');
    expect(buckets.at(-1), 'the +Inf bucket holds every observation').toEqual(expect.objectContaining({ labels: { channel: 'candle.closed', le: '+Inf' }, value: 5 }));
  });

  it('the exchange circuit breaker opens after failures in a row, fails fast, and closes through HALF_OPEN', async () => {
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ws = tradingWorkspace(ex, BOT_YAML);
    kernel = await startBot(ws, clock);
    const token = tokenOf(ws);
    candle(kernel, ex, clock, 'spot', 'ETHUSDT', '2000');

    // Three 503s in a row (the reconcile endpoint's reads): the breaker opens.
    ex.faults.fails.push({ count: 3, status: 503, code: -1001, msg: 'Internal error; unable to process your request. Please try again.' });
    for (let i = 0; i < 3; i++) await get(kernel, '/v1/reconcile', token, 'POST', { dryRun: true });
    const health = await get(kernel, '/health');
    expect(health.status, 'not ready while the exchange breaker is OPEN').toBe(503);
    const h = JSON.parse(health.text);
    expect(h.breakers[0]).toEqual(expect.objectContaining({ name: 'exchange-rest', state: 'OPEN', consecutiveFailures: 3 }));
    expect(h.problems.join('\n')).toMatch(/exchange-rest circuit OPEN after 3 failures in a row/);
    const hb = JSON.parse(readFileSync(ws.heartbeatFile, 'utf8'));
    kernel.heartbeat.write();
    expect(JSON.parse(readFileSync(ws.heartbeatFile, 'utf8')).breakers[0].state, 'the heartbeat shows it too').toBe('OPEN');
    expect(hb.pid).toBe(process.pid);

    const order = JSON.parse((await get(kernel, '/v1/orders', token, 'POST', { symbol: 'ETHUSDT', side: 'BUY', quantity: '0.01' })).text);
    expect(order.status, 'denied before any row or request').toBe('DENIED');
    expect(order.reason).toMatch(/^CIRCUIT_OPEN: /);
    const rows = kernel.store.sqlite.prepare('SELECT COUNT(*) AS n FROM orders').get() as { n: number };
    expect(rows.n, 'no order row: nothing was written, nothing sent').toBe(0);

    // After openSec one trial goes through; it succeeds and the breaker closes.
    clock.advanceBy(30_000);
    expect(kernel.heartbeat.build().breakers[0]!.state).toBe('HALF_OPEN');
    await get(kernel, '/v1/reconcile', token, 'POST', { dryRun: true });
    expect(kernel.heartbeat.build().breakers[0]).toEqual(expect.objectContaining({ state: 'CLOSED', consecutiveFailures: 0, opened: 1 }));
    expect((await get(kernel, '/health')).status).toBe(200);
    const again = JSON.parse((await get(kernel, '/v1/orders', token, 'POST', { symbol: 'ETHUSDT', side: 'BUY', quantity: '0.01' })).text);
    expect(again.status, 'orders flow again').toBe('FILLED');
  });

  it('config reload applies a valid change and refuses a broken one whole, naming the file and field', async () => {
    const clock = new TestClock(Date.now());
    ex = await LocalExchange.start({ clock });
    ws = tradingWorkspace(ex, BOT_YAML);
    kernel = await startBot(ws, clock);
    const token = tokenOf(ws);
    ws.write('config/bot.yaml', BOT_YAML + 'risk:\n  maxOpenPositions: nope\n');
    const bad = await get(kernel, '/v1/config/reload', token, 'POST', {});
    expect(bad.status).toBe(422);
    const b = JSON.parse(bad.text);
    expect(b.applied).toBe(false);
    expect(b.errors.join('\n')).toMatch(/bot\.yaml.*risk\.maxOpenPositions/);
    expect(kernel.settings.bot.risk.maxOpenPositions, 'nothing changed').toBe(5);

    ws.write('config/bot.yaml', BOT_YAML + 'risk:\n  maxOpenPositions: 7\n');
    const good = await get(kernel, '/v1/config/reload', token, 'POST', {});
    expect(good.status, good.text).toBe(200);
    expect(kernel.settings.bot.risk.maxOpenPositions, 'the new limit is in force').toBe(7);
  });
});

describe('notifications from the running bot', () => {
  it('fills reach Telegram, commands from the configured chat work, and a hung Slack slows nothing', async () => {
    const tg = await FakeTelegram.start();
    const slack = await FakeSlack.start();
    slack.hang();
    try {
        const clock = new TestClock(Date.now());
      ex = await LocalExchange.start({ clock });
      ws = tradingWorkspace(ex, BOT_YAML + 'notifications:\n  events: [orderFilled, orderFailed, risk, killSwitch, error]\n', {
        TELEGRAM_BOT_TOKEN: tg.token,
        TELEGRAM_CHAT_ID: '4242',
        TELEGRAM_API_URL: tg.url,
        SLACK_WEBHOOK_URL: slack.webhookUrl,
      });
      kernel = await startBot(ws, clock);
      const token = tokenOf(ws);
      candle(kernel, ex, clock, 'spot', 'ETHUSDT', '2000');

      // Three orders while every Slack request hangs: all fill, one after the other, at once.
      for (let i = 0; i < 3; i++) {
        const r = JSON.parse((await get(kernel, '/v1/orders', token, 'POST', { symbol: 'ETHUSDT', side: 'BUY', quantity: '0.01' })).text);
        expect(r.status, 'trading is not held up by the dead webhook').toBe('FILLED');
      }
      expect(slack.http.holding, 'Slack requests are hanging, one at a time').toBeLessThanOrEqual(1);
      // Telegram: the first message at once, the rest merged after the rate limit's second.
      const fillsOnTelegram = () => (tg.delivered().join('\n').match(/ETHUSDT/g) ?? []).length;
      await until('the first fill on Telegram', () => fillsOnTelegram() >= 1);
      clock.advanceBy(1000);
      await until('all three fills on Telegram', () => fillsOnTelegram() >= 3);
      expect(tg.delivered().length, 'at most two messages: one, then the merged rest').toBeLessThanOrEqual(2);

      // Commands: a stranger's /pause does nothing; the configured chat's does.
      tg.message(9999, '/pause');
      tg.message(4242, '/status');
      // The reply goes through the same outbox: one message a second of the bot's clock.
      clock.advanceBy(1000);
      await until('the /status reply', () => tg.delivered().some((t) => /equity/.test(t)));
      expect(kernel.trading!.riskView().states, "a stranger's /pause was ignored").toEqual([]);
      tg.message(4242, '/pause');
      await until('paused', () => (kernel!.trading!.riskView().states as unknown[]).length === 1);
      expect(kernel.trading!.riskView().states).toEqual([expect.objectContaining({ scope: 'account', state: 'REDUCING' })]);
      tg.message(4242, '/resume');
      await until('resumed', () => (kernel!.trading!.riskView().states as unknown[]).length === 0);

      const health = await get(kernel, '/health');
      expect(health.status, 'a notifier is not a reason to be unready').toBe(200);
      expect(JSON.parse(health.text).notifiers.map((n: { channel: string }) => n.channel).sort()).toEqual(['slack', 'telegram']);
      kernel.heartbeat.write();
      const hbText = readFileSync(ws.heartbeatFile, 'utf8');
      for (const secret of [tg.token, slack.webhookUrl, 'FakeWebhookSecret']) {
        expect(hbText.includes(secret), 'no notifier secret in the heartbeat').toBe(false);
        expect(health.text.includes(secret), 'no notifier secret in /health').toBe(false);
        for (const t of tg.delivered()) expect(t.includes(secret), 'no secret in a message').toBe(false);
      }
    } finally {
      await kernel?.stop('test over');
      kernel = undefined;
      await tg.close();
      await slack.close();
    }
  });
});

describe('the bot as a process', () => {
  it('`trader run` serves /health and /metrics, and `trader config reload` applies or refuses a change', async () => {
    ws = makeWorkspace();
    addStrategy(ws, 'quiet', { 'BTCUSDT.yaml': 'timeframe: 1m\n' });
    const bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
    try {
      await waitForHeartbeat(ws.heartbeatFile, (hb) => hb.state === 'running', bot);
      const info = JSON.parse(readFileSync(join(ws.dir, 'data', 'control.json'), 'utf8')) as { host: string; port: number };
      const base = `http://${info.host}:${info.port}`;
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { ready: boolean }).ready).toBe(true);
      expect((await fetch(`${base}/metrics`)).status, '/metrics needs the token').toBe(401);
      const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${tokenOf(ws)}` } });
      expect(sampleValue(parsePrometheusText(await metrics.text()), 'service_up')).toBe(1);

      // bot.yaml is not watched (strategy files are): `config reload` is how a risk limit changes in place.
      ws.write('config/bot.yaml', 'market: spot\nrisk:\n  maxOpenPositions: many\n');
      const bad = await runCli(['config', 'reload'], { env: ws.env, cwd: ws.dir });
      expect(bad.code, 'a rejected reload is a configuration error').toBe(78);
      expect(bad.stderr).toMatch(/rejected, the bot keeps its last good configuration:\n\s+config\/bot\.yaml.*risk\.maxOpenPositions/);

      ws.write('config/bot.yaml', 'market: spot\nrisk:\n  maxDrawdownPct: 12\n');
      const ok = await runCli(['config', 'reload'], { env: ws.env, cwd: ws.dir });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^reloaded: /);
      const risk = await fetch(`${base}/v1/trade/status`, { headers: { authorization: `Bearer ${tokenOf(ws)}` } });
      expect(JSON.stringify(await risk.json()), 'the new limit is in force').toMatch(/"maxDrawdownPct":12/);
    } finally {
      bot.child.kill('SIGTERM');
      expect(await bot.exited).toBe(0);
    }
  });
});

describe('control API binding', () => {
  it('refuses a non-loopback host without an explicit token, and serves one with it', async () => {
    const w = makeWorkspace();
    try {
      const refused = new ControlServer({ host: '0.0.0.0', port: 0, dataDir: w.dir, logger: silentLogger(), routes: {} });
      await expect(refused.start()).rejects.toThrow(/CONTROL_HOST=0\.0\.0\.0 is not loopback: set CONTROL_TOKEN/);

      // The whole bot refuses to start, says why, and leaves nothing behind.
      const r = await runCli(['run'], { env: { ...w.env, CONTROL_HOST: '0.0.0.0' }, cwd: w.dir });
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/refusing to start: .*CONTROL_HOST=0\.0\.0\.0 is not loopback: set CONTROL_TOKEN/);
      const again = await runCli(['db', 'status'], { env: w.env, cwd: w.dir });
      expect(again.code, 'the instance lock was released').toBe(0);

      const token = 'a-long-explicit-token-1234';
      const { Secret } = await import('../../src/core/secret.ts');
      const open = new ControlServer({ host: '0.0.0.0', port: 0, dataDir: w.dir, logger: silentLogger(), token: new Secret(token), routes: { 'GET /v1/x': () => ({ status: 200, body: { ok: true } }) } });
      const info = await open.start();
      try {
        expect((await fetch(`http://127.0.0.1:${info.port}/v1/x`)).status).toBe(401);
        expect((await fetch(`http://127.0.0.1:${info.port}/v1/x`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      } finally {
        await open.stop();
      }
    } finally {
      w.cleanup();
    }
  });
});
