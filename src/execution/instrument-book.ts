/**
 * The instruments (with their filters) the execution engine rounds and
 * checks against: loaded from the venue's exchangeInfo at start, cached in
 * SQLite (so a bot that starts while the exchange's REST is down still knows
 * its filters), refreshed every hour and after any filter rejection.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { Dec } from '../core/decimal.ts';
import type { Logger } from '../core/logger.ts';
import type { Instrument, LotFilter } from '../model/instrument.ts';
import type { Market } from '../model/market.ts';
import type { Store } from '../store/store.ts';
import type { Venue } from '../venues/venue.ts';

const HOUR = 3_600_000;

export class InstrumentBook {
  private readonly bySymbol = new Map<string, Instrument>();
  private timer: TimerHandle | undefined;
  private refreshing: Promise<void> | undefined;
  loadedAt = 0;
  source: 'venue' | 'cache' | 'none' = 'none';

  constructor(
    /** refreshMs: how often exchangeInfo is reloaded (default hourly; 0 = never: the backtester's fixed catalog). */
    private readonly deps: { venue: Pick<Venue, 'instruments'>; store: Store; clock: Clock; logger: Logger; market: Market; refreshMs?: number },
  ) {}

  /** Loads from the venue, falling back to the SQLite cache; throws only when neither has anything. */
  async load(): Promise<void> {
    try {
      await this.fromVenue();
    } catch (err) {
      const cached = this.fromCache();
      if (cached === 0) throw err;
      this.deps.logger.warn({ err, cached }, `cannot load exchangeInfo (${(err as Error).message}); using ${cached} cached instruments until the next refresh`);
    }
    const every = this.deps.refreshMs ?? HOUR;
    if (every > 0) this.timer ??= this.deps.clock.every(every, () => void this.refresh());
  }

  /** Reloads from the venue (one at a time); failures keep the current filters. */
  refresh(): Promise<void> {
    this.refreshing ??= this.fromVenue()
      .catch((err) => this.deps.logger.warn({ err }, `exchangeInfo refresh failed; keeping the filters loaded at ${new Date(this.loadedAt).toISOString()}`))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get(symbol: string): Instrument | undefined {
    return this.bySymbol.get(symbol);
  }

  all(): Instrument[] {
    return [...this.bySymbol.values()];
  }

  private async fromVenue(): Promise<void> {
    const list = await this.deps.venue.instruments();
    const { store, clock, market } = this.deps;
    const now = clock.now();
    store.transaction(() => {
      for (const i of list) {
        const row = { market, symbol: i.symbol, base_asset: i.baseAsset, quote_asset: i.quoteAsset, status: i.status, filters: JSON.stringify(instrumentToJson(i)), updated_at: now };
        store.run(
          store.db
            .insertInto('instruments')
            .values(row)
            .onConflict((oc) => oc.columns(['market', 'symbol']).doUpdateSet({ base_asset: row.base_asset, quote_asset: row.quote_asset, status: row.status, filters: row.filters, updated_at: now })),
        );
      }
    });
    this.bySymbol.clear();
    for (const i of list) this.bySymbol.set(i.symbol, i);
    this.loadedAt = now;
    this.source = 'venue';
  }

  private fromCache(): number {
    const { store, market } = this.deps;
    const rows = store.all(store.db.selectFrom('instruments').select(['filters', 'updated_at']).where('market', '=', market));
    let n = 0;
    for (const r of rows) {
      try {
        const inst = instrumentFromJson(JSON.parse(r.filters));
        this.bySymbol.set(inst.symbol, inst);
        this.loadedAt = Math.max(this.loadedAt, r.updated_at);
        n++;
      } catch {
        // A row from an older format: skip it; the next venue refresh rewrites it.
      }
    }
    if (n > 0) this.source = 'cache';
    return n;
  }
}

/**
 * The instruments cached in the database for a market (what the bot last
 * loaded from the venue's exchangeInfo), skipping rows it cannot read. The
 * backtester lists these, so any symbol the bot has traded can be tested.
 */
export function cachedInstruments(store: Store, market: Market): Instrument[] {
  const out: Instrument[] = [];
  for (const r of store.all(store.db.selectFrom('instruments').select(['filters']).where('market', '=', market))) {
    try {
      out.push(instrumentFromJson(JSON.parse(r.filters)));
    } catch {
      // An older format: skipped, as fromCache does.
    }
  }
  return out;
}

/** JSON form: every Dec as its exact string. */
export function instrumentToJson(i: Instrument): unknown {
  return JSON.parse(JSON.stringify(i, (_k, v: unknown) => (v instanceof Dec ? v.toFixed() : v)));
}

type Json = Record<string, unknown>;
const d = (v: unknown): Dec => new Dec(String(v));
const lot = (v: Json): LotFilter => ({ minQty: d(v.minQty), maxQty: d(v.maxQty), stepSize: d(v.stepSize) });

export function instrumentFromJson(j: Json): Instrument {
  const f = j.filters as Json;
  const price = f.price as Json;
  const notional = f.notional as Json;
  const pp = f.percentPrice as Json | undefined;
  const pps = f.percentPriceBySide as Json | undefined;
  return {
    market: j.market as Market,
    symbol: String(j.symbol),
    baseAsset: String(j.baseAsset),
    quoteAsset: String(j.quoteAsset),
    status: j.status as Instrument['status'],
    pricePrecision: Number(j.pricePrecision),
    quantityPrecision: Number(j.quantityPrecision),
    filters: {
      price: { minPrice: d(price.minPrice), maxPrice: d(price.maxPrice), tickSize: d(price.tickSize) },
      lot: lot(f.lot as Json),
      marketLot: lot(f.marketLot as Json),
      notional: {
        minNotional: d(notional.minNotional),
        ...(notional.maxNotional !== undefined ? { maxNotional: d(notional.maxNotional) } : {}),
        applyMinToMarket: Boolean(notional.applyMinToMarket),
        applyMaxToMarket: Boolean(notional.applyMaxToMarket),
      },
      ...(pp ? { percentPrice: { multiplierUp: d(pp.multiplierUp), multiplierDown: d(pp.multiplierDown) } } : {}),
      ...(pps ? { percentPriceBySide: { bidMultiplierUp: d(pps.bidMultiplierUp), bidMultiplierDown: d(pps.bidMultiplierDown), askMultiplierUp: d(pps.askMultiplierUp), askMultiplierDown: d(pps.askMultiplierDown) } } : {}),
      maxNumOrders: Number(f.maxNumOrders),
      maxNumAlgoOrders: Number(f.maxNumAlgoOrders),
    },
    ...(j.maintMarginRate !== undefined ? { maintMarginRate: d(j.maintMarginRate) } : {}),
    ...(j.liquidationFee !== undefined ? { liquidationFee: d(j.liquidationFee) } : {}),
  };
}
