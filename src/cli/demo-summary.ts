/**
 * What `trader demo` shows per strategy: each strategy's own line on the
 * symbol (the ledger's lot: quantity, entry, realized PnL, fees; the
 * protection manager's stop, target and trail, and where the stop is), the
 * bot's net beside it, and at the end a table per strategy whose total line is
 * checked against the account's own figures:
 *
 *   trades      closed round trips as the bus reported them (the "trade closed"
 *               position events), counted as they happened;
 *   realized    the wallet's change (the cash ledger: the exchange's snapshot at
 *               start, then every fill's PnL and fee), funding left out;
 *   fees        every stored fill's fee in the quote asset (the fills table);
 *   unrealized  the portfolio's running sum at the last mark (what equity uses).
 *
 * The strategies' figures come from their lines (portfolio.trips,
 * ledger.lot), so the check compares two ways of keeping the same books.
 */
import { OPEN_ORDER_STATUSES } from '../model/events.ts';
import { Dec, ZERO } from '../core/decimal.ts';
import type { ProtectionView } from '../execution/protection.ts';
import { EXTERNAL } from '../ledger/ledger.ts';
import type { PortfolioView } from '../portfolio/portfolio.ts';
import type { Store } from '../store/store.ts';

export interface StopView {
  price: string;
  /** 'exchange': acknowledged by the venue; 'emulated': watched by the bot; 'pending': the level is set, its order not acknowledged yet. */
  where: 'exchange' | 'emulated' | 'pending';
}

export interface StrategyRow {
  strategy: string;
  /** Closed round trips. */
  trades: number;
  /** Lifetime realized PnL on the symbol, fees included. */
  realized: Dec;
  fees: Dec;
  /** Signed: positive long, negative short. */
  quantity: Dec;
  entryPrice: Dec;
  flat: boolean;
  unrealized: Dec;
  stop?: StopView;
  target?: string;
  trail?: string;
}

export interface AccountFigures {
  trades: number;
  realized: Dec;
  fees: Dec;
  unrealized: Dec;
  walletStart: Dec;
  walletEnd: Dec;
  funding: Dec;
  equity: Dec;
  /** The venue's position on the symbol, asked just before the bot stopped (or why it is unknown). */
  venueNet: Dec | string;
}

export interface StopCounts {
  /** Stop orders the venue accepted for the strategy's positions. */
  set: number;
  /** Of those, how many filled (the position was stopped out). */
  hit: number;
}

const STOP_TYPES = ['STOP_MARKET', 'STOP_LOSS_LIMIT'];

/** Each strategy's newest stop order still open on the symbol: its trigger as rounded and sent, and whether the venue has acknowledged it (orders table). */
export function workingStops(store: Store, symbol: string): Map<string, { price: string; acknowledged: boolean }> {
  const rows = store.all(
    store.db
      .selectFrom('orders')
      .select(['strategy', 'stop_price', 'status'])
      .where('symbol', '=', symbol)
      .where('source', '=', 'protective')
      .where('type', 'in', STOP_TYPES)
      .where('status', 'in', [...OPEN_ORDER_STATUSES])
      .orderBy('created_at'),
  );
  return new Map(rows.filter((r) => r.stop_price !== null).map((r) => [r.strategy, { price: r.stop_price!, acknowledged: r.status !== 'PENDING' }]));
}

/**
 * The strategy's own line on the symbol now. Its stop: the protection
 * manager's level, or the working order's trigger (as rounded and sent) once
 * the exchange has acknowledged it.
 */
export function strategyRow(portfolio: PortfolioView, protection: ProtectionView, working: Map<string, { price: string; acknowledged: boolean }>, strategy: string, symbol: string): StrategyRow {
  const lot = portfolio.ledger.lot(strategy, symbol);
  const mark = portfolio.mark(symbol);
  const p = protection.owners.find((o) => o.strategy === strategy && o.symbol === symbol && o.side === 'BOTH');
  const order = p?.onExchange.includes('stop') ? working.get(strategy) : undefined;
  const where: StopView['where'] = order?.acknowledged ? 'exchange' : p?.emulated.includes('stop') ? 'emulated' : 'pending';
  const stopPrice = order?.acknowledged ? order.price : p?.stop;
  return {
    strategy,
    trades: portfolio.trips(strategy, symbol).trades,
    realized: lot.realizedPnl,
    fees: lot.fees,
    quantity: lot.quantity,
    entryPrice: lot.entryPrice,
    flat: lot.flat,
    // As the portfolio values it: every non-zero line at the mark (dust included).
    unrealized: mark && !lot.quantity.isZero() ? mark.minus(lot.entryPrice).times(lot.quantity) : ZERO,
    ...(stopPrice && !lot.flat ? { stop: { price: stopPrice, where } } : {}),
    ...(p?.target && !lot.flat ? { target: p.target } : {}),
    ...(p?.trail && !lot.flat ? { trail: p.trail } : {}),
  };
}

/** The configured strategies, then any other owner holding a line on the symbol (external holdings are not the bot's). */
export function owners(portfolio: PortfolioView, strategies: readonly string[], symbol: string): string[] {
  const extra = portfolio.ledger.lots(symbol).map((l) => l.strategy).filter((s) => s !== EXTERNAL && !strategies.includes(s));
  return [...strategies, ...new Set(extra)];
}

function position(r: Pick<StrategyRow, 'quantity' | 'entryPrice' | 'flat'>): string {
  if (r.flat) return r.quantity.isZero() ? 'flat' : `flat (dust ${r.quantity.toFixed()})`;
  return `${r.quantity.gt(0) ? 'long' : 'short'} ${r.quantity.abs().toFixed()} @ ${r.entryPrice.toFixed(4)}`;
}

function stopText(r: StrategyRow): string {
  if (r.flat) return '';
  const parts: string[] = [];
  if (r.stop) parts.push(`stop ${r.stop.price} (${r.stop.where === 'exchange' ? 'on the exchange' : r.stop.where === 'emulated' ? 'emulated' : 'being placed'})`);
  else parts.push('no stop');
  if (r.target) parts.push(`target ${r.target}`);
  if (r.trail) parts.push(`trail ${r.trail} %`);
  return parts.join(', ');
}

const money = (d: Dec, places = 4): string => (d.gt(0) ? '+' : '') + d.toFixed(places);

/** The periodic status: one line per strategy, then the symbol's net. */
export function statusLines(rows: readonly StrategyRow[], symbol: string, net: Dec, venue: Dec | string): string[] {
  const w = Math.max(...rows.map((r) => r.strategy.length));
  const lines = rows.map((r) => {
    const pos = position(r);
    const stop = stopText(r);
    return `  ${r.strategy.padEnd(w)}  ${pos}${stop ? `, ${stop}` : ''}${r.flat ? '' : `, unrealized ${money(r.unrealized)}`}; ${r.trades} trade${r.trades === 1 ? '' : 's'}, realized ${money(r.realized)}`;
  });
  const v = typeof venue === 'string' ? venue : `the exchange holds ${venue.toFixed()}`;
  lines.push(`  ${symbol} net ${net.toFixed()} (the lines' sum; ${v})`);
  return lines;
}

/** Stop-loss orders per strategy on the symbol, from the orders table. */
export function stopCounts(store: Store, symbol: string): Map<string, StopCounts> {
  const rows = store.all(
    store.db
      .selectFrom('orders')
      .select(['strategy', 'exchange_order_id', 'filled_quantity'])
      .where('symbol', '=', symbol)
      .where('source', '=', 'protective')
      .where('type', 'in', STOP_TYPES),
  );
  const out = new Map<string, StopCounts>();
  for (const r of rows) {
    if (r.exchange_order_id === null) continue;
    const c = out.get(r.strategy) ?? { set: 0, hit: 0 };
    c.set++;
    if (new Dec(r.filled_quantity).gt(0)) c.hit++;
    out.set(r.strategy, c);
  }
  return out;
}

/** Every stored fill's fee in the quote asset. */
export function storedFees(store: Store, symbol: string, quoteAsset: string): Dec {
  const rows = store.all(store.db.selectFrom('fills').select(['fee', 'fee_asset']).where('symbol', '=', symbol));
  let fees = ZERO;
  for (const r of rows) if (r.fee_asset === quoteAsset) fees = fees.plus(r.fee);
  return fees;
}

export interface Summary {
  symbol: string;
  quoteAsset: string;
  rows: Array<StrategyRow & { stops: StopCounts }>;
  total: { trades: number; realized: Dec; fees: Dec; unrealized: Dec; net: Dec };
  account: AccountFigures;
  /** Which of trades, realized, fees, unrealized differ between the total and the account (empty: they match). */
  differ: string[];
}

export function summarize(symbol: string, quoteAsset: string, rows: readonly StrategyRow[], stops: Map<string, StopCounts>, account: AccountFigures): Summary {
  const total = { trades: 0, realized: ZERO, fees: ZERO, unrealized: ZERO, net: ZERO };
  for (const r of rows) {
    total.trades += r.trades;
    total.realized = total.realized.plus(r.realized);
    total.fees = total.fees.plus(r.fees);
    total.unrealized = total.unrealized.plus(r.unrealized);
    total.net = total.net.plus(r.quantity);
  }
  const differ: string[] = [];
  if (total.trades !== account.trades) differ.push('trades');
  if (!total.realized.eq(account.realized)) differ.push('realized');
  if (!total.fees.eq(account.fees)) differ.push('fees');
  if (!total.unrealized.eq(account.unrealized)) differ.push('unrealized');
  return { symbol, quoteAsset, rows: rows.map((r) => ({ ...r, stops: stops.get(r.strategy) ?? { set: 0, hit: 0 } })), total, account, differ };
}

/** The end-of-demo table. */
export function renderSummary(s: Summary): string[] {
  const head = ['', 'trades', 'realized', 'fees', 'position', 'stop now', 'unrealized', 'stops set/hit'];
  const body = s.rows.map((r) => [r.strategy, String(r.trades), money(r.realized), r.fees.toFixed(4), position(r), r.flat ? '' : r.stop ? `${r.stop.price}${r.stop.where === 'exchange' ? '' : ` (${r.stop.where})`}` : 'none', money(r.unrealized), `${r.stops.set}/${r.stops.hit}`]);
  const t = s.total;
  const a = s.account;
  body.push(['total', String(t.trades), money(t.realized), t.fees.toFixed(4), `net ${t.net.toFixed()}`, '', money(t.unrealized), '']);
  body.push(['account', String(a.trades), money(a.realized), a.fees.toFixed(4), typeof a.venueNet === 'string' ? 'exchange: ?' : `exchange ${a.venueNet.toFixed()}`, '', money(a.unrealized), '']);
  const all = [head, ...body];
  const width = head.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  // Text columns left, figures right.
  const left = new Set([0, 4, 5]);
  const fmt = (row: string[]) => `  ${row.map((c, i) => (left.has(i) ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join('  ')}`.trimEnd();
  const out = [`per strategy on ${s.symbol} (${s.quoteAsset}; realized includes fees; unrealized at the last mark):`, ...all.map(fmt)];
  const wallet = `wallet ${a.walletStart.toFixed(2)} -> ${a.walletEnd.toFixed(2)}${a.funding.isZero() ? '' : `, funding ${money(a.funding)} not in realized`}, equity ${a.equity.toFixed(2)}`;
  out.push(
    s.differ.length === 0
      ? `  the total equals the account's figures: ${t.trades} trades, realized ${t.realized.toFixed()}, fees ${t.fees.toFixed()}, unrealized ${t.unrealized.toFixed()} ${s.quoteAsset} (${wallet})`
      : `  the total DIFFERS from the account's figures in ${s.differ.join(', ')}: total ${t.trades} trades, realized ${t.realized.toFixed()}, fees ${t.fees.toFixed()}, unrealized ${t.unrealized.toFixed()}; account ${a.trades} trades, realized ${a.realized.toFixed()}, fees ${a.fees.toFixed()}, unrealized ${a.unrealized.toFixed()} (${wallet})`,
  );
  return out;
}

/** The summary as exact strings (status/demo-summary.json). */
export function summaryJson(s: Summary): unknown {
  const d = (x: Dec) => x.toFixed();
  return {
    symbol: s.symbol,
    quoteAsset: s.quoteAsset,
    rows: s.rows.map((r) => ({ strategy: r.strategy, trades: r.trades, realized: d(r.realized), fees: d(r.fees), quantity: d(r.quantity), entryPrice: d(r.entryPrice), flat: r.flat, unrealized: d(r.unrealized), ...(r.stop ? { stop: r.stop } : {}), ...(r.target ? { target: r.target } : {}), ...(r.trail ? { trail: r.trail } : {}), stops: r.stops })),
    total: { trades: s.total.trades, realized: d(s.total.realized), fees: d(s.total.fees), unrealized: d(s.total.unrealized), net: d(s.total.net) },
    account: { trades: s.account.trades, realized: d(s.account.realized), fees: d(s.account.fees), unrealized: d(s.account.unrealized), walletStart: d(s.account.walletStart), walletEnd: d(s.account.walletEnd), funding: d(s.account.funding), equity: d(s.account.equity), venueNet: typeof s.account.venueNet === 'string' ? s.account.venueNet : d(s.account.venueNet) },
    matches: s.differ.length === 0,
    differ: s.differ,
  };
}
