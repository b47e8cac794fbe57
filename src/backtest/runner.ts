/**
 * The backtester: the live trading kernel (strategy host, risk engine,
 * planner, execution engine, portfolio, all on one bus) run over stored
 * candles with the sim venue and a test clock that the data advances. There
 * is no second order lifecycle: parity with live comes from swapping the
 * adapters (DESIGN.md).
 *
 * Per 1m candle, for every symbol in time order:
 *   1. the clock moves to the candle's open; the sim venue steps through
 *      the candle (open, adverse extreme first, close): orders waiting for
 *      a price fill at this open (or later in the step, after `latencyMs`),
 *      then stops, take-profits and limits along the path;
 *   2. the clock moves to the candle's close; `candle.closed` is published:
 *      the portfolio marks, strategies compute, signals become orders;
 *   3. the order path settles before the next candle (nothing is pending
 *      across a price event that it could have seen).
 * So a signal computed on a close fills at the next open at the earliest:
 * no look-ahead.
 *
 * The run's database is in memory: a backtest never touches the bot's
 * orders or fills.
 */
import { Bus } from '../bus/bus.ts';
import { TestClock } from '../core/clock.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import { TradingCore } from '../kernel/trading-core.ts';
import type { Market } from '../model/market.ts';
import type { Settings } from '../settings/settings.ts';
import type { CandleRepository, StoredCandle } from '../store/candle-repository.ts';
import { Store } from '../store/store.ts';
import { StrategyHost } from '../strategy/host.ts';
import type { IndicatorFactory } from '../strategy/indicators/index.ts';
import type { InstanceSpec } from '../strategy/loader.ts';
import { defaultFillModel, type FillModelConfig } from '../venues/sim/fill-model.ts';
import { catalog } from '../venues/sim/catalog.ts';
import { SimVenue } from '../venues/sim/sim-venue.ts';
import { computeMetrics } from './metrics.ts';
import { TradeRecorder } from './trade-recorder.ts';
import type { BacktestMetrics, BacktestTrade, EquityPoint } from './types.ts';

const MINUTE = 60_000;

export interface BacktestConfig {
  readonly market: Market;
  /** Strategy instances (one per strategy and symbol), params already resolved. */
  readonly specs: readonly InstanceSpec[];
  /** [from, to) in ms UTC. */
  readonly from: number;
  readonly to: number;
  readonly balance: Dec;
  /** Overrides of the fill model: one fee for maker and taker, market-order slippage. */
  readonly feeBps?: Dec;
  readonly slippageBps?: Dec;
  readonly latencyMs?: number;
}

export interface BacktestDeps {
  /** The project's settings (risk limits, quote asset); mode and feed are replaced. */
  readonly settings: Settings;
  readonly candles: CandleRepository;
  readonly logger: Logger;
  readonly indicators: () => IndicatorFactory;
}

export interface BacktestResult {
  readonly config: {
    readonly market: Market;
    readonly strategies: ReadonlyArray<{ strategy: string; symbol: string; timeframe: string; params: Readonly<Record<string, unknown>> }>;
    readonly from: number;
    readonly to: number;
    readonly balance: string;
    readonly fees: { readonly maker: string; readonly taker: string };
    readonly slippageBps: string;
    readonly latencyMs: number;
  };
  readonly metrics: BacktestMetrics;
  readonly trades: readonly BacktestTrade[];
  readonly equity: readonly EquityPoint[];
  readonly candles: number;
  readonly orders: { readonly submitted: number; readonly denied: number; readonly filled: number };
  /** Trips still open at the end, closed at the last price in the trade list. */
  readonly closedAtEnd: readonly string[];
  readonly elapsedMs: number;
}

export class MissingDataError extends Error {
  readonly code = 'BACKTEST_NO_DATA';
  constructor(
    readonly market: Market,
    readonly symbol: string,
    readonly from: number,
    readonly to: number,
  ) {
    super(
      `no stored ${market} 1m candles for ${symbol} between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}: ` +
        `download them with \`trader data download --market ${market} --symbol ${symbol} --from ${new Date(from).toISOString().slice(0, 10)} --to ${new Date(to).toISOString().slice(0, 10)}\` ` +
        '(or import Binance kline files with `trader data import <files>`)',
    );
    this.name = 'MissingDataError';
  }
}

export async function runBacktest(cfg: BacktestConfig, deps: BacktestDeps): Promise<BacktestResult> {
  const started = performance.now();
  const symbols = [...new Set(cfg.specs.map((s) => s.symbol))].sort();
  // Data first: a missing series is the most likely mistake, and says which command fixes it.
  const series = symbols.map((s) => {
    const rows = deps.candles.range(cfg.market, s, '1m', cfg.from, cfg.to - MINUTE);
    if (rows.length === 0) throw new MissingDataError(cfg.market, s, cfg.from, cfg.to);
    return { symbol: s, rows };
  });

  const base = defaultFillModel();
  const fee = cfg.feeBps?.div(10_000);
  const fillModel: FillModelConfig = {
    ...base,
    slippage: { kind: 'fixed', bps: cfg.slippageBps ?? ZERO },
    fees: fee ? { spot: { maker: fee, taker: fee }, futures: { maker: fee, taker: fee } } : base.fees,
  };
  const fees = fillModel.fees[cfg.market];

  const clock = new TestClock(cfg.from);
  const logger = deps.logger;
  const bus = new Bus({ logger, clock });
  const store = Store.open(':memory:');
  await store.migrate();
  const settings: Settings = {
    ...deps.settings,
    mode: 'sim',
    market: cfg.market,
    env: { ...deps.settings.env, FEED: 'none' },
    symbols,
    // The planner reads sizing and risk from the instance's YAML entry: exactly the backtested ones.
    strategies: cfg.specs.map((s) => ({ strategy: s.strategy, symbol: s.symbol, file: s.file, config: { ...s.config, enabled: true } })),
    activeStrategies: [...new Set(cfg.specs.map((s) => s.strategy))].sort(),
  };
  const venue = new SimVenue({
    market: cfg.market,
    clock,
    instruments: catalog(cfg.market),
    quoteAsset: settings.bot.quoteAsset,
    balance: cfg.balance,
    engine: { fillModel, marketOrders: 'next-step', latencyMs: cfg.latencyMs ?? 0 },
  });

  const recorder = new TradeRecorder(settings.bot.quoteAsset, (symbol, qty) => {
    const inst = venue.engine.instrument(cfg.market, symbol);
    return !inst || qty.lt(inst.filters.lot.minQty) || qty.lt(inst.filters.lot.stepSize);
  });
  const counts = { submitted: 0, denied: 0, filled: 0 };
  bus.on('fill', (f) => {
    counts.filled++;
    recorder.onFill(f);
  }, 'backtest');
  bus.on('order.denied', () => void counts.denied++, 'backtest');

  const core = await TradingCore.start({ settings: () => settings, store, bus, clock, logger, venue, reconcile: false, execution: { retryDelayMs: 0 } });
  const host = new StrategyHost({ bus, clock, logger, indicators: deps.indicators, history: deps.candles, initialPositions: () => core.portfolio.positions() });
  host.start(cfg.specs);

  // Merge the symbols' candles by open time (each series is ascending).
  const equity: EquityPoint[] = [];
  const idx = series.map(() => 0);
  let n = 0;
  let lastEquity = '';
  const last = new Map<string, StoredCandle>();
  for (let t = Math.ceil(cfg.from / MINUTE) * MINUTE; t < cfg.to; t += MINUTE) {
    let any = false;
    for (let i = 0; i < series.length; i++) {
      const s = series[i]!;
      const c = s.rows[idx[i]!];
      if (!c || c.openTime !== t) {
        // A hole in the data: skip ahead, never invent a candle.
        while (c && s.rows[idx[i]!] && s.rows[idx[i]!]!.openTime < t) idx[i]!++;
        continue;
      }
      idx[i]!++;
      if (!any) clock.advanceTo(t);
      any = true;
      venue.onCandle(s.symbol, { ...c, openTime: t });
      last.set(s.symbol, c);
    }
    if (!any) {
      // Jump to the next minute any series has.
      let next = Infinity;
      for (let i = 0; i < series.length; i++) next = Math.min(next, series[i]!.rows[idx[i]!]?.openTime ?? Infinity);
      if (next === Infinity) break;
      t = next - MINUTE;
      continue;
    }
    clock.advanceTo(t + MINUTE);
    for (const s of series) {
      const c = last.get(s.symbol);
      if (!c || c.openTime !== t) continue;
      n++;
      bus.publish('candle.closed', { kind: 'candle.closed', ts: t + MINUTE, eventTs: t + MINUTE - 1, market: cfg.market, symbol: s.symbol, timeframe: '1m', openTime: t, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume });
    }
    await core.execution.idle();
    // The curve: a point whenever equity moved (sparse while flat; the metrics carry it forward).
    const e = core.portfolio.equity().toFixed();
    if (e !== lastEquity) {
      equity.push({ t: t + MINUTE, equity: e });
      lastEquity = e;
    }
  }

  const closedAtEnd: string[] = [];
  const feesBeforeEnd = recorder.feesPaid;
  for (const [symbol] of recorder.openTrips()) {
    const c = last.get(symbol);
    if (!c) continue;
    closedAtEnd.push(symbol);
    recorder.closeAtEnd(symbol, new Dec(c.close), Math.min(clock.now(), cfg.to), fees.taker);
  }
  counts.submitted = core.execution.stats.sent;
  host.stop();
  await core.stop();
  store.close();

  const startEquity = cfg.balance.toFixed();
  // The equity curve ends where the trade list does: open trips valued as closed at the last price (with the exit fee).
  if (closedAtEnd.length > 0) {
    // Less the exit fees the recorder charged those trips (one computation, not two).
    const endEquity = new Dec(lastEquity || startEquity).minus(recorder.feesPaid.minus(feesBeforeEnd));
    equity.push({ t: Math.min(clock.now(), cfg.to), equity: endEquity.toFixed() });
  }
  const metrics = computeMetrics({ from: cfg.from, to: cfg.to, startEquity, equity, trades: recorder.trades });
  return {
    config: {
      market: cfg.market,
      strategies: cfg.specs.map((s) => ({ strategy: s.strategy, symbol: s.symbol, timeframe: s.timeframe, params: s.params })),
      from: cfg.from,
      to: cfg.to,
      balance: startEquity,
      fees: { maker: fees.maker.toFixed(), taker: fees.taker.toFixed() },
      slippageBps: (cfg.slippageBps ?? ZERO).toFixed(),
      latencyMs: cfg.latencyMs ?? 0,
    },
    metrics,
    trades: recorder.trades,
    equity,
    candles: n,
    orders: counts,
    closedAtEnd,
    elapsedMs: performance.now() - started,
  };
}
