/**
 * The pure core of the risk engine: what an order check looks like, the
 * read-only snapshot the engine assembles before running the guards, and the
 * verdict a guard returns. Expected denials are values, never exceptions;
 * a snapshot that lacks the order's symbol is a broken invariant and throws.
 */
import { Dec, dec } from '../core/decimal.ts';
import type { OrderSide, RiskScope } from '../model/events.ts';
import type { Market, TradingState } from '../model/market.ts';

export { TRADING_STATES } from '../model/market.ts';
export type { TradingState } from '../model/market.ts';
export type { RiskScope } from '../model/events.ts';

/** The part of an order request the guards look at. */
export interface OrderCheck {
  /** The intent being judged (the ledger already counts it as working; guards leave it out). */
  readonly intentId?: string;
  readonly strategy: string;
  readonly symbol: string;
  readonly market: Market;
  readonly side: OrderSide;
  readonly quantity: Dec;
  /** Limit price; absent for market orders (guards then use the mark price). */
  readonly price?: Dec;
  readonly reduceOnly: boolean;
  /** True when the order increases exposure (opens or adds to a position). */
  readonly isEntry: boolean;
  /**
   * True when the order closes the whole position (what is left is less than
   * one lot step). The engine computes it; HALTED admits only these and cancels.
   */
  readonly closing?: boolean;
}

export interface AccountSnapshot {
  readonly equity: Dec;
  readonly peakEquity: Dec;
  /** Equity at 00:00 UTC today; the base for percent-of-equity daily limits. */
  readonly dayStartEquity: Dec;
  readonly realizedToday: Dec;
  readonly unrealized: Dec;
  /** Free quote balance (spot) or available margin (futures). */
  readonly availableBalance: Dec;
  /** Taker fee rate as a fraction, e.g. 0.001 for 0.1 %. */
  readonly feeRate: Dec;
}

/** The previous closed candle. Statistics, so plain numbers. */
export interface CandleStats {
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

export interface SymbolSnapshot {
  /** Signed position quantity: positive long, negative short. */
  readonly position: Dec;
  readonly entryPrice?: Dec;
  readonly markPrice: Dec;
  readonly lastPrice: Dec;
  readonly prevCandle?: CandleStats;
  /** Open or in-flight entry orders by side. */
  readonly openEntries: { readonly BUY: number; readonly SELL: number };
  readonly tradedQtyToday: Dec;
  /** Orders sent for this symbol inside the throttle window the engine counts over. */
  readonly recentOrders: number;
  /** Time (ms) of the last market-data update for the symbol. */
  readonly lastDataAt: number;
  /** Projected liquidation price of the position after this order (futures). */
  readonly liquidationPrice?: Dec;
  /** Next funding time, ms (futures). */
  readonly nextFundingTime?: number;
}

export interface StrategySymbolSnapshot {
  readonly strategy: string;
  readonly symbol: string;
  readonly realizedToday: Dec;
  readonly consecutiveLosses: number;
  readonly lastLossAt?: number;
}

export interface RiskSnapshot {
  readonly now: number;
  readonly account: AccountSnapshot;
  readonly symbols: ReadonlyMap<string, SymbolSnapshot>;
  readonly strategies: readonly StrategySymbolSnapshot[];
  /** Orders sent account-wide in the last second. */
  readonly globalOrdersLastSecond: number;
  /** Daily portfolio returns as fractions (-0.02 = -2 %), any order. */
  readonly portfolioReturns: readonly number[];
}

export interface Escalation {
  readonly scope: RiskScope;
  readonly to: TradingState;
  /** When the escalation lapses (ms); absent: until someone resets it. */
  readonly until?: number;
}

export type Verdict =
  | { readonly allow: true }
  | { readonly allow: false; readonly code: string; readonly reason: string; readonly escalate?: Escalation };

export interface Guard {
  readonly name: string;
  check(order: OrderCheck, s: RiskSnapshot): Verdict;
}

export const ALLOW: Verdict = Object.freeze({ allow: true });

type Figure = Dec | number | string;

/**
 * Builds a denial whose reason is `CODE: k=v k=v`. Dec figures print with
 * two decimals (money and percents); pass a string for a figure that must
 * print exactly (quantities, symbols).
 */
export function deny(code: string, figures: Record<string, Figure>, escalate?: Escalation): Verdict {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${fmt(v)}`);
  const reason = parts.length > 0 ? `${code}: ${parts.join(' ')}` : code;
  return Object.freeze(escalate ? { allow: false, code, reason, escalate } : { allow: false, code, reason });
}

function fmt(v: Figure): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return v.toFixed(2);
}

/** An exit: anything that does not increase exposure. */
export function isExit(o: OrderCheck): boolean {
  return o.reduceOnly || !o.isEntry;
}

/** The symbol's snapshot; its absence is an engine bug, so it throws. */
export function symbolOf(s: RiskSnapshot, symbol: string): SymbolSnapshot {
  const sym = s.symbols.get(symbol);
  if (!sym) throw new Error(`risk snapshot has no entry for ${symbol}`);
  return sym;
}

/** Price the order is valued at: its limit price, or the mark price. */
export function orderPrice(o: OrderCheck, sym: SymbolSnapshot): Dec {
  return o.price ?? sym.markPrice;
}

/** The order quantity signed by side (+ BUY, - SELL). */
export function signedQty(o: OrderCheck): Dec {
  return o.side === 'BUY' ? o.quantity : o.quantity.neg();
}

/** |position after the order|. */
export function projectedAbsQty(o: OrderCheck, sym: SymbolSnapshot): Dec {
  return sym.position.plus(signedQty(o)).abs();
}

export const HUNDRED = dec(100);
export const BPS = dec(10_000);
export { Dec };
