/**
 * Equity snapshots: one '1m' row a minute (equity, quote cash, unrealized
 * PnL), thinned as rows age so a bot that runs for years keeps a small table:
 *
 *   '1m'  rows older than ~48 h collapse into one '1h' row per hour, holding
 *         the hour's last minute (its equity, balance and unrealized PnL);
 *   '1h'  rows older than ~90 days are deleted;
 *   '1d'  rows (one per UTC day, written by the portfolio at the day's first
 *         look: the VaR guard's daily returns) are never touched here.
 *
 * Rows sit on minute boundaries (ts = the minute the snapshot was taken, UTC)
 * and '1h' rows on hour boundaries, so a row's bucket is its ts. Writes are
 * upserts: a second writer (or a timer that fires twice in one minute) lands
 * the same row, never a duplicate.
 *
 * The minute timer is re-armed for the next minute boundary each time (a
 * setInterval drifts, and would now and then skip a minute). Thinning runs
 * hourly in one transaction, at most `maxHoursPerRun` hours of '1m' rows and
 * `maxDeletesPerRun` old '1h' rows per pass; a backlog is worked off by
 * further passes a second apart, so no single pass holds the write lock long.
 *
 * Nothing is written while equity is not above zero: before the venue's
 * account snapshot the cash ledger is zero and equity means nothing yet. The
 * kernel starts this after the trading core, which publishes that snapshot.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { Store } from '../store/store.ts';
import type { PortfolioView } from './portfolio.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

export interface EquitySnapshotOptions {
  /** How long '1m' rows are kept before they become '1h' rows (default 48 h). */
  minuteRetentionMs?: number;
  /** How long '1h' rows are kept (default 90 days). */
  hourRetentionMs?: number;
  /** How often thinning runs (default hourly). */
  thinEveryMs?: number;
  /** Bound on one thinning pass: hours of '1m' rows collapsed (default 48). */
  maxHoursPerRun?: number;
  /** Bound on one thinning pass: expired '1h' rows deleted (default 5000). */
  maxDeletesPerRun?: number;
}

export interface EquitySnapshotsDeps {
  store: Store;
  clock: Clock;
  portfolio: PortfolioView;
  logger: Logger;
  options?: EquitySnapshotOptions;
}

export interface ThinReport {
  /** Hours whose '1m' rows became one '1h' row. */
  hours: number;
  minuteRowsDeleted: number;
  hourRowsDeleted: number;
  /** More work was left for the next pass (bounded work per run). */
  more: boolean;
}

export class EquitySnapshots {
  private readonly minuteKeep: number;
  private readonly hourKeep: number;
  private readonly thinEvery: number;
  private readonly maxHours: number;
  private readonly maxDeletes: number;
  private minuteTimer: TimerHandle | undefined;
  private thinTimer: TimerHandle | undefined;
  private catchUp: TimerHandle | undefined;
  private running = false;

  constructor(private readonly deps: EquitySnapshotsDeps) {
    const o = deps.options ?? {};
    this.minuteKeep = o.minuteRetentionMs ?? 48 * HOUR;
    this.hourKeep = o.hourRetentionMs ?? 90 * DAY;
    this.thinEvery = o.thinEveryMs ?? HOUR;
    this.maxHours = o.maxHoursPerRun ?? 48;
    this.maxDeletes = o.maxDeletesPerRun ?? 5000;
  }

  /** Arms the minute timer (first row at the next minute boundary) and the hourly thinning; thins once now. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.armMinute();
    this.thinTimer = this.deps.clock.every(this.thinEvery, () => this.thinSafely());
    this.thinSafely();
  }

  stop(): void {
    this.running = false;
    for (const t of [this.minuteTimer, this.thinTimer, this.catchUp]) t?.cancel();
    this.minuteTimer = this.thinTimer = this.catchUp = undefined;
  }

  /**
   * Writes the '1m' row for the current minute; false when there is nothing
   * to write (equity not above zero) or the store is closed.
   */
  snapshot(): boolean {
    const { store, clock, portfolio } = this.deps;
    if (!store.isOpen) return false;
    const equity = portfolio.equity();
    if (!equity.gt(0)) return false;
    const ts = Math.floor(clock.now() / MINUTE) * MINUTE;
    const row = { equity: equity.toFixed(), balance: portfolio.cash().toFixed(), unrealized_pnl: portfolio.unrealized().toFixed() };
    store.run(
      store.db
        .insertInto('equity_snapshots')
        .values({ resolution: '1m', ts, ...row })
        .onConflict((oc) => oc.columns(['resolution', 'ts']).doUpdateSet(row)),
    );
    return true;
  }

  /** One bounded thinning pass, in one transaction. */
  thin(): ThinReport {
    const { store, clock } = this.deps;
    const now = clock.now();
    // Whole hours that ended at least minuteKeep ago.
    const cutoff = Math.floor((now - this.minuteKeep) / HOUR) * HOUR;
    const hourExpiry = now - this.hourKeep;
    return store.transaction(() => {
      let hours = 0;
      let minuteRowsDeleted = 0;
      let more = false;
      const oldest = store.all(store.db.selectFrom('equity_snapshots').select('ts').where('resolution', '=', '1m').where('ts', '<', cutoff).orderBy('ts').limit(1))[0];
      if (oldest) {
        const upper = Math.min(cutoff, Math.floor(oldest.ts / HOUR) * HOUR + this.maxHours * HOUR);
        const rows = store.all(
          store.db.selectFrom('equity_snapshots').select(['ts', 'equity', 'balance', 'unrealized_pnl']).where('resolution', '=', '1m').where('ts', '<', upper).orderBy('ts'),
        );
        // Rows are in time order: the last one seen for an hour is its last minute.
        const last = new Map<number, (typeof rows)[number]>();
        for (const r of rows) last.set(Math.floor(r.ts / HOUR) * HOUR, r);
        for (const [hour, r] of last) {
          const values = { equity: r.equity, balance: r.balance, unrealized_pnl: r.unrealized_pnl };
          store.run(
            store.db
              .insertInto('equity_snapshots')
              .values({ resolution: '1h', ts: hour, ...values })
              .onConflict((oc) => oc.columns(['resolution', 'ts']).doUpdateSet(values)),
          );
        }
        hours = last.size;
        minuteRowsDeleted = Number(store.run(store.db.deleteFrom('equity_snapshots').where('resolution', '=', '1m').where('ts', '<', upper)).changes);
        if (upper < cutoff) {
          more = store.all(store.db.selectFrom('equity_snapshots').select('ts').where('resolution', '=', '1m').where('ts', '>=', upper).where('ts', '<', cutoff).limit(1)).length > 0;
        }
      }
      const expired = store.db.selectFrom('equity_snapshots').select('ts').where('resolution', '=', '1h').where('ts', '<', hourExpiry).orderBy('ts').limit(this.maxDeletes);
      const hourRowsDeleted = Number(store.run(store.db.deleteFrom('equity_snapshots').where('resolution', '=', '1h').where('ts', 'in', expired)).changes);
      if (hourRowsDeleted >= this.maxDeletes) more = true;
      return { hours, minuteRowsDeleted, hourRowsDeleted, more };
    });
  }

  private armMinute(): void {
    const now = this.deps.clock.now();
    const wait = MINUTE - (now % MINUTE);
    this.minuteTimer = this.deps.clock.after(wait, () => {
      if (!this.running) return;
      try {
        this.snapshot();
      } catch (err) {
        // A missed minute is a gap in a chart, not a reason to stop the bot.
        this.deps.logger.error({ err }, `cannot write the equity snapshot: ${(err as Error).message}`);
      }
      this.armMinute();
    });
  }

  private thinSafely(): void {
    if (!this.running || !this.deps.store.isOpen) return;
    try {
      const r = this.thin();
      if (r.hours > 0 || r.hourRowsDeleted > 0) this.deps.logger.debug({ ...r }, `equity snapshots thinned: ${r.hours} hour(s) collapsed, ${r.hourRowsDeleted} old hourly row(s) deleted`);
      if (r.more) {
        this.catchUp?.cancel();
        this.catchUp = this.deps.clock.after(1000, () => this.thinSafely());
      }
    } catch (err) {
      this.deps.logger.error({ err }, `cannot thin the equity snapshots: ${(err as Error).message}`);
    }
  }
}
