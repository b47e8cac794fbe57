/**
 * `trader portfolio show`: balances, positions (entry, mark, unrealized PnL,
 * notional, % of equity) and exposure. One builder makes the view from plain
 * inputs, fed either by the running bot's portfolio (control API route
 * `GET /v1/portfolio`) or by the database when the bot is stopped (positions
 * table, last stored 1m close as the mark, last equity snapshot plus the fills
 * since for cash), so both print the same fields computed the same way.
 *
 * Equity: futures = wallet + unrealized PnL; spot = quote cash + every
 * holding at its mark (its entry when there is no mark), as the portfolio
 * counts it. Exposure is notional at the mark: gross = sum of |notional|,
 * net = longs - shorts.
 */
import { Dec, ZERO } from '../core/decimal.ts';
import type { TradingCore } from '../kernel/trading-core.ts';
import type { Market } from '../model/market.ts';
import { replayFills } from '../portfolio/history.ts';
import { CandleRepository } from '../store/candle-repository.ts';
import type { Store } from '../store/store.ts';
import type { RouteHandler } from './control-server.ts';

export interface ShowInputPosition {
  symbol: string;
  /** Signed: positive long, negative short. */
  quantity: Dec;
  entryPrice: Dec;
  baseAsset?: string;
  mark?: Dec;
  /** Where the mark came from, e.g. "live" or "last stored close at 2024-01-01T12:00:00.000Z". */
  markSource: string;
  /** The portfolio's own figure (dust positions count as flat there); computed from the mark when absent. */
  unrealizedPnl?: Dec;
}

export interface ShowInput {
  market: Market;
  quoteAsset: string;
  /** ms, UTC: when these figures hold. */
  asOf: number;
  /** Quote cash (spot: free + locked; futures: wallet); undefined when unknown. */
  cash: Dec | undefined;
  cashSource: string;
  positions: readonly ShowInputPosition[];
  /** The portfolio's equity when it has one (live); computed from cash and positions otherwise. */
  equity?: Dec;
}

export interface ShowPosition {
  symbol: string;
  side: 'LONG' | 'SHORT';
  quantity: string;
  entryPrice: string;
  markPrice: string | null;
  markSource: string;
  unrealizedPnl: string | null;
  /** |quantity| x mark (entry when no mark). */
  notional: string;
  /** notional / equity x 100, 2 decimals; null when equity is unknown or not above zero. */
  pctOfEquity: string | null;
}

export interface PortfolioShow {
  asOf: string;
  market: Market;
  quoteAsset: string;
  cashSource: string;
  /** Quote cash, and (spot) each base holding with its value at the mark. */
  balances: Array<{ asset: string; quantity: string; value: string | null }>;
  equity: string | null;
  unrealizedPnl: string;
  grossExposure: string;
  netExposure: string;
  grossExposurePct: string | null;
  positions: ShowPosition[];
}

/** The show view from plain inputs (every figure an exact decimal string, percentages to 2 places). */
export function buildPortfolioShow(input: ShowInput): PortfolioShow {
  let unrealized = ZERO;
  let gross = ZERO;
  let net = ZERO;
  let holdings = ZERO;
  const rows = input.positions
    .filter((p) => !p.quantity.isZero())
    .slice()
    .sort((a, b) => a.symbol.localeCompare(b.symbol))
    .map((p) => {
      const price = p.mark ?? p.entryPrice;
      const upnl = p.unrealizedPnl ?? (p.mark ? p.mark.minus(p.entryPrice).times(p.quantity) : undefined);
      const signedNotional = p.quantity.times(price);
      unrealized = unrealized.plus(upnl ?? ZERO);
      gross = gross.plus(signedNotional.abs());
      net = net.plus(signedNotional);
      holdings = holdings.plus(signedNotional);
      return { p, upnl, notional: signedNotional.abs() };
    });
  const equity = input.equity ?? (input.cash === undefined ? undefined : input.cash.plus(input.market === 'futures' ? unrealized : holdings));
  const pct = (x: Dec): string | null => (equity && equity.gt(0) ? x.div(equity).times(100).toFixed(2) : null);
  const balances: PortfolioShow['balances'] = [{ asset: input.quoteAsset, quantity: input.cash?.toFixed() ?? 'unknown', value: input.cash?.toFixed() ?? null }];
  if (input.market === 'spot') {
    for (const { p } of rows) balances.push({ asset: p.baseAsset ?? p.symbol.replace(new RegExp(`${input.quoteAsset}$`), ''), quantity: p.quantity.toFixed(), value: p.quantity.times(p.mark ?? p.entryPrice).toFixed() });
  }
  return {
    asOf: new Date(input.asOf).toISOString(),
    market: input.market,
    quoteAsset: input.quoteAsset,
    cashSource: input.cashSource,
    balances,
    equity: equity?.toFixed() ?? null,
    unrealizedPnl: unrealized.toFixed(),
    grossExposure: gross.toFixed(),
    netExposure: net.toFixed(),
    grossExposurePct: pct(gross),
    positions: rows.map(({ p, upnl, notional }) => ({
      symbol: p.symbol,
      side: p.quantity.isPos() ? 'LONG' : 'SHORT',
      quantity: p.quantity.toFixed(),
      entryPrice: p.entryPrice.toFixed(),
      markPrice: p.mark?.toFixed() ?? null,
      markSource: p.mark ? p.markSource : 'none',
      unrealizedPnl: upnl?.toFixed() ?? null,
      notional: notional.toFixed(),
      pctOfEquity: pct(notional),
    })),
  };
}

/** The running bot's view: its portfolio's cash, positions and marks. */
export function livePortfolioShow(core: TradingCore): PortfolioShow {
  const p = core.portfolio;
  return buildPortfolioShow({
    market: p.market,
    quoteAsset: p.quoteAsset,
    asOf: core.clock.now(),
    cash: p.cash(),
    cashSource: 'live (the portfolio cash ledger)',
    equity: p.equity(),
    positions: p.positions().map((x) => {
      const mark = p.mark(x.symbol);
      const at = p.lastDataAt(x.symbol);
      const baseAsset = core.instruments.get(x.symbol)?.baseAsset;
      return {
        symbol: x.symbol,
        quantity: x.quantity,
        entryPrice: x.entryPrice,
        ...(baseAsset ? { baseAsset } : {}),
        ...(mark ? { mark } : {}),
        markSource: at > 0 ? `live, ${new Date(at).toISOString()}` : 'live (last fill price: no market data yet)',
        unrealizedPnl: x.unrealizedPnl,
      };
    }),
  });
}

/**
 * The stopped bot's view, from the database: positions table, the last stored
 * 1m close as the mark (the last fill price when no candle is stored), and
 * cash from the latest equity snapshot (any resolution) moved by the fills since.
 */
export function storedPortfolioShow(store: Store, market: Market, quoteAsset: string, now: number): PortfolioShow {
  const rows = store.all(store.db.selectFrom('positions').select(['symbol', 'quantity', 'entry_price']).where('market', '=', market).orderBy('symbol'));
  const bases = new Map(store.all(store.db.selectFrom('instruments').select(['symbol', 'base_asset']).where('market', '=', market)).map((r) => [r.symbol, r.base_asset]));
  const candles = new CandleRepository(store);
  const positions: ShowInputPosition[] = [];
  for (const r of rows) {
    const quantity = new Dec(r.quantity);
    if (quantity.isZero()) continue;
    let mark: Dec | undefined;
    let markSource = 'none';
    const last = candles.lastOpenTime(market, r.symbol, '1m');
    const c = last === undefined ? undefined : candles.range(market, r.symbol, '1m', last, last)[0];
    if (c && last !== undefined) {
      mark = new Dec(c.close);
      markSource = `last stored close at ${new Date(last + 60_000).toISOString()}`;
    } else {
      const f = store.all(store.db.selectFrom('fills').select(['price', 'ts']).where('market', '=', market).where('symbol', '=', r.symbol).orderBy('ts', 'desc').orderBy('id', 'desc').limit(1))[0];
      if (f) {
        mark = new Dec(f.price);
        markSource = `last fill price at ${new Date(f.ts).toISOString()} (no stored candle)`;
      }
    }
    const baseAsset = bases.get(r.symbol);
    positions.push({ symbol: r.symbol, quantity, entryPrice: new Dec(r.entry_price), ...(baseAsset ? { baseAsset } : {}), ...(mark ? { mark } : {}), markSource });
  }
  // Cash: the latest snapshot's balance, plus what every fill since did to it (a manual
  // order placed while the bot was stopped moved cash after the last snapshot).
  const snap = latestSnapshot(store);
  let cash = snap ? new Dec(snap.balance) : undefined;
  let since = 0;
  if (snap) {
    replayFills(store, market, quoteAsset, (f) => {
      if (snap.inclusive ? f.ts < snap.after : f.ts <= snap.after) return;
      cash = cash!.plus(f.cash);
      since++;
    });
  }
  return buildPortfolioShow({
    market,
    quoteAsset,
    asOf: now,
    cash,
    cashSource: snap ? `the last equity snapshot, ${new Date(snap.ts).toISOString()} (${snap.resolution})${since ? `, plus ${since} fill${since === 1 ? '' : 's'} since` : ''}` : 'unknown (no equity snapshot yet)',
    positions,
  });
}

/**
 * The latest snapshot of any resolution, and from when fills are not in it:
 * a '1m' row after its minute; a '1h' row after its last minute; a '1d' row
 * (the day's first look, stamped 00:00) from the day's start, as every process
 * that records fills writes that row before its first fill of the day.
 */
function latestSnapshot(store: Store): { resolution: string; ts: number; balance: string; after: number; inclusive: boolean } | undefined {
  let best: { resolution: string; ts: number; balance: string; after: number; inclusive: boolean } | undefined;
  // One indexed look per resolution (the key is resolution, ts).
  for (const resolution of ['1m', '1h', '1d'] as const) {
    const r = store.all(store.db.selectFrom('equity_snapshots').select(['ts', 'balance']).where('resolution', '=', resolution).orderBy('ts', 'desc').limit(1))[0];
    if (!r) continue;
    const after = resolution === '1h' ? r.ts + 59 * 60_000 : r.ts;
    if (!best || after > best.after) best = { resolution, ts: r.ts, balance: r.balance, after, inclusive: resolution === '1d' };
  }
  return best;
}

export function portfolioRoutes(core: TradingCore): Record<string, RouteHandler> {
  return {
    'GET /v1/portfolio': () => ({ status: 200, body: livePortfolioShow(core) }),
    // The same view's positions: one builder for every answer about positions.
    'GET /v1/positions': () => {
      const v = livePortfolioShow(core);
      return { status: 200, body: { quoteAsset: v.quoteAsset, positions: v.positions } };
    },
  };
}
