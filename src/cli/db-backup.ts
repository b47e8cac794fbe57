/**
 * `trader db backup --to <file> [--force]`: SQLite's online backup from a
 * read-only connection (no instance lock: it works while the bot runs), into
 * a temporary file that is checked (opens, integrity_check ok) and then
 * renamed into place.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { EXIT, exitCodeFor } from '../core/errors.ts';
import { Store } from '../store/store.ts';
import { loadSettingsOrReport } from './run.ts';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

/**
 * Online backup: works while the bot runs (read-only connection, no lock).
 * The copy is written next to the target under a temporary name, switched to
 * rollback journaling (one self-contained file), checked with
 * PRAGMA integrity_check, and only then renamed onto the target.
 */
export async function dbBackup(o: { to?: string; force?: boolean }): Promise<number> {
  if (!o.to) {
    err('trader db backup: --to <file> is required');
    return EXIT.USAGE;
  }
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const target = resolve(o.to);
  const source = settings.paths.dbFile;
  if (target === resolve(source)) {
    err(`trader db backup: --to ${o.to} is the database itself`);
    return EXIT.USAGE;
  }
  if (existsSync(target) && !o.force) {
    err(`trader db backup: ${target} already exists; pass --force to overwrite it`);
    return EXIT.CANT_CREATE;
  }
  if (!existsSync(dirname(target))) {
    err(`trader db backup: folder ${dirname(target)} does not exist`);
    return EXIT.CANT_CREATE;
  }
  if (!existsSync(source)) {
    err(`trader db backup: database ${source} does not exist (nothing to back up)`);
    return EXIT.NO_INPUT;
  }
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  let store: Store | undefined;
  try {
    store = Store.open(source, { readonly: true });
    const schema = (await store.currentMigration()) ?? 'none';
    await store.sqlite.backup(tmp);
    store.close();
    store = undefined;
    const copy = new Database(tmp);
    let check: string;
    try {
      copy.pragma('journal_mode = DELETE');
      check = (copy.pragma('integrity_check', { simple: true }) as string) ?? 'no answer';
    } finally {
      copy.close();
    }
    if (check !== 'ok') {
      rmSync(tmp, { force: true });
      err(`trader db backup: the copy failed PRAGMA integrity_check: ${check}; nothing written to ${target}`);
      return EXIT.SOFTWARE;
    }
    renameSync(tmp, target);
    const size = statSync(target).size;
    out(`backed up ${source} to ${target}: ${formatSize(size)} (${size} bytes), schema ${schema}, integrity_check ok`);
    return EXIT.OK;
  } catch (e) {
    store?.close();
    rmSync(tmp, { force: true });
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(tmp + suffix, { force: true });
    err(`trader db backup: ${(e as Error).message}`);
    return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EACCES' ? EXIT.CANT_CREATE : exitCodeFor(e);
  }
}

function formatSize(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}
