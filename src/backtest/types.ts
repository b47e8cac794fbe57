/**
 * What a backtest produces, in the shapes the metrics, the exports (JSON,
 * CSV, HTML) and the stored runs share.
 *
 * Money (prices, quantities, PnL, fees, equity) travels as decimal strings,
 * exact as the portfolio computed it; metrics are statistics over those
 * figures and are plain numbers.
 */

/** One point of the equity curve: account equity (cash + unrealized) at time t (ms, UTC). */
export interface EquityPoint {
  readonly t: number;
  readonly equity: string;
}

/** One closed round trip (flat -> position -> flat) on one symbol. */
export interface BacktestTrade {
  readonly symbol: string;
  readonly side: 'LONG' | 'SHORT';
  readonly entryTime: number;
  readonly exitTime: number;
  /** Quantity-weighted average entry and exit prices. */
  readonly entryPrice: string;
  readonly exitPrice: string;
  /** Largest absolute position held during the trip. */
  readonly quantity: string;
  /** Net PnL in the quote asset: price PnL minus every fee of the trip's fills (and funding while open, on futures). */
  readonly pnl: string;
  /** pnl / (entryPrice * quantity) * 100. */
  readonly pnlPct: number;
  readonly fees: string;
  readonly funding: string;
  readonly holdingMs: number;
}

export interface MonthlyReturn {
  /** "2024-01" (UTC). */
  readonly month: string;
  /** Fraction: equity at the month's end / equity at its start - 1. */
  readonly return: number;
}

export interface BacktestMetrics {
  readonly startEquity: number;
  readonly endEquity: number;
  /** Fractions (0.12 = 12 %). */
  readonly totalReturn: number;
  /** (end / start) ^ (365 days / span) - 1, span = to - from. */
  readonly annualizedReturn: number;
  readonly trades: number;
  /** Fraction of trades with pnl > 0. */
  readonly winRate: number;
  /** Sum of winning pnl / |sum of losing pnl|; Infinity with no loser, 0 with no winner. */
  readonly profitFactor: number;
  /** Mean pnl per trade (quote). */
  readonly expectancy: number;
  /** Daily returns (UTC days, equity at each day's last point vs the previous day's), mean / stdev * sqrt(365); sample stdev (n-1). */
  readonly sharpe: number;
  /** mean / downside deviation * sqrt(365); downside deviation = sqrt(sum(min(r,0)^2) / n). */
  readonly sortino: number;
  /** annualizedReturn / maxDrawdown (0 when no drawdown). */
  readonly calmar: number;
  /** Largest peak-to-trough fall of the equity curve, a fraction of the peak. */
  readonly maxDrawdown: number;
  /** Longest time (ms) from a peak until equity first regains it (or the curve ends). */
  readonly maxDrawdownDurationMs: number;
  readonly monthly: readonly MonthlyReturn[];
  readonly avgWin: number;
  readonly avgLoss: number;
  readonly largestWin: number;
  readonly largestLoss: number;
  readonly avgHoldingMs: number;
  /** Fraction of [from, to) with at least one position open. */
  readonly timeInMarket: number;
  readonly feesPaid: number;
  /** Net funding paid (positive = paid, negative = received). */
  readonly fundingPaid: number;
}

/** How the run was set up, as the report states it. */
export interface BacktestRunConfig {
  readonly market: 'spot' | 'futures';
  readonly strategies: ReadonlyArray<{ readonly strategy: string; readonly symbol: string; readonly timeframe: string; readonly params: Readonly<Record<string, unknown>>; readonly source?: string }>;
  readonly from: number;
  readonly to: number;
  readonly balance: string;
  readonly fees: { readonly maker: string; readonly taker: string };
  readonly slippageBps: string;
  readonly latencyMs: number;
  /** Futures: the funding rate applied at 00:00, 08:00 and 16:00 UTC, and where it came from. */
  readonly funding?: { readonly rate: string; readonly source: 'flat' };
}

/**
 * Everything a report shows (terminal, JSON, CSV, HTML), and what is stored
 * per run. The JSON export is this object.
 */
export interface BacktestReport {
  /** Stored run id (absent before it is stored). */
  readonly id?: number;
  readonly createdAt: number;
  readonly gitCommit: string;
  readonly config: BacktestRunConfig;
  readonly metrics: BacktestMetrics;
  readonly trades: readonly BacktestTrade[];
  readonly equity: readonly EquityPoint[];
  readonly candles: number;
  /** deniedBy: denials per reason code (the part before the colon: BALANCE, MAX_POSITION ...). */
  readonly orders: { readonly submitted: number; readonly denied: number; readonly filled: number; readonly deniedBy?: Readonly<Record<string, number>> };
  /** Symbols whose trip was still open at the end (closed at the last price in the trade list). */
  readonly closedAtEnd: readonly string[];
  /** Assumptions the reader must know (flat funding, trips closed at the end...). */
  readonly notes: readonly string[];
  readonly elapsedMs: number;
}
