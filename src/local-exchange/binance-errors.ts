/**
 * Binance's error codes and messages, for the local exchange to answer
 * exactly as Binance does (ccxt maps them to its exception classes).
 */
import type { Market } from '../model/market.ts';
import type { EngineReject } from '../venues/sim/types.ts';

export interface BinanceError {
  readonly status: number;
  readonly code: number;
  readonly msg: string;
}

export const err = (status: number, code: number, msg: string): BinanceError => ({ status, code, msg });

export const ERR = {
  tooMuchWeight: (limit: number) => err(429, -1003, `Too much request weight used; current limit is ${limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`),
  banned: (until: number) => err(418, -1003, `Way too much request weight used; IP banned until ${until}. Please use WebSocket Streams for live updates to avoid bans.`),
  timestampOutside: () => err(400, -1021, 'Timestamp for this request is outside of the recvWindow.'),
  timestampAhead: () => err(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."),
  badSignature: () => err(400, -1022, 'Signature for this request is not valid.'),
  badApiKeyFormat: () => err(401, -2014, 'API-key format invalid.'),
  badApiKey: () => err(401, -2015, 'Invalid API-key, IP, or permissions for action.'),
  mandatory: (name: string) => err(400, -1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`),
  illegalChars: (name: string) => err(400, -1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`),
  badRecvWindow: () => err(400, -1131, 'recvWindow must be less than 60000'),
  invalidSymbol: () => err(400, -1121, 'Invalid symbol.'),
  unknownOrderCancel: () => err(400, -2011, 'Unknown order sent.'),
  orderDoesNotExist: () => err(400, -2013, 'Order does not exist.'),
  invalidOrderType: () => err(400, -1116, 'Invalid orderType.'),
  invalidSide: () => err(400, -1117, 'Invalid side.'),
  invalidTif: () => err(400, -1115, 'Invalid timeInForce.'),
  badParam: (msg: string) => err(400, -1106, msg),
  listenKeyNotExist: () => err(400, -1125, 'This listenKey does not exist.'),
  unknownPath: () => err(404, -1000, 'Not found.'),
  internal: (msg = 'An unknown error occurred while processing the request.') => err(500, -1000, msg),
  rejectedByTest: () => err(400, -2010, 'Order rejected by the local exchange (control API).'),
};

/** The Binance answer to an engine refusal, per market (spot and USD-M differ). */
export function fromReject(market: Market, r: EngineReject): BinanceError {
  const f = r.filter;
  if (r.kind === 'FILTER' && f) {
    if (market === 'spot') return err(400, -1013, `Filter failure: ${f.filter}`);
    switch (f.code) {
      case 'PRICE_NOT_ON_TICK':
        return err(400, -4014, 'Price not increased by tick size.');
      case 'PRICE_BELOW_MIN':
        return err(400, -4013, 'Price less than min price.');
      case 'PRICE_ABOVE_MAX':
        // -4002 PRICE_GREATER_THAN_MAX_PRICE (-4016 is the PERCENT_PRICE cap, below).
        return err(400, -4002, 'Price greater than max price.');
      case 'QTY_NOT_ON_STEP':
        return err(400, -1111, 'Precision is over the maximum defined for this asset.');
      case 'QTY_BELOW_MIN':
        // -4004 QTY_LESS_THAN_MIN_QTY; -4003 is for quantity <= 0, which never reaches the filters.
        return err(400, -4004, 'Quantity less than min quantity.');
      case 'QTY_ABOVE_MAX':
        return err(400, -4005, 'Quantity greater than max quantity.');
      case 'NOTIONAL_BELOW_MIN':
        return err(400, -4164, `Order's notional must be no smaller than ${f.reason.split('min=')[1] ?? '5'} (unless you choose reduce only).`);
      // A limit price outside mark * [multiplierDown, multiplierUp]: -4016 / -4024 (ccxt: BadRequest).
      // -4131 is the MARKET-order variant ("counterparty's best price"), which the engine does not model.
      case 'PRICE_ABOVE_PERCENT_BAND':
        return err(400, -4016, 'Price is higher than mark price multiplier cap.');
      case 'PRICE_BELOW_PERCENT_BAND':
        return err(400, -4024, 'Price is lower than mark price multiplier floor.');
      case 'TOO_MANY_OPEN_ORDERS':
        return err(400, -2025, 'Reach max open order limit.');
      default:
        return err(400, -1013, `Filter failure: ${f.filter}`);
    }
  }
  switch (r.kind) {
    case 'UNKNOWN_SYMBOL':
      return ERR.invalidSymbol();
    case 'INSUFFICIENT_BALANCE':
      return err(400, -2010, 'Account has insufficient balance for requested action.');
    case 'MARGIN_INSUFFICIENT':
      return err(400, -2019, 'Margin is insufficient.');
    case 'REDUCE_ONLY_REJECTED':
      return err(400, -2022, 'ReduceOnly Order is rejected.');
    case 'POST_ONLY_WOULD_TAKE':
      return market === 'spot' ? err(400, -2010, 'Order would immediately match and take.') : err(400, -5022, r.message);
    case 'FOK_WOULD_NOT_FILL':
      // -5021 FOK_REJECT (USD-M); ccxt: OrderNotFillable on fapi.
      return err(400, -5021, r.message);
    case 'WOULD_TRIGGER_IMMEDIATELY':
      return market === 'spot' ? err(400, -2010, 'Stop price would trigger immediately.') : err(400, -2021, 'Order would immediately trigger.');
    case 'DUPLICATE_CLIENT_ORDER_ID':
      return market === 'spot' ? err(400, -2010, 'Duplicate order sent.') : err(400, -4116, 'ClientOrderId is duplicated.');
    case 'UNKNOWN_ORDER':
      return r.message === 'Unknown order sent.' ? ERR.unknownOrderCancel() : ERR.orderDoesNotExist();
    case 'POSITION_SIDE_MISMATCH':
      return err(400, -4061, "Order's position side does not match user's setting.");
    case 'NO_NEED_TO_CHANGE_MARGIN_TYPE':
      return err(400, -4046, 'No need to change margin type.');
    case 'NO_NEED_TO_CHANGE_POSITION_SIDE':
      return err(400, -4059, 'No need to change position side.');
    case 'POSITION_EXISTS':
      return r.message.startsWith('Margin type') ? err(400, -4048, r.message) : err(400, -4068, r.message);
    case 'OPEN_ORDERS_EXIST':
      return r.message.startsWith('Margin type') ? err(400, -4047, r.message) : err(400, -4067, r.message);
    case 'INVALID_LEVERAGE':
      return err(400, -4028, r.message);
    case 'INVALID_CALLBACK_RATE':
      // -2007 INVALID_CALLBACK_RATE, Binance's text.
      return err(400, -2007, 'Invalid callBack rate.');
    case 'ORDER_LIST_PRICES':
      return err(400, -2010, 'The relationship of the prices for the orders is not correct.');
    case 'ORDER_LIST_INVALID':
      // Spot Error Codes: -1168 BOTH_OCO_ORDERS_CANNOT_BE_LIMIT, -1166 SELL_OCO_LIMIT_MUST_BE_ABOVE,
      // -1197 SELL_OCO_STOP_LOSS_MUST_BE_BELOW, -1165 BUY_OCO_LIMIT_MUST_BE_BELOW, -1196 BUY_OCO_STOP_LOSS_MUST_BE_ABOVE.
      switch (r.listRule) {
        case 'BOTH_LIMIT':
          return err(400, -1168, 'At least one OCO order must be contingent.');
        case 'SELL_LIMIT_MUST_BE_ABOVE':
          return err(400, -1166, 'A limit order in a sell OCO must be above.');
        case 'SELL_STOP_MUST_BE_BELOW':
          return err(400, -1197, 'A stop loss order in a sell OCO must be below.');
        case 'BUY_LIMIT_MUST_BE_BELOW':
          return err(400, -1165, 'A limit order in a buy OCO must be below.');
        case 'BUY_STOP_MUST_BE_ABOVE':
          return err(400, -1196, 'A stop loss order in a buy OCO must be above.');
        default:
          return err(400, -1158, 'Order type not supported in OCO.');
      }
    case 'NO_PRICE':
      return err(400, -2010, `No market price yet for this symbol (local exchange).`);
    case 'INVALID_PARAMETER':
      if (r.message.startsWith('Mandatory parameter')) return err(400, -1102, r.message);
      if (r.message === 'Invalid orderType.') return ERR.invalidOrderType();
      if (r.message === 'Invalid timeInForce.') return ERR.invalidTif();
      return err(400, -1106, r.message);
  }
  return ERR.internal(r.message);
}
