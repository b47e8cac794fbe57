/**
 * Trading states per account, symbol and strategy, as a pure table. The
 * engine publishes and persists the change records these methods return;
 * this module never touches the bus or the store.
 *
 * ACTIVE admits every order; REDUCING only orders that reduce exposure;
 * HALTED only orders that close a position in full (cancels are not orders
 * and never reach here). An order is judged by the strictest of its
 * account, symbol and strategy.
 *
 * Why HALTED still admits a full close: a halt stops the bot from taking
 * risk, and a position left open with no way out is risk. The daily loss
 * limit halts the account, yet the strategy's exit (or a protective stop,
 * or the kill switch's --flatten) must still be able to close what is held.
 * What HALTED forbids beyond REDUCING is everything short of closing:
 * partial exits, scaling out, and every entry.
 */
import type { Clock } from '../core/clock.ts';
import { deny, isExit, ALLOW, type OrderCheck, type RiskScope, type TradingState, type Verdict } from './types.ts';

const RANK: Readonly<Record<TradingState, number>> = { ACTIVE: 0, REDUCING: 1, HALTED: 2 };

export interface StateEntry {
  readonly state: TradingState;
  readonly reason: string;
  readonly source: string;
  readonly since: number;
  /** When the state lapses back to ACTIVE (ms); absent: until set again. */
  readonly until?: number;
}

export interface StateChange {
  readonly scope: RiskScope;
  readonly key: string;
  readonly from: TradingState;
  readonly to: TradingState;
  readonly reason: string;
  readonly source: string;
  readonly at: number;
  readonly until?: number;
}

/** The stricter of two states. */
export function strictest(a: TradingState, b: TradingState): TradingState {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Whether a state admits an order (cancels are never judged here). */
export function allows(state: TradingState, order: OrderCheck): boolean {
  if (state === 'ACTIVE') return true;
  if (state === 'REDUCING') return isExit(order);
  return isExit(order) && order.closing === true;
}

export class TradingStates {
  private readonly tables: Record<RiskScope, Map<string, StateEntry>> = {
    account: new Map(),
    symbol: new Map(),
    strategy: new Map(),
  };

  /** One table per account: `account` is the key the account scope is held under. */
  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    readonly account: string = 'main',
  ) {}

  get(scope: RiskScope, key: string): TradingState {
    return this.tables[scope].get(key)?.state ?? 'ACTIVE';
  }

  entry(scope: RiskScope, key: string): StateEntry | undefined {
    return this.tables[scope].get(key);
  }

  /** The strictest of the account's, the order's symbol's and its strategy's state. */
  effective(order: Pick<OrderCheck, 'symbol' | 'strategy'>): TradingState {
    return strictest(
      this.get('account', this.account),
      strictest(this.get('symbol', order.symbol), this.get('strategy', order.strategy)),
    );
  }

  /** The state gate as a verdict, e.g. `TRADING_STATE: state=REDUCING`. */
  check(order: OrderCheck): Verdict {
    const state = this.effective(order);
    return allows(state, order) ? ALLOW : deny('TRADING_STATE', { state });
  }

  /**
   * Sets a state and returns the change record, or undefined when nothing
   * changed (same state and same expiry). Setting ACTIVE clears the entry.
   */
  set(scope: RiskScope, key: string, to: TradingState, reason: string, source: string, until?: number): StateChange | undefined {
    const table = this.tables[scope];
    const prev = table.get(key);
    const from = prev?.state ?? 'ACTIVE';
    if (from === to && prev?.until === until) return undefined;
    const at = this.clock.now();
    if (to === 'ACTIVE') table.delete(key);
    else table.set(key, until === undefined ? { state: to, reason, source, since: at } : { state: to, reason, source, since: at, until });
    const base = { scope, key, from, to, reason, source, at };
    return Object.freeze(until === undefined ? base : { ...base, until });
  }

  /**
   * Tightens only: applies `to` unless the current state is already at least
   * as strict (then returns undefined). What a guard escalation should use,
   * so a REDUCING escalation never lifts a HALT.
   */
  escalate(scope: RiskScope, key: string, to: TradingState, reason: string, source: string, until?: number): StateChange | undefined {
    if (RANK[this.get(scope, key)] >= RANK[to]) return undefined;
    return this.set(scope, key, to, reason, source, until);
  }

  /** Every non-ACTIVE entry of a scope. */
  entries(scope: RiskScope): Array<[string, StateEntry]> {
    return [...this.tables[scope]];
  }

  /** Puts back an entry persisted by an earlier run (no change record: nothing changed). */
  restore(scope: RiskScope, key: string, e: StateEntry): void {
    if (e.state === 'ACTIVE') return;
    this.tables[scope].set(key, e.until === undefined ? { state: e.state, reason: e.reason, source: e.source, since: e.since } : { state: e.state, reason: e.reason, source: e.source, since: e.since, until: e.until });
  }

  /** Lapses every state whose `until` is at or before now back to ACTIVE. */
  expire(now: number): StateChange[] {
    const changes: StateChange[] = [];
    for (const scope of ['account', 'symbol', 'strategy'] as const) {
      for (const [key, e] of this.tables[scope]) {
        if (e.until !== undefined && e.until <= now) {
          this.tables[scope].delete(key);
          changes.push(Object.freeze({ scope, key, from: e.state, to: 'ACTIVE', reason: `EXPIRED: ${e.reason}`, source: 'expiry', at: now }));
        }
      }
    }
    return changes;
  }
}
