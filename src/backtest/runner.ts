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
import { TraderError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { TradingCore } from '../kernel/trading-core.ts';
import type { Instrument } from '../model/instrument.ts';
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
import { TradeRecorder, type HeldAtEnd } from './trade-recorder.ts';
import type { BacktestReport, BacktestRunConfig, EquityPoint } from './types.ts';

const MINUTE = 60_000;
/** USD-M perpetuals settle funding every 8 h: 00:00, 08:00 and 16:00 UTC. */
const FUNDING_EVERY = 8 * 3_600_000;
const DEFAULT_FUNDING_RATE = new Dec('0.0001');

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
  /** Futures: funding rate per 8 h settlement (default 0.0001, Binance's baseline). */
  readonly fundingRate?: Dec;
  /** Where each symbol's YAML came from (for the report). */
  readonly sources?: Readonly<Record<string, string>>;
}

export interface BacktestDeps {
  /** The project's settings (risk limits, quote asset); mode and feed are replaced. */
  readonly settings: Settings;
  readonly candles: CandleRepository;
  readonly logger: Logger;
  readonly indicators: () => IndicatorFactory;
  /** Exchange filters per symbol (default: the shipped catalog). A symbol missing here cannot trade. */
  readonly instruments?: readonly Instrument[];
  /** Called with the run's bus before anything starts (tests and tools that watch the events). */
  readonly onBus?: (bus: Bus) => void;
}

/** A run's figures, trade list and curve; stored with an id, a time and the git commit it becomes a BacktestReport. */
export type BacktestResult = Omit<BacktestReport, 'id' | 'createdAt' | 'gitCommit'> & {
  /**
   * What the strategies still held at the end below the filters (spot dust),
   * valued at the last price. The trades' PnL plus these unrealized PnL (less
   * their funding) is the equity change, to the last unit.
   */
  readonly heldAtEnd: readonly HeldAtEnd[];
};

export class MissingDataError extends TraderError {
  constructor(
    readonly market: Market,
    readonly symbol: string,
    readonly from: number,
    readonly to: number,
  ) {
    super(
      'BACKTEST_NO_DATA',
      `no stored ${market} 1m candles for ${symbol} between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}: ` +
        `download them with \`trader data download --market ${market} --symbol ${symbol} --from ${new Date(from).toISOString().slice(0, 10)} --to ${new Date(to).toISOString().slice(0, 10)}\` ` +
        '(or import Binance kline files with `trader data import <files>`)',
    );
  }
}

/** Candles read a week at a time: a year of 20 symbols is 10 million candles, which a run never needs at once. */
const CHUNK_MS = 7 * 86_400_000;

class SeriesCursor {
  private rows: StoredCandle[] = [];
  private i = 0;
  private next: number;

  constructor(
    private readonly candles: CandleRepository,
    private readonly market: Market,
    readonly symbol: string,
    from: number,
    private readonly to: number,
  ) {
    this.next = from;
  }

  /** The candle at the cursor (the next chunk is read when this one is used up), or undefined at the end. */
  peek(): StoredCandle | undefined {
    while (this.i >= this.rows.length) {
      if (this.next >= this.to) return undefined;
      const end = Math.min(this.to, this.next + CHUNK_MS);
      this.rows = this.candles.range(this.market, this.symbol, '1m', this.next, end - MINUTE);
      this.i = 0;
      this.next = end;
    }
    return this.rows[this.i];
  }

  advance(): void {
    this.i++;
  }
}

export class MissingInstrumentError extends TraderError {
  constructor(market: Market, symbols: readonly string[]) {
    super(
      'BACKTEST_NO_DATA',
      `no ${market} exchange filters (tick size, lot size, min notional) for ${symbols.join(', ')}: ` +
        'orders cannot be rounded or checked as Binance would. The bot stores Binance\'s exchangeInfo in its database when it runs ' +
        `(any mode, FEED=live); run it once with ${symbols.join(',')} in a strategy YAML, then backtest again`,
    );
  }
}

export async function runBacktest(cfg: BacktestConfig, deps: BacktestDeps): Promise<BacktestResult> {
  const started = performance.now();
  const symbols = [...new Set(cfg.specs.map((s) => s.symbol))].sort();
  // Data first: a missing series is the most likely mistake, and says which command fixes it.
  const series = symbols.map((s) => {
    const cursor = new SeriesCursor(deps.candles, cfg.market, s, cfg.from, cfg.to);
    if (!cursor.peek()) throw new MissingDataError(cfg.market, s, cfg.from, cfg.to);
    return cursor;
  });

  const instruments = deps.instruments ?? catalog(cfg.market);
  const unlisted = symbols.filter((s) => !instruments.some((i) => i.symbol === s && i.market === cfg.market));
  if (unlisted.length > 0) throw new MissingInstrumentError(cfg.market, unlisted);

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
  // Payload freezing catches a handler mutating a shared event; the test suite runs these same
  // handlers with it on, so a throughput-bound replay turns it off (bus.ts).
  const bus = new Bus({ logger, clock, freezePayloads: false });
  deps.onBus?.(bus);
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
    instruments,
    quoteAsset: settings.bot.quoteAsset,
    balance: cfg.balance,
    engine: { fillModel, marketOrders: 'next-step', latencyMs: cfg.latencyMs ?? 0 },
  });

  const counts = { submitted: 0, denied: 0, filled: 0, deniedBy: {} as Record<string, number> };
  bus.on('fill', () => void counts.filled++, 'backtest');
  bus.on('order.denied', (d) => {
    counts.denied++;
    const code = d.reason.split(':')[0] ?? d.reason;
    counts.deniedBy[code] = (counts.deniedBy[code] ?? 0) + 1;
  }, 'backtest');
  const futures = cfg.market === 'futures';
  const fundingRate = cfg.fundingRate ?? DEFAULT_FUNDING_RATE;
  let liquidations = 0;
  // The trade list is the ledger's trips (built once the kernel, and so the ledger, exists).
  let recorder: TradeRecorder | undefined;
  venue.engine.onEvent((e) => {
    if (e.type === 'funding') {
      const p = venue.engine.price(cfg.market, e.symbol);
      const mark = p.mark ?? p.last;
      if (recorder && mark) recorder.onFunding(e.symbol, e.amount, mark, e.rate);
    } else if (e.type === 'order' && e.order.type === 'LIQUIDATION' && e.order.status === 'FILLED') liquidations++;
  });

  // The in-process venue reports every order change synchronously and its catalog is fixed: the
  // safety-net poll (every 5 s of test clock, 12 database scans per candle) and the hourly
  // exchangeInfo reload would only cost time.
  const core = await TradingCore.start({
    settings: () => settings,
    store,
    bus,
    clock,
    logger,
    venue,
    reconcile: false,
    execution: { retryDelayMs: 0, pollMs: 30 * 86_400_000 },
    instrumentRefreshMs: 0,
  });
  const trades = new TradeRecorder(core.portfolio.ledger, cfg.market, new Set(cfg.specs.map((s) => s.strategy)));
  recorder = trades;
  const host = new StrategyHost({ bus, clock, logger, indicators: deps.indicators, history: deps.candles, initialPositions: () => core.portfolio.ledger.lots() });
  host.start(cfg.specs);

  // Merge the symbols' candles by open time (each series is ascending).
  const equity: EquityPoint[] = [];
  let n = 0;
  let lastEquity = '';
  let lastEquityDec: Dec | undefined;
  const last = new Map<string, StoredCandle>();
  let closedAtEnd: string[] = [];
  let exitFeesAtEnd = ZERO;
  // Stopped whatever happens: an optimizer worker runs many backtests in one thread.
  try {
    for (let t = Math.ceil(cfg.from / MINUTE) * MINUTE; t < cfg.to; t += MINUTE) {
      let any = false;
      for (const s of series) {
        let c = s.peek();
        // A hole in the data: skip ahead, never invent a candle.
        while (c && c.openTime < t) {
          s.advance();
          c = s.peek();
        }
        if (!c || c.openTime !== t) continue;
        s.advance();
        if (!any) {
          clock.advanceTo(t);
          // Funding settles at the funding time, on the position held into it, at the last price (the mark).
          if (futures && t % FUNDING_EVERY === 0) for (const sym of symbols) venue.engine.applyFunding(sym, fundingRate);
        }
        any = true;
        venue.onCandle(s.symbol, c);
        last.set(s.symbol, c);
      }
      if (!any) {
        // Jump to the next minute any series has.
        let next = Infinity;
        for (const s of series) next = Math.min(next, s.peek()?.openTime ?? Infinity);
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
      const e = core.portfolio.equity();
      if (lastEquityDec === undefined || !e.eq(lastEquityDec)) {
        lastEquity = e.toFixed();
        lastEquityDec = e;
        equity.push({ t: t + MINUTE, equity: lastEquity });
      }
    }

    // Trips still open are closed at the last price (the mark the equity uses) with a market exit's fee.
    const end = trades.closeAtEnd((symbol) => core.portfolio.mark(symbol), Math.min(clock.now(), cfg.to), fees.taker);
    closedAtEnd = end.closed;
    exitFeesAtEnd = end.fees;
    counts.submitted = core.execution.stats.sent;
  } finally {
    trades.stop();
    host.stop();
    await core.stop();
    store.close();
  }

  const startEquity = cfg.balance.toFixed();
  // The equity curve ends where the trade list does: open trips valued as closed at the last price (with the exit fee).
  if (closedAtEnd.length > 0) {
    // Less the exit fees the trade list charged those trips (one computation, not two).
    const endEquity = new Dec(lastEquity || startEquity).minus(exitFeesAtEnd);
    equity.push({ t: Math.min(clock.now(), cfg.to), equity: endEquity.toFixed() });
  }
  const metrics = computeMetrics({ from: cfg.from, to: cfg.to, startEquity, equity, trades: trades.trades });
  const config: BacktestRunConfig = {
    market: cfg.market,
    strategies: cfg.specs.map((s) => ({ strategy: s.strategy, symbol: s.symbol, timeframe: s.timeframe, params: s.params, ...(cfg.sources?.[s.symbol] ? { source: cfg.sources[s.symbol] } : {}) })),
    from: cfg.from,
    to: cfg.to,
    balance: startEquity,
    fees: { maker: fees.maker.toFixed(), taker: fees.taker.toFixed() },
    slippageBps: (cfg.slippageBps ?? ZERO).toFixed(),
    latencyMs: cfg.latencyMs ?? 0,
    ...(futures ? { funding: { rate: fundingRate.toFixed(), source: 'flat' as const } } : {}),
  };
  const notes: string[] = [
    'Market orders fill at the first price after the signal plus the latency (the next candle\'s open at the earliest), never at the close the signal was computed on.',
    'Inside a 1m candle the path is open, adverse extreme, favourable extreme, close: stops and limits see the worse extreme first.',
  ];
  if (futures) {
    notes.push(`Funding: a flat ${fundingRate.times(100).toFixed()} % per 8 h settlement (00:00, 08:00, 16:00 UTC) on the position held into it; stored historical rates are not used.`);
    notes.push(`Liquidation: checked at each 1m close (the mark price is taken as the close); ${liquidations} liquidation${liquidations === 1 ? '' : 's'} in this run.`);
  }
  if (closedAtEnd.length > 0) notes.push(`Still open when the data ended, closed at the last price with a taker fee: ${closedAtEnd.join(', ')}.`);
  if (!trades.unattributedFunding.isZero()) notes.push(`Funding on no trade and no holding of the strategies (received): ${trades.unattributedFunding.toFixed()}.`);
  if (trades.heldAtEnd.length > 0) notes.push(`Dust held at the end (below the exchange's minimum quantity or notional; valued at the last price, part of the equity, in no trade): ${trades.heldAtEnd.map((h) => `${h.symbol} ${h.quantity}`).join(', ')}.`);
  if (cfg.specs.some((s) => s.timeframe !== '1m')) notes.push('Strategies on timeframes above 1m see candles built from the stored 1m candles; orders fill along the 1m sub-candles.');
  return {
    config,
    metrics,
    trades: trades.trades,
    heldAtEnd: trades.heldAtEnd,
    equity,
    candles: n,
    orders: counts,
    closedAtEnd,
    notes,
    elapsedMs: performance.now() - started,
  };
}
