/**
 * Child process for the heartbeat atomicity test: writes the heartbeat as
 * fast as it can, with a size that changes every time, then exits.
 * Usage: node --import tsx heartbeat-writer-loop.ts <file> <count>
 */
import { Bus } from '../../src/bus/bus.ts';
import { LiveClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { HeartbeatWriter } from '../../src/health/heartbeat-writer.ts';

const [file, countArg] = process.argv.slice(2);
const clock = new LiveClock();
const writer = new HeartbeatWriter({
  clock,
  bus: new Bus({ logger: silentLogger(), clock }),
  file: file!,
  intervalMs: 2000,
  identity: { pid: process.pid, version: 'test', runId: 'r', mode: 'sim', market: 'spot', symbols: [], strategies: [] },
});
const count = Number(countArg);
for (let i = 0; i < count; i++) {
  // Sizes from a few bytes to ~40 KB, so a torn read would show as bad JSON.
  writer.setBlock('feed', { status: 'ok', detail: 'x'.repeat((i * 7919) % 40_000) });
  writer.write();
}
