/**
 * Bus cost per publish with 3 subscribers, against a bare eventemitter3
 * emit to 3 listeners in the same process (the floor: what the bus adds is
 * typing, isolation, FIFO queueing and freezing). Median of several rounds.
 */
import { EventEmitter } from 'eventemitter3';
import { Bus } from '../../src/bus/bus.ts';
import { LiveClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { CandleClosed } from '../../src/model/events.ts';

const EVENTS = 1_000_000;
const ROUNDS = 7;

function candle(i: number): CandleClosed {
  return { kind: 'candle.closed', ts: i, market: 'futures', symbol: 'BTCUSDT', timeframe: '1m', openTime: i * 60_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 };
}

function timeNs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function benchBus(): Record<string, unknown> {
  let sink = 0;
  const ee = new EventEmitter();
  for (let k = 0; k < 3; k++) ee.on('candle.closed', (c: CandleClosed) => (sink += c.close));
  const bus = new Bus({ logger: silentLogger(), clock: new LiveClock() });
  for (let k = 0; k < 3; k++) bus.on('candle.closed', (c) => (sink += c.close), `sub${k}`);
  const fastBus = new Bus({ logger: silentLogger(), clock: new LiveClock(), freezePayloads: false });
  for (let k = 0; k < 3; k++) fastBus.on('candle.closed', (c) => (sink += c.close), `sub${k}`);

  const runEe = (): void => {
    for (let i = 0; i < EVENTS; i++) ee.emit('candle.closed', candle(i));
  };
  const runBus = (): void => {
    for (let i = 0; i < EVENTS; i++) bus.publish('candle.closed', candle(i));
  };
  const runFast = (): void => {
    for (let i = 0; i < EVENTS; i++) fastBus.publish('candle.closed', candle(i));
  };
  // Warm up every path so the JIT has compiled them before timing.
  runEe();
  runBus();
  runFast();
  const eeNs: number[] = [];
  const busNs: number[] = [];
  const fastNs: number[] = [];
  // Interleave rounds so machine noise hits all alike.
  for (let r = 0; r < ROUNDS; r++) {
    eeNs.push(timeNs(runEe) / EVENTS);
    busNs.push(timeNs(runBus) / EVENTS);
    fastNs.push(timeNs(runFast) / EVENTS);
  }
  const bus50 = median(busNs);
  const ee50 = median(eeNs);
  const fast50 = median(fastNs);
  if (sink === 42) console.log('');
  return {
    benchmark: 'bus.publish, 3 subscribers',
    events: EVENTS,
    rounds: ROUNDS,
    bus_ns_per_event_median: round(bus50),
    eventemitter3_ns_per_event_median: round(ee50),
    ratio_bus_to_eventemitter3: round(bus50 / ee50),
    bus_events_per_sec: Math.round(1e9 / bus50),
    bus_unfrozen_ns_per_event_median: round(fast50),
    ratio_bus_unfrozen_to_eventemitter3: round(fast50 / ee50),
    bus_ns_per_event_rounds: busNs.map(round),
    eventemitter3_ns_per_event_rounds: eeNs.map(round),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
