/**
 * Builds ccxt's binance (spot) and binanceusdm (USD-M) clients for a given
 * REST base, so the same code talks to Binance, its testnets, or the local
 * exchange.
 *
 * Two things ccxt does not do for a custom base URL, done here:
 *  - every urls.api key is pointed at the base: ccxt deep-merges user URLs
 *    into its defaults, so a key left out would silently call binance.com;
 *  - ccxt applies its per-market Binance error maps (e.g. -2019 margin
 *    insufficient -> InsufficientFunds, -4164 -> InvalidOrder) only to
 *    binance.com URLs (binance.getExceptionsByUrl). We merge the market map
 *    into the exact map so errors from any base raise the same classes.
 */
import ccxt from 'ccxt';

export interface CcxtClientOptions {
  /** e.g. https://api.binance.com, or http://127.0.0.1:PORT for the local exchange. */
  spotBase: string;
  /** e.g. https://fapi.binance.com. */
  futuresBase: string;
  apiKey?: string;
  secret?: string;
  /**
   * ccxt's own client-side throttle; off by default. It spaces every request
   * by its cost across all symbols (USD-M orders 100 ms apart: 200 symbols
   * signalling together took 20 s), which is not how Binance counts. The
   * bot's venue budgets by Binance's published limits and headers instead
   * (rate-budget.ts).
   */
  enableRateLimit?: boolean;
  timeoutMs?: number;
  recvWindowMs?: number;
}

type Exchange = InstanceType<typeof ccxt.binance>;

function mergeErrorMap(ex: Exchange, marketType: 'spot' | 'linear'): void {
  const exceptions = ex.exceptions as { exact: Record<string, unknown>; broad: Record<string, unknown>; spot?: { exact?: Record<string, unknown>; broad?: Record<string, unknown> }; linear?: { exact?: Record<string, unknown>; broad?: Record<string, unknown> } };
  const specific = exceptions[marketType];
  // The market map wins, as it does on binance.com where it is checked first.
  exceptions.exact = { ...exceptions.exact, ...(specific?.exact ?? {}) };
  exceptions.broad = { ...exceptions.broad, ...(specific?.broad ?? {}) };
}

function allUrlsTo(ex: Exchange, map: (key: string, defaultUrl: string) => string): Record<string, string> {
  const api = (ex.urls as { api: Record<string, string> }).api;
  return Object.fromEntries(Object.entries(api).map(([k, v]) => [k, map(k, v)]));
}

/** Replaces a default URL's scheme and host with base, keeping its path (/api/v3, /fapi/v1, /sapi/v1 ...). */
function rebase(base: string, defaultUrl: string): string {
  const u = new URL(defaultUrl);
  return base.replace(/\/$/, '') + u.pathname;
}

function common(o: CcxtClientOptions): Record<string, unknown> {
  return {
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(o.secret ? { secret: o.secret } : {}),
    enableRateLimit: o.enableRateLimit ?? false,
    timeout: o.timeoutMs ?? 10_000,
  };
}

export function createSpotClient(o: CcxtClientOptions): Exchange {
  const ex = new ccxt.binance({
    ...common(o),
    options: {
      fetchCurrencies: false,
      fetchMargins: false,
      fetchMarkets: { types: ['spot'] },
      recvWindow: o.recvWindowMs ?? 5000,
    },
  });
  ex.urls = { ...ex.urls, api: allUrlsTo(ex, (key, url) => rebase(key.startsWith('fapi') ? o.futuresBase : o.spotBase, url)) } as typeof ex.urls;
  mergeErrorMap(ex, 'spot');
  return ex;
}

export function createFuturesClient(o: CcxtClientOptions): InstanceType<typeof ccxt.binanceusdm> {
  const ex = new ccxt.binanceusdm({
    ...common(o),
    // Used only when enableRateLimit is on: ccxt's USD-M costs equal Binance's
    // request weights, and 25 ms a unit is USD-M's 2,400 weight a minute.
    rateLimit: 25,
    options: { fetchCurrencies: false, fetchMargins: false, recvWindow: o.recvWindowMs ?? 5000 },
  });
  ex.urls = { ...ex.urls, api: allUrlsTo(ex as Exchange, (key, url) => rebase(key.startsWith('fapi') ? o.futuresBase : o.spotBase, url)) } as typeof ex.urls;
  mergeErrorMap(ex as Exchange, 'linear');
  return ex;
}
