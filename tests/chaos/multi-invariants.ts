/**
 * The invariants of the multi-strategy chaos campaign (issue 17), checked
 * against the local exchange's OWN records (its matching engine, read in
 * process) and the bot's SQLite, never against what the bot says about itself:
 *
 *   1. position: the exchange's position per symbol (USD-M: positionAmt, per
 *      leg in hedge mode; spot: the base balance, free + locked, minus what
 *      the account held before the bot) equals the ledger's sum over the
 *      owners. The ledger is rebuilt from the bot's fills with the bot's own
 *      Ledger class, each fill owned by its order row's `strategy` (as
 *      src/portfolio/history.ts replayFills does); the bot's positions table
 *      must say the same;
 *   2. ownership and PnL: every fill belongs to a strategy configured on its
 *      symbol; a long-only strategy's line never goes short and a short-only
 *      one's never long (an exit closed someone else's quantity otherwise),
 *      and no line holds more than one entry's worth; per symbol, the sum
 *      over the strategies of realized PnL (fees included) plus their
 *      unrealized PnL at the exchange's last price equals the account's PnL
 *      from the exchange's own trades at that price (with everything flat:
 *      the strategies' realized PnL sums to the account's realized PnL);
 *   3. nothing twice: every exchange trade is in the fills table once (same
 *      order, side, price, quantity, fee) and every fill is an exchange
 *      trade; one exchange order per client order id; one order row per
 *      intent; every exchange order has a row (at the end also: every row's
 *      status and filled quantity are the exchange's, and a row the exchange
 *      never saw was never sent: REJECTED, or an exit dropped as NOTHING_TO_EXIT);
 *   4. reconciliation: no symbol reported 'unexplained', none HALTED (risk
 *      events), no adjustment fill (`reconcile-...`) was ever booked;
 *   5. protection belongs to the position: no protective order is working on
 *      the exchange for an owner that holds nothing on that symbol (leg).
 *
 * PnL amounts are compared to 1e-12 USDT (average entry prices, the ledger's
 * and the exchange's, are 40-digit Decimal quotients, so sums of realized PnL
 * differ in the 40th digit); quantities, prices and fees are compared exactly.
 */
import Database from 'better-sqlite3';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import { DEFAULT_ACCOUNT, type LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Fill, PositionSide } from '../../src/model/events.ts';
import type { Market } from '../../src/model/market.ts';
import type { Heartbeat } from '../../src/health/heartbeat-schema.ts';
import type { Workspace } from '../support/workspace.ts';

export type Direction = 'long' | 'short' | 'both';

export interface MultiCheckSpec {
  market: Market;
  hedge: boolean;
  /** Strategies configured per symbol, and each one's direction and entry size (quote). */
  symbols: Record<string, Record<string, { direction: Direction; quote: number }>>;
  /** Spot: base balance per symbol's base asset before the bot (free + locked). */
  initialBase: Record<string, Dec>;
  /** 'restart': after a start's reconciliation (rows of the last run may still be open); 'final': after the clean stop. */
  at: 'restart' | 'final';
  /** Every owner must be flat (after the final flatten). */
  expectFlat: boolean;
  /** The heartbeat written after the start's reconciliation (restart checks). */
  heartbeat?: Heartbeat;
}

export interface OwnerFigures {
  quantity: string;
  realizedPnl: string;
  fees: string;
  fills: number;
  trips: number;
}

export interface SymbolFigures {
  exchange: string;
  ledgerSum: string;
  positionsTable: string;
  owners: Record<string, OwnerFigures>;
  /** Sum over owners of realized + unrealized at `price`, and the account's from the exchange's trades. */
  pnl: { price: string; owners: string; account: string; residual: string; ownersRealized: string; accountRealized?: string };
}

export interface MultiReport {
  at: 'restart' | 'final';
  symbols: Record<string, SymbolFigures>;
  exchangeOrders: number;
  exchangeTrades: number;
  orderRows: number;
  fills: number;
  /** Broken invariants, one line each; the campaign passes when empty. */
  discrepancies: string[];
  notes: string[];
}

interface FillRow {
  id: number;
  trade_id: string;
  symbol: string;
  side: string;
  price: string;
  quantity: string;
  fee: string;
  fee_asset: string;
  ts: number;
  owner: string | null;
  client_order_id: string | null;
  strategy: string | null;
  position_side: string | null;
  source: string | null;
}
interface OrderRow { client_order_id: string; intent_id: string; strategy: string; symbol: string; status: string; filled_quantity: string; exchange_order_id: string | null; error: string | null; source: string }

const PNL_TOLERANCE = new Dec('1e-12');

export function checkMulti(ex: LocalExchange, ws: Workspace, spec: MultiCheckSpec): MultiReport {
  const { market } = spec;
  const acct = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
  const symbols = Object.keys(spec.symbols);
  const bad: string[] = [];
  const notes: string[] = [];
  const db = new Database(ws.dbFile, { readonly: true, fileMustExist: true });
  try {
    const fills = db
      .prepare(
        `SELECT f.id, f.trade_id, f.symbol, f.side, f.price, f.quantity, f.fee, f.fee_asset, f.ts, f.owner, f.client_order_id, o.strategy, COALESCE(o.position_side, f.position_side) AS position_side, o.source
           FROM fills f LEFT JOIN orders o ON o.client_order_id = f.client_order_id
          WHERE f.market = ? ORDER BY f.ts, f.id`,
      )
      .all(market) as FillRow[];
    const rows = db.prepare('SELECT client_order_id, intent_id, strategy, symbol, status, filled_quantity, exchange_order_id, error, source FROM orders WHERE market = ?').all(market) as OrderRow[];
    const posRows = db.prepare('SELECT symbol, position_side, quantity FROM positions WHERE market = ?').all(market) as Array<{ symbol: string; position_side: string; quantity: string }>;
    const exOrders = symbols.flatMap((s) => ex.engine.allOrders(acct, market, s, { startTime: 0, limit: 1e9 }));
    const exTrades = symbols.flatMap((s) => ex.engine.trades(acct, market, s, { startTime: 0, limit: 1e9 }));

    // ---------------------------------------------------------------- 3. nothing twice
    const exByCid = new Map<string, typeof exOrders>();
    for (const o of exOrders) exByCid.set(o.clientOrderId, [...(exByCid.get(o.clientOrderId) ?? []), o]);
    for (const [cid, list] of exByCid) if (list.length > 1) bad.push(`DUPLICATE_ORDER: ${list.length} exchange orders for clientOrderId ${cid} (${list.map((o) => `${o.orderId} ${o.side} ${o.type} ${o.status}`).join(', ')})`);
    const intents = new Map<string, number>();
    for (const r of rows) intents.set(r.intent_id, (intents.get(r.intent_id) ?? 0) + 1);
    for (const [id, n] of intents) if (n > 1) bad.push(`DUPLICATE_INTENT_ROWS: ${n} order rows for intent ${id}`);
    const rowByCid = new Map(rows.map((r) => [r.client_order_id, r]));
    for (const o of exOrders) if (!rowByCid.has(o.clientOrderId)) bad.push(`ORDER_MISSING_IN_SQLITE: exchange order ${o.orderId} ${o.clientOrderId} ${o.symbol} ${o.side} ${o.type} ${o.status} ${o.executedQty.toFixed()}`);
    if (spec.at === 'final') {
      for (const r of rows) {
        const o = exByCid.get(r.client_order_id)?.[0];
        if (!o) {
          // Written and never sent: REJECTED (no answer in time, refused before sending), or an exit the bot
          // dropped itself because the owner's stop had filled while it was being released (NOTHING_TO_EXIT).
          const neverSent = r.status === 'REJECTED' || (r.status === 'CANCELED' && (r.error ?? '').startsWith('NOTHING_TO_EXIT'));
          if (!neverSent) bad.push(`ORDER_NOT_ON_EXCHANGE: ${r.client_order_id} ${r.symbol} (${r.strategy}/${r.source}) is ${r.status} in SQLite, unknown to the exchange`);
          continue;
        }
        if (o.status !== r.status) bad.push(`ORDER_STATUS: ${r.client_order_id} ${r.symbol} (${r.strategy}/${r.source}): SQLite ${r.status}, exchange ${o.status}${r.error ? ` (row error: ${r.error})` : ''}`);
        if (!o.executedQty.eq(new Dec(r.filled_quantity))) bad.push(`ORDER_FILLED_QTY: ${r.client_order_id}: SQLite ${r.filled_quantity}, exchange ${o.executedQty.toFixed()}`);
        if (r.exchange_order_id !== String(o.orderId)) bad.push(`ORDER_EXCHANGE_ID: ${r.client_order_id}: SQLite ${r.exchange_order_id}, exchange ${o.orderId}`);
      }
    }
    const fillsById = new Map<string, FillRow[]>();
    for (const f of fills) fillsById.set(`${f.symbol}:${f.trade_id}`, [...(fillsById.get(`${f.symbol}:${f.trade_id}`) ?? []), f]);
    for (const [id, list] of fillsById) if (list.length > 1) bad.push(`FILL_DUPLICATE: trade ${id} recorded ${list.length} times`);
    for (const t of exTrades) {
      const f = fillsById.get(`${t.symbol}:${t.tradeId}`)?.[0];
      if (!f) {
        bad.push(`FILL_MISSING: exchange trade ${t.symbol}#${t.tradeId} (${t.clientOrderId} ${t.side} ${t.qty.toFixed()} @ ${t.price.toFixed()})`);
        continue;
      }
      const diffs: string[] = [];
      if (f.client_order_id !== t.clientOrderId) diffs.push(`order ${f.client_order_id} vs ${t.clientOrderId}`);
      if (f.side !== t.side) diffs.push(`side ${f.side} vs ${t.side}`);
      if (!new Dec(f.price).eq(t.price)) diffs.push(`price ${f.price} vs ${t.price.toFixed()}`);
      if (!new Dec(f.quantity).eq(t.qty)) diffs.push(`qty ${f.quantity} vs ${t.qty.toFixed()}`);
      if (!new Dec(f.fee).eq(t.commission) || f.fee_asset !== t.commissionAsset) diffs.push(`fee ${f.fee} ${f.fee_asset} vs ${t.commission.toFixed()} ${t.commissionAsset}`);
      if (diffs.length) bad.push(`FILL_DIFFERS: trade ${t.symbol}#${t.tradeId}: ${diffs.join(', ')}`);
    }
    const exTradeIds = new Set(exTrades.map((t) => `${t.symbol}:${t.tradeId}`));
    for (const f of fills) if (!exTradeIds.has(`${f.symbol}:${f.trade_id}`)) bad.push(`FILL_NOT_ON_EXCHANGE: ${f.symbol} trade ${f.trade_id} ${f.side} ${f.quantity} @ ${f.price} owner ${f.strategy ?? f.owner ?? '-'}`);

    // ---------------------------------------------------------------- 4. reconciliation
    for (const f of fills) if (f.trade_id.startsWith('reconcile-')) bad.push(`RECONCILE_ADJUSTMENT: ${f.symbol} ${f.trade_id} ${f.side} ${f.quantity} (owner ${f.owner}): the books were adjusted to the exchange`);
    const halts = db.prepare("SELECT ts, scope, scope_key, reason, source FROM risk_events WHERE state_to = 'HALTED'").all() as Array<{ ts: number; scope: string; scope_key: string; reason: string; source: string }>;
    for (const h of halts) bad.push(`HALTED: ${h.scope} ${h.scope_key} at ${new Date(h.ts).toISOString()} by ${h.source}: ${h.reason}`);
    const hb = spec.heartbeat?.reconcile as unknown as { symbols?: Array<{ symbol: string; position: { status: string; ours: string; venue: string; external?: string } }>; halted?: string[] } | undefined;
    for (const s of hb?.symbols ?? []) if (s.position.status === 'unexplained') bad.push(`RECONCILE_UNEXPLAINED: ${s.symbol}: ours ${s.position.ours}, venue ${s.position.venue}, external ${s.position.external ?? '-'}`);
    for (const s of hb?.halted ?? []) bad.push(`RECONCILE_HALTED: ${s} (start reconciliation)`);

    // ---------------------------------------------------------------- 1 and 2. positions and PnL per owner
    const price = (s: string): Dec => ex.engine.price(market, s).last ?? ZERO;
    const ledger = new Ledger({ market, quoteAsset: 'USDT', hedge: spec.hedge, instrument: (s) => ex.engine.instrument(market, s), price: (s) => ex.engine.price(market, s).last });
    const perOwner = new Map<string, { fills: number; trips: number }>();
    // One line per owner and kind of breach (the first one: what follows from it repeats it).
    const reported = new Set<string>();
    const once = (key: string, line: string): void => {
      if (reported.has(key)) return;
      reported.add(key);
      bad.push(line);
    };
    const ownerKey = (strategy: string, symbol: string, side: PositionSide) => `${strategy}|${symbol}|${side}`;
    for (const f of fills) {
      const strategy = f.strategy ?? f.owner ?? 'external';
      const configured = spec.symbols[f.symbol];
      if (!configured?.[strategy] && !f.trade_id.startsWith('reconcile-')) bad.push(`FILL_NOT_OWNED: ${f.symbol} trade ${f.trade_id} ${f.side} ${f.quantity} belongs to '${strategy}', not to a strategy configured on ${f.symbol} (${Object.keys(configured ?? {}).join(', ')})`);
      const positionSide = f.position_side && f.position_side !== 'BOTH' ? (f.position_side as PositionSide) : undefined;
      const fill: Fill = { kind: 'fill', ts: f.ts, tradeId: f.trade_id, strategy, ...(positionSide ? { positionSide } : {}), market, symbol: f.symbol, side: f.side as 'BUY' | 'SELL', price: new Dec(f.price), quantity: new Dec(f.quantity), fee: new Dec(f.fee), feeAsset: f.fee_asset, isMaker: false };
      for (const c of ledger.applyFill(fill)) {
        const key = ownerKey(c.key.strategy, c.key.symbol, c.key.side);
        const o = perOwner.get(key) ?? { fills: 0, trips: 0 };
        o.fills++;
        if (c.closedTrip) o.trips++;
        perOwner.set(key, o);
        const rule = configured?.[c.key.strategy];
        if (!rule) continue;
        const q = c.lot.quantity;
        // Spot dust below the filters is no position; a futures line is signed exactly.
        const wrongSide = !c.lot.flat && ((rule.direction === 'long' && q.isNeg()) || (rule.direction === 'short' && q.isPos()));
        if (wrongSide) once(`side|${key}`, `OWNER_WRONG_SIDE: ${c.key.strategy} (${rule.direction} only) holds ${q.toFixed()} ${c.key.symbol} after trade ${f.trade_id} (${f.side} ${f.quantity}, order ${f.client_order_id} of ${f.strategy ?? f.owner}/${f.source ?? '-'}): an exit closed someone else's quantity`);
        // One entry is `quote` USDT; prices move a little between entries: 1.5 entries means two.
        if (q.abs().times(fill.price).gt(rule.quote * 1.5)) once(`size|${key}`, `OWNER_DOUBLE_ENTRY: ${c.key.strategy} holds ${q.toFixed()} ${c.key.symbol} (${q.abs().times(fill.price).toFixed(2)} USDT, one entry is ${rule.quote}) after trade ${f.trade_id}`);
      }
    }

    const out: Record<string, SymbolFigures> = {};
    const exPositions = market === 'futures' ? ex.engine.positions(acct) : [];
    const balances = market === 'spot' ? ex.engine.spotBalances(acct) : [];
    for (const symbol of symbols) {
      const inst = ex.engine.instrument(market, symbol)!;
      const P = price(symbol);
      const sides: PositionSide[] = market === 'futures' && spec.hedge ? ['LONG', 'SHORT'] : ['BOTH'];
      let exchangeTotal = ZERO;
      for (const side of sides) {
        let exQty: Dec;
        if (market === 'futures') exQty = exPositions.filter((p) => p.symbol === symbol && p.positionSide === side).reduce((s, p) => s.plus(p.positionAmt), ZERO);
        else {
          const b = balances.find((x) => x.asset === inst.baseAsset);
          exQty = (b ? b.free.plus(b.locked) : ZERO).minus(spec.initialBase[symbol] ?? ZERO);
        }
        exchangeTotal = exchangeTotal.plus(exQty);
        const ours = ledger.lots(symbol).filter((l) => l.side === side).reduce((s, l) => s.plus(l.quantity), ZERO);
        if (!exQty.eq(ours)) bad.push(`POSITION: ${symbol}${side !== 'BOTH' ? ` ${side}` : ''}: exchange ${exQty.toFixed()}, ledger's sum over the owners ${ours.toFixed()} (${ledger.lots(symbol).filter((l) => l.side === side).map((l) => `${l.strategy} ${l.quantity.toFixed()}`).join(', ') || 'no lines'})`);
        const table = posRows.filter((r) => r.symbol === symbol && r.position_side === side).reduce((s, r) => s.plus(r.quantity), ZERO);
        if (!table.eq(ours)) bad.push(`POSITION_TABLE: ${symbol}${side !== 'BOTH' ? ` ${side}` : ''}: the bot's positions table ${table.toFixed()}, the ledger rebuilt from its fills ${ours.toFixed()}`);
      }

      // PnL at the exchange's last price: the owners' books against the account's, from the exchange's own trades.
      const lines = ledger.lots(symbol);
      const allLines = [...new Set([...Object.keys(spec.symbols[symbol] ?? {}), ...lines.map((l) => l.strategy)])];
      const owners: Record<string, OwnerFigures> = {};
      let ownersPnl = ZERO;
      let ownersRealized = ZERO;
      for (const strategy of allLines) {
        for (const side of sides) {
          const l = ledger.lot(strategy, symbol, side);
          const o = perOwner.get(ownerKey(strategy, symbol, side));
          if (!o && l.quantity.isZero()) continue;
          owners[sides.length > 1 ? `${strategy}/${side}` : strategy] = { quantity: l.quantity.toFixed(), realizedPnl: l.realizedPnl.toFixed(), fees: l.fees.toFixed(), fills: o?.fills ?? 0, trips: o?.trips ?? 0 };
          ownersPnl = ownersPnl.plus(l.realizedPnl).plus(l.quantity.times(P.minus(l.entryPrice)));
          ownersRealized = ownersRealized.plus(l.realizedPnl);
          if (spec.expectFlat && strategy !== 'external' && !l.flat) bad.push(`OWNER_NOT_FLAT: ${strategy} still holds ${l.quantity.toFixed()} ${symbol}${side !== 'BOTH' ? ` ${side}` : ''} after every strategy was told to exit`);
        }
      }
      // Hedge mode: a strategy that holds both legs of a symbol sees one of them (ctx.position() is one view
      // per strategy and symbol); these strategies never want both. Reported, not counted (see the report).
      if (spec.hedge) {
        for (const strategy of allLines) {
          const long = ledger.lot(strategy, symbol, 'LONG');
          const short = ledger.lot(strategy, symbol, 'SHORT');
          if (!long.flat && !short.flat) notes.push(`OWNER_BOTH_LEGS: ${strategy} holds ${symbol} LONG ${long.quantity.toFixed()} and SHORT ${short.quantity.toFixed()}`);
        }
      }
      // Protection belongs to the position: a protective order still working on the exchange for an owner
      // that holds nothing (its leg flat) is left behind, and can open a position nobody asked for.
      for (const o of ex.engine.openOrders(acct, market, symbol)) {
        const row = rowByCid.get(o.clientOrderId);
        if (!row || row.source !== 'protective') continue;
        const side: PositionSide = market === 'futures' && spec.hedge ? (o.positionSide as PositionSide) : 'BOTH';
        const lot = ledger.lot(row.strategy, symbol, side);
        if (lot.flat) bad.push(`ORPHAN_PROTECTIVE: ${row.strategy}'s ${o.side} ${o.type} ${o.origQty.toFixed()} ${symbol}${side !== 'BOTH' ? ` ${side}` : ''} @ ${o.stopPrice.toFixed()} (${o.clientOrderId}) is working on the exchange, reduceOnly ${o.reduceOnly}, while ${row.strategy} holds ${lot.quantity.toFixed()}`);
      }
      const trades = exTrades.filter((t) => t.symbol === symbol);
      let accountPnl: Dec;
      let accountRealized: Dec | undefined;
      if (market === 'futures') {
        // The exchange's realized PnL and fees, plus its positions' unrealized at P (its own entry prices).
        accountRealized = trades.reduce((s, t) => s.plus(t.realizedPnl).minus(t.commission), ZERO);
        const unrealized = exPositions.filter((p) => p.symbol === symbol).reduce((s, p) => s.plus(p.positionAmt.times(P.minus(p.entryPrice))), ZERO);
        accountPnl = accountRealized.plus(unrealized);
      } else {
        // Spot: what the trades did to the quote balance, plus the base they left, valued at P.
        let cash = ZERO;
        let base = ZERO;
        for (const t of trades) {
          const notional = t.qty.times(t.price);
          const feeQuote = t.commissionAsset === inst.quoteAsset ? t.commission : ZERO;
          const feeBase = t.commissionAsset === inst.baseAsset ? t.commission : ZERO;
          if (t.commissionAsset !== inst.quoteAsset && t.commissionAsset !== inst.baseAsset && !t.commission.isZero()) notes.push(`${symbol}: trade ${t.tradeId} paid its fee in ${t.commissionAsset} (not valued)`);
          if (t.side === 'BUY') {
            cash = cash.minus(notional).minus(feeQuote);
            base = base.plus(t.qty).minus(feeBase);
          } else {
            cash = cash.plus(notional).minus(feeQuote);
            base = base.minus(t.qty).minus(feeBase);
          }
        }
        accountPnl = cash.plus(base.times(P));
        if (!base.eq(exchangeTotal)) notes.push(`${symbol}: the exchange's trades move the base by ${base.toFixed()}, its balance moved by ${exchangeTotal.toFixed()}`);
      }
      const residual = ownersPnl.minus(accountPnl);
      if (residual.abs().gt(PNL_TOLERANCE)) bad.push(`PNL_SPLIT: ${symbol}: the owners' PnL at ${P.toFixed()} sums to ${ownersPnl.toFixed()}, the account's (exchange trades) is ${accountPnl.toFixed()} (difference ${residual.toFixed()})`);
      // With every line and the exchange flat, realized alone must add up (the literal form of the claim).
      const allFlat = lines.every((l) => l.quantity.isZero()) && exchangeTotal.isZero();
      if (market === 'futures' && allFlat && accountRealized && ownersRealized.minus(accountRealized).abs().gt(PNL_TOLERANCE)) bad.push(`REALIZED_SPLIT: ${symbol}: everything flat, the owners' realized PnL sums to ${ownersRealized.toFixed()}, the exchange's realized minus fees is ${accountRealized.toFixed()}`);
      if (market === 'futures') {
        // The bot's own record of the exchange's realized PnL (fills.realized_pnl) against the exchange's.
        const ours = (db.prepare('SELECT realized_pnl, fee FROM fills WHERE market = ? AND symbol = ?').all(market, symbol) as Array<{ realized_pnl: string | null; fee: string }>).reduce((s, r) => s.plus(r.realized_pnl ?? '0').minus(r.fee), ZERO);
        if (ours.minus(accountRealized!).abs().gt(PNL_TOLERANCE)) bad.push(`REALIZED_RECORDED: ${symbol}: sum(realized_pnl - fee) over the fills table ${ours.toFixed()}, the exchange's ${accountRealized!.toFixed()}`);
      }
      out[symbol] = {
        exchange: exchangeTotal.toFixed(),
        ledgerSum: lines.reduce((s, l) => s.plus(l.quantity), ZERO).toFixed(),
        positionsTable: posRows.filter((r) => r.symbol === symbol).reduce((s, r) => s.plus(r.quantity), ZERO).toFixed(),
        owners,
        pnl: { price: P.toFixed(), owners: ownersPnl.toFixed(8), account: accountPnl.toFixed(8), residual: residual.toFixed(), ownersRealized: ownersRealized.toFixed(8), ...(allFlat && accountRealized ? { accountRealized: accountRealized.toFixed(8) } : {}) },
      };
    }
    return { at: spec.at, symbols: out, exchangeOrders: exOrders.length, exchangeTrades: exTrades.length, orderRows: rows.length, fills: fills.length, discrepancies: bad, notes };
  } finally {
    db.close();
  }
}
