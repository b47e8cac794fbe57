/**
 * The invariants after a chaos campaign, checked against the exchange's OWN
 * records (the matching engine behind the local exchange, read in process),
 * never against what the bot believes:
 *
 *   1. every order row matches the exchange's order (status, filled quantity,
 *      exchange id), and every exchange order has a row; a row the exchange
 *      never saw must be REJECTED (written, never sent);
 *   2. no intent produced two orders: one exchange order per clientOrderId,
 *      one row per intent_id;
 *   3. the fills table equals the exchange's trade list (same trade ids, once
 *      each, same order, side, price, quantity, fee, realized PnL);
 *   4. positions: the positions table, and the position rebuilt from the
 *      fills, equal the exchange's positionAmt per symbol;
 *   5. realized PnL net of fees from our fills equals the exchange's
 *      (sum of realizedPnl - commission over its trades);
 *   6. no 1m candle is missing from the store between the first candle it
 *      holds and the last one the exchange closed.
 */
import Database from 'better-sqlite3';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, type LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Workspace } from '../support/workspace.ts';

export interface InvariantReport {
  exchange: { orders: number; trades: number; positions: Record<string, string>; realizedNet: string };
  store: { orders: number; neverSent: number; fills: number; positions: Record<string, string>; realizedNet: string; candles: number; missingCandles: number; missingBySymbol: Record<string, number> };
  /** One line per broken invariant instance (1-5: orders, intents, fills, positions, PnL); the campaign passes when empty. */
  discrepancies: string[];
  /** Invariant 6 (no 1m candle missing from the store), listed apart (and counted in the campaign's discrepancies). */
  candleDiscrepancies: string[];
  /** Findings that are reported but not counted (see the report). */
  notes: string[];
}

interface OrderRow { client_order_id: string; intent_id: string; symbol: string; status: string; filled_quantity: string; exchange_order_id: string | null; error: string | null }
interface FillRow { trade_id: string; symbol: string; client_order_id: string | null; exchange_order_id: string | null; side: string; price: string; quantity: string; fee: string; realized_pnl: string | null }

export function checkInvariants(ex: LocalExchange, ws: Workspace, symbols: readonly string[], opts: { candles?: boolean } = {}): InvariantReport {
  const acct = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
  const bad: string[] = [];
  const notes: string[] = [];
  const candleBad: string[] = [];
  const db = new Database(ws.dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT client_order_id, intent_id, symbol, status, filled_quantity, exchange_order_id, error FROM orders WHERE market = 'futures'").all() as OrderRow[];
    const fills = db.prepare("SELECT trade_id, symbol, client_order_id, exchange_order_id, side, price, quantity, fee, realized_pnl FROM fills WHERE market = 'futures'").all() as FillRow[];
    const posRows = db.prepare("SELECT symbol, quantity FROM positions WHERE market = 'futures'").all() as Array<{ symbol: string; quantity: string }>;

    const exOrders = symbols.flatMap((s) => ex.engine.allOrders(acct, 'futures', s, { startTime: 0, limit: 1e9 }));
    const exTrades = symbols.flatMap((s) => ex.engine.trades(acct, 'futures', s, { startTime: 0, limit: 1e9 }));

    // 2. no intent produced two orders.
    const byCid = new Map<string, typeof exOrders>();
    for (const o of exOrders) byCid.set(o.clientOrderId, [...(byCid.get(o.clientOrderId) ?? []), o]);
    for (const [cid, list] of byCid) if (list.length > 1) bad.push(`DUPLICATE_ORDER: ${list.length} exchange orders for clientOrderId ${cid} (${list.map((o) => o.orderId).join(', ')})`);
    const intents = new Map<string, number>();
    for (const r of rows) intents.set(r.intent_id, (intents.get(r.intent_id) ?? 0) + 1);
    for (const [id, n] of intents) if (n > 1) bad.push(`DUPLICATE_INTENT_ROWS: ${n} order rows for intent ${id}`);

    // 1. orders both ways.
    const rowByCid = new Map(rows.map((r) => [r.client_order_id, r]));
    let neverSent = 0;
    for (const r of rows) {
      const o = byCid.get(r.client_order_id)?.[0];
      if (!o) {
        if (r.status === 'REJECTED') neverSent++;
        else bad.push(`ORDER_NOT_ON_EXCHANGE: ${r.client_order_id} ${r.symbol} is ${r.status} in SQLite, unknown to the exchange`);
        continue;
      }
      if (o.status !== r.status) bad.push(`ORDER_STATUS: ${r.client_order_id} ${r.symbol}: SQLite ${r.status}, exchange ${o.status}${r.error ? ` (row error: ${r.error})` : ''}`);
      if (!o.executedQty.eq(new Dec(r.filled_quantity))) bad.push(`ORDER_FILLED_QTY: ${r.client_order_id}: SQLite ${r.filled_quantity}, exchange ${o.executedQty.toFixed()}`);
      if (r.exchange_order_id !== String(o.orderId)) bad.push(`ORDER_EXCHANGE_ID: ${r.client_order_id}: SQLite ${r.exchange_order_id}, exchange ${o.orderId}`);
    }
    for (const o of exOrders) if (!rowByCid.has(o.clientOrderId)) bad.push(`ORDER_MISSING_IN_SQLITE: exchange order ${o.orderId} ${o.clientOrderId} ${o.symbol} ${o.side} ${o.status} ${o.executedQty.toFixed()}`);

    // 3. fills = the exchange's trades.
    const fillsById = new Map<string, FillRow[]>();
    for (const f of fills) fillsById.set(`${f.symbol}:${f.trade_id}`, [...(fillsById.get(`${f.symbol}:${f.trade_id}`) ?? []), f]);
    for (const t of exTrades) {
      const mine = fillsById.get(`${t.symbol}:${t.tradeId}`) ?? [];
      if (mine.length === 0) { bad.push(`FILL_MISSING: exchange trade ${t.symbol}#${t.tradeId} (${t.clientOrderId} ${t.side} ${t.qty.toFixed()} @ ${t.price.toFixed()})`); continue; }
      if (mine.length > 1) bad.push(`FILL_DUPLICATE: trade ${t.symbol}#${t.tradeId} recorded ${mine.length} times`);
      const f = mine[0]!;
      const diffs: string[] = [];
      if (f.client_order_id !== t.clientOrderId) diffs.push(`order ${f.client_order_id} vs ${t.clientOrderId}`);
      if (f.side !== t.side) diffs.push(`side ${f.side} vs ${t.side}`);
      if (!new Dec(f.price).eq(t.price)) diffs.push(`price ${f.price} vs ${t.price.toFixed()}`);
      if (!new Dec(f.quantity).eq(t.qty)) diffs.push(`qty ${f.quantity} vs ${t.qty.toFixed()}`);
      if (!new Dec(f.fee).eq(t.commission)) diffs.push(`fee ${f.fee} vs ${t.commission.toFixed()}`);
      if (!new Dec(f.realized_pnl ?? '0').eq(t.realizedPnl)) diffs.push(`realizedPnl ${f.realized_pnl} vs ${t.realizedPnl.toFixed()}`);
      if (diffs.length) bad.push(`FILL_DIFFERS: trade ${t.symbol}#${t.tradeId}: ${diffs.join(', ')}`);
    }
    const exTradeIds = new Set(exTrades.map((t) => `${t.symbol}:${t.tradeId}`));
    for (const f of fills) if (!exTradeIds.has(`${f.symbol}:${f.trade_id}`)) bad.push(`FILL_NOT_ON_EXCHANGE: ${f.symbol} trade ${f.trade_id} ${f.side} ${f.quantity} @ ${f.price} (an adjustment fill means reconciliation could not explain a position)`);

    // 4. positions.
    const exPos: Record<string, string> = {};
    for (const p of ex.engine.positions(acct)) if (symbols.includes(p.symbol) && !p.positionAmt.isZero()) exPos[p.symbol] = p.positionAmt.toFixed();
    const tablePos: Record<string, string> = {};
    for (const p of posRows) if (!new Dec(p.quantity).isZero()) tablePos[p.symbol] = new Dec(p.quantity).toFixed();
    const fromFills = new Map<string, Dec>();
    for (const f of fills) fromFills.set(f.symbol, (fromFills.get(f.symbol) ?? ZERO).plus(f.side === 'BUY' ? new Dec(f.quantity) : new Dec(f.quantity).neg()));
    for (const s of symbols) {
      const e = new Dec(exPos[s] ?? '0');
      const t = new Dec(tablePos[s] ?? '0');
      const r = fromFills.get(s) ?? ZERO;
      if (!e.eq(t)) bad.push(`POSITION_TABLE: ${s}: positions table ${t.toFixed()}, exchange ${e.toFixed()}`);
      if (!e.eq(r)) bad.push(`POSITION_FROM_FILLS: ${s}: rebuilt from fills ${r.toFixed()}, exchange ${e.toFixed()}`);
    }

    // 5. realized PnL net of fees (USDT fees on USD-M).
    const exNet = exTrades.reduce((s, t) => s.plus(t.realizedPnl).minus(t.commission), ZERO);
    const ourNet = fills.reduce((s, f) => s.plus(f.realized_pnl ?? '0').minus(f.fee), ZERO);
    if (!exNet.eq(ourNet)) bad.push(`REALIZED_PNL: ours ${ourNet.toFixed()} (sum realized_pnl - fee over the fills table), exchange ${exNet.toFixed()}`);
    // The portfolio's own accounting (positions.realized_pnl, average-cost, fees included): reported for comparison.
    const book = (db.prepare("SELECT realized_pnl FROM positions WHERE market = 'futures'").all() as Array<{ realized_pnl: string }>).reduce((s, r) => s.plus(r.realized_pnl), ZERO);
    if (!book.eq(exNet)) notes.push(`positions.realized_pnl sums to ${book.toFixed()} vs the exchange's ${exNet.toFixed()} (difference ${book.minus(exNet).toFixed()})`);

    // 6. candles.
    let candles = 0;
    let missing = 0;
    const missingBySymbol: Record<string, number> = {};
    if (opts.candles !== false) {
      for (const s of symbols) {
        const series = db.prepare("SELECT id FROM candle_series WHERE market = 'futures' AND symbol = ? AND timeframe = '1m'").get(s) as { id: number } | undefined;
        const closed = ex.candles.klines('futures', s, '1m', { startTime: 0, limit: 1e9 }).filter((k) => k.closeTime < ex.now() && ex.candles.current('futures', s)?.openTime !== k.openTime);
        const lastClosed = closed.at(-1)?.openTime;
        if (!series || lastClosed === undefined) { if (lastClosed !== undefined) { candleBad.push(`CANDLES: ${s}: no 1m series in the store`); } continue; }
        const lo = series.id * 2 ** 32;
        const keys = (db.prepare('SELECT key FROM candles WHERE key >= ? AND key < ? ORDER BY key').all(lo, lo + 2 ** 32) as Array<{ key: number }>).map((r) => (r.key - lo) * 60_000);
        candles += keys.length;
        const first = keys[0]!;
        const have = new Set(keys);
        let m = 0;
        for (const k of closed) if (k.openTime >= first && !have.has(k.openTime)) m++;
        missingBySymbol[s] = m;
        missing += m;
        if (m > 0) candleBad.push(`CANDLES_MISSING: ${s}: ${m} of the exchange's closed 1m candles between ${new Date(first).toISOString()} and ${new Date(lastClosed).toISOString()} are not in the store`);
      }
    }

    return {
      exchange: { orders: exOrders.length, trades: exTrades.length, positions: exPos, realizedNet: exNet.toFixed() },
      store: { orders: rows.length, neverSent, fills: fills.length, positions: tablePos, realizedNet: ourNet.toFixed(), candles, missingCandles: missing, missingBySymbol },
      discrepancies: bad,
      candleDiscrepancies: candleBad,
      notes,
    };
  } finally {
    db.close();
  }
}
