/**
 * The trading-state table: strictest wins, REDUCING admits only reducing
 * orders, HALTED admits none, change records, and expiry at the next UTC day.
 */
import { describe, expect, it } from 'vitest';
import { dec } from '../../src/core/decimal.ts';
import { dailyLoss } from '../../src/risk/guards/daily-loss.ts';
import { TradingStates, allows, strictest } from '../../src/risk/trading-state.ts';
import type { OrderCheck, RiskSnapshot } from '../../src/risk/types.ts';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const NEXT_DAY = Date.UTC(2026, 0, 16);

const entry: OrderCheck = { strategy: 'rsi', symbol: 'BTCUSDT', market: 'spot', side: 'BUY', quantity: dec(1), reduceOnly: false, isEntry: true };
const exit: OrderCheck = { ...entry, side: 'SELL', isEntry: false };
const reduceOnly: OrderCheck = { ...entry, market: 'futures', side: 'SELL', reduceOnly: true, isEntry: false };

function table(t = { now: NOW }) {
  return { t, st: new TradingStates({ now: () => t.now }, 'acct') };
}

describe('allows()', () => {
  it('ACTIVE admits every order', () => {
    for (const o of [entry, exit, reduceOnly]) expect(allows('ACTIVE', o), 'ACTIVE').toBe(true);
  });
  it('REDUCING admits only orders that reduce exposure', () => {
    expect(allows('REDUCING', entry), 'an entry adds exposure').toBe(false);
    expect(allows('REDUCING', exit), 'an exit reduces').toBe(true);
    expect(allows('REDUCING', reduceOnly), 'reduce-only reduces').toBe(true);
    expect(allows('REDUCING', { ...entry, reduceOnly: true }), 'reduce-only flag wins over isEntry').toBe(true);
  });
  it('HALTED admits only full closes (cancels never reach the gate)', () => {
    for (const o of [entry, exit, reduceOnly]) expect(allows('HALTED', o), 'HALTED: nothing short of a full close').toBe(false);
    expect(allows('HALTED', { ...exit, closing: true }), 'closing the whole position').toBe(true);
    expect(allows('HALTED', { ...reduceOnly, closing: true }), 'reduce-only full close').toBe(true);
    expect(allows('HALTED', { ...entry, closing: true }), 'an entry never closes').toBe(false);
  });
});

describe('TradingStates', () => {
  it('starts ACTIVE everywhere', () => {
    const { st } = table();
    expect(st.effective(entry), 'nothing set').toBe('ACTIVE');
    expect(st.check(entry), 'admits').toEqual({ allow: true });
  });

  it('the strictest of account, symbol and strategy wins', () => {
    expect(strictest('REDUCING', 'HALTED'), 'HALTED is stricter').toBe('HALTED');
    expect(strictest('ACTIVE', 'REDUCING'), 'REDUCING is stricter').toBe('REDUCING');
    const { st } = table();
    st.set('strategy', 'rsi', 'REDUCING', 'test', 'unit');
    expect(st.effective(entry), 'strategy REDUCING').toBe('REDUCING');
    expect(st.effective({ ...entry, strategy: 'macd' }), 'other strategy unaffected').toBe('ACTIVE');
    st.set('symbol', 'BTCUSDT', 'HALTED', 'test', 'unit');
    expect(st.effective(entry), 'symbol HALTED beats strategy REDUCING').toBe('HALTED');
    expect(st.effective({ ...entry, symbol: 'ETHUSDT' }), 'other symbol: the strategy state').toBe('REDUCING');
    st.set('account', 'acct', 'REDUCING', 'test', 'unit');
    expect(st.effective({ ...entry, symbol: 'ETHUSDT', strategy: 'macd' }), 'account applies to all').toBe('REDUCING');
    expect(st.effective(entry), 'HALTED still wins over account REDUCING').toBe('HALTED');
  });

  it('the gate verdict: REDUCING denies entries only, HALTED denies everything', () => {
    const { st } = table();
    st.set('account', 'acct', 'REDUCING', 'DRAWDOWN_REDUCE: drawdown=10.00 limit=10.00', 'drawdown');
    expect(st.check(entry), 'entry denied').toEqual({ allow: false, code: 'TRADING_STATE', reason: 'TRADING_STATE: state=REDUCING' });
    expect(st.check(exit), 'exit admitted').toEqual({ allow: true });
    expect(st.check(reduceOnly), 'reduce-only admitted').toEqual({ allow: true });
    st.set('account', 'acct', 'HALTED', 'x', 'unit');
    for (const o of [entry, exit, reduceOnly]) expect(st.check(o).allow, 'HALTED').toBe(false);
  });

  it('set() returns the change record; an unchanged set returns undefined; ACTIVE clears', () => {
    const { st, t } = table();
    const c = st.set('symbol', 'BTCUSDT', 'HALTED', 'STALE', 'feed', NEXT_DAY);
    expect(c, 'record for the engine to publish').toEqual({
      scope: 'symbol', key: 'BTCUSDT', from: 'ACTIVE', to: 'HALTED', reason: 'STALE', source: 'feed', at: NOW, until: NEXT_DAY,
    });
    expect(st.set('symbol', 'BTCUSDT', 'HALTED', 'STALE', 'feed', NEXT_DAY), 'no change').toBeUndefined();
    t.now += 1000;
    const back = st.set('symbol', 'BTCUSDT', 'ACTIVE', 'manual', 'operator');
    expect(back, 'back to ACTIVE').toEqual({ scope: 'symbol', key: 'BTCUSDT', from: 'HALTED', to: 'ACTIVE', reason: 'manual', source: 'operator', at: NOW + 1000 });
    expect(st.entry('symbol', 'BTCUSDT'), 'cleared').toBeUndefined();
  });

  it('escalate() only tightens', () => {
    const { st } = table();
    st.set('account', 'acct', 'HALTED', 'loss', 'daily-loss', NEXT_DAY);
    expect(st.escalate('account', 'acct', 'REDUCING', 'dd', 'drawdown'), 'REDUCING never lifts a HALT').toBeUndefined();
    expect(st.get('account', 'acct'), 'still HALTED').toBe('HALTED');
    expect(st.escalate('symbol', 'BTCUSDT', 'REDUCING', 'liq', 'liquidation-distance')?.to, 'tightens ACTIVE').toBe('REDUCING');
  });

  it('a daily-loss HALT expires exactly at the next UTC day, not a millisecond before', () => {
    const snapshot = {
      now: NOW,
      account: { equity: dec(9500), peakEquity: dec(10_000), dayStartEquity: dec(10_000), realizedToday: dec(-500), unrealized: dec(0), availableBalance: dec(9500), feeRate: dec('0.001') },
      symbols: new Map(),
      strategies: [],
      globalOrdersLastSecond: 0,
      portfolioReturns: [],
    } satisfies RiskSnapshot;
    const v = dailyLoss({ maxLoss: dec(500) }).check(entry, snapshot);
    expect(v.allow, 'loss at the limit').toBe(false);
    if (v.allow || !v.escalate) throw new Error('expected an escalation');
    const { st, t } = table();
    const c = st.escalate(v.escalate.scope, 'acct', v.escalate.to, v.reason, 'daily-loss', v.escalate.until);
    expect(c?.until, 'until 00:00 UTC next day').toBe(NEXT_DAY);
    expect(st.effective(exit), 'even exits are stopped').toBe('HALTED');

    t.now = NEXT_DAY - 1;
    expect(st.expire(NEXT_DAY - 1), '23:59:59.999 UTC: still halted').toEqual([]);
    expect(st.effective(entry), 'HALTED').toBe('HALTED');

    const changes = st.expire(NEXT_DAY);
    expect(changes, 'lapses at 00:00 UTC').toEqual([
      { scope: 'account', key: 'acct', from: 'HALTED', to: 'ACTIVE', reason: 'EXPIRED: DAILY_LOSS_LIMIT: loss=500.00 limit=500.00', source: 'expiry', at: NEXT_DAY },
    ]);
    expect(st.effective(entry), 'trading resumes').toBe('ACTIVE');
    expect(st.expire(NEXT_DAY + 1), 'nothing left to expire').toEqual([]);
  });

  it('states without an expiry never lapse', () => {
    const { st } = table();
    st.set('strategy', 'rsi', 'REDUCING', 'dd', 'drawdown');
    expect(st.expire(NEXT_DAY * 2), 'no until').toEqual([]);
    expect(st.get('strategy', 'rsi'), 'kept').toBe('REDUCING');
  });
});
