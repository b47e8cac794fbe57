/**
 * A fresh, migrated candle store in its own workspace per call, closed and
 * removed by cleanup() (call it in afterEach).
 */
import { CandleRepository } from '../../src/store/candle-repository.ts';
import { Store } from '../../src/store/store.ts';
import { makeWorkspace, type Workspace } from './workspace.ts';

export interface RepoFixture {
  open(): Promise<{ store: Store; repo: CandleRepository; ws: Workspace }>;
  /** A workspace with no store yet (for tests that build the database themselves). */
  workspace(): Workspace;
  /** Closes this with the rest at cleanup. */
  track(c: { close(): void }): void;
  cleanup(): void;
}

export function repoFixture(): RepoFixture {
  const closables: Array<{ close(): void }> = [];
  const workspaces: Workspace[] = [];
  const workspace = (): Workspace => {
    const ws = makeWorkspace();
    workspaces.push(ws);
    return ws;
  };
  return {
    async open() {
      const ws = workspace();
      const store = Store.open(ws.dbFile);
      closables.push(store);
      await store.migrate();
      return { store, repo: new CandleRepository(store), ws };
    },
    workspace,
    track: (c) => closables.push(c),
    cleanup() {
      for (const c of closables.splice(0)) c.close();
      for (const ws of workspaces.splice(0)) ws.cleanup();
    },
  };
}
