/**
 * Manual orders: `trader order buy|sell|cancel|list`. A manual order is an
 * intent like any other (source 'manual', strategy 'manual'): the same risk
 * checks, filters, order row and client order id. These functions serve the
 * control API (bot running) and the CLI's short-lived trading core (bot
 * stopped) alike.
 */
import { OPEN_ORDER_STATUSES } from '../model/events.ts';
import { z } from 'zod';
import { Dec } from '../core/decimal.ts';
import type { TradingCore } from '../kernel/trading-core.ts';
import { SYMBOL_PATTERN } from '../model/market.ts';
import type { Bus } from '../bus/bus.ts';
import type { RouteHandler } from './control-server.ts';

const decimalText = z.string().regex(/^\d+(\.\d+)?$/, 'a positive decimal such as 0.01').refine((s) => new Dec(s).gt(0), 'must be above 0');

export const placeSchema = z.strictObject({
  symbol: z.string().regex(SYMBOL_PATTERN, 'an upper-case symbol such as BTCUSDT'),
  side: z.enum(['BUY', 'SELL']),
  quantity: decimalText,
  price: decimalText.optional(),
  reduceOnly: z.boolean().default(false),
});
export const cancelSchema = z.strictObject({ id: z.string().min(1).max(64) });
export const listSchema = z.strictObject({ open: z.boolean().default(false) });

export interface OrderOutcome {
  readonly intentId: string;
  readonly clientOrderId?: string;
  readonly symbol?: string;
  readonly status: string;
  readonly reason?: string;
  readonly filledQuantity?: string;
  readonly averagePrice?: string;
}

const FINAL = ['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'];

/**
 * Watches the bus from before an intent is submitted (a denial, or a sim
 * venue's fill, happens inside submit()) until it settles: denied, final,
 * or (limit orders) acknowledged by the venue.
 */
function watch(bus: Bus, settleOnAck: boolean, timeoutMs: number): { bind(intentId: string): Promise<OrderOutcome>; stop(): void } {
  const seen: OrderOutcome[] = [];
  let target: string | undefined;
  let resolveFn: ((o: OrderOutcome) => void) | undefined;
  const offer = (o: OrderOutcome, settles: boolean) => {
    if (!settles) return;
    if (target === undefined) seen.push(o);
    else if (o.intentId === target) resolveFn?.(o);
  };
  const offs = [
    bus.on('order.denied', (d) => offer({ intentId: d.intent.intentId, symbol: d.intent.symbol, status: 'DENIED', reason: d.reason }, true), 'order-cli'),
    bus.on('order.update', (u) => {
      const settles = FINAL.includes(u.status) || (settleOnAck && (u.status === 'NEW' || u.status === 'PARTIALLY_FILLED'));
      offer({ intentId: u.intentId ?? '', clientOrderId: u.clientOrderId, symbol: u.symbol, status: u.status, filledQuantity: u.filledQuantity.toFixed(), ...(u.averagePrice ? { averagePrice: u.averagePrice.toFixed() } : {}), ...(u.reason ? { reason: u.reason } : {}) }, settles);
    }, 'order-cli'),
  ];
  const stop = () => offs.forEach((o) => o());
  return {
    stop,
    bind(intentId) {
      target = intentId;
      const early = seen.find((o) => o.intentId === intentId);
      if (early) {
        stop();
        return Promise.resolve(early);
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          stop();
          resolve({ intentId, status: 'UNKNOWN', reason: `no answer within ${timeoutMs / 1000} s; trader order list shows where it stands` });
        }, timeoutMs);
        resolveFn = (o) => {
          clearTimeout(timer);
          stop();
          resolve(o);
        };
      });
    },
  };
}

/** Places a manual order and waits until it is denied, filled (market) or resting on the venue (limit). */
export async function placeManual(core: TradingCore, o: z.infer<typeof placeSchema>): Promise<OrderOutcome> {
  // A person's order is checked against the venue's price right now (one cheap
  // call): the symbol may have no feed here, or its last candle may be a minute old.
  if (core.venue.price) {
    const markPrice = await core.venue.price(o.symbol).catch(() => undefined);
    if (markPrice) core.bus.publish('mark.price', { kind: 'mark.price', ts: core.clock.now(), symbol: o.symbol, markPrice });
  }
  const w = watch(core.bus, o.price !== undefined, 30_000);
  const intent = core.planner.submit({
    symbol: o.symbol,
    side: o.side,
    quantity: new Dec(o.quantity),
    ...(o.price ? { price: new Dec(o.price) } : {}),
    reduceOnly: o.reduceOnly,
    source: 'manual',
    strategy: 'manual',
    reason: 'manual order',
  });
  const out = await w.bind(intent.intentId);
  return out.status === 'DENIED' ? out : { ...out, clientOrderId: out.clientOrderId ?? core.execution.ids.forIntent('manual', intent.seq) };
}

/** Cancels one of our orders by client order id and waits for the venue's answer. */
export async function cancelManual(core: TradingCore, id: string): Promise<OrderOutcome> {
  const { store, bus } = core;
  const row = store.all(store.db.selectFrom('orders').selectAll().where('client_order_id', '=', id))[0];
  if (!row) return { intentId: '', status: 'NOT_FOUND', reason: `no order ${id} in this bot's database (trader order list shows them)` };
  if (FINAL.includes(row.status)) return { intentId: row.intent_id, clientOrderId: id, symbol: row.symbol, status: row.status, reason: 'already final' };
  const w = watch(bus, false, 30_000);
  const done = w.bind(row.intent_id);
  bus.publish('order.cancel', { kind: 'order.cancel', ts: core.clock.now(), symbol: row.symbol, clientOrderId: id, reason: 'manual cancel' });
  return done;
}

export function listOrders(core: TradingCore, open: boolean): Array<Record<string, unknown>> {
  const { store } = core;
  let q = store.db.selectFrom('orders').selectAll();
  if (open) q = q.where('status', 'in', [...OPEN_ORDER_STATUSES]);
  return store.all(q.orderBy('created_at', 'desc').limit(100)).map((r) => ({
    clientOrderId: r.client_order_id,
    strategy: r.strategy,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    quantity: r.quantity,
    ...(r.price ? { price: r.price } : {}),
    ...(r.stop_price ? { stopPrice: r.stop_price } : {}),
    status: r.status,
    filled: r.filled_quantity,
    ...(r.average_price ? { averagePrice: r.average_price } : {}),
    createdAt: new Date(r.created_at).toISOString(),
    ...(r.error ? { error: r.error } : {}),
  }));
}

export function orderRoutes(core: TradingCore): Record<string, RouteHandler> {
  const bad = (e: z.ZodError) => ({ status: 400, body: { error: 'BAD_REQUEST', message: e.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') } });
  return {
    'POST /v1/orders': async (body) => {
      const p = placeSchema.safeParse(body);
      return p.success ? { status: 200, body: await placeManual(core, p.data) } : bad(p.error);
    },
    'POST /v1/orders/cancel': async (body) => {
      const p = cancelSchema.safeParse(body);
      return p.success ? { status: 200, body: await cancelManual(core, p.data.id) } : bad(p.error);
    },
    'POST /v1/orders/list': (body) => {
      const p = listSchema.safeParse(body);
      return p.success ? { status: 200, body: { orders: listOrders(core, p.data.open) } } : bad(p.error);
    },
  };
}
