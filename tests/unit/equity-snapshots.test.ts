/**
 * Equity snapshots on a TestClock against a real (in-memory, migrated) store:
 * a '1m' row every minute, thinned hourly into one '1h' row per hour (the
 * hour's last minute) once older than 48 h, '1h' rows deleted after 90 days,
 * '1d' rows never touched; bounded work per pass.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClock } from '../../src/core/clock.ts';
import { Dec, ZERO } from '../../src/core/decimal.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { PortfolioView } from '../../src/portfolio/portfolio.ts';
import { EquitySnapshots } from '../../src/portfolio/snapshots.ts';
import { Store } from '../../src/store/store.ts';

const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

let store: Store | undefined;
afterEach(() => {
  store?.close();
  store = undefined;
});

/** Equity that tells the minute it was read at: 10000 + 0.01 per minute since T0. */
const equityAt = (t: number): Dec => new Dec('10000').plus(new Dec((t - T0) / MIN).times('0.01'));

function fakePortfolio(clock: TestClock, over: Partial<Record<'equity' | 'cash' | 'unrealized', () => Dec>> = {}): PortfolioView {
  return {
    equity: over.equity ?? (() => equityAt(clock.now())),
    cash: over.cash ?? (() => new Dec('9000')),
    unrealized: over.unrealized ?? (() => new Dec('1.5')),
  } as unknown as PortfolioView;
}

async function rig(): Promise<{ store: Store; clock: TestClock }> {
  store = Store.open(':memory:');
  await store.migrate();
  return { store, clock: new TestClock(T0) };
}

function rows(s: Store, resolution: string): Array<{ ts: number; equity: string; balance: string; unrealized_pnl: string }> {
  return s.sqlite.prepare('SELECT ts, equity, balance, unrealized_pnl FROM equity_snapshots WHERE resolution = ? ORDER BY ts').all(resolution) as never;
}

describe('EquitySnapshots', () => {
  it('after 3 days of minute snapshots: 1m rows only for the last 48 h, one 1h row per older hour holding its last minute', async () => {
    const { store, clock } = await rig();
    store.sqlite.prepare("INSERT INTO equity_snapshots VALUES ('1d', ?, '10000', '10000', '0')").run(T0);
    const snaps = new EquitySnapshots({ store, clock, portfolio: fakePortfolio(clock), logger: silentLogger() });
    snaps.start();
    clock.advanceTo(T0 + 3 * DAY);
    snaps.stop();

    const now = clock.now();
    const minutes = rows(store, '1m');
    // The last thinning ran at T0 + 72 h: whole hours that ended 48 h before it (before T0 + 24 h) were collapsed.
    expect(minutes[0]!.ts, 'the oldest minute row is 48 h old').toBe(now - 48 * HOUR);
    expect(minutes.at(-1)!.ts, 'the newest is the last minute').toBe(now);
    expect(minutes.length, 'one row per minute over 48 h, both ends included').toBe(48 * 60 + 1);
    expect(minutes.every((r, i) => i === 0 || r.ts - minutes[i - 1]!.ts === MIN), 'no minute missing, none doubled').toBe(true);
    expect(minutes.every((r) => r.equity === equityAt(r.ts).toFixed() && r.balance === '9000' && r.unrealized_pnl === '1.5'), 'each row holds the figures of its minute').toBe(true);

    const hours = rows(store, '1h');
    expect(hours.map((h) => h.ts), 'exactly one row per hour older than 48 h').toEqual(Array.from({ length: 24 }, (_, i) => T0 + i * HOUR));
    for (const h of hours) expect(h.equity, `hour ${new Date(h.ts).toISOString()}: its last minute's equity`).toBe(equityAt(h.ts + 59 * MIN).toFixed());
    expect(rows(store, '1d'), 'daily rows are not touched').toHaveLength(1);
    expect(clock.pendingTimers(), 'stop() leaves no timer').toBe(0);
  });

  it('writes nothing while equity is zero (no account snapshot yet); a second writer lands the same rows, never duplicates', async () => {
    const { store, clock } = await rig();
    let equity = ZERO;
    const a = new EquitySnapshots({ store, clock, portfolio: fakePortfolio(clock, { equity: () => equity }), logger: silentLogger() });
    const b = new EquitySnapshots({ store, clock, portfolio: fakePortfolio(clock, { equity: () => equity }), logger: silentLogger() });
    a.start();
    b.start();
    clock.advanceBy(5 * MIN);
    expect(rows(store, '1m'), 'equity 0: nothing written').toEqual([]);
    equity = new Dec('123.45');
    clock.advanceBy(3 * MIN);
    expect(rows(store, '1m').map((r) => [r.ts, r.equity])).toEqual([
      [T0 + 6 * MIN, '123.45'],
      [T0 + 7 * MIN, '123.45'],
      [T0 + 8 * MIN, '123.45'],
    ]);
    a.stop();
    b.stop();
  });

  it('thinning is bounded per pass and works a backlog off a second apart; 1h rows older than 90 days go, 1d rows stay', async () => {
    const { store, clock } = await rig();
    const start = T0 + 100 * DAY;
    clock.advanceTo(start);
    const ins = store.sqlite.prepare('INSERT INTO equity_snapshots VALUES (?, ?, ?, ?, ?)');
    // A backlog: 5 days of minutes (as if thinning had never run), hourly rows 95..91 days old, daily rows long ago.
    for (let t = start - 5 * DAY; t < start; t += MIN) ins.run('1m', t, equityAt(t).toFixed(), '1', '0');
    for (let d = 95; d >= 91; d--) ins.run('1h', start - d * DAY, '5', '5', '0');
    ins.run('1d', T0, '1', '1', '0');
    const snaps = new EquitySnapshots({ store, clock, portfolio: fakePortfolio(clock), logger: silentLogger(), options: { maxHoursPerRun: 24, maxDeletesPerRun: 2 } });

    const first = snaps.thin();
    expect(first, 'one pass: 24 hours collapsed, 2 expired hourly rows deleted, more to do').toEqual({ hours: 24, minuteRowsDeleted: 24 * 60, hourRowsDeleted: 2, more: true });
    snaps.start(); // thins once now, then every second while a backlog remains
    clock.advanceBy(10_000);
    snaps.stop();
    const minutes = rows(store, '1m');
    expect(minutes[0]!.ts, 'minutes older than 48 h are gone').toBeGreaterThanOrEqual(start - 48 * HOUR);
    const hours = rows(store, '1h');
    expect(hours.length, '72 hours (5 days minus the last 48 h), the expired ones deleted').toBe(72);
    expect(hours.every((h) => h.equity === equityAt(h.ts + 59 * MIN).toFixed())).toBe(true);
    expect(rows(store, '1d'), 'daily rows stay forever').toHaveLength(1);
  });
});
