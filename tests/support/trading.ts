/**
 * Helpers for trading tests: the local exchange, a workspace whose bot
 * trades on it (MODE=testnet with every URL pointed at 127.0.0.1, the real
 * ccxt and ws clients), an in-process kernel on a test clock, and awaiting
 * bus events without sleeping.
 */
import type { Bus } from '../../src/bus/bus.ts';
import type { Clock } from '../../src/core/clock.ts';
import { Dec } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Channels } from '../../src/model/events.ts';
import type { Market } from '../../src/model/market.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { createIndicatorFactory } from '../../src/strategy/indicators/index.ts';
import { loadStrategyModules, resolveInstances, type InstanceSpec } from '../../src/strategy/loader.ts';
import { makeWorkspace, type Workspace } from './workspace.ts';

export function tradingWorkspace(ex: LocalExchange, botYaml: string, extraEnv: Record<string, string> = {}): Workspace {
  const ws = makeWorkspace({ ...ex.botEnv(), ...extraEnv });
  ws.write('config/bot.yaml', botYaml);
  return ws;
}

/** The kernel in this process, on the given clock (the exchange keeps real time). */
export async function startKernel(ws: Workspace, clock: Clock, opts: { pollMs?: number; tries?: number; retryDelayMs?: number; hotReload?: boolean; strategies?: boolean } = {}): Promise<Kernel> {
  const load = () => loadSettings({ cwd: ws.dir, env: ws.env, envFile: false });
  const settings = load();
  let specs: InstanceSpec[] = [];
  if (opts.strategies) {
    // The workspace's strategy modules run in the kernel's host (otherwise the test publishes signals itself).
    const { modules } = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, ws.dir);
    const resolved = resolveInstances(settings, settings.strategies, modules);
    if (resolved.issues.length) throw new Error(`strategy instances: ${JSON.stringify(resolved.issues)}`);
    specs = [...resolved.specs];
  }
  return Kernel.start({
    settings,
    clock,
    logger: silentLogger(),
    version: 'test',
    runId: 'run-test',
    specs,
    indicators: createIndicatorFactory,
    ...(opts.hotReload ? { reloadSettings: load } : {}),
    execution: { retryDelayMs: opts.retryDelayMs ?? 50, ...(opts.tries ? { tries: opts.tries } : {}), ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) },
  });
}

/** Resolves with the first event on channel that matches, or rejects after timeoutMs of real time. */
export function nextEvent<C extends keyof Channels & string>(bus: Bus, channel: C, match: (e: Channels[C]) => boolean = () => true, timeoutMs = 10_000): Promise<Channels[C]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${channel} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = bus.on(channel, ((e: Channels[C]) => {
      if (!match(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    }) as never, `test-wait-${channel}`);
  });
}

/**
 * One minute of market data: the exchange trades at `price` and the bot's
 * bus hears the closed candle (the test is the feed), stamped by the test clock.
 */
export function candle(kernel: Kernel, ex: LocalExchange, clock: Clock, market: Market, symbol: string, price: string): void {
  ex.setPrice(market, symbol, new Dec(price));
  const p = Number(price);
  const openTime = clock.now() - (clock.now() % 60_000);
  kernel.bus.publish('candle.closed', { kind: 'candle.closed', ts: clock.now(), market, symbol, timeframe: '1m', openTime, open: p, high: p, low: p, close: p, volume: 1 });
}

/**
 * Lets the kernel's order queues and the exchange's stream settle (real sockets), then polls once:
 * no timer sleeps, so a test moves as fast as the machine does.
 */
export async function settled(k: Kernel): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await k.trading!.execution.idle();
    await new Promise((r) => setImmediate(r));
  }
  await k.trading!.execution.poll();
  await k.trading!.execution.idle();
}
