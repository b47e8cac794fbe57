/**
 * Faults the control API can inject, so tests can prove the bot survives
 * what Binance does on a bad day. All state is per server instance.
 */
export interface FailSpec {
  /** How many REST calls to fail (counting down). */
  count: number;
  status: number;
  code: number;
  msg: string;
  /** Only calls whose path starts with this (e.g. "/fapi/v1/order"). */
  pathPrefix?: string;
}

export interface DelaySpec {
  count: number;
  ms: number;
  pathPrefix?: string;
}

/**
 * "Answered 5xx, executed later": the next `count` order placements get this
 * error at once, and the exchange places the order (same parameters, same
 * client order id) `delayMs` later on its own clock, as a matching engine that
 * was slow to answer would. Binance forwards a request to the matching engine
 * only while serverTime - timestamp <= recvWindow ("Timing security":
 * https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type#timing-security
 * and https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#timing-security),
 * so a placement due after timestamp + recvWindow never happens.
 *
 * The answer Binance documents for an unknown outcome:
 *  - spot: 5XX "the execution status is UNKNOWN" (rest-api.md, HTTP Return Codes), with
 *    -1007 TIMEOUT "Timeout waiting for response from backend server. Send status unknown;
 *    execution status unknown." (errors.md);
 *  - USD-M: HTTP 503 "Unknown error, please check your request or try again later."
 *    (general-info, "HTTP 503 Status: Message Variants & Handling", variant A). That body
 *    comes from the gateway and carries no `code`: {"timestamp", "path", "msg"} (as logged
 *    from fapi.binance.com, e.g. github.com/daisy613/LHPControl/issues/16). Variant C
 *    "Internal error; unable to process your request" (-1001) is a documented FAILURE, which
 *    is what /control/rest/fail answers by default: not executed.
 */
export interface LateExecuteSpec {
  count: number;
  delayMs: number;
  /** Default 503. */
  status?: number;
  /** With msg: the error body's code; omitted, the body has none (the USD-M gateway's { timestamp, path, msg }). */
  code?: number;
  /** Omitted: unknownOutcomeDefaults for the market of the path placed. */
  msg?: string;
  pathPrefix?: string;
}

/** What became of one late placement (tests read it). */
export interface LateOutcome {
  readonly path: string;
  readonly clientOrderId: string | undefined;
  /** Exchange time of the (attempted) placement. */
  readonly at: number;
  readonly placed: boolean;
  /** Why not: 'RECV_WINDOW' (too late for the matching engine) or the engine's refusal. */
  readonly reason?: string;
}

/** The documented unknown-outcome answer per market (see LateExecuteSpec). */
export function unknownOutcomeDefaults(market: 'spot' | 'futures'): { status: number; code?: number; msg: string } {
  return market === 'spot'
    ? { status: 503, code: -1007, msg: 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.' }
    : { status: 503, msg: 'Unknown error, please check your request or try again later.' };
}

export class Faults {
  fails: FailSpec[] = [];
  lateExecutes: LateExecuteSpec[] = [];
  /** Outcomes of late placements, oldest first. */
  lateOutcomes: LateOutcome[] = [];
  delays: DelaySpec[] = [];
  /** Server clock offset in ms (positive: the server runs ahead). */
  clockSkewMs = 0;
  /** Next order placements to reject with -2010. */
  rejectOrders = 0;
  /** Next order placements to accept but never answer (the client times out). */
  blackholeOrders = 0;
  /** How long a black-holed response is held before the socket is destroyed. */
  blackholeHoldMs = 60_000;
  /** Force 429 on the next N calls. */
  force429 = 0;
  /** Ban (418) until this server time. */
  bannedUntil = 0;
  /** Streams matching these names (or all, when '*') get no data while the connection stays open. */
  stalled = new Set<string>();

  takeFail(path: string): FailSpec | undefined {
    const f = this.fails.find((x) => x.count > 0 && (!x.pathPrefix || path.startsWith(x.pathPrefix)));
    if (!f) return undefined;
    f.count--;
    this.fails = this.fails.filter((x) => x.count > 0);
    return f;
  }

  /**
   * Answers the next order placements with an unknown-outcome 5xx and places
   * them delayMs later (see LateExecuteSpec). Without msg, the answer is the
   * one Binance documents for the market of the path placed.
   */
  lateExecute(spec: { delayMs: number; count?: number; status?: number; code?: number; msg?: string; pathPrefix?: string }): void {
    this.lateExecutes.push({ ...spec, count: spec.count ?? 1 });
  }

  takeLateExecute(path: string): LateExecuteSpec | undefined {
    const f = this.lateExecutes.find((x) => x.count > 0 && (!x.pathPrefix || path.startsWith(x.pathPrefix)));
    if (!f) return undefined;
    f.count--;
    this.lateExecutes = this.lateExecutes.filter((x) => x.count > 0);
    return f;
  }

  takeDelay(path: string): number {
    const d = this.delays.find((x) => x.count > 0 && (!x.pathPrefix || path.startsWith(x.pathPrefix)));
    if (!d) return 0;
    d.count--;
    this.delays = this.delays.filter((x) => x.count > 0);
    return d.ms;
  }

  isStalled(stream: string): boolean {
    return this.stalled.has('*') || this.stalled.has(stream);
  }

  reset(): void {
    Object.assign(this, new Faults());
  }
}
