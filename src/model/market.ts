/** Market kinds and timeframes the bot knows. */
export const MARKETS = ['spot', 'futures'] as const;
export type Market = (typeof MARKETS)[number];

/** Binance kline intervals the strategy host can build from 1m candles. */
export const TIMEFRAMES = ['1m', '3m', '5m', '15m', '30m', '1h', '4h', '1d'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

/** Binance symbols are upper-case letters and digits (BTCUSDT, 1000PEPEUSDT). */
export const SYMBOL_PATTERN = /^[A-Z0-9]{2,20}$/;

export const TRADING_STATES = ['ACTIVE', 'REDUCING', 'HALTED'] as const;
export type TradingState = (typeof TRADING_STATES)[number];
