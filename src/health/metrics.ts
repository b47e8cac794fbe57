/**
 * /metrics: the bot's figures in Prometheus text format (prom-client), on a
 * registry of its own (never the library's global one: tests and the CLI
 * build several bots in one process).
 *
 * Counters move from the bus (candles, signals, orders, denials, faults) and
 * from hooks the composition root wires (bus dispatch time, strategy time,
 * ERROR logs). Gauges that mirror state (equity, unrealized PnL, request
 * weight, reconnections) are read when scraped, from providers, so nothing
 * costs anything between scrapes.
 *
 * Money gauges are floats: Prometheus has no decimals. They are for graphs
 * and alerts; the database and the CLI keep the exact figures.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ALL_SIGNALS, type Bus } from '../bus/bus.ts';
import type { SignalAction } from '../model/events.ts';

/** Where scrape-time gauges read from; each may be absent (e.g. no venue with weight headers). */
export interface MetricSources {
  equity?: () => number | undefined;
  unrealizedBySymbol?: () => ReadonlyArray<{ symbol: string; unrealized: number }>;
  rateLimitWeight?: () => number | undefined;
  /** Reconnections so far (market streams plus the user-data stream), a running total. */
  reconnections?: () => number;
}

const BUY_ACTIONS: ReadonlySet<SignalAction> = new Set(['enterLong', 'exitShort']);

export class Metrics {
  readonly registry = new Registry();
  private readonly serviceUp: Gauge;
  private readonly errors: Counter<'component' | 'kind'>;
  private readonly eventSeconds: Histogram<'channel'>;
  private readonly candles: Counter<'symbol'>;
  private readonly signals: Counter<'strategy' | 'side'>;
  private readonly strategySeconds: Histogram<'strategy'>;
  private readonly orders: Counter<'status' | 'side'>;
  private readonly denials: Counter<'reason'>;
  private readonly lag: IntervalHistogram;
  private sources: MetricSources = {};
  private reconnectsSeen = 0;

  constructor() {
    const r = [this.registry];
    // prom-client calls collect() with the metric as `this`; the sources are on this object.
    const self = this;
    this.serviceUp = new Gauge({ name: 'service_up', help: '1 while the bot runs (0 once it is stopping)', registers: r });
    this.serviceUp.set(1);
    this.errors = new Counter({ name: 'errors_total', help: 'Errors by component and kind (log: ERROR log lines; fault: a bus handler threw)', labelNames: ['component', 'kind'], registers: r });
    this.eventSeconds = new Histogram({
      name: 'event_processing_seconds',
      help: 'Time for one bus event to reach all its handlers, by channel',
      labelNames: ['channel'],
      // Most events take microseconds; an order through risk and the order row takes about a millisecond.
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: r,
    });
    this.candles = new Counter({ name: 'candles_received_total', help: 'Closed 1m candles received, by symbol', labelNames: ['symbol'], registers: r });
    const reconnections = new Counter({
      name: 'ws_reconnections_total',
      help: 'WebSocket reconnections (market streams and the user-data stream)',
      registers: r,
      collect: () => {
        const now = this.sources.reconnections?.() ?? 0;
        if (now > this.reconnectsSeen) reconnections.inc(now - this.reconnectsSeen);
        this.reconnectsSeen = Math.max(this.reconnectsSeen, now);
      },
    });
    this.signals = new Counter({ name: 'signals_generated_total', help: 'Strategy signals, by strategy and side (BUY: enterLong, exitShort; SELL: exitLong, enterShort)', labelNames: ['strategy', 'side'], registers: r });
    this.strategySeconds = new Histogram({ name: 'strategy_execution_seconds', help: "Time in a strategy's onCandle, by strategy", labelNames: ['strategy'], buckets: [0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05], registers: r });
    this.orders = new Counter({ name: 'orders_total', help: 'Order status changes, by status and side (PENDING: the order row was written before sending)', labelNames: ['status', 'side'], registers: r });
    this.denials = new Counter({ name: 'risk_rejections_total', help: 'Orders denied before sending, by reason code (risk guards and exchange filters)', labelNames: ['reason'], registers: r });
    new Gauge({
      name: 'portfolio_value',
      help: 'Account equity in the quote asset (cash plus positions at mark)',
      registers: r,
      collect() {
        const v = self.sources.equity?.();
        if (v !== undefined && Number.isFinite(v)) this.set(v);
      },
    });
    new Gauge({
      name: 'unrealized_pnl',
      help: 'Unrealized PnL of each open position at mark, in the quote asset',
      labelNames: ['symbol'],
      registers: r,
      collect() {
        // Reset first: a position closed since the last scrape must not keep its old value.
        this.reset();
        for (const p of self.sources.unrealizedBySymbol?.() ?? []) this.set({ symbol: p.symbol }, p.unrealized);
      },
    });
    new Gauge({
      name: 'rate_limit_weight_used',
      help: "Binance request weight used in the current minute (X-MBX-USED-WEIGHT-1M of the latest answer)",
      registers: r,
      collect() {
        const v = self.sources.rateLimitWeight?.();
        if (v !== undefined) this.set(v);
      },
    });
    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();
    const lag = this.lag;
    new Gauge({
      name: 'event_loop_lag_seconds',
      help: 'Event loop delay since the last scrape (p99; 0 before any sample)',
      registers: r,
      collect() {
        // The histogram's resolution (10 ms) is its floor: subtract it, as the heartbeat does.
        this.set(lag.count > 0 ? Math.max(0, lag.percentile(99) / 1e9 - 0.01) : 0);
        lag.reset();
      },
    });
  }

  /** Scrape-time sources, set once the components they read exist. */
  setSources(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Subscribes to the bus; returns the unsubscribe function. */
  attach(bus: Bus): () => void {
    const offs = [
      bus.on('candle.closed', (c) => c.timeframe === '1m' && this.candles.inc({ symbol: c.symbol }), 'metrics'),
      bus.on(ALL_SIGNALS, (s) => this.signals.inc({ strategy: s.strategy, side: BUY_ACTIONS.has(s.action) ? 'BUY' : 'SELL' }), 'metrics'),
      bus.on('order.update', (u) => this.orders.inc({ status: u.status, side: u.side ?? 'UNKNOWN' }), 'metrics'),
      // The reason's code (before the colon) is the label: the figures after it would make every denial a new series.
      bus.on('order.denied', (d) => this.denials.inc({ reason: reasonCode(d.reason) }), 'metrics'),
      bus.on('component.fault', (f) => this.errors.inc({ component: f.component, kind: 'fault' }), 'metrics'),
    ];
    return () => offs.forEach((o) => o());
  }

  /** Bus hook (BusDeps.onDispatched). */
  readonly observeEvent = (channel: string, seconds: number): void => {
    // signal.<strategy> is one series per strategy; keep the channel names a fixed, small set.
    this.eventSeconds.observe({ channel: channel.startsWith('signal.') ? 'signal' : channel }, seconds);
  };

  /** Strategy host hook (StrategyHostDeps.onTiming). */
  readonly observeStrategy = (strategy: string, seconds: number): void => {
    this.strategySeconds.observe({ strategy }, seconds);
  };

  /** Log tap: one ERROR (or FATAL) line. */
  countError(component: string, kind: string): void {
    this.errors.inc({ component, kind });
  }

  markStopping(): void {
    this.serviceUp.set(0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.lag.disable();
  }
}

/** "NOTIONAL_BELOW_MIN: notional=4.1 min=5" -> "NOTIONAL_BELOW_MIN". */
export function reasonCode(reason: string): string {
  const m = /^([A-Z][A-Z0-9_]*)/.exec(reason);
  return m ? m[1]! : 'OTHER';
}
