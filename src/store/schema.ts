/**
 * Kysely table types. Money columns are TEXT holding exact decimal strings
 * (never REAL); times are INTEGER milliseconds since the epoch, UTC.
 */
import type { Generated } from 'kysely';

export interface KvTable {
  key: string;
  value: string; // JSON
  updated_at: number;
}

export interface InstrumentsTable {
  market: string;
  symbol: string;
  base_asset: string;
  quote_asset: string;
  status: string;
  filters: string; // JSON: Binance filters as received
  updated_at: number;
}

/** One (market, symbol, timeframe) series; its id is the high part of every candle key. */
export interface CandleSeriesTable {
  id: Generated<number>;
  market: string;
  symbol: string;
  timeframe: string;
}

/**
 * Candles keyed by one integer (the rowid): series_id * 2^32 + open_time in
 * whole minutes since the epoch. See migration 0002 and candle-repository.ts
 * for why, and for the encode/decode helpers.
 */
export interface CandlesTable {
  key: number;
  // Candle prices feed indicators (plain numbers by design); exact
  // decimals matter only where a value becomes an order, which goes
  // through the exchange filters.
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  quote_volume: number;
  trades: number;
  /** Base volume bought by takers; null when the source did not say (older rows, live feeds without it). */
  taker_buy_volume: number | null;
}

export interface SignalsTable {
  id: Generated<number>;
  ts: number;
  strategy: string;
  symbol: string;
  action: string;
  reason: string;
  strength: number | null;
  payload: string; // JSON
}

export interface OrdersTable {
  client_order_id: string;
  intent_id: string;
  strategy: string;
  market: string;
  symbol: string;
  side: string;
  type: string;
  time_in_force: string | null;
  quantity: string;
  price: string | null;
  stop_price: string | null;
  reduce_only: number;
  status: string;
  exchange_order_id: string | null;
  filled_quantity: string;
  average_price: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  /** Who asked (OrderSource); the owner is `strategy` (migration 0004). */
  source: string;
  /** BOTH, or the hedge-mode leg (migration 0004). */
  position_side: string;
  /**
   * When the last placement request for this row left (our clock), null
   * while none has (migration 0006). An answer-less request may still
   * execute until sent_at plus the request window (recvWindow and margins):
   * until then "not found" does not mean "not placed".
   */
  sent_at: number | null;
}

export interface FillsTable {
  id: Generated<number>;
  market: string;
  symbol: string;
  trade_id: string;
  client_order_id: string | null;
  exchange_order_id: string | null;
  side: string;
  price: string;
  quantity: string;
  fee: string;
  fee_asset: string;
  realized_pnl: string | null;
  is_maker: number;
  ts: number;
  /** The owner of a fill with no order row (an adopted external holding, a reconcile adjustment); migration 0004. */
  owner?: string | null;
  /** Its hedge-mode leg (LONG / SHORT), when it has no order row to say so; migration 0004. */
  position_side?: string | null;
}

export interface PositionsTable {
  market: string;
  symbol: string;
  position_side: string;
  quantity: string;
  entry_price: string;
  realized_pnl: string;
  updated_at: number;
}

export interface RiskEventsTable {
  id: Generated<number>;
  ts: number;
  scope: string;
  scope_key: string;
  kind: string;
  reason: string;
  state_from: string | null;
  state_to: string | null;
  source: string;
  details: string | null; // JSON
}

export interface EquitySnapshotsTable {
  resolution: string;
  ts: number;
  equity: string;
  balance: string;
  unrealized_pnl: string;
}

export interface JournalTable {
  seq: Generated<number>;
  ts: number;
  event_ts: number | null;
  channel: string;
  kind: string;
  run_id: string;
  payload: string; // JSON
}

/**
 * One stored backtest: its full request and resolved config (JSON), the git
 * commit it ran on, its metrics (JSON) and the trade list and equity curve
 * (gzipped JSON: a year of 1m data can hold hundreds of thousands of points).
 */
export interface BacktestRunsTable {
  id: Generated<number>;
  created_at: number;
  /** What started it: cli, optimize, reoptimize. */
  source: string;
  strategy: string;
  symbols: string; // comma-separated
  market: string;
  from_ts: number;
  to_ts: number;
  git_commit: string;
  request: string; // JSON: the BacktestRequest as given
  config: string; // JSON: resolved params, fees, slippage, latency, funding
  metrics: string; // JSON: BacktestMetrics
  trades: Buffer; // gzip JSON BacktestTrade[]
  equity: Buffer; // gzip JSON EquityPoint[]
  elapsed_ms: number;
}

/** One optimization (a grid, optionally walk-forward), with its best parameter set. */
export interface OptimizeRunsTable {
  id: Generated<number>;
  created_at: number;
  source: string;
  strategy: string;
  symbols: string;
  market: string;
  from_ts: number;
  to_ts: number;
  objective: string;
  grid: string; // JSON: { param: values[] }
  walk_forward: string | null; // JSON: { inSample, outOfSample } or null
  git_commit: string;
  best_params: string | null; // JSON
  summary: string; // JSON: in/out-of-sample figures, overfit flag, timings
  applied: number; // 1 when --apply (or the scheduler) wrote best_params into the YAML
}

/** One parameter set's figures in one optimization window. */
export interface OptimizeResultsTable {
  run_id: number;
  window: number; // 0 for a plain grid; 1.. per walk-forward window
  params: string; // JSON
  in_sample: string; // JSON: objective + key metrics
  out_of_sample: string | null; // JSON (walk-forward windows only)
  is_best: number;
}

/** Scheduled re-optimization: every decision, applied or not, and why. */
export interface ReoptimizeDecisionsTable {
  id: Generated<number>;
  ts: number;
  strategy: string;
  symbol: string;
  optimize_run_id: number | null;
  current_params: string; // JSON
  candidate_params: string | null; // JSON
  current_score: number | null;
  candidate_score: number | null;
  applied: number;
  reason: string;
}

export interface DB {
  kv: KvTable;
  instruments: InstrumentsTable;
  candle_series: CandleSeriesTable;
  candles: CandlesTable;
  signals: SignalsTable;
  orders: OrdersTable;
  fills: FillsTable;
  positions: PositionsTable;
  risk_events: RiskEventsTable;
  equity_snapshots: EquitySnapshotsTable;
  journal: JournalTable;
  backtest_runs: BacktestRunsTable;
  optimize_runs: OptimizeRunsTable;
  optimize_results: OptimizeResultsTable;
  reoptimize_decisions: ReoptimizeDecisionsTable;
}

/**
 * The MODE=sim paper account (migration 0005), one per market: kept across
 * restarts so it stays consistent with the stored fills. Money is TEXT
 * (exact decimal strings), as everywhere.
 */
export interface SimAccountsTable {
  market: string;
  quote_asset: string;
  /** sim.balance when the account was created. */
  seed_balance: string;
  /** seeded (a fresh database) or rebuilt (from the fills of a database without a stored account). */
  origin: string;
  /** USD-M wallet (USDT). */
  wallet: string;
  dual_side_position: number;
  created_at: number;
  updated_at: number;
}

export interface SimBalancesTable {
  market: string;
  asset: string;
  free: string;
  locked: string;
}

export interface SimPositionsTable {
  market: string;
  symbol: string;
  position_side: string;
  amount: string;
  entry_price: string;
  isolated_wallet: string;
  update_time: number;
}

/** Per symbol: the next ids the sim hands out, and (futures) leverage and margin type. */
export interface SimSymbolsTable {
  market: string;
  symbol: string;
  next_order_id: number;
  next_trade_id: number;
  leverage: number | null;
  margin_type: string | null;
}

export interface SimOrdersTable {
  market: string;
  symbol: string;
  order_id: number;
  client_order_id: string;
  side: string;
  type: string;
  time_in_force: string;
  position_side: string;
  working_type: string;
  reduce_only: number;
  close_position: number;
  price: string;
  stop_price: string;
  orig_qty: string;
  executed_qty: string;
  cum_quote: string;
  avg_price: string;
  status: string;
  triggered: number;
  /** Spot: funds still locked for the order. */
  locked: string;
  /** 1 while the order rests on the sim's book. */
  working: number;
  time: number;
  update_time: number;
  /** JSON: order fields beyond the columns above (a trailing stop's state, an order list id); decimals as {"$dec": "..."}. */
  extra: string | null;
}

export interface SimTradesTable {
  market: string;
  symbol: string;
  trade_id: number;
  order_id: number;
  client_order_id: string;
  side: string;
  position_side: string;
  price: string;
  qty: string;
  quote_qty: string;
  commission: string;
  commission_asset: string;
  realized_pnl: string;
  is_maker: number;
  time: number;
}

// Declaration merging: the sim tables join DB without editing its declaration above.
export interface DB {
  sim_accounts: SimAccountsTable;
  sim_balances: SimBalancesTable;
  sim_positions: SimPositionsTable;
  sim_symbols: SimSymbolsTable;
  sim_orders: SimOrdersTable;
  sim_trades: SimTradesTable;
}
