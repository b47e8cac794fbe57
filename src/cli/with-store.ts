/**
 * Runs a command's body with the configured database open and migrated (as
 * the bot does at start), closing it afterwards. Bad configuration, and any
 * error the body throws, become one message naming the command and an exit
 * code (core/errors: 78 configuration, 66 missing data, 64 usage...).
 */
import { existsSync } from 'node:fs';
import { EXIT, exitCodeFor } from '../core/errors.ts';
import type { Settings } from '../settings/settings.ts';
import { Store } from '../store/store.ts';
import { loadSettingsOrReport } from './run.ts';

export async function withMigratedStore(command: string, fn: (settings: Settings, store: Store) => Promise<number>): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  let store: Store | undefined;
  try {
    store = Store.open(settings.paths.dbFile);
    await store.migrate();
    return await fn(settings, store);
  } catch (e) {
    process.stderr.write(`trader ${command}: ${(e as Error).message}\n`);
    return exitCodeFor(e);
  } finally {
    store?.close();
  }
}

/** The database opened read-only (no lock, no migration): 66 when there is none yet. */
export function withReadOnlyStore(settings: Settings, command: string, fn: (store: Store) => number): number {
  if (!existsSync(settings.paths.dbFile)) {
    process.stderr.write(`trader ${command}: no database at ${settings.paths.dbFile} yet (start the bot, or run trader db migrate)\n`);
    return EXIT.NO_INPUT;
  }
  let store: Store | undefined;
  try {
    store = Store.open(settings.paths.dbFile, { readonly: true });
    return fn(store);
  } catch (e) {
    process.stderr.write(`trader ${command}: ${(e as Error).message}\n`);
    return exitCodeFor(e);
  } finally {
    store?.close();
  }
}
