/**
 * Where the MODE=sim paper account is kept between runs: the port the sim
 * venue writes through (sqlite-account-store.ts is the bot's; the backtester
 * passes none and its account lives in memory only).
 *
 * What is kept: balances (spot) or wallet, positions and per-symbol
 * settings (futures), every order (working ones with the funds they lock),
 * order list (spot OCO) and trade, and the id counters. Not kept: prices
 * (the feed's; the first candle after a restart sets them), funding incomes
 * (the sim venue never reports them), MARKET orders waiting for the next
 * step (the backtester's next-step mode only).
 */
import type { Dec } from '../../core/decimal.ts';
import type { Market } from '../../model/market.ts';
import type { Side, SimAccountState, SimIdCounter, SimOrderList, SimOrderRecord, SimTrade } from './types.ts';

/** How the stored account came to be. */
export type SimAccountOrigin =
  /** A fresh database: sim.balance from bot.yaml. */
  | 'seeded'
  /** A database from a version that kept the paper account in memory: sim.balance plus the stored fills. */
  | 'rebuilt';

export interface StoredSimAccount {
  readonly quoteAsset: string;
  /** sim.balance when the account was created. */
  readonly seed: Dec;
  readonly origin: SimAccountOrigin;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly account: SimAccountState;
  readonly counters: readonly SimIdCounter[];
  readonly orders: readonly SimOrderRecord[];
  readonly trades: readonly SimTrade[];
  /** Spot OCO lists (their legs are among `orders`). */
  readonly orderLists: readonly SimOrderList[];
}

/** One state of the account, written at once (one transaction). */
export interface SimAccountSave {
  readonly now: number;
  readonly quoteAsset: string;
  readonly seed: Dec;
  readonly origin: SimAccountOrigin;
  /** The whole account (small: balances, positions, settings). */
  readonly account: SimAccountState;
  readonly counters: readonly SimIdCounter[];
  /** Orders changed since the last save. */
  readonly orders: readonly SimOrderRecord[];
  /** Trades since the last save. */
  readonly trades: readonly SimTrade[];
  /** Order lists changed since the last save. */
  readonly orderLists: readonly SimOrderList[];
}

/** A fill as the bot's books hold it (the fills table). */
export interface RecordedFill {
  readonly symbol: string;
  readonly tradeId: string;
  readonly side: Side;
  readonly price: Dec;
  readonly quantity: Dec;
  readonly fee: Dec;
  readonly feeAsset: string;
  readonly time: number;
}

/** The largest numeric ids the bot's books hold for one symbol. */
export interface UsedIds {
  readonly symbol: string;
  readonly orderId?: number;
  readonly tradeId?: number;
}

export interface SimAccountPersistence {
  /** The stored account of this market, or undefined when there is none. */
  load(market: Market): StoredSimAccount | undefined;
  save(market: Market, s: SimAccountSave): void;
  /** The bot's stored fills of the market, oldest first. */
  recordedFills(market: Market): RecordedFill[];
  /** Per symbol, the largest numeric exchange order id and trade id in the bot's orders and fills. */
  usedIds(market: Market): UsedIds[];
}
