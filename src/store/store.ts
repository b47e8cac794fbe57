/**
 * The SQLite store: one better-sqlite3 connection, kysely for every query.
 *
 * Queries are built with kysely (so a PostgreSQL dialect can come later) and,
 * on hot paths, executed synchronously through better-sqlite3 with a cache of
 * prepared statements (`run`, `all`, `first`): no promise per row written.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type CompiledQuery, type MigrationResult } from 'kysely';
import { PathError, TraderError } from '../core/errors.ts';
import { MIGRATIONS } from './migrations.ts';
import type { DB } from './schema.ts';

interface Compilable<O = unknown> {
  compile(): CompiledQuery<O>;
}

export interface MigrateReport {
  applied: string[];
  current: string | undefined;
}

export class Store {
  readonly db: Kysely<DB>;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(
    readonly sqlite: Database.Database,
    readonly file: string,
  ) {
    this.db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  }

  /**
   * Opens (creating if needed) the database file with the settings the bot
   * relies on. Fails with a PathError naming the folder or file when it
   * cannot be written.
   */
  static open(file: string, opts: { readonly?: boolean } = {}): Store {
    if (file !== ':memory:') {
      const dir = dirname(file);
      if (!opts.readonly) ensureWritableDir(dir, 'database folder');
      if (existsSync(file)) {
        try {
          accessSync(file, opts.readonly ? constants.R_OK : constants.R_OK | constants.W_OK);
        } catch (err) {
          throw new PathError(file, `database file ${file} is not ${opts.readonly ? 'readable' : 'writable'} (${(err as NodeJS.ErrnoException).code})`, err);
        }
      } else if (opts.readonly) {
        throw new PathError(file, `database file ${file} does not exist (start the bot or run \`trader db migrate\` first)`);
      }
    }
    let sqlite: Database.Database;
    try {
      sqlite = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (err) {
      throw new PathError(file, `cannot open database ${file}: ${(err as Error).message}`, err);
    }
    if (!opts.readonly) {
      // WAL: readers (the CLI, `trader status`) never block the bot's writes.
      sqlite.pragma('journal_mode = WAL');
      // NORMAL in WAL: a commit survives a process crash (SIGKILL, OOM), and
      // costs no fsync; power loss or an OS crash may drop the last commits.
      // What that could cost is covered elsewhere, so the order path pays no
      // fsync per order (the tick-to-order target):
      //  - a lost order row: its request carried a client id in this
      //    database's namespace, and after an unclean stop the start-up
      //    recovery (execution/order-recovery.ts) rebuilds every order and
      //    fill of that namespace the database lacks: the exchange is the
      //    journal;
      //  - a lost intent-sequence block could hand out an id twice: that
      //    write is made durable on its own (durably(); once per 1000
      //    intents), and the recovery skips past every id it finds.
      sqlite.pragma('synchronous = NORMAL');
    }
    sqlite.pragma('foreign_keys = ON');
    // Wait up to 5 s for another connection's write instead of failing.
    sqlite.pragma('busy_timeout = 5000');
    return new Store(sqlite, file);
  }

  /** Applies every pending migration; a no-op when the schema is current. */
  async migrate(): Promise<MigrateReport> {
    const migrator = new Migrator({ db: this.db, provider: { getMigrations: async () => MIGRATIONS } });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const newer = /previously executed migration (\S+) is missing/.exec((error as Error).message ?? '');
      if (newer) {
        // A database a newer version migrated: running old code on it could misread what it holds.
        throw new TraderError('DB_MIGRATION_FAILED', `${this.file} was migrated by a newer version of trader (migration ${newer[1]}, unknown to this one): run that version, or restore a backup taken before the upgrade`, { cause: error });
      }
      const failed = results?.find((r: MigrationResult) => r.status === 'Error')?.migrationName;
      throw new TraderError('DB_MIGRATION_FAILED', `migration ${failed ?? '(unknown)'} failed on ${this.file}: ${(error as Error).message ?? String(error)}`, { cause: error });
    }
    const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    return { applied, current: await this.currentMigration() };
  }

  async currentMigration(): Promise<string | undefined> {
    const migrator = new Migrator({ db: this.db, provider: { getMigrations: async () => MIGRATIONS } });
    const all = await migrator.getMigrations();
    return all.filter((m) => m.executedAt !== undefined).at(-1)?.name;
  }

  /** A prepared statement for raw SQL, cached: for the few writes on the order path that skip query building. */
  statement(sqlText: string): Database.Statement {
    return this.prepare(sqlText);
  }

  /** Runs a kysely write synchronously. */
  run(query: Compilable): Database.RunResult {
    const q = query.compile();
    return this.prepare(q.sql).run(...(q.parameters as unknown[]));
  }

  /** Runs a kysely select synchronously. */
  all<R>(query: Compilable<R>): R[] {
    const q = query.compile();
    return this.prepare(q.sql).all(...(q.parameters as unknown[])) as R[];
  }

  /**
   * Runs fn with synchronous=FULL: its commits are on disk (fsync) when it
   * returns, power loss included. For the few writes that must never be
   * lost; everything else commits under NORMAL (see open()).
   */
  durably<T>(fn: () => T): T {
    if (this.sqlite.readonly || this.file === ':memory:') return fn();
    this.sqlite.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.sqlite.pragma('synchronous = NORMAL');
    }
  }

  /** Runs fn in one transaction (BEGIN IMMEDIATE): all of it lands or none. */
  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn).immediate();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Checkpoints the WAL into the main file and closes. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.statements.clear();
    if (!this.sqlite.readonly && this.file !== ':memory:') {
      try {
        this.sqlite.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // Another reader holds the WAL; SQLite checkpoints on the next open.
      }
    }
    this.sqlite.close();
  }

  private prepare(sqlText: string): Database.Statement {
    let st = this.statements.get(sqlText);
    if (!st) {
      st = this.sqlite.prepare(sqlText);
      this.statements.set(sqlText, st);
    }
    return st;
  }
}

/** Creates dir if needed and proves it writable; a PathError names it otherwise. */
export function ensureWritableDir(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new PathError(dir, `${what} ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
}
