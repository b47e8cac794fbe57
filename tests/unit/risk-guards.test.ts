/**
 * Every risk guard at its threshold, just below and just above, with the
 * exact reason string, and (for the entry-only guards) proof that exits and
 * reduce-only orders pass. "Below"/"above" is in the direction of the
 * measured figure; each describe says which side of "at" allows and why.
 */
import { describe, expect, it } from 'vitest';
import { dec, type Dec } from '../../src/core/decimal.ts';
import {
  balance,
  consecutiveLosses,
  dailyLoss,
  dailyTradedQuantity,
  drawdown,
  duplicateOrder,
  fundingWindow,
  historicalQuantile,
  liquidationDistance,
  maxPositionSize,
  orderThrottle,
  portfolioVar,
  priceProtection,
  staleData,
  strategyDailyLoss,
  symbolExposure,
} from '../../src/risk/guards/index.ts';
import type {
  AccountSnapshot,
  Guard,
  OrderCheck,
  RiskSnapshot,
  StrategySymbolSnapshot,
  SymbolSnapshot,
  Verdict,
} from '../../src/risk/types.ts';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const NEXT_DAY = Date.UTC(2026, 0, 16);

function order(o: Partial<OrderCheck> = {}): OrderCheck {
  return { strategy: 'rsi', symbol: 'BTCUSDT', market: 'spot', side: 'BUY', quantity: dec(1), reduceOnly: false, isEntry: true, ...o };
}
/** An exit (not an entry) and a reduce-only order, same side and size. */
function exits(o: Partial<OrderCheck> = {}): OrderCheck[] {
  return [order({ ...o, isEntry: false }), order({ ...o, reduceOnly: true, isEntry: false }), order({ ...o, reduceOnly: true })];
}

interface SnapOpts {
  now?: number;
  account?: Partial<AccountSnapshot>;
  sym?: Partial<SymbolSnapshot>;
  others?: Record<string, Partial<SymbolSnapshot>>;
  strategies?: StrategySymbolSnapshot[];
  global?: number;
  returns?: number[];
}

function symbol(p: Partial<SymbolSnapshot> = {}, now = NOW): SymbolSnapshot {
  return {
    position: dec(0),
    markPrice: dec(100),
    lastPrice: dec(100),
    prevCandle: { open: 100, high: 101, low: 99, close: 100 },
    openEntries: { BUY: 0, SELL: 0 },
    tradedQtyToday: dec(0),
    recentOrders: 0,
    lastDataAt: now,
    ...p,
  };
}

function snap(o: SnapOpts = {}): RiskSnapshot {
  const now = o.now ?? NOW;
  const symbols = new Map<string, SymbolSnapshot>([['BTCUSDT', symbol(o.sym, now)]]);
  for (const [k, v] of Object.entries(o.others ?? {})) symbols.set(k, symbol(v, now));
  return {
    now,
    account: {
      equity: dec(10_000),
      peakEquity: dec(10_000),
      dayStartEquity: dec(10_000),
      realizedToday: dec(0),
      unrealized: dec(0),
      availableBalance: dec(10_000),
      feeRate: dec('0.001'),
      ...o.account,
    },
    symbols,
    strategies: o.strategies ?? [],
    globalOrdersLastSecond: o.global ?? 0,
    portfolioReturns: o.returns ?? [],
  };
}

function allowed(g: Guard, o: OrderCheck, s: RiskSnapshot, why: string): void {
  const v = g.check(o, s);
  expect(v, why).toEqual({ allow: true });
}
function denied(g: Guard, o: OrderCheck, s: RiskSnapshot, reason: string, why: string): Verdict {
  const v = g.check(o, s);
  expect(v.allow, why).toBe(false);
  if (!v.allow) {
    expect(v.reason, why).toBe(reason);
    expect(reason.startsWith(`${v.code}:`), 'reason starts with its code').toBe(true);
  }
  return v;
}
const d = (x: string | number): Dec => dec(x);

describe('1 max-position-size: at the limit allows (the limit is the largest position allowed)', () => {
  const g = maxPositionSize({ maxQuantity: d(5) });
  const s = snap({ sym: { position: d(4) } });
  it('quantity: 5 at, 4.99 below allow; 5.01 above denies', () => {
    allowed(g, order({ quantity: d(1) }), s, 'position 4 + 1 = 5, exactly the max');
    allowed(g, order({ quantity: d('0.99') }), s, '4.99 is below the max');
    denied(g, order({ quantity: d('1.01') }), s, 'POSITION_SIZE_LIMIT: qty=5.01 max=5', '5.01 exceeds the max');
  });
  it('shorts count by absolute size', () => {
    const short = snap({ sym: { position: d(-4) } });
    allowed(g, order({ side: 'SELL', quantity: d(1) }), short, '|-5| = 5 is at the max');
    denied(g, order({ side: 'SELL', quantity: d('1.01') }), short, 'POSITION_SIZE_LIMIT: qty=5.01 max=5', '|-5.01| exceeds');
  });
  it('percent of equity: 10 % at, below allow; above denies', () => {
    const p = maxPositionSize({ maxPercentOfEquity: d(10) });
    allowed(p, order({ quantity: d(10) }), snap(), '10 * 100 = 1000 = 10 % of 10000');
    allowed(p, order({ quantity: d('9.99') }), snap(), '9.99 % is below');
    denied(p, order({ quantity: d('10.01') }), snap(), 'POSITION_SIZE_PCT_LIMIT: pct=10.01 max=10.00 notional=1001.00', '10.01 % is above');
    denied(p, order({ quantity: d(10), price: d(101) }), snap(), 'POSITION_SIZE_PCT_LIMIT: pct=10.10 max=10.00 notional=1010.00', 'valued at the limit price');
  });
  it('exits and reduce-only pass even from an oversized position', () => {
    for (const o of exits({ side: 'SELL', quantity: d(1) })) allowed(g, o, snap({ sym: { position: d(20) } }), 'exits shrink the position');
  });
});

describe('2 daily-loss: at the limit denies (the limit is the loss that stops trading)', () => {
  const g = dailyLoss({ maxLoss: d(500) });
  const at = (realized: string, unrealized: string, now = NOW) =>
    snap({ now, account: { realizedToday: d(realized), unrealized: d(unrealized) } });
  it('500 at denies and halts the account until the next UTC day; 499.99 allows; 512.30 denies', () => {
    const v = denied(g, order(), at('-300', '-200'), 'DAILY_LOSS_LIMIT: loss=500.00 limit=500.00', 'realized + unrealized = -500');
    expect(!v.allow && v.escalate, 'halts the account until 00:00 UTC next day').toEqual({ scope: 'account', to: 'HALTED', until: NEXT_DAY });
    allowed(g, order(), at('-300', '-199.99'), '499.99 is below the limit');
    denied(g, order(), at('-300', '-212.30'), 'DAILY_LOSS_LIMIT: loss=512.30 limit=500.00', 'the spec example');
  });
  it('a profit never trips it', () => {
    allowed(g, order(), at('1000', '-400'), 'net +600');
  });
  it('the halt lasts until the next UTC midnight even one millisecond before it', () => {
    const late = Date.UTC(2026, 0, 15, 23, 59, 59, 999);
    const v = g.check(order(), at('-600', '0', late));
    expect(!v.allow && v.escalate?.until, 'next UTC day').toBe(NEXT_DAY);
  });
  it('exits pass: the HALTED state, not the guard, decides which exits may go', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, at('-500', '0'), 'a halted account must still be able to close');
  });
  it('percent of day-start equity: 5 % at denies, 4.9999 % allows', () => {
    const p = dailyLoss({ maxLossPercent: d(5) });
    denied(p, order(), at('-500', '0'), 'DAILY_LOSS_PCT_LIMIT: pct=5.00 limit=5.00 loss=500.00', '500 of 10000');
    allowed(p, order(), at('-499.99', '0'), 'just below 5 %');
    denied(p, order(), at('-501', '0'), 'DAILY_LOSS_PCT_LIMIT: pct=5.01 limit=5.00 loss=501.00', 'above 5 %');
  });
});

describe('3 duplicate-order: 0 open allows; 1 (the threshold) and more deny', () => {
  const g = duplicateOrder();
  it('same symbol and side', () => {
    allowed(g, order(), snap(), 'none open');
    denied(g, order(), snap({ sym: { openEntries: { BUY: 1, SELL: 0 } } }), 'DUPLICATE_ENTRY: symbol=BTCUSDT side=BUY open=1', 'one in flight');
    denied(g, order(), snap({ sym: { openEntries: { BUY: 2, SELL: 0 } } }), 'DUPLICATE_ENTRY: symbol=BTCUSDT side=BUY open=2', 'two open');
  });
  it('the other side or another symbol is not a duplicate', () => {
    allowed(g, order({ side: 'SELL' }), snap({ sym: { openEntries: { BUY: 1, SELL: 0 } } }), 'other side');
    allowed(g, order({ symbol: 'ETHUSDT' }), snap({ sym: { openEntries: { BUY: 1, SELL: 0 } }, others: { ETHUSDT: {} } }), 'other symbol');
  });
  it('exits and reduce-only pass', () => {
    for (const o of exits()) allowed(g, o, snap({ sym: { openEntries: { BUY: 1, SELL: 1 } } }), 'an exit is never a duplicate entry');
  });
});

describe('4 balance: cost equal to the available balance allows (it is exactly covered)', () => {
  const g = balance({ leverage: d(10) });
  it('spot: 100 + 0.10 fee against 100.10 / 100.11 allow, 100.09 denies', () => {
    const s = (avail: string) => snap({ account: { availableBalance: d(avail) } });
    allowed(g, order(), s('100.10'), 'notional 100 plus fee 0.10 is exactly covered');
    allowed(g, order(), s('100.11'), 'more than enough');
    denied(g, order(), s('100.09'), 'INSUFFICIENT_BALANCE: required=100.10 available=100.09 fee=0.10', 'one cent short');
  });
  it('futures: margin = notional / leverage, plus the fee on the full notional', () => {
    const s = (avail: string) => snap({ account: { availableBalance: d(avail) } });
    const f = order({ market: 'futures', quantity: d(10) });
    allowed(g, f, s('101'), '1000 / 10 + 1 = 101');
    denied(g, f, s('100.99'), 'INSUFFICIENT_BALANCE: required=101.00 available=100.99 fee=1.00', 'short by 0.01');
  });
  it('exits and reduce-only pass with no balance', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, snap({ account: { availableBalance: d(0) } }), 'exits free funds');
  });
});

describe('5 price-protection: a deviation equal to the limit allows; beyond it denies', () => {
  const g = priceProtection({ maxDeviationBps: d(50), maxCandleRangePct: d(5) });
  it('limit price vs mark 100: 50 bps at and 49 bps allow; 51 bps denies, both directions', () => {
    allowed(g, order({ price: d('100.5') }), snap(), '50 bps is the limit');
    allowed(g, order({ price: d('100.49') }), snap(), '49 bps');
    denied(g, order({ price: d('100.51') }), snap(), 'PRICE_DEVIATION: price=100.51 mark=100.00 bps=51.00 max=50.00', '51 bps above');
    denied(g, order({ price: d('99.49') }), snap(), 'PRICE_DEVIATION: price=99.49 mark=100.00 bps=51.00 max=50.00', '51 bps below');
  });
  it('a far limit price is denied on exits too', () => {
    for (const o of exits({ side: 'SELL', price: d('100.51') })) {
      denied(g, o, snap(), 'PRICE_DEVIATION: price=100.51 mark=100.00 bps=51.00 max=50.00', 'fat finger on an exit');
    }
  });
  it('last price vs mark: 50 bps allows, 51 bps denies entries, exits pass', () => {
    allowed(g, order(), snap({ sym: { lastPrice: d('100.5') } }), 'at the limit');
    allowed(g, order(), snap({ sym: { lastPrice: d('100.49') } }), 'below');
    denied(g, order(), snap({ sym: { lastPrice: d('100.51') } }), 'LAST_PRICE_DEVIATION: last=100.51 mark=100.00 bps=51.00 max=50.00', 'above');
    for (const o of exits({ side: 'SELL' })) allowed(g, o, snap({ sym: { lastPrice: d(120) } }), 'exits pass a dislocated last price');
  });
  it('previous candle range: 5 % at and 4.99 % allow, 5.01 % denies entries, exits pass', () => {
    const c = (high: number) => snap({ sym: { prevCandle: { open: 100, high, low: 100, close: 100 } } });
    allowed(g, order(), c(105), 'range 5 % is the limit');
    allowed(g, order(), c(104.99), 'below');
    denied(g, order(), c(105.01), 'ABNORMAL_CANDLE: rangePct=5.01 max=5.00', 'above');
    for (const o of exits({ side: 'SELL' })) allowed(g, o, c(150), 'exits pass in a crash');
  });
});

describe('6 strategy-daily-loss: at the limit denies (the limit is the loss that stops the strategy)', () => {
  const g = strategyDailyLoss({ maxLoss: d(200) });
  const s = (eth: string) =>
    snap({
      strategies: [
        { strategy: 'rsi', symbol: 'BTCUSDT', realizedToday: d(-150), consecutiveLosses: 0 },
        { strategy: 'rsi', symbol: 'ETHUSDT', realizedToday: d(eth), consecutiveLosses: 0 },
        { strategy: 'macd', symbol: 'BTCUSDT', realizedToday: d(-5000), consecutiveLosses: 0 },
      ],
    });
  it('summed over the strategy\'s symbols: 200 at denies, 199.99 allows, 200.01 denies', () => {
    denied(g, order(), s('-50'), 'STRATEGY_DAILY_LOSS_LIMIT: strategy=rsi loss=200.00 limit=200.00', '150 + 50');
    allowed(g, order(), s('-49.99'), 'below');
    denied(g, order(), s('-50.01'), 'STRATEGY_DAILY_LOSS_LIMIT: strategy=rsi loss=200.01 limit=200.00', 'above');
  });
  it('another strategy\'s loss does not count', () => {
    allowed(g, order({ strategy: 'ema-cross' }), s('-50'), 'ema-cross has no loss');
  });
  it('exits and reduce-only pass', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, s('-1000'), 'the strategy may still close');
  });
});

describe('7 symbol-exposure: notional equal to the max allows', () => {
  const g = symbolExposure({ maxNotional: d(1000) });
  const s = snap({ sym: { position: d(5) } });
  it('1000 at and 999 allow; 1001 denies', () => {
    allowed(g, order({ quantity: d(5) }), s, '10 * 100 = 1000');
    allowed(g, order({ quantity: d('4.99') }), s, '999');
    denied(g, order({ quantity: d('5.01') }), s, 'SYMBOL_EXPOSURE_LIMIT: symbol=BTCUSDT exposure=1001.00 max=1000.00', '1001');
  });
  it('valued at the limit price when there is one', () => {
    denied(g, order({ quantity: d(5), price: d(101) }), s, 'SYMBOL_EXPOSURE_LIMIT: symbol=BTCUSDT exposure=1010.00 max=1000.00', '10 * 101');
  });
  it('exits and reduce-only pass', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, snap({ sym: { position: d(50) } }), 'exits shrink exposure');
  });
});

describe('8 daily-traded-quantity: today + order equal to the max allows', () => {
  const g = dailyTradedQuantity({ maxQuantity: d(10), perSymbol: { ETHUSDT: d(100) } });
  const s = snap({ sym: { tradedQtyToday: d(9) }, others: { ETHUSDT: { tradedQtyToday: d(99) } } });
  it('10 at and 9.99 allow; 10.01 denies', () => {
    allowed(g, order({ quantity: d(1) }), s, '9 + 1 = 10');
    allowed(g, order({ quantity: d('0.99') }), s, 'below');
    denied(g, order({ quantity: d('1.01') }), s, 'DAILY_QUANTITY_LIMIT: symbol=BTCUSDT qty=10.01 max=10', 'above');
  });
  it('a per-symbol override wins', () => {
    allowed(g, order({ symbol: 'ETHUSDT', quantity: d(1) }), s, '99 + 1 = 100 is the ETH max');
    denied(g, order({ symbol: 'ETHUSDT', quantity: d(2) }), s, 'DAILY_QUANTITY_LIMIT: symbol=ETHUSDT qty=101 max=100', 'above the ETH max');
  });
  it('exits and reduce-only pass', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, snap({ sym: { tradedQtyToday: d(100) } }), 'closing is never blocked');
  });
});

describe('9 drawdown: each threshold triggers at the threshold itself', () => {
  const g = drawdown({ reduceAtPct: d(10), haltAtPct: d(20) });
  const eq = (e: string) => snap({ account: { equity: d(e), peakEquity: d(10_000) } });
  it('REDUCING at 10 %: entries denied and the account escalated; exits pass', () => {
    const v = denied(g, order(), eq('9000'), 'DRAWDOWN_REDUCE: drawdown=10.00 limit=10.00', '10 % drawdown');
    expect(!v.allow && v.escalate, 'account to REDUCING').toEqual({ scope: 'account', to: 'REDUCING' });
    allowed(g, order(), eq('9000.01'), 'just below 10 %');
    denied(g, order(), eq('8999'), 'DRAWDOWN_REDUCE: drawdown=10.01 limit=10.00', 'just above 10 %');
    for (const o of exits({ side: 'SELL' })) allowed(g, o, eq('9000'), 'REDUCING still admits exits');
  });
  it('HALTED at 20 %: entries denied and the account escalated; just below 20 % is REDUCING', () => {
    const v = denied(g, order(), eq('8000'), 'DRAWDOWN_HALT: drawdown=20.00 limit=20.00', '20 % drawdown');
    expect(!v.allow && v.escalate, 'account to HALTED').toEqual({ scope: 'account', to: 'HALTED' });
    for (const o of exits({ side: 'SELL' })) allowed(g, o, eq('8000'), 'exits are left to the HALTED state (full closes pass)');
    denied(g, order(), eq('8000.01'), 'DRAWDOWN_REDUCE: drawdown=20.00 limit=10.00', '19.9999 % only reduces');
    allowed(g, order({ side: 'SELL', isEntry: false }), eq('8000.01'), 'exit below the halt threshold');
    denied(g, order(), eq('7999'), 'DRAWDOWN_HALT: drawdown=20.01 limit=20.00', 'above 20 %');
  });
  it('equity at or above the peak never trips it', () => {
    allowed(g, order(), eq('10000'), 'no drawdown');
  });
});

describe('10 consecutive-losses: N losses deny until the cooldown ends; the cooldown end allows', () => {
  const g = consecutiveLosses({ maxLosses: 3, cooldownMs: 3_600_000 });
  const lastLossAt = NOW - 1000;
  const s = (losses: number, now = NOW) =>
    snap({ now, strategies: [{ strategy: 'rsi', symbol: 'BTCUSDT', realizedToday: d(-30), consecutiveLosses: losses, lastLossAt }] });
  it('2 below allows; 3 at and 4 above deny', () => {
    allowed(g, order(), s(2), 'one short of the streak');
    const reason = 'CONSECUTIVE_LOSSES: strategy=rsi symbol=BTCUSDT losses=3 max=3 until=2026-01-15T12:59:59.000Z';
    denied(g, order(), s(3), reason, 'three in a row');
    denied(g, order(), s(4), reason.replace('losses=3', 'losses=4'), 'four in a row');
  });
  it('cooldown: 1 ms before its end denies, at its end allows', () => {
    expect(g.check(order(), s(3, lastLossAt + 3_600_000 - 1)).allow, '1 ms early').toBe(false);
    allowed(g, order(), s(3, lastLossAt + 3_600_000), 'cooldown over');
  });
  it('only that strategy on that symbol', () => {
    allowed(g, order({ symbol: 'ETHUSDT' }), s(5), 'other symbol');
    allowed(g, order({ strategy: 'macd' }), s(5), 'other strategy');
  });
  it('exits and reduce-only pass', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, s(9), 'the strategy may still close');
  });
});

describe('11 funding-window: exactly X minutes away denies ("within" is inclusive)', () => {
  const g = fundingWindow({ windowMinutes: 5 });
  const s = (next: number) => snap({ sym: { nextFundingTime: next } });
  const f = order({ market: 'futures' });
  it('5 min at and 1 ms inside deny; 1 ms outside allows', () => {
    denied(g, f, s(NOW + 300_000), 'FUNDING_WINDOW: symbol=BTCUSDT minutes=5.00 window=5', 'exactly 5 minutes');
    expect(g.check(f, s(NOW + 299_999)).allow, 'inside the window').toBe(false);
    allowed(g, f, s(NOW + 300_001), 'outside the window');
    denied(g, f, s(NOW), 'FUNDING_WINDOW: symbol=BTCUSDT minutes=0.00 window=5', 'at the funding time');
  });
  it('a past funding time, spot orders and exits pass', () => {
    allowed(g, f, s(NOW - 1), 'funding already happened');
    allowed(g, order({ market: 'spot' }), s(NOW + 60_000), 'spot has no funding');
    for (const o of exits({ market: 'futures', side: 'SELL' })) allowed(g, o, s(NOW + 60_000), 'exits pass');
  });
});

describe('12 order-throttle: below the max allows; a count at the max denies (the order would exceed it)', () => {
  const g = orderThrottle({ maxPerSymbol: 5, maxGlobalPerSecond: 10 });
  it('per symbol: 4 allows, 5 and 6 deny', () => {
    allowed(g, order(), snap({ sym: { recentOrders: 4 } }), 'this is the 5th');
    denied(g, order(), snap({ sym: { recentOrders: 5 } }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=5 max=5', 'would be the 6th');
    denied(g, order(), snap({ sym: { recentOrders: 6 } }), 'ORDER_RATE_SYMBOL: symbol=BTCUSDT count=6 max=5', 'already over');
  });
  it('global: 9 allows, 10 and 11 deny', () => {
    allowed(g, order(), snap({ global: 9 }), 'this is the 10th');
    denied(g, order(), snap({ global: 10 }), 'ORDER_RATE_GLOBAL: count=10 max=10', 'would be the 11th');
    denied(g, order(), snap({ global: 11 }), 'ORDER_RATE_GLOBAL: count=11 max=10', 'over');
  });
  it('applies to exits too', () => {
    for (const o of exits({ side: 'SELL' })) denied(g, o, snap({ global: 10 }), 'ORDER_RATE_GLOBAL: count=10 max=10', 'rate limits are per order');
  });
});

describe('13 stale-data: data exactly maxAge old allows', () => {
  const g = staleData({ maxAgeMs: 5000 });
  const s = (age: number) => snap({ sym: { lastDataAt: NOW - age } });
  it('5000 at and 4999 allow; 5001 denies', () => {
    allowed(g, order(), s(5000), 'at the max age');
    allowed(g, order(), s(4999), 'fresher');
    denied(g, order(), s(5001), 'STALE_MARKET_DATA: symbol=BTCUSDT ageMs=5001 maxMs=5000', 'stale');
  });
  it('exits and reduce-only pass on stale data', () => {
    for (const o of exits({ side: 'SELL' })) allowed(g, o, s(600_000), 'exits are allowed on stale data');
  });
});

describe('14 liquidation-distance: a distance equal to a threshold denies (it is "within")', () => {
  const g = liquidationDistance({ denyEntryWithinPct: d(10), reduceWithinPct: d(5) });
  const s = (liq: string) => snap({ sym: { liquidationPrice: d(liq) } });
  const f = order({ market: 'futures' });
  it('deny-entry threshold: 10 % at and 9.99 % deny; 10.01 % allows', () => {
    denied(g, f, s('90'), 'LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=10.00 limit=10.00', 'exactly 10 %');
    denied(g, f, s('90.01'), 'LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=9.99 limit=10.00', 'closer');
    allowed(g, f, s('89.99'), 'farther than 10 %');
    denied(g, order({ market: 'futures', side: 'SELL' }), s('110'), 'LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=10.00 limit=10.00', 'short side');
  });
  it('reduce threshold: 5 % at and 4.99 % escalate the symbol to REDUCING; 5.01 % only denies', () => {
    const v = denied(g, f, s('95'), 'LIQUIDATION_REDUCE: symbol=BTCUSDT distancePct=5.00 limit=5.00', 'exactly 5 %');
    expect(!v.allow && v.escalate, 'symbol to REDUCING').toEqual({ scope: 'symbol', to: 'REDUCING' });
    denied(g, f, s('95.01'), 'LIQUIDATION_REDUCE: symbol=BTCUSDT distancePct=4.99 limit=5.00', 'closer');
    const far = denied(g, f, s('94.99'), 'LIQUIDATION_DISTANCE: symbol=BTCUSDT distancePct=5.01 limit=10.00', 'between the thresholds');
    expect(!far.allow && far.escalate, 'no escalation between the thresholds').toBeUndefined();
  });
  it('exits, reduce-only and spot pass', () => {
    for (const o of exits({ market: 'futures', side: 'SELL' })) allowed(g, o, s('99'), 'exits move the liquidation away');
    allowed(g, order({ market: 'spot' }), s('99'), 'spot cannot be liquidated');
  });
});

describe('15 portfolio-var: VaR equal to the limit allows', () => {
  // 100 daily returns: 95 gains of 1 % and the five worst -10, -5, -4, -3, -2 %.
  const returns = [-0.1, -0.05, -0.04, -0.03, -0.02, ...Array<number>(95).fill(0.01)];
  it('historical quantiles: the 5th worst at 95 %, the worst at 99 %', () => {
    expect(historicalQuantile(returns, 0.95), '5th of 100').toBe(-0.02);
    expect(historicalQuantile(returns, 0.99), '1st of 100').toBe(-0.1);
  });
  const g95 = portfolioVar({ limits: [{ confidence: 0.95, maxLoss: d(20) }] });
  const s = (o: SnapOpts = {}) => snap({ returns, ...o });
  it('95 %, in quote: exposure 1000 gives VaR 20 (at) and allows; 999 allows; 1001 denies', () => {
    allowed(g95, order({ quantity: d(10) }), s(), '0.02 * 1000 = 20');
    allowed(g95, order({ quantity: d('9.99') }), s(), '19.98');
    denied(g95, order({ quantity: d('10.01') }), s(), 'VAR_LIMIT_95: var=20.02 limit=20.00 exposure=1001.00', '20.02');
  });
  it('existing positions on every symbol count, shorts by absolute value', () => {
    const withEth = s({ others: { ETHUSDT: { position: d(-2), markPrice: d(50) } } });
    allowed(g95, order({ quantity: d(9) }), withEth, '100 held + 900 = 1000');
    denied(g95, order({ quantity: d('9.01') }), withEth, 'VAR_LIMIT_95: var=20.02 limit=20.00 exposure=1001.00', '1001');
  });
  it('99 %, in percent of equity: 1 % of 10000 = 100', () => {
    const g99 = portfolioVar({ limits: [{ confidence: 0.99, maxPercentOfEquity: d(1) }] });
    allowed(g99, order({ quantity: d(10) }), s(), '0.10 * 1000 = 100');
    allowed(g99, order({ quantity: d('9.99') }), s(), '99.90');
    denied(g99, order({ quantity: d('10.01') }), s(), 'VAR_LIMIT_99: var=100.10 limit=100.00 exposure=1001.00', '100.10');
  });
  it('too few returns to judge allows; exits and reduce-only pass', () => {
    allowed(g95, order({ quantity: d(1000) }), snap({ returns: returns.slice(0, 29) }), 'fewer than 30 samples');
    for (const o of exits({ side: 'SELL', quantity: d(1000) })) allowed(g95, o, s(), 'exits lower exposure');
  });
});

describe('snapshot invariants', () => {
  it('a snapshot without the order\'s symbol is an engine bug and throws', () => {
    expect(() => duplicateOrder().check(order({ symbol: 'XRPUSDT' }), snap()), 'broken invariant').toThrow(/XRPUSDT/);
  });
});
