/**
 * Binance USD-M trailing stops: the callback-rate rule lives with the other
 * exchange filters (model/filters.ts), so the engines can use it without
 * importing a venue; re-exported here for the adapter and the matching engine.
 */
export { CALLBACK_RATE, checkCallbackRate } from '../../model/filters.ts';
