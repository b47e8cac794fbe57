/**
 * The chaos suite, short form (issue 8): the real bot as a child process on
 * the local exchange (USD-M, 5 symbols, a strategy that flips on every
 * candle), killed with SIGKILL 5 times (at random, right after an order row
 * is committed and before it is sent, and while a placed order's response is
 * black-holed), with dropped and stalled streams, 5xx on ~10% of REST calls,
 * a 429 burst, a 2 s clock skew and an expired listenKey in between. After a
 * final clean start (its reconciliation settles what the kills left), the
 * exchange's own records must equal SQLite's. The long form:
 * `npm run chaos -- --kills 50`.
 */
import { describe, expect, it } from 'vitest';
import { runCampaign, SHORT } from '../chaos/campaign.ts';

describe('chaos suite (short form)', () => {
  it('5 kill -9 restarts under injected faults: orders, fills, positions and PnL equal the exchange', async () => {
    const r = await runCampaign({ ...SHORT });
    const summary = JSON.stringify({ ...r, invariants: { ...r.invariants, discrepancies: r.invariants.discrepancies.slice(0, 20) } }, null, 2);
    process.stdout.write(`chaos short form: ${JSON.stringify({ restartsSurvived: r.restartsSurvived, ordersPlaced: r.ordersPlaced, fills: r.fills, discrepancies: r.discrepancies, missingCandles: r.missingCandles, durationMs: r.durationMs })}\n`);
    expect(r.restartsSurvived, 'every kill was followed by a restart, plus the final clean one').toBe(SHORT.kills + 1);
    expect(r.ordersPlaced, `the strategy traded: ${summary}`).toBeGreaterThan(5);
    expect(r.invariants.discrepancies, 'orders, intents, fills, positions and realized PnL equal the exchange').toEqual([]);
    expect(r.invariants.candleDiscrepancies, 'no closed 1m candle missing from the store').toEqual([]);
    expect(r.invariants.store.candles, 'candles were stored').toBeGreaterThan(50);
  }, 150_000);
});
