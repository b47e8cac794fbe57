/**
 * Time to reconcile at start with 50 symbols: the local exchange serves 50
 * synthetic USD-M instruments (clones of ALGOUSDT's filters), the account
 * holds positions on 10 of them and resting limit orders on 10 others; the
 * bot is configured with all 50 (a strategy that never signals), and is
 * started 3 times on the same database. Reported per start: the reconcile
 * pass's own durationMs (heartbeat reconcile block) and the wall time from
 * spawn to heartbeat state "running".
 */
import { Dec } from '../../src/core/decimal.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import type { Instrument } from '../../src/model/instrument.ts';
import { fullCatalog } from '../../src/venues/sim/catalog.ts';
import { startCli, waitForHeartbeat } from '../support/bot-process.ts';
import { chaosWorkspace } from './campaign.ts';

export interface Reconcile50Report {
  symbols: number;
  externalPositions: number;
  externalOpenOrders: number;
  starts: Array<{ reconcileDurationMs: number; spawnToRunningMs: number; discrepancies: number }>;
  medianReconcileMs: number;
  medianSpawnToRunningMs: number;
}

const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export async function measureReconcile50(o: { log?: ((l: string) => void) | undefined; starts?: number } = {}): Promise<Reconcile50Report> {
  const algo = fullCatalog().find((i) => i.market === 'futures' && i.symbol === 'ALGOUSDT')!;
  const synthetic: Instrument[] = Array.from({ length: 50 }, (_, i) => {
    const base = `SYN${letters[Math.floor(i / 26)]}${letters[i % 26]}`;
    return { ...algo, symbol: `${base}USDT`, baseAsset: base };
  });
  const symbols = synthetic.map((i) => i.symbol);
  const ex = await LocalExchange.start({ instruments: [...fullCatalog(), ...synthetic], funding: false });
  const ws = chaosWorkspace(ex, symbols, {}, 'still');
  try {
    const acct = ex.accountOf(DEFAULT_ACCOUNT.apiKey);
    for (const s of symbols) {
      ex.setPrice('futures', s, new Dec('0.2'));
      ex.engine.setMarkPrice(s, new Dec('0.2'));
    }
    // Held and working on the account (placed outside the bot: reconcile.external: ignore leaves them alone).
    for (const s of symbols.slice(0, 10)) ex.engine.placeOrder(acct, { market: 'futures', symbol: s, side: 'BUY', type: 'MARKET', quantity: new Dec(100), clientOrderId: `hand-pos-${s}` });
    for (const s of symbols.slice(10, 20)) ex.engine.placeOrder(acct, { market: 'futures', symbol: s, side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', price: new Dec('0.19'), quantity: new Dec(100), clientOrderId: `hand-lim-${s}` });
    const starts: Reconcile50Report['starts'] = [];
    for (let i = 0; i < (o.starts ?? 3); i++) {
      const t0 = Date.now();
      const bot = startCli(['run'], { env: ws.env, cwd: ws.dir });
      const hb = await waitForHeartbeat(ws.heartbeatFile, (h) => h.state === 'running' && h.pid === bot.child.pid, bot, 120_000);
      const spawnToRunningMs = Date.now() - t0;
      const rec = hb.reconcile as unknown as { durationMs?: number; discrepancies?: number };
      starts.push({ reconcileDurationMs: rec.durationMs ?? -1, spawnToRunningMs, discrepancies: rec.discrepancies ?? -1 });
      o.log?.(`50 symbols, start ${i + 1}: reconcile ${rec.durationMs} ms, spawn to running ${spawnToRunningMs} ms, ${rec.discrepancies} symbol(s) differed`);
      bot.child.kill('SIGTERM');
      await bot.exited;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      symbols: symbols.length,
      externalPositions: ex.engine.positions(acct).filter((p) => !p.positionAmt.isZero()).length,
      externalOpenOrders: ex.engine.openOrders(acct, 'futures').length,
      starts,
      medianReconcileMs: median(starts.map((s) => s.reconcileDurationMs)),
      medianSpawnToRunningMs: median(starts.map((s) => s.spawnToRunningMs)),
    };
  } finally {
    await ex.close();
    ws.cleanup();
  }
}
