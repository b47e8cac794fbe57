/**
 * One bot per database. Two bots on the same database would both trade the
 * same account from the same state: the second must refuse to start.
 *
 * The lock is an OS file lock, held through SQLite on <db>.lock: the holder
 * keeps a RESERVED lock (an open BEGIN IMMEDIATE) for its whole life. The
 * kernel drops it when the process dies, however it dies (kill -9, OOM), so
 * a stale lock can never block a restart, and pid reuse or a container's
 * pid 1 cannot fool it. A RESERVED lock still lets others read, so a second
 * bot can read who holds it and name the pid.
 *
 * (POSIX locks are not reliable on some network file systems: keep data/ on
 * a local disk.)
 */
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { InstanceLockedError } from '../core/errors.ts';
import { ensureWritableDir } from './store.ts';
import { dirname } from 'node:path';

export interface LockOwner {
  pid: number;
  host: string;
  started_at: number;
  released_at: number | null;
}

export class InstanceLock {
  private released = false;

  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    /** The previous holder, when it died without releasing (a stale lock we took over). */
    readonly tookOverFrom: LockOwner | undefined,
  ) {}

  static acquire(dbFile: string, now: number): InstanceLock {
    const file = `${dbFile}.lock`;
    ensureWritableDir(dirname(file), 'database folder');
    const db = new Database(file, { timeout: 0 });
    try {
      db.pragma('journal_mode = DELETE');
      db.exec('CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, started_at INTEGER NOT NULL, released_at INTEGER)');
    } catch (err) {
      if (isBusy(err)) throw locked(db, dbFile);
      db.close();
      throw err;
    }
    // Take the lock, write who we are (committed, so others can read it),
    // then take it again and keep it. If another process slips in between,
    // it holds the lock and we refuse: exactly one wins.
    let previous: LockOwner | undefined;
    try {
      db.exec('BEGIN IMMEDIATE');
      previous = db.prepare('SELECT pid, host, started_at, released_at FROM owner WHERE id = 1').get() as LockOwner | undefined;
      db.prepare('INSERT OR REPLACE INTO owner (id, pid, host, started_at, released_at) VALUES (1, ?, ?, ?, NULL)').run(process.pid, hostname(), now);
      db.exec('COMMIT');
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      if (isBusy(err)) throw locked(db, dbFile);
      db.close();
      throw err;
    }
    const stale = previous && previous.released_at === null ? previous : undefined;
    return new InstanceLock(db, file, stale);
  }

  /** Releases the lock and marks it released (so the next start is not "stale"). */
  release(now: number): void {
    if (this.released) return;
    this.released = true;
    try {
      this.db.exec('ROLLBACK');
      this.db.prepare('UPDATE owner SET released_at = ? WHERE id = 1 AND pid = ?').run(now, process.pid);
    } finally {
      this.db.close();
    }
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function locked(db: Database.Database, dbFile: string): InstanceLockedError {
  let owner: LockOwner | undefined;
  try {
    owner = db.prepare('SELECT pid, host, started_at, released_at FROM owner WHERE id = 1').get() as LockOwner | undefined;
  } catch {
    // Holder is mid-write; we only lose the pid in the message.
  } finally {
    db.close();
  }
  const who = owner ? `pid ${owner.pid} on ${owner.host}, running since ${new Date(owner.started_at).toISOString()}` : 'another process';
  return new InstanceLockedError(`another bot is already running on ${dbFile} (${who}); stop it first, or point DB_URL at another database`, owner?.pid);
}
