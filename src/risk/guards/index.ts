/** The guards, in the order the spec lists them. */
export { maxPositionSize, type MaxPositionSizeConfig } from './max-position-size.ts';
export { dailyLoss, type DailyLossConfig } from './daily-loss.ts';
export { duplicateOrder } from './duplicate-order.ts';
export { balance, type BalanceConfig } from './balance.ts';
export { priceProtection, type PriceProtectionConfig } from './price-protection.ts';
export { strategyDailyLoss, type StrategyDailyLossConfig } from './strategy-daily-loss.ts';
export { symbolExposure, type SymbolExposureConfig } from './symbol-exposure.ts';
export { dailyTradedQuantity, type DailyTradedQuantityConfig } from './daily-traded-quantity.ts';
export { drawdown, type DrawdownConfig } from './drawdown.ts';
export { consecutiveLosses, type ConsecutiveLossesConfig } from './consecutive-losses.ts';
export { fundingWindow, type FundingWindowConfig } from './funding-window.ts';
export { orderThrottle, type OrderThrottleConfig } from './order-throttle.ts';
export { staleData, type StaleDataConfig } from './stale-data.ts';
export { liquidationDistance, type LiquidationDistanceConfig } from './liquidation-distance.ts';
export { portfolioVar, historicalQuantile, type PortfolioVarConfig, type VarLimit } from './portfolio-var.ts';
