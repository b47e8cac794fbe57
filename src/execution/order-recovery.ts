/**
 * Start-up recovery: the exchange is the journal of what was sent.
 *
 * The database commits with synchronous=NORMAL (store.ts): power loss or an
 * OS crash may drop the last commits, an order row among them, after its
 * request went out. Every id this database hands out carries its namespace,
 * owner and sequence (client-order-ids.ts), so after an unclean stop every
 * order of this namespace the exchange holds and the database lacks is
 * written back with its owner, and its fills follow through the execution
 * engine's fill-gap poll, once each (the fills table's unique key). The
 * intent sequence skips past every number found, so no id is handed out
 * twice.
 *
 * Only after an unclean stop: a clean stop (ExecutionEngine.stop) lost
 * nothing, and the scan costs an order-history query per symbol.
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { OPEN_ORDER_STATUSES } from '../model/events.ts';
import type { Market } from '../model/market.ts';
import { readKv, writeKv } from '../store/kv.ts';
import type { Store } from '../store/store.ts';
import type { Venue, VenueOrder } from '../venues/venue.ts';
import { ownerCode, parseClientOrderId, type ClientOrderIds } from './client-order-ids.ts';
import type { IntentSequence } from './intent-sequence.ts';

const CLEAN_STOP_KEY = 'execution.cleanStop';
/** How far before the newest surviving row the scan starts: rows are lost from the tail, never the middle. */
const LOOKBACK_MS = 15 * 60_000;
const STOP_TYPES = new Set(['STOP_MARKET', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET', 'STOP_LOSS_LIMIT', 'STOP_LOSS', 'TAKE_PROFIT', 'TAKE_PROFIT_LIMIT', 'LIMIT_MAKER', 'STOP']);

export interface RecoveryDeps {
  store: Store;
  venue: Pick<Venue, 'ordersSince'>;
  clock: Pick<Clock, 'now'>;
  logger: Logger;
  market: Market;
  ids: ClientOrderIds;
  sequence: Pick<IntentSequence, 'skipPast'>;
  /** Symbols to scan: configured ones and every one the database has orders on. */
  symbols: () => readonly string[];
  /** Owner names an id's owner code may stand for (configured strategies; the database's owners are added). */
  owners: () => readonly string[];
  /** Applies the exchange's view of a (restored) row: status, filled quantity, and the fills it lacks via the poll. */
  applyOrder: (v: VenueOrder) => void;
}

export interface RecoveryReport {
  readonly scanned: boolean;
  readonly reason: string;
  /** Client ids of the rows written back. */
  readonly restored: readonly string[];
  /** The highest intent number found on the exchange in this namespace. */
  readonly maxSeq: number;
}

/** Whether the last run stopped cleanly; if not, since when orders may have been lost (the first unrecovered run's start). */
export interface PreviousStop {
  readonly clean: boolean;
  readonly unrecoveredSince?: number;
}

/**
 * Marks the run as started (unclean until markCleanStop) and says how the
 * previous one ended. After an unclean stop the mark is left as it is: its
 * time stays the start of the first run whose orders were never recovered
 * (a start that failed before its recovery must not move it forward).
 */
export function takeCleanStop(store: Store, now: number): PreviousStop {
  if (store.sqlite.readonly) return { clean: true };
  const row = store.all(store.db.selectFrom('kv').select(['value', 'updated_at']).where('key', '=', CLEAN_STOP_KEY))[0];
  const prev = readKv(store, CLEAN_STOP_KEY, z.boolean());
  if (prev.ok && prev.value === false && row) return { clean: false, unrecoveredSince: row.updated_at };
  // A database without the mark never ran an engine (or predates it): nothing of its own to lose, unless it holds orders.
  const clean = !prev.ok ? false : (prev.value ?? store.all(store.db.selectFrom('orders').select('client_order_id').limit(1)).length === 0);
  store.durably(() => writeKv(store, CLEAN_STOP_KEY, false, now));
  return clean ? { clean } : { clean, ...(row ? { unrecoveredSince: row.updated_at } : {}) };
}

/** The recovery ran: from now on only this run's orders could be lost (the mark stays unclean until a clean stop). */
export function markRecovered(store: Store, runStartedAt: number): void {
  if (store.isOpen && !store.sqlite.readonly) store.durably(() => writeKv(store, CLEAN_STOP_KEY, false, runStartedAt));
}

export function markCleanStop(store: Store, now: number): void {
  if (store.isOpen && !store.sqlite.readonly) store.durably(() => writeKv(store, CLEAN_STOP_KEY, true, now));
}

export async function recoverOrders(d: RecoveryDeps, previous: PreviousStop): Promise<RecoveryReport> {
  const none = (reason: string): RecoveryReport => ({ scanned: false, reason, restored: [], maxSeq: 0 });
  if (previous.clean) return none('the last run stopped cleanly');
  if (!d.venue.ordersSince) return none('the venue keeps no order history');
  const { store, market } = d;
  // Lost rows are the newest ones, written by a run that never recovered: both bound where the scan starts.
  const newest = store.all(store.db.selectFrom('orders').select((eb) => eb.fn.max('created_at').as('t')).where('market', '=', market))[0]?.t;
  const since = Math.max(typeof newest === 'number' ? newest : 0, previous.unrecoveredSince ?? 0) - LOOKBACK_MS;
  const byCode = ownersByCode([...d.owners(), ...store.all(store.db.selectFrom('orders').select('strategy').distinct()).map((r) => r.strategy), 'manual', 'external']);
  const restored: string[] = [];
  let maxSeq = 0;
  for (const symbol of d.symbols()) {
    for (const v of await d.venue.ordersSince(symbol, since)) {
      const id = parseClientOrderId(v.clientOrderId);
      if (!id || id.namespace !== d.ids.namespace) continue;
      maxSeq = Math.max(maxSeq, id.seq);
      const row = store.all(store.db.selectFrom('orders').select(['status']).where('client_order_id', '=', v.clientOrderId))[0];
      if (!row) {
        const owner = byCode.get(id.ownerCode);
        if (!owner) d.logger.error({ clientOrderId: v.clientOrderId, ownerCode: id.ownerCode }, `recovered order ${v.clientOrderId}: no known owner has code ${id.ownerCode}; booked to "unknown-${id.ownerCode}"`);
        insertRow(d, v, owner ?? `unknown-${id.ownerCode}`, id.seq);
        restored.push(v.clientOrderId);
      }
      // Restored or not: the exchange's word on status and fills (a surviving row may have lost its fills).
      if (!row || OPEN_ORDER_STATUSES.includes(row.status as never) || v.filledQuantity.gt(0)) d.applyOrder(v);
    }
  }
  if (maxSeq > 0) d.sequence.skipPast(maxSeq);
  if (restored.length > 0) d.logger.warn({ restored }, `start-up recovery: ${restored.length} order rows the database had lost were rebuilt from the exchange (an unclean stop lost the end of the database's log)`);
  return { scanned: true, reason: 'the last run did not stop cleanly', restored, maxSeq };
}

function ownersByCode(names: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of new Set(names)) m.set(ownerCode(n), n);
  return m;
}

function insertRow(d: RecoveryDeps, v: VenueOrder, owner: string, seq: number): void {
  const { store, market } = d;
  const at = v.updateTime;
  store.run(
    store.db
      .insertInto('orders')
      .values({
        client_order_id: v.clientOrderId,
        intent_id: `${owner}/${v.symbol}/${seq}`,
        strategy: owner,
        market,
        symbol: v.symbol,
        side: v.side,
        type: v.type,
        time_in_force: null,
        quantity: v.quantity.toFixed(),
        price: v.price?.toFixed() ?? null,
        stop_price: v.stopPrice?.toFixed() ?? null,
        reduce_only: v.reduceOnly ? 1 : 0,
        status: 'PENDING',
        exchange_order_id: null,
        filled_quantity: '0',
        average_price: null,
        error: 'RECOVERED: rebuilt from the exchange after an unclean stop',
        created_at: at,
        updated_at: at,
        // Who asked is not in the id: a stop or take-profit type is the owner's protection.
        source: STOP_TYPES.has(v.type) ? 'protective' : 'strategy',
        position_side: v.positionSide ?? 'BOTH',
        sent_at: at,
      })
      .onConflict((oc) => oc.doNothing()),
  );
}
