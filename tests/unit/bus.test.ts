import { describe, expect, it } from 'vitest';
import { ALL_SIGNALS, Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { dec } from '../../src/core/decimal.ts';
import { TraderError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { ComponentFault, OrderIntent, Signal } from '../../src/model/events.ts';

function newBus(): Bus {
  return new Bus({ logger: silentLogger(), clock: new TestClock(1_700_000_000_000) });
}

const shutdown = (reason: string) => ({ kind: 'system.shutdown' as const, ts: 1, reason });
const signal = (strategy: string, n: number): Signal => ({ kind: 'signal', ts: n, strategy, symbol: 'BTCUSDT', action: 'enterLong', reason: `r${n}` });
const intent: OrderIntent = { intentId: 'i1', seq: 1, source: 'strategy', strategy: 'rsi', market: 'spot', symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: dec('0.01') };

describe('bus', () => {
  it('delivers to every subscriber in subscription order, synchronously', () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.on('system.shutdown', (p) => seen.push(`a:${p.reason}`), 'a');
    bus.on('system.shutdown', (p) => seen.push(`b:${p.reason}`), 'b');
    bus.publish('system.shutdown', shutdown('x'));
    expect(seen).toEqual(['a:x', 'b:x']);
  });

  it('a throwing handler is isolated: the others still run, and a component.fault is published', () => {
    const bus = newBus();
    const seen: string[] = [];
    const faults: ComponentFault[] = [];
    bus.on('component.fault', (f) => faults.push(f), 'watcher');
    bus.on('system.shutdown', () => seen.push('first'), 'first');
    bus.on('system.shutdown', () => {
      throw new TraderError('INVARIANT_BROKEN', 'boom');
    }, 'broken');
    bus.on('system.shutdown', () => seen.push('third'), 'third');
    expect(() => bus.publish('system.shutdown', shutdown('x')), 'the publisher never sees the handler error').not.toThrow();
    expect(seen).toEqual(['first', 'third']);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ kind: 'component.fault', component: 'broken', channel: 'system.shutdown', error: { code: 'INVARIANT_BROKEN', message: 'boom' } });
    expect(bus.stats().faults).toBe(1);
  });

  it('a throwing component.fault handler is only logged (no infinite loop)', () => {
    const bus = newBus();
    let calls = 0;
    bus.on('component.fault', () => {
      calls++;
      throw new Error('fault handler broken too');
    }, 'bad-watcher');
    bus.on('system.shutdown', () => {
      throw new Error('boom');
    }, 'broken');
    bus.publish('system.shutdown', shutdown('x'));
    expect(calls).toBe(1);
    expect(bus.stats().faults).toBe(2);
  });

  it('nested publishes are queued breadth-first (FIFO), so order never depends on nesting', () => {
    const bus = newBus();
    const order: string[] = [];
    bus.on('signal.a', (s) => {
      order.push(`a1:${s.reason}`);
      if (s.reason === 'r1') {
        bus.publish('signal.b', signal('b', 2));
        bus.publish('signal.c', signal('c', 3));
      }
    }, 'a1');
    bus.on('signal.a', (s) => order.push(`a2:${s.reason}`), 'a2');
    bus.on('signal.b', (s) => {
      order.push(`b:${s.reason}`);
      bus.publish('signal.a', signal('a', 4));
    }, 'b');
    bus.on('signal.c', (s) => order.push(`c:${s.reason}`), 'c');
    bus.publish('signal.a', signal('a', 1));
    // Depth-first would give a1:r1, b:r2, a1:r4, ... before a2:r1.
    expect(order).toEqual(['a1:r1', 'a2:r1', 'b:r2', 'c:r3', 'a1:r4', 'a2:r4']);
  });

  it('signal.* receives every strategy\'s signals', () => {
    const bus = newBus();
    const got: string[] = [];
    bus.on(ALL_SIGNALS, (s) => got.push(s.strategy), 'journal');
    bus.publish('signal.rsi', signal('rsi', 1));
    bus.publish('signal.macd', signal('macd', 2));
    expect(got).toEqual(['rsi', 'macd']);
    expect(() => bus.publish(ALL_SIGNALS, signal('x', 3))).toThrow(/for subscribing/);
  });

  it('a command has exactly one handler; a second registration throws', () => {
    const bus = newBus();
    const handled: string[] = [];
    bus.handle('order.request', (r) => handled.push(r.intent.intentId), 'risk');
    expect(() => bus.handle('order.request', () => undefined, 'other'), 'second handler').toThrow(/already has a handler \(risk\)/);
    expect(() => bus.on('order.request', () => undefined, 'sneaky'), 'on() is not a back door').toThrow(/is a command/);
    bus.publish('order.request', { kind: 'order.request', ts: 1, intent });
    expect(handled).toEqual(['i1']);
  });

  it('publishing a command nobody handles throws at the publisher (a wiring bug)', () => {
    const bus = newBus();
    expect(() => bus.publish('order.submit', { kind: 'order.submit', ts: 1, intent })).toThrow(TraderError);
  });

  it('observers see commands without handling them', () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.observe('order.request', () => seen.push('journal'), 'journal');
    bus.handle('order.request', () => seen.push('risk'), 'risk');
    bus.publish('order.request', { kind: 'order.request', ts: 1, intent });
    expect(seen).toEqual(['journal', 'risk']);
  });

  it('payloads are frozen: a handler cannot change what the next one sees', () => {
    const bus = newBus();
    let after: string | undefined;
    bus.on('system.shutdown', (p) => {
      (p as { reason: string }).reason = 'tampered';
    }, 'tamperer');
    bus.on('system.shutdown', (p) => (after = p.reason), 'reader');
    bus.publish('system.shutdown', shutdown('original'));
    expect(after).toBe('original');
    expect(bus.stats().faults, 'the write attempt throws in strict mode and is reported').toBe(1);
  });

  it('unsubscribe stops delivery; a closed bus drops events', () => {
    const bus = newBus();
    let n = 0;
    const off = bus.on('system.shutdown', () => n++, 'x');
    bus.publish('system.shutdown', shutdown('1'));
    off();
    bus.publish('system.shutdown', shutdown('2'));
    bus.on('system.shutdown', () => n++, 'y');
    bus.close();
    bus.publish('system.shutdown', shutdown('3'));
    expect(n).toBe(1);
  });
});
