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

export class Faults {
  fails: FailSpec[] = [];
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
