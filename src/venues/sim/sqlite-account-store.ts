/**
 * The paper account in the bot's SQLite database (tables sim_*, migration
 * 0005). A save is one transaction: the small account state is rewritten
 * whole, changed orders are upserted and new trades appended, so the stored
 * account is always one state the engine was in. A spot OCO list is kept on
 * its legs' rows (sim_orders.extra.orderList): no table of its own.
 */
import { Dec } from '../../core/decimal.ts';
import type { Market } from '../../model/market.ts';
import type { Store } from '../../store/store.ts';
import type { RecordedFill, SimAccountOrigin, SimAccountPersistence, SimAccountSave, StoredSimAccount, UsedIds } from './account-store.ts';
import type { MarginType, PositionSide, Side, SimOrderList, SimOrderRecord, SimOrderStatus, SimOrderType, SimTrade, TimeInForce, WorkingType } from './types.ts';

const ACCOUNT = 'sim';
/** The SimOrderRecord fields sim_orders has a column for; any other (optional) field goes to its `extra` JSON. */
const ORDER_COLUMNS = new Set(['account', 'market', 'symbol', 'orderId', 'clientOrderId', 'side', 'type', 'timeInForce', 'positionSide', 'workingType', 'reduceOnly', 'closePosition', 'price', 'stopPrice', 'origQty', 'executedQty', 'cumQuote', 'avgPrice', 'status', 'triggered', 'time', 'updateTime', 'locked', 'working']);
/** A text id that is a plain non-negative integer (exchange ids of the sim and of Binance; not `reconcile-...`). */
const NUMERIC = "<> '' AND {c} NOT GLOB '*[^0-9]*' AND length({c}) < 16";

export class SqliteSimAccountStore implements SimAccountPersistence {
  constructor(private readonly store: Store) {}

  load(market: Market): StoredSimAccount | undefined {
    const { store } = this;
    const db = store.db;
    const a = store.all(db.selectFrom('sim_accounts').selectAll().where('market', '=', market))[0];
    if (!a) return undefined;
    const balances = store.all(db.selectFrom('sim_balances').selectAll().where('market', '=', market).orderBy('asset'));
    const positions = store.all(db.selectFrom('sim_positions').selectAll().where('market', '=', market).orderBy('symbol').orderBy('position_side'));
    const symbols = store.all(db.selectFrom('sim_symbols').selectAll().where('market', '=', market).orderBy('symbol'));
    const orders = store.all(db.selectFrom('sim_orders').selectAll().where('market', '=', market).orderBy('symbol').orderBy('order_id'));
    // Order lists live on their legs' rows (extra.orderList); the newest copy of each wins.
    const lists = new Map<number, SimOrderList>();
    const trades = store.all(db.selectFrom('sim_trades').selectAll().where('market', '=', market).orderBy('symbol').orderBy('trade_id'));
    const records = orders.map((o): SimOrderRecord => {
      const { orderList, ...extra } = decodeExtra(o.extra);
      const list = orderList as SimOrderList | undefined;
      if (list && (lists.get(list.orderListId)?.transactionTime ?? -Infinity) <= list.transactionTime) lists.set(list.orderListId, { ...list, account: ACCOUNT });
      return {
        account: ACCOUNT,
        market,
        symbol: o.symbol,
        orderId: o.order_id,
        clientOrderId: o.client_order_id,
        side: o.side as Side,
        type: o.type as SimOrderType,
        timeInForce: o.time_in_force as TimeInForce,
        positionSide: o.position_side as PositionSide,
        workingType: o.working_type as WorkingType,
        reduceOnly: o.reduce_only === 1,
        closePosition: o.close_position === 1,
        price: new Dec(o.price),
        stopPrice: new Dec(o.stop_price),
        origQty: new Dec(o.orig_qty),
        executedQty: new Dec(o.executed_qty),
        cumQuote: new Dec(o.cum_quote),
        avgPrice: new Dec(o.avg_price),
        status: o.status as SimOrderStatus,
        triggered: o.triggered === 1,
        time: o.time,
        updateTime: o.update_time,
        locked: new Dec(o.locked),
        working: o.working === 1,
        ...extra,
      };
    });
    return {
      quoteAsset: a.quote_asset,
      seed: new Dec(a.seed_balance),
      origin: a.origin as SimAccountOrigin,
      createdAt: a.created_at,
      updatedAt: a.updated_at,
      account: {
        spot: balances.map((b) => ({ asset: b.asset, free: new Dec(b.free), locked: new Dec(b.locked) })),
        wallet: new Dec(a.wallet),
        dualSidePosition: a.dual_side_position === 1,
        positions: positions.map((p) => ({ symbol: p.symbol, positionSide: p.position_side as PositionSide, amt: new Dec(p.amount), entry: new Dec(p.entry_price), isolatedWallet: new Dec(p.isolated_wallet), updateTime: p.update_time })),
        settings: symbols.filter((s) => s.leverage !== null && s.margin_type !== null).map((s) => ({ symbol: s.symbol, leverage: s.leverage!, marginType: s.margin_type as MarginType })),
      },
      counters: symbols.map((s) => ({ market, symbol: s.symbol, nextOrderId: s.next_order_id, nextTradeId: s.next_trade_id })),
      orders: records,
      trades: trades.map(
        (t): SimTrade => ({
          account: ACCOUNT,
          market,
          symbol: t.symbol,
          tradeId: t.trade_id,
          orderId: t.order_id,
          clientOrderId: t.client_order_id,
          side: t.side as Side,
          positionSide: t.position_side as PositionSide,
          price: new Dec(t.price),
          qty: new Dec(t.qty),
          quoteQty: new Dec(t.quote_qty),
          commission: new Dec(t.commission),
          commissionAsset: t.commission_asset,
          realizedPnl: new Dec(t.realized_pnl),
          isMaker: t.is_maker === 1,
          time: t.time,
        }),
      ),
      orderLists: [...lists.values()],
    };
  }

  save(market: Market, s: SimAccountSave): void {
    const { store } = this;
    const db = store.db;
    const a = s.account;
    const lists = new Map(s.orderLists.map((l) => [l.orderListId, l]));
    store.transaction(() => {
      const wallet = a.wallet.toFixed();
      const dual = a.dualSidePosition ? 1 : 0;
      store.run(
        db
          .insertInto('sim_accounts')
          .values({ market, quote_asset: s.quoteAsset, seed_balance: s.seed.toFixed(), origin: s.origin, wallet, dual_side_position: dual, created_at: s.now, updated_at: s.now })
          .onConflict((oc) => oc.column('market').doUpdateSet({ wallet, dual_side_position: dual, updated_at: s.now })),
      );
      store.run(db.deleteFrom('sim_balances').where('market', '=', market));
      for (const b of a.spot) store.run(db.insertInto('sim_balances').values({ market, asset: b.asset, free: b.free.toFixed(), locked: b.locked.toFixed() }));
      store.run(db.deleteFrom('sim_positions').where('market', '=', market));
      for (const p of a.positions) {
        store.run(db.insertInto('sim_positions').values({ market, symbol: p.symbol, position_side: p.positionSide, amount: p.amt.toFixed(), entry_price: p.entry.toFixed(), isolated_wallet: p.isolatedWallet.toFixed(), update_time: p.updateTime }));
      }
      store.run(db.deleteFrom('sim_symbols').where('market', '=', market));
      const settings = new Map(a.settings.map((x) => [x.symbol, x]));
      const counters = new Map(s.counters.filter((c) => c.market === market).map((c) => [c.symbol, c]));
      for (const symbol of [...new Set([...settings.keys(), ...counters.keys()])].sort()) {
        const c = counters.get(symbol);
        const x = settings.get(symbol);
        store.run(db.insertInto('sim_symbols').values({ market, symbol, next_order_id: c?.nextOrderId ?? 1, next_trade_id: c?.nextTradeId ?? 1, leverage: x?.leverage ?? null, margin_type: x?.marginType ?? null }));
      }
      for (const o of s.orders) {
        if (o.market !== market) continue;
        const row = {
          market,
          symbol: o.symbol,
          order_id: o.orderId,
          client_order_id: o.clientOrderId,
          side: o.side,
          type: o.type,
          time_in_force: o.timeInForce,
          position_side: o.positionSide,
          working_type: o.workingType,
          reduce_only: o.reduceOnly ? 1 : 0,
          close_position: o.closePosition ? 1 : 0,
          price: o.price.toFixed(),
          stop_price: o.stopPrice.toFixed(),
          orig_qty: o.origQty.toFixed(),
          executed_qty: o.executedQty.toFixed(),
          cum_quote: o.cumQuote.toFixed(),
          avg_price: o.avgPrice.toFixed(),
          status: o.status,
          triggered: o.triggered ? 1 : 0,
          locked: o.locked.toFixed(),
          working: o.working ? 1 : 0,
          time: o.time,
          update_time: o.updateTime,
          extra: encodeExtra(o, o.orderListId !== undefined ? lists.get(o.orderListId) : undefined),
        };
        const { market: _m, symbol: _s, order_id: _o, ...changed } = row;
        store.run(db.insertInto('sim_orders').values(row).onConflict((oc) => oc.columns(['market', 'symbol', 'order_id']).doUpdateSet(changed)));
      }
      for (const t of s.trades) {
        if (t.market !== market) continue;
        store.run(
          db
            .insertInto('sim_trades')
            .values({
              market,
              symbol: t.symbol,
              trade_id: t.tradeId,
              order_id: t.orderId,
              client_order_id: t.clientOrderId,
              side: t.side,
              position_side: t.positionSide,
              price: t.price.toFixed(),
              qty: t.qty.toFixed(),
              quote_qty: t.quoteQty.toFixed(),
              commission: t.commission.toFixed(),
              commission_asset: t.commissionAsset,
              realized_pnl: t.realizedPnl.toFixed(),
              is_maker: t.isMaker ? 1 : 0,
              time: t.time,
            })
            .onConflict((oc) => oc.doNothing()),
        );
      }
    });
  }

  recordedFills(market: Market): RecordedFill[] {
    const { store } = this;
    const rows = store.all(store.db.selectFrom('fills').select(['symbol', 'trade_id', 'side', 'price', 'quantity', 'fee', 'fee_asset', 'ts']).where('market', '=', market).orderBy('ts').orderBy('id'));
    return rows.map((r) => ({ symbol: r.symbol, tradeId: r.trade_id, side: r.side as Side, price: new Dec(r.price), quantity: new Dec(r.quantity), fee: new Dec(r.fee), feeAsset: r.fee_asset, time: r.ts }));
  }

  usedIds(market: Market): UsedIds[] {
    const num = (c: string): string => `${c} ${NUMERIC.replaceAll('{c}', c)}`;
    const q = (sqlText: string): Array<{ symbol: string; n: number }> => this.store.sqlite.prepare(sqlText).all({ m: market }) as Array<{ symbol: string; n: number }>;
    const trades = q(`SELECT symbol, MAX(CAST(trade_id AS INTEGER)) AS n FROM fills WHERE market = @m AND ${num('trade_id')} GROUP BY symbol`);
    const orders = q(
      `SELECT symbol, MAX(n) AS n FROM (
         SELECT symbol, CAST(exchange_order_id AS INTEGER) AS n FROM orders WHERE market = @m AND ${num('exchange_order_id')}
         UNION ALL SELECT symbol, CAST(exchange_order_id AS INTEGER) AS n FROM fills WHERE market = @m AND ${num('exchange_order_id')}
       ) GROUP BY symbol`,
    );
    const out = new Map<string, { symbol: string; orderId?: number; tradeId?: number }>();
    for (const r of trades) out.set(r.symbol, { symbol: r.symbol, tradeId: r.n });
    for (const r of orders) out.set(r.symbol, { ...(out.get(r.symbol) ?? { symbol: r.symbol }), orderId: r.n });
    return [...out.values()].sort((x, y) => (x.symbol < y.symbol ? -1 : 1));
  }
}

/** Order fields without a column (added by later features), as JSON; decimals stay exact strings. */
function encodeExtra(o: SimOrderRecord, list?: SimOrderList): string | null {
  const out: Record<string, unknown> = {};
  // A spot OCO leg carries its list: which legs belong together and whether it still executes.
  if (list) out.orderList = { symbol: list.symbol, orderListId: list.orderListId, listClientOrderId: list.listClientOrderId, contingencyType: list.contingencyType, listStatusType: list.listStatusType, listOrderStatus: list.listOrderStatus, orders: list.orders.map((x) => ({ orderId: x.orderId, clientOrderId: x.clientOrderId })), transactionTime: list.transactionTime };
  for (const [k, v] of Object.entries(o)) {
    if (ORDER_COLUMNS.has(k) || v === undefined) continue;
    out[k] = Dec.isDecimal(v) ? { $dec: (v as Dec).toFixed() } : v;
  }
  return Object.keys(out).length > 0 ? JSON.stringify(out) : null;
}

function decodeExtra(text: string | null): Record<string, unknown> {
  if (!text) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(JSON.parse(text) as Record<string, unknown>)) {
    out[k] = v !== null && typeof v === 'object' && typeof (v as { $dec?: unknown }).$dec === 'string' ? new Dec((v as { $dec: string }).$dec) : v;
  }
  return out;
}
