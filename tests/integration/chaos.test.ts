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
 *
 * The multi-strategy campaign, short form (issue 17): two and three
 * strategies with opposite signals on one symbol, on spot, USD-M one-way and
 * USD-M hedge, killed with SIGKILL 3 times (once in each way); after every
 * restart's reconciliation and at the end, the exchange's position is the
 * ledger's sum over the owners, each owner's fills and PnL are its own and
 * add up to the account's, nothing is counted or sent twice, nothing is
 * unexplained or HALTED, and no stop outlives its position. The long form:
 * `npm run chaos -- --campaign multi --kills 30`.
 */
import { describe, expect, it } from 'vitest';
import { runCampaign, SHORT } from '../chaos/campaign.ts';
import { MULTI_SHORT, runMultiCampaign, type MultiReportOut } from '../chaos/multi-strategy.ts';

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

describe('chaos suite, multi-strategy campaign (short form)', () => {
  const check = (r: MultiReportOut, name: string): void => {
    process.stdout.write(`chaos multi ${name}: ${JSON.stringify({ seed: r.seed, kills: r.killModes, restartsSurvived: r.restartsSurvived, minutes: r.candlesReplayed, ordersPlaced: r.ordersPlaced, fills: r.fills, discrepancies: r.discrepancies, durationMs: r.durationMs })}\n`);
    const figures = JSON.stringify(r.final.symbols, null, 1);
    expect(r.restartsSurvived, 'every kill was followed by a restart, plus the final one').toBe(MULTI_SHORT.kills + 1);
    expect(r.fills, `the strategies traded: ${figures}`).toBeGreaterThan(6);
    // Owners are strategies (one-way, spot) or strategy/LEG (hedge).
    const traded = Object.fromEntries(Object.entries(r.final.symbols).map(([symbol, f]) => [symbol, [...new Set(Object.keys(f.owners).map((o) => o.split('/')[0]))].sort().join(',')]));
    expect(Object.values(traded), `two strategies traded on one symbol, three on the other: ${figures}`).toEqual(['a,b', 'a,b,c']);
    // After each restart's reconciliation and at the end (every owner flat): the exchange's position is the ledger's
    // sum (and the bot's positions table says the same), each owner's fills and PnL are its own and add up to the
    // account's, nothing counted or sent twice, orders and fills equal the exchange's, nothing unexplained or HALTED,
    // no protective order working for an owner that holds nothing.
    expect(r.distinct.map((d) => `${d.firstSeen}: ${d.line}`), 'no discrepancy after any restart or at the end').toEqual([]);
  };

  it('spot, BTCUSDT with strategies a and b, ETHUSDT with a, b and c, holdings the bot never bought: 3 kill -9 restarts, 0 discrepancies', async () => {
    check(await runMultiCampaign({ ...MULTI_SHORT, market: 'spot', positionMode: 'ONEWAY' }), 'spot');
  }, 170_000);

  it('USD-M one-way, DOTUSDT with a (long) and b (short), ETHUSDT with a, b and c (reversing): 3 kill -9 restarts, 0 discrepancies', async () => {
    check(await runMultiCampaign({ ...MULTI_SHORT, market: 'futures', positionMode: 'ONEWAY' }), 'futures one-way');
  }, 170_000);

  it('USD-M hedge (POSITION_MODE=HEDGE), the same strategies on LONG and SHORT legs: 3 kill -9 restarts, 0 discrepancies', async () => {
    check(await runMultiCampaign({ ...MULTI_SHORT, market: 'futures', positionMode: 'HEDGE' }), 'futures hedge');
  }, 170_000);
});
