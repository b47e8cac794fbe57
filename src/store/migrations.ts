/**
 * Versioned migrations, applied in name order at start and by
 * `trader db migrate`. Never edit a migration that has shipped: add a new one.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { NAMESPACE_KEY, newNamespace } from '../execution/client-order-ids.ts';

export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('kv')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('instruments')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('base_asset', 'text', (c) => c.notNull())
        .addColumn('quote_asset', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('filters', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('instruments_pk', ['market', 'symbol'])
        .execute();

      await db.schema
        .createTable('candles')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('timeframe', 'text', (c) => c.notNull())
        .addColumn('open_time', 'integer', (c) => c.notNull())
        .addColumn('open', 'real', (c) => c.notNull())
        .addColumn('high', 'real', (c) => c.notNull())
        .addColumn('low', 'real', (c) => c.notNull())
        .addColumn('close', 'real', (c) => c.notNull())
        .addColumn('volume', 'real', (c) => c.notNull())
        .addColumn('quote_volume', 'real', (c) => c.notNull())
        .addColumn('trades', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('candles_pk', ['market', 'symbol', 'timeframe', 'open_time'])
        .execute();

      await db.schema
        .createTable('signals')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('ts', 'integer', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('strength', 'real')
        .addColumn('payload', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('signals_strategy_symbol_ts').on('signals').columns(['strategy', 'symbol', 'ts']).execute();

      await db.schema
        .createTable('orders')
        .addColumn('client_order_id', 'text', (c) => c.primaryKey())
        .addColumn('intent_id', 'text', (c) => c.notNull().unique())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('time_in_force', 'text')
        .addColumn('quantity', 'text', (c) => c.notNull())
        .addColumn('price', 'text')
        .addColumn('stop_price', 'text')
        .addColumn('reduce_only', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('exchange_order_id', 'text')
        .addColumn('filled_quantity', 'text', (c) => c.notNull().defaultTo('0'))
        .addColumn('average_price', 'text')
        .addColumn('error', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('orders_symbol_status').on('orders').columns(['symbol', 'status']).execute();

      await db.schema
        .createTable('fills')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('trade_id', 'text', (c) => c.notNull())
        .addColumn('client_order_id', 'text', (c) => c.references('orders.client_order_id'))
        .addColumn('exchange_order_id', 'text')
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('price', 'text', (c) => c.notNull())
        .addColumn('quantity', 'text', (c) => c.notNull())
        .addColumn('fee', 'text', (c) => c.notNull())
        .addColumn('fee_asset', 'text', (c) => c.notNull())
        .addColumn('realized_pnl', 'text')
        .addColumn('is_maker', 'integer', (c) => c.notNull())
        .addColumn('ts', 'integer', (c) => c.notNull())
        // Binance trade ids are unique per symbol and market: the dedup key
        // that keeps a fill seen by stream and by poll from counting twice.
        .addUniqueConstraint('fills_trade_unique', ['market', 'symbol', 'trade_id'])
        .execute();
      await db.schema.createIndex('fills_order').on('fills').column('client_order_id').execute();

      await db.schema
        .createTable('positions')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('position_side', 'text', (c) => c.notNull())
        .addColumn('quantity', 'text', (c) => c.notNull())
        .addColumn('entry_price', 'text', (c) => c.notNull())
        .addColumn('realized_pnl', 'text', (c) => c.notNull().defaultTo('0'))
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('positions_pk', ['market', 'symbol', 'position_side'])
        .execute();

      await db.schema
        .createTable('risk_events')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('ts', 'integer', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('scope_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('state_from', 'text')
        .addColumn('state_to', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('details', 'text')
        .execute();
      await db.schema.createIndex('risk_events_ts').on('risk_events').column('ts').execute();

      await db.schema
        .createTable('equity_snapshots')
        .addColumn('resolution', 'text', (c) => c.notNull())
        .addColumn('ts', 'integer', (c) => c.notNull())
        .addColumn('equity', 'text', (c) => c.notNull())
        .addColumn('balance', 'text', (c) => c.notNull())
        .addColumn('unrealized_pnl', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('equity_snapshots_pk', ['resolution', 'ts'])
        .execute();

      await db.schema
        .createTable('journal')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('ts', 'integer', (c) => c.notNull())
        .addColumn('event_ts', 'integer')
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('journal_channel_ts').on('journal').columns(['channel', 'ts']).execute();
      // The journal is the audit trail: the database itself refuses edits.
      await sql`CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END`.execute(db);
      await sql`CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END`.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['journal', 'equity_snapshots', 'risk_events', 'positions', 'fills', 'orders', 'signals', 'candles', 'instruments', 'kv']) {
        await db.schema.dropTable(t).execute();
      }
    },
  },
  /**
   * Candles keyed by one integer. Measured with `npm run bench -- candles`
   * (tests/bench/candles.bench.ts, all 1.9M rows of the real um-1m dumps,
   * both layouts in one run): a rowid table whose INTEGER PRIMARY KEY is
   * series_id * 2^32 + open_time/60000 bulk-inserted about 1.15x faster than
   * a WITHOUT ROWID table keyed by (series_id, open_time) and made a 14%
   * smaller file; range reads were the same speed. The 0001 table also
   * repeated market, symbol and timeframe as text in every row. open_time in
   * whole minutes covers every Binance interval of one minute or more (all
   * open on a minute boundary) for 8,000 years; 2^21 series ids keep every
   * key an exact JavaScript integer.
   *
   * Prices and volumes are REAL: candles are indicator input (statistics on
   * doubles, as the strategy API hands them out), never money; anything that
   * becomes an order is a Decimal rounded by the exchange filters.
   *
   * Rows stored under 0001 are carried over.
   */
  '0002_candle_series': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('candle_series')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('timeframe', 'text', (c) => c.notNull())
        .addUniqueConstraint('candle_series_unique', ['market', 'symbol', 'timeframe'])
        .execute();

      await db.schema
        .createTable('candles_v2')
        .addColumn('key', 'integer', (c) => c.primaryKey())
        .addColumn('open', 'real', (c) => c.notNull())
        .addColumn('high', 'real', (c) => c.notNull())
        .addColumn('low', 'real', (c) => c.notNull())
        .addColumn('close', 'real', (c) => c.notNull())
        .addColumn('volume', 'real', (c) => c.notNull())
        .addColumn('quote_volume', 'real', (c) => c.notNull())
        .addColumn('trades', 'integer', (c) => c.notNull())
        .addColumn('taker_buy_volume', 'real')
        .execute();

      await sql`INSERT INTO candle_series (market, symbol, timeframe) SELECT DISTINCT market, symbol, timeframe FROM candles ORDER BY market, symbol, timeframe`.execute(db);
      await sql`INSERT INTO candles_v2 (key, open, high, low, close, volume, quote_volume, trades)
        SELECT s.id * 4294967296 + c.open_time / 60000, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades
        FROM candles c JOIN candle_series s ON s.market = c.market AND s.symbol = c.symbol AND s.timeframe = c.timeframe
        WHERE c.open_time % 60000 = 0`.execute(db);
      await db.schema.dropTable('candles').execute();
      await db.schema.alterTable('candles_v2').renameTo('candles').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('candles_v1')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('timeframe', 'text', (c) => c.notNull())
        .addColumn('open_time', 'integer', (c) => c.notNull())
        .addColumn('open', 'real', (c) => c.notNull())
        .addColumn('high', 'real', (c) => c.notNull())
        .addColumn('low', 'real', (c) => c.notNull())
        .addColumn('close', 'real', (c) => c.notNull())
        .addColumn('volume', 'real', (c) => c.notNull())
        .addColumn('quote_volume', 'real', (c) => c.notNull())
        .addColumn('trades', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('candles_pk', ['market', 'symbol', 'timeframe', 'open_time'])
        .execute();
      await sql`INSERT INTO candles_v1
        SELECT s.market, s.symbol, s.timeframe, (c.key % 4294967296) * 60000, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades
        FROM candles c JOIN candle_series s ON s.id = c.key / 4294967296`.execute(db);
      await db.schema.dropTable('candles').execute();
      await db.schema.dropTable('candle_series').execute();
      await db.schema.alterTable('candles_v1').renameTo('candles').execute();
    },
  },
  /** Stored backtests, optimizations and re-optimization decisions (issue 9). */
  '0003_backtests': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('backtest_runs')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('symbols', 'text', (c) => c.notNull())
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('from_ts', 'integer', (c) => c.notNull())
        .addColumn('to_ts', 'integer', (c) => c.notNull())
        .addColumn('git_commit', 'text', (c) => c.notNull())
        .addColumn('request', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('metrics', 'text', (c) => c.notNull())
        .addColumn('trades', 'blob', (c) => c.notNull())
        .addColumn('equity', 'blob', (c) => c.notNull())
        .addColumn('elapsed_ms', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('optimize_runs')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('symbols', 'text', (c) => c.notNull())
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('from_ts', 'integer', (c) => c.notNull())
        .addColumn('to_ts', 'integer', (c) => c.notNull())
        .addColumn('objective', 'text', (c) => c.notNull())
        .addColumn('grid', 'text', (c) => c.notNull())
        .addColumn('walk_forward', 'text')
        .addColumn('git_commit', 'text', (c) => c.notNull())
        .addColumn('best_params', 'text')
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('applied', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('optimize_results')
        .addColumn('run_id', 'integer', (c) => c.notNull().references('optimize_runs.id').onDelete('cascade'))
        .addColumn('window', 'integer', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('in_sample', 'text', (c) => c.notNull())
        .addColumn('out_of_sample', 'text')
        .addColumn('is_best', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('optimize_results_run').on('optimize_results').columns(['run_id', 'window']).execute();
      await db.schema
        .createTable('reoptimize_decisions')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('ts', 'integer', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('optimize_run_id', 'integer')
        .addColumn('current_params', 'text', (c) => c.notNull())
        .addColumn('candidate_params', 'text')
        .addColumn('current_score', 'real')
        .addColumn('candidate_score', 'real')
        .addColumn('applied', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['reoptimize_decisions', 'optimize_results', 'optimize_runs', 'backtest_runs']) await db.schema.dropTable(t).execute();
    },
  },
  '0004_ledger': {
    /**
     * Orders name their owner (strategy) and who asked (source) separately:
     * protective and kill-switch orders act for an owner, so their fills close
     * that owner's position. Rows written before kept the asker in `strategy`;
     * the ledger allocates such fills to the positions they closed.
     */
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('orders').addColumn('source', 'text', (c) => c.notNull().defaultTo('strategy')).execute();
      await db.schema.alterTable('orders').addColumn('position_side', 'text', (c) => c.notNull().defaultTo('BOTH')).execute();
      await sql`UPDATE orders SET source = strategy WHERE strategy IN ('protective', 'kill-switch')`.execute(db);
      await sql`UPDATE orders SET source = 'manual' WHERE strategy = 'manual'`.execute(db);
      // A fill with no order of ours (an adoption of external holdings, a reconcile adjustment) names
      // the owner it was handed to and, in hedge mode, the leg.
      await db.schema.alterTable('fills').addColumn('owner', 'text').execute();
      await db.schema.alterTable('fills').addColumn('position_side', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('fills').dropColumn('position_side').execute();
      await db.schema.alterTable('fills').dropColumn('owner').execute();
      await db.schema.alterTable('orders').dropColumn('position_side').execute();
      await db.schema.alterTable('orders').dropColumn('source').execute();
    },
  },
  /**
   * The MODE=sim paper account, kept across restarts (issue 17): it used to
   * live in memory, so a restart began a fresh account whose trade ids
   * collided with the stored fills. One account per market.
   */
  '0005_sim_account': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('sim_accounts')
        .addColumn('market', 'text', (c) => c.primaryKey())
        .addColumn('quote_asset', 'text', (c) => c.notNull())
        .addColumn('seed_balance', 'text', (c) => c.notNull())
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('wallet', 'text', (c) => c.notNull())
        .addColumn('dual_side_position', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sim_balances')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('asset', 'text', (c) => c.notNull())
        .addColumn('free', 'text', (c) => c.notNull())
        .addColumn('locked', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('sim_balances_pk', ['market', 'asset'])
        .execute();
      await db.schema
        .createTable('sim_positions')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('position_side', 'text', (c) => c.notNull())
        .addColumn('amount', 'text', (c) => c.notNull())
        .addColumn('entry_price', 'text', (c) => c.notNull())
        .addColumn('isolated_wallet', 'text', (c) => c.notNull())
        .addColumn('update_time', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('sim_positions_pk', ['market', 'symbol', 'position_side'])
        .execute();
      await db.schema
        .createTable('sim_symbols')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('next_order_id', 'integer', (c) => c.notNull())
        .addColumn('next_trade_id', 'integer', (c) => c.notNull())
        .addColumn('leverage', 'integer')
        .addColumn('margin_type', 'text')
        .addPrimaryKeyConstraint('sim_symbols_pk', ['market', 'symbol'])
        .execute();
      await db.schema
        .createTable('sim_orders')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('order_id', 'integer', (c) => c.notNull())
        .addColumn('client_order_id', 'text', (c) => c.notNull())
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('time_in_force', 'text', (c) => c.notNull())
        .addColumn('position_side', 'text', (c) => c.notNull())
        .addColumn('working_type', 'text', (c) => c.notNull())
        .addColumn('reduce_only', 'integer', (c) => c.notNull())
        .addColumn('close_position', 'integer', (c) => c.notNull())
        .addColumn('price', 'text', (c) => c.notNull())
        .addColumn('stop_price', 'text', (c) => c.notNull())
        .addColumn('orig_qty', 'text', (c) => c.notNull())
        .addColumn('executed_qty', 'text', (c) => c.notNull())
        .addColumn('cum_quote', 'text', (c) => c.notNull())
        .addColumn('avg_price', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('triggered', 'integer', (c) => c.notNull())
        .addColumn('locked', 'text', (c) => c.notNull())
        .addColumn('working', 'integer', (c) => c.notNull())
        .addColumn('time', 'integer', (c) => c.notNull())
        .addColumn('update_time', 'integer', (c) => c.notNull())
        // Order fields beyond these columns (e.g. a trailing stop's state), as JSON with exact decimals.
        .addColumn('extra', 'text')
        .addPrimaryKeyConstraint('sim_orders_pk', ['market', 'symbol', 'order_id'])
        .execute();
      await db.schema
        .createTable('sim_trades')
        .addColumn('market', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('trade_id', 'integer', (c) => c.notNull())
        .addColumn('order_id', 'integer', (c) => c.notNull())
        .addColumn('client_order_id', 'text', (c) => c.notNull())
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('position_side', 'text', (c) => c.notNull())
        .addColumn('price', 'text', (c) => c.notNull())
        .addColumn('qty', 'text', (c) => c.notNull())
        .addColumn('quote_qty', 'text', (c) => c.notNull())
        .addColumn('commission', 'text', (c) => c.notNull())
        .addColumn('commission_asset', 'text', (c) => c.notNull())
        .addColumn('realized_pnl', 'text', (c) => c.notNull())
        .addColumn('is_maker', 'integer', (c) => c.notNull())
        .addColumn('time', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('sim_trades_pk', ['market', 'symbol', 'trade_id'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['sim_trades', 'sim_orders', 'sim_symbols', 'sim_positions', 'sim_balances', 'sim_accounts']) await db.schema.dropTable(t).execute();
    },
  },
  /**
   * Issue 18. Client order ids carry a random namespace made with the
   * database (an earlier database's ids were reused by a fresh one, and a
   * lookup adopted a stranger's order). And orders.sent_at: when the last
   * placement request left, which bounds how long an unanswered request may
   * still execute.
   */
  '0006_order_namespace': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('orders').addColumn('sent_at', 'integer').execute();
      // Until now every row was sent right after it was written.
      await sql`UPDATE orders SET sent_at = created_at`.execute(db);
      await sql`INSERT OR IGNORE INTO kv (key, value, updated_at) VALUES (${NAMESPACE_KEY}, ${JSON.stringify(newNamespace())}, ${Date.now()})`.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await sql`DELETE FROM kv WHERE key = ${NAMESPACE_KEY}`.execute(db);
      await db.schema.alterTable('orders').dropColumn('sent_at').execute();
    },
  },
};
