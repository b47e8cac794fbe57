/**
 * The strategy host: runs one instance per (strategy, symbol), feeds each
 * the closed candles of the timeframe it asked for (built from 1m candles),
 * warms it from stored candles before it may signal, and publishes its
 * signals on `signal.<strategy>`.
 *
 * Restart never trades the past: an instance goes live when its warm-up
 * replay is over and it attaches to the feed (the clock's now() then). A
 * candle that became final before that moment (a stored one replayed, or one
 * the feed backfills after a restart) feeds the indicators only: a signal
 * computed on it is dropped and logged as warm-up.
 *
 * Isolation: an exception inside an instance disables that instance only
 * (logged with strategy, symbol and stack, recorded as a risk event, shown
 * in the heartbeat); the bot and every other instance go on.
 */
import type { Bus } from '../bus/bus.ts';
import type { Clock } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { CandleClosed, SignalAction } from '../model/events.ts';
import type { Market, Timeframe } from '../model/market.ts';
import type { FillView, PositionView, SignalOptions, StrategyCandle, StrategyContext, StrategyInstance } from './api.ts';
import type { Bar, IndicatorFactory } from './indicators/types.ts';
import type { InstanceSpec } from './loader.ts';
import { RegimeFilter } from './regime.ts';
import { CandleAggregator, TIMEFRAME_MS } from './timeframes.ts';

export type InstanceState = 'warming' | 'ready' | 'disabled';

export interface InstanceStatus {
  readonly strategy: string;
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly state: InstanceState;
  /** Candles seen / candles needed. */
  readonly warm: string;
  readonly detail?: string;
  readonly signals: number;
}

/** Stored 1m candles, newest last, for warming up (the candle store implements it). */
export interface CandleHistory {
  recent1m(market: Market, symbol: string, beforeOrAt: number, count: number): Bar[];
}

export interface RiskEventRecord {
  scope: 'strategy';
  key: string;
  kind: string;
  reason: string;
  details: Record<string, unknown>;
}

export interface HostDeps {
  bus: Bus;
  clock: Clock;
  logger: Logger;
  indicators: () => IndicatorFactory;
  history?: CandleHistory;
  recordRiskEvent?: (e: RiskEventRecord) => void;
  /**
   * Positions held when the host starts (the portfolio, rebuilt from stored fills before the
   * host subscribes). Without them a restarted strategy sees 'flat' until the position next
   * changes, and never exits what it holds.
   */
  initialPositions?: () => ReadonlyArray<OwnerPosition>;
  /** Told how long each onCandle took (seconds), for /metrics' strategy_execution_seconds. */
  onTiming?: (strategy: string, seconds: number) => void;
}

/** One owner's line, as the ledger keeps it (each instance sees its own strategy's position only). */
export interface OwnerPosition {
  readonly strategy: string;
  readonly symbol: string;
  readonly quantity: { toNumber(): number };
  readonly entryPrice: { toNumber(): number };
  /** Nothing tradable (nothing, or spot dust below the filters): the strategy is flat. */
  readonly flat: boolean;
}

const FLAT: PositionView = Object.freeze({ side: 'flat', quantity: 0, entryPrice: 0 });
const ownerKey = (strategy: string, symbol: string): string => `${strategy}\u0000${symbol}`;

function positionView(qty: number, entryPrice: number): PositionView {
  return Object.freeze({ side: qty > 0 ? 'long' : qty < 0 ? 'short' : 'flat', quantity: Math.abs(qty), entryPrice });
}
/** Candles of history each instance keeps for ctx.candles(). */
const MIN_HISTORY = 500;

interface Runtime {
  spec: InstanceSpec;
  key: string;
  inst: StrategyInstance | undefined;
  state: InstanceState;
  delivered: number;
  lastOpenTime: number;
  history: StrategyCandle[];
  historyCap: number;
  detail?: string;
  signals: number;
  /** Entries dropped because the symbol's feed was stale. */
  blocked: number;
  regime?: RegimeFilter;
  /** Spec fingerprint, to tell on reload whether it changed. */
  fingerprint: string;
  /** Open time of the candle the instance is handling (stamped on its signals); undefined outside onCandle. */
  candleTime?: number;
  /** When the candle being handled became final (see finalAt()); undefined outside onCandle. */
  candleFinal?: number;
  /** The clock when the warm-up replay was over and the instance attached to the feed; undefined until then. */
  liveFrom?: number;
  /** Signals dropped as warm-up, and the last one (for the line that says so after the replay). */
  warmupDropped: number;
  lastWarmupDrop?: string;
}

interface Feed {
  agg: CandleAggregator;
  subscribers: Runtime[];
}

export class StrategyHost {
  private readonly runtimes = new Map<string, Runtime>();
  /** Aggregators per symbol, one per timeframe in use. */
  private readonly feeds = new Map<string, Map<Timeframe, Feed>>();
  /** Per (strategy, symbol): each strategy's own position (never another's, never external holdings). */
  private readonly positions = new Map<string, PositionView>();
  private readonly marks = new Map<string, number>();
  private readonly staleSymbols = new Set<string>();
  private readonly funding = new Map<string, { readonly rate: number; readonly nextFundingTime: number }>();
  private readonly offs: Array<() => void> = [];
  /** Identity of each loaded module object: an edited index.ts loads as a new object. */
  private readonly moduleIds = new WeakMap<object, number>();
  private nextModuleId = 1;

  constructor(private readonly deps: HostDeps) {}

  /** Subscribes to the bus and starts (and warms) the given instances. */
  start(specs: readonly InstanceSpec[]): void {
    const { bus } = this.deps;
    for (const p of this.deps.initialPositions?.() ?? []) this.positions.set(ownerKey(p.strategy, p.symbol), p.flat ? FLAT : positionView(p.quantity.toNumber(), p.entryPrice.toNumber()));
    this.offs.push(bus.on('candle.closed', (c) => this.onCandle(c), 'strategy-host'));
    this.offs.push(
      bus.on('mark.price', (m) => {
        const price = m.markPrice.toNumber();
        this.marks.set(m.symbol, price);
        if (m.fundingRate !== undefined && m.nextFundingTime !== undefined) this.funding.set(m.symbol, Object.freeze({ rate: m.fundingRate.toNumber(), nextFundingTime: m.nextFundingTime }));
        for (const rt of this.onSymbol(m.symbol)) if (rt.inst?.onMarkPrice) this.call(rt, () => rt.inst!.onMarkPrice!(price, m.ts));
      }, 'strategy-host'),
    );
    this.offs.push(
      bus.on('feed.status', (f) => {
        // While a symbol's market data is not live, new entries wait; exits still go out.
        for (const s of f.symbols ?? []) {
          if (f.status === 'live') this.staleSymbols.delete(s);
          else this.staleSymbols.add(s);
        }
      }, 'strategy-host'),
    );
    this.offs.push(
      bus.on('position.changed', (p) => {
        // Dust is flat: a strategy that believed itself long on a remainder it cannot sell never entered again.
        const view = p.flat ? FLAT : positionView(p.quantity.toNumber(), p.entryPrice.toNumber());
        this.positions.set(ownerKey(p.strategy, p.symbol), view);
        for (const rt of this.onSymbol(p.symbol)) if (rt.spec.strategy === p.strategy && rt.inst?.onPositionChanged) this.call(rt, () => rt.inst!.onPositionChanged!(view));
      }, 'strategy-host'),
    );
    this.offs.push(
      bus.on('fill', (f) => {
        const view: FillView = Object.freeze({ side: f.side, price: f.price.toNumber(), quantity: f.quantity.toNumber(), time: f.ts });
        for (const rt of this.onSymbol(f.symbol)) if (rt.spec.strategy === f.strategy && rt.inst?.onFill) this.call(rt, () => rt.inst!.onFill!(view));
      }, 'strategy-host'),
    );
    for (const spec of specs) this.add(spec);
  }

  /**
   * Applies a new set of instances (hot reload): removed or disabled entries
   * stop, changed ones are rebuilt and re-warmed, new ones start; unchanged
   * ones keep running untouched. Returns what changed.
   */
  apply(specs: readonly InstanceSpec[]): { added: string[]; rebuilt: string[]; removed: string[] } {
    const wanted = new Map(specs.map((s) => [`${s.strategy}:${s.symbol}`, s]));
    const result = { added: [] as string[], rebuilt: [] as string[], removed: [] as string[] };
    for (const [key, rt] of [...this.runtimes]) {
      const spec = wanted.get(key);
      if (!spec) {
        this.remove(rt, 'removed or disabled in its YAML');
        result.removed.push(key);
      } else if (this.fingerprint(spec) !== rt.fingerprint) {
        this.remove(rt, 'configuration changed', false);
        this.add(spec);
        result.rebuilt.push(key);
      }
    }
    for (const [key, spec] of wanted) {
      if (!this.runtimes.has(key)) {
        this.add(spec);
        result.added.push(key);
      }
    }
    return result;
  }

  /** The timeframe an instance runs on (the planner asks per signal: one lookup, no status of every instance). */
  timeframeOf(strategy: string, symbol: string): Timeframe | undefined {
    return this.runtimes.get(`${strategy}:${symbol}`)?.spec.timeframe;
  }

  status(): InstanceStatus[] {
    return [...this.runtimes.values()].map((rt) => ({
      strategy: rt.spec.strategy,
      symbol: rt.spec.symbol,
      timeframe: rt.spec.timeframe,
      state: rt.state,
      warm: `${Math.min(rt.delivered, rt.spec.warmup)}/${rt.spec.warmup}`,
      signals: rt.signals,
      ...(rt.detail ? { detail: rt.detail } : this.staleSymbols.has(rt.spec.symbol) ? { detail: `market data stale: entries wait (${rt.blocked} held back)` } : {}),
    }));
  }

  stop(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /** Feeds one closed candle; only 1m candles drive the host (larger ones are built here). */
  onCandle(c: CandleClosed): void {
    if (c.timeframe !== '1m') return;
    const feeds = this.feeds.get(c.symbol);
    if (!feeds) return;
    for (const feed of feeds.values()) {
      const closed = feed.agg.push(c);
      for (let i = 0; i < closed.length; i++) {
        const candle = closed[i]!;
        const final = finalAt(candle, c.eventTs);
        const subs = feed.subscribers;
        for (let j = 0; j < subs.length; j++) this.deliver(subs[j]!, candle, final);
      }
    }
  }

  // ------------------------------------------------------------ internals

  private add(spec: InstanceSpec): void {
    const key = `${spec.strategy}:${spec.symbol}`;
    const rt: Runtime = {
      spec,
      key,
      inst: undefined,
      state: 'warming',
      delivered: 0,
      lastOpenTime: -1,
      history: [],
      historyCap: Math.max(MIN_HISTORY, spec.warmup),
      signals: 0,
      blocked: 0,
      fingerprint: this.fingerprint(spec),
      warmupDropped: 0,
    };
    this.runtimes.set(key, rt);
    const indicators = this.deps.indicators();
    if (spec.config.regime) rt.regime = new RegimeFilter(spec.config.regime, indicators);
    this.call(rt, () => {
      rt.inst = spec.module.create(this.context(rt, indicators), spec.params);
    });
    if (rt.state === 'disabled') return;
    this.warm(rt);
    // Attach to the live feed last, so warm-up candles are never delivered twice.
    let feeds = this.feeds.get(spec.symbol);
    if (!feeds) {
      feeds = new Map();
      this.feeds.set(spec.symbol, feeds);
    }
    let feed = feeds.get(spec.timeframe);
    if (!feed) {
      feed = { agg: new CandleAggregator(spec.symbol, spec.timeframe), subscribers: [] };
      feeds.set(spec.timeframe, feed);
    }
    feed.subscribers.push(rt);
    // Live from now: only candles that become final after this moment may trade.
    rt.liveFrom = this.deps.clock.now();
    this.markReadyIfWarm(rt);
  }

  /** Replays stored 1m candles through a private aggregator: indicators only, every signal is dropped. */
  private warm(rt: Runtime): void {
    const history = this.deps.history;
    if (!history || rt.spec.warmup <= 0) return;
    const minutes = (rt.spec.warmup + 1) * (TIMEFRAME_MS[rt.spec.timeframe] / 60_000);
    // Only candles closed by now: the one opening at this minute closes a minute later. Live, the store
    // never holds it yet; a backtest's store holds the whole future, and warming on it would look ahead.
    const bars = history.recent1m(rt.spec.market, rt.spec.symbol, this.deps.clock.now() - 60_000, minutes);
    const agg = new CandleAggregator(rt.spec.symbol, rt.spec.timeframe);
    for (const b of bars) for (const c of agg.push(b)) this.deliver(rt, c, finalAt(c, undefined));
    const dropped = rt.warmupDropped > 0 ? `; ${rt.warmupDropped} signal${rt.warmupDropped === 1 ? '' : 's'} from warm-up candles dropped (last: ${rt.lastWarmupDrop})` : '';
    this.deps.logger.info({ strategy: rt.spec.strategy, symbol: rt.spec.symbol, candles: rt.delivered, needed: rt.spec.warmup, droppedSignals: rt.warmupDropped }, `${rt.key} warmed from ${bars.length} stored 1m candles: ${rt.delivered}/${rt.spec.warmup} ${rt.spec.timeframe} candles${dropped}`);
  }

  /** 'ready' once attached to the feed (never during the warm-up replay) with enough candles seen. */
  private markReadyIfWarm(rt: Runtime): void {
    if (rt.state === 'warming' && rt.liveFrom !== undefined && rt.delivered >= rt.spec.warmup) rt.state = 'ready';
  }

  private remove(rt: Runtime, why: string, closePosition = true): void {
    this.runtimes.delete(rt.key);
    const feed = this.feeds.get(rt.spec.symbol)?.get(rt.spec.timeframe);
    if (feed) feed.subscribers = feed.subscribers.filter((r) => r !== rt);
    this.deps.logger.info({ strategy: rt.spec.strategy, symbol: rt.spec.symbol }, `${rt.key} stopped: ${why}`);
    // An instance switched off closes its position only when its YAML says so.
    if (closePosition && rt.spec.config.onDisable === 'close') {
      const pos = this.positions.get(ownerKey(rt.spec.strategy, rt.spec.symbol)) ?? FLAT;
      if (pos.side !== 'flat') this.publish(rt, pos.side === 'long' ? 'exitLong' : 'exitShort', { reason: `strategy stopped (${why}); onDisable: close` }, true);
    }
  }

  /** Hands one candle to the instance; `final` is when it became final (see finalAt()). */
  private deliver(rt: Runtime, candle: StrategyCandle, final: number): void {
    if (rt.state === 'disabled' || candle.openTime <= rt.lastOpenTime) return;
    rt.lastOpenTime = candle.openTime;
    rt.history.push(candle);
    if (rt.history.length > rt.historyCap * 2) rt.history.splice(0, rt.history.length - rt.historyCap);
    rt.delivered++;
    rt.regime?.update(candle);
    this.markReadyIfWarm(rt);
    rt.candleTime = candle.openTime;
    rt.candleFinal = final;
    const timing = this.deps.onTiming;
    if (timing) {
      const t0 = performance.now();
      this.call(rt, () => rt.inst!.onCandle(candle));
      timing(rt.spec.strategy, (performance.now() - t0) / 1000);
    } else this.call(rt, () => rt.inst!.onCandle(candle));
    rt.candleTime = undefined;
    rt.candleFinal = undefined;
  }

  /** Runs instance code; an exception disables the instance, never the host. */
  private call(rt: Runtime, fn: () => void): void {
    if (rt.state === 'disabled') return;
    try {
      fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      rt.state = 'disabled';
      rt.detail = `threw: ${e.message}`;
      this.deps.logger.error({ strategy: rt.spec.strategy, symbol: rt.spec.symbol, err: e }, `strategy ${rt.spec.strategy} on ${rt.spec.symbol} threw and is disabled: ${e.message}`);
      this.deps.recordRiskEvent?.({ scope: 'strategy', key: rt.key, kind: 'STRATEGY_DISABLED', reason: e.message, details: { stack: e.stack ?? '' } });
    }
  }

  private context(rt: Runtime, indicators: IndicatorFactory): StrategyContext {
    const signal = (action: SignalAction) => (o: SignalOptions) => this.publish(rt, action, o, false);
    return Object.freeze({
      strategy: rt.spec.strategy,
      symbol: rt.spec.symbol,
      market: rt.spec.market,
      timeframe: rt.spec.timeframe,
      position: () => this.positions.get(ownerKey(rt.spec.strategy, rt.spec.symbol)) ?? FLAT,
      candles: (limit?: number) => (limit === undefined ? rt.history.slice(-rt.historyCap) : rt.history.slice(-Math.max(0, Math.min(limit, rt.historyCap)))),
      indicators,
      now: () => this.deps.clock.now(),
      enterLong: signal('enterLong'),
      exitLong: signal('exitLong'),
      enterShort: signal('enterShort'),
      exitShort: signal('exitShort'),
      markPrice: () => this.marks.get(rt.spec.symbol),
      funding: () => this.funding.get(rt.spec.symbol),
    });
  }

  private publish(rt: Runtime, action: SignalAction, o: SignalOptions, force: boolean): void {
    // Bad signal options are a bug in the strategy: throwing here disables it (see call()).
    if (!o || typeof o.reason !== 'string' || o.reason === '') throw new Error(`${action}: a reason (non-empty string) is required`);
    if (o.strength !== undefined && !(o.strength >= 0 && o.strength <= 1)) throw new Error(`${action}: strength must be within 0..1, got ${o.strength}`);
    for (const k of ['stopLoss', 'takeProfit', 'trailing'] as const) {
      const v = o[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`${action}: ${k} must be a positive number, got ${v}`);
    }
    if (!force) {
      const warmup = this.warmupReason(rt);
      if (warmup !== undefined) return this.dropWarmup(rt, action, o.reason, warmup);
      const entering = action === 'enterLong' || action === 'enterShort';
      if (entering && rt.regime && !rt.regime.allowsEntry()) return;
      if (entering && this.staleSymbols.has(rt.spec.symbol)) {
        rt.blocked++;
        return;
      }
    }
    rt.signals++;
    this.deps.bus.publish(`signal.${rt.spec.strategy}`, {
      kind: 'signal',
      ts: this.deps.clock.now(),
      strategy: rt.spec.strategy,
      symbol: rt.spec.symbol,
      action,
      reason: o.reason,
      ...(o.strength !== undefined ? { strength: o.strength } : {}),
      ...(o.stopLoss !== undefined ? { stopLoss: new Dec(o.stopLoss) } : {}),
      ...(o.takeProfit !== undefined ? { takeProfit: new Dec(o.takeProfit) } : {}),
      ...(o.trailing !== undefined ? { trailing: new Dec(o.trailing) } : {}),
      ...(o.unit ? { unit: true } : {}),
      ...(rt.candleTime !== undefined ? { candleTime: rt.candleTime, timeframe: rt.spec.timeframe } : {}),
    });
  }

  /**
   * Why a signal now would be warm-up (undefined when it may go out): the instance is still
   * replaying stored candles or has not seen enough candles, or the candle it is handling
   * became final before the instance went live.
   */
  private warmupReason(rt: Runtime): string | undefined {
    if (rt.liveFrom === undefined) return 'replaying stored candles';
    const c = rt.candleTime;
    if (c !== undefined && !(rt.candleFinal! > rt.liveFrom)) {
      return `its ${rt.spec.timeframe} candle ${iso(c)} closed at ${iso(rt.candleFinal!)}, before the instance went live at ${iso(rt.liveFrom)}`;
    }
    if (rt.state !== 'ready') return `${Math.min(rt.delivered, rt.spec.warmup)}/${rt.spec.warmup} candles seen`;
    return undefined;
  }

  private dropWarmup(rt: Runtime, action: SignalAction, reason: string, why: string): void {
    rt.warmupDropped++;
    const what = `${action} (${reason})${rt.candleTime !== undefined ? ` on the ${iso(rt.candleTime)} candle` : ''}`;
    // During the replay one line at its end says how many (warm()); afterwards one line each.
    if (rt.liveFrom === undefined) rt.lastWarmupDrop = what;
    else this.deps.logger.info({ strategy: rt.spec.strategy, symbol: rt.spec.symbol, action, ...(rt.candleTime !== undefined ? { candleTime: rt.candleTime } : {}) }, `${rt.key} ${what} dropped as warm-up: ${why}`);
  }

  /** What makes two specs the same instance: timeframe, params, YAML config and the module loaded. */
  private fingerprint(s: InstanceSpec): string {
    let id = this.moduleIds.get(s.module);
    if (id === undefined) {
      id = this.nextModuleId++;
      this.moduleIds.set(s.module, id);
    }
    return JSON.stringify({ t: s.timeframe, p: s.params, c: s.config, m: id });
  }

  private onSymbol(symbol: string): Runtime[] {
    const out: Runtime[] = [];
    for (const rt of this.runtimes.values()) if (rt.spec.symbol === symbol && rt.state !== 'disabled') out.push(rt);
    return out;
  }
}

/**
 * When a candle became final: its close (open time + timeframe), or later when the venue stamped
 * the 1m candle that completed it later than that. A replay of recorded data (the local exchange,
 * FEED=replay) sends old candles now and stamps them with its own clock: they are live, not the
 * past. A REST backfill is stamped with each candle's own close time.
 */
function finalAt(candle: StrategyCandle, eventTs: number | undefined): number {
  const close = candle.openTime + TIMEFRAME_MS[candle.timeframe];
  return eventTs !== undefined && eventTs > close ? eventTs : close;
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
