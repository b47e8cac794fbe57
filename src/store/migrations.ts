/**
 * Versioned migrations, applied in name order at start and by
 * `trader db migrate`. Never edit a migration that has shipped: add a new one.
 */
import { sql, type Kysely, type Migration } from 'kysely';

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
};
