/**
 * Candles in SQLite: idempotent bulk upserts in one transaction, and the
 * recent-history read the strategy host warms up from. (The market-data
 * layer refines the schema and batching; queries stay in kysely.)
 */
import type { Market } from '../model/market.ts';
import type { Bar } from '../strategy/indicators/types.ts';
import type { CandleHistory } from '../strategy/host.ts';
import type { Store } from './store.ts';

export interface StoredCandle extends Bar {
  readonly quoteVolume?: number;
  readonly trades?: number;
}

export class CandleRepository implements CandleHistory {
  constructor(private readonly store: Store) {}

  /** Inserts or replaces candles (same key, same row: re-importing changes nothing). */
  upsert(market: Market, symbol: string, timeframe: string, candles: readonly StoredCandle[]): void {
    const { db } = this.store;
    this.store.transaction(() => {
      for (const c of candles) {
        this.store.run(
          db
            .insertInto('candles')
            .values({ market, symbol, timeframe, open_time: c.openTime, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, quote_volume: c.quoteVolume ?? 0, trades: c.trades ?? 0 })
            .onConflict((oc) => oc.columns(['market', 'symbol', 'timeframe', 'open_time']).doUpdateSet((eb) => ({ open: eb.ref('excluded.open'), high: eb.ref('excluded.high'), low: eb.ref('excluded.low'), close: eb.ref('excluded.close'), volume: eb.ref('excluded.volume'), quote_volume: eb.ref('excluded.quote_volume'), trades: eb.ref('excluded.trades') }))),
        );
      }
    });
  }

  /** The last `count` 1m candles opening at or before `beforeOrAt`, oldest first. */
  recent1m(market: Market, symbol: string, beforeOrAt: number, count: number): Bar[] {
    const rows = this.store.all<{ open_time: number; open: number; high: number; low: number; close: number; volume: number }>(
      this.store.db
        .selectFrom('candles')
        .select(['open_time', 'open', 'high', 'low', 'close', 'volume'])
        .where('market', '=', market)
        .where('symbol', '=', symbol)
        .where('timeframe', '=', '1m')
        .where('open_time', '<=', beforeOrAt)
        .orderBy('open_time', 'desc')
        .limit(count),
    );
    return rows.reverse().map((r) => ({ openTime: r.open_time, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume }));
  }
}
