import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.ts';
import { TestClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { heartbeatSchema, type Heartbeat } from '../../src/health/heartbeat-schema.ts';
import { HeartbeatWriter } from '../../src/health/heartbeat-writer.ts';
import { formatStatus, judgeHeartbeatFile } from '../../src/health/status.ts';
import { makeWorkspace, REPO_ROOT, type Workspace } from '../support/workspace.ts';

let ws: Workspace;
afterEach(() => ws?.cleanup());

function writer(clock: TestClock, file: string, intervalMs = 2000) {
  const bus = new Bus({ logger: silentLogger(), clock });
  const beats: boolean[] = [];
  bus.on('heartbeat', (h) => beats.push(h.healthy), 'test');
  const w = new HeartbeatWriter({
    clock,
    bus,
    file,
    intervalMs,
    identity: { pid: 4242, version: '9.9.9', runId: 'run', mode: 'sim', market: 'spot', symbols: ['BTCUSDT'], strategies: ['rsi'] },
    memory: () => ({ rss: 100 * 1024 * 1024, heapUsed: 50 * 1024 * 1024 }),
  });
  return { w, beats };
}

describe('heartbeat writer', () => {
  it('writes on start and every interval on the injected clock, and publishes on the bus', () => {
    ws = makeWorkspace();
    const clock = new TestClock(Date.UTC(2024, 0, 1));
    const { w, beats } = writer(clock, ws.heartbeatFile);
    w.start();
    const read = (): Heartbeat => heartbeatSchema.parse(JSON.parse(readFileSync(ws.heartbeatFile, 'utf8')));
    expect(read()).toMatchObject({ state: 'starting', pid: 4242, uptimeSec: 0, intervalMs: 2000, rssMb: 100, symbols: ['BTCUSDT'] });
    w.setState('running');
    clock.advanceBy(2000);
    expect(read()).toMatchObject({ state: 'running', uptimeSec: 2, healthy: true, problems: [] });
    clock.advanceBy(4000);
    expect(read().uptimeSec).toBe(6);
    expect(beats).toHaveLength(4);
    w.stop();
    clock.advanceBy(10_000);
    expect(read().uptimeSec, 'no writes after stop').toBe(6);
  });

  it('a timed write that fails is reported once per streak and never throws into the timer', () => {
    ws = makeWorkspace();
    const clock = new TestClock();
    const errors: unknown[] = [];
    const bus = new Bus({ logger: silentLogger(), clock });
    const w = new HeartbeatWriter({
      clock,
      bus,
      file: ws.heartbeatFile,
      intervalMs: 1000,
      identity: { pid: 1, version: 'v', runId: 'r', mode: 'sim', market: 'spot', symbols: [], strategies: [] },
      onWriteError: (e) => errors.push(e),
    });
    w.start();
    // Replace the status folder by a file: every write now fails.
    rmSync(dirname(ws.heartbeatFile), { recursive: true });
    writeFileSync(dirname(ws.heartbeatFile), 'not a folder');
    expect(() => clock.advanceBy(3000), 'the timer never throws').not.toThrow();
    expect(errors, 'one report for the whole streak').toHaveLength(1);
    // Fixed: writes resume, and a new failure is reported again.
    rmSync(dirname(ws.heartbeatFile));
    mkdirSync(dirname(ws.heartbeatFile));
    clock.advanceBy(1000);
    expect(JSON.parse(readFileSync(ws.heartbeatFile, 'utf8')).tsMs).toBe(clock.now());
    w.stop();
  });

  it('a block that is down makes the bot unhealthy, with the reason', () => {
    ws = makeWorkspace();
    const clock = new TestClock();
    const { w } = writer(clock, ws.heartbeatFile);
    w.setState('running');
    w.setBlock('feed', { status: 'down', detail: 'no connection for 30 s' });
    const hb = w.write();
    expect(hb.healthy).toBe(false);
    expect(hb.problems).toEqual(['feed is down: no connection for 30 s']);
  });

  it('is atomic: a reader looping while a writer loops never sees a partial file', async () => {
    ws = makeWorkspace();
    const clock = new TestClock();
    writer(clock, ws.heartbeatFile).w.write();
    // The writer is a real second process, so reads and writes truly overlap.
    const child = spawn(process.execPath, ['--import', 'tsx', `${REPO_ROOT}/tests/support/heartbeat-writer-loop.ts`, ws.heartbeatFile, '3000'], { cwd: REPO_ROOT, stdio: 'inherit' });
    let done = false;
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => ((done = true), r(code))));
    let reads = 0;
    let sizes = new Set<number>();
    const bad: string[] = [];
    while (!done) {
      const text = readFileSync(ws.heartbeatFile, 'utf8');
      reads++;
      sizes.add(text.length);
      try {
        heartbeatSchema.parse(JSON.parse(text));
      } catch {
        bad.push(text.slice(0, 80));
      }
      // Yield now and then so the exit event can arrive.
      if (reads % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await exited).toBe(0);
    expect(bad, 'invalid reads').toEqual([]);
    expect(reads, 'the reader really overlapped the writer').toBeGreaterThan(200);
    expect(sizes.size, 'the file really changed size while being read').toBeGreaterThan(20);
    sizes = new Set();
  });
});

describe('status verdict', () => {
  function fileWith(patch: Partial<Heartbeat>, now: number): string {
    const clock = new TestClock(now - 1000);
    const { w } = writer(clock, ws.heartbeatFile);
    w.setState('running');
    const hb = { ...w.write(), ...patch };
    writeFileSync(ws.heartbeatFile, JSON.stringify(hb));
    return ws.heartbeatFile;
  }

  it('healthy when fresh and healthy', () => {
    ws = makeWorkspace();
    const now = Date.UTC(2024, 0, 1);
    const v = judgeHeartbeatFile(fileWith({}, now), now);
    expect(v.healthy).toBe(true);
    expect(formatStatus(v)).toMatch(/status:\s+HEALTHY[\s\S]*state:\s+running \(pid 4242/);
  });

  it('stale at more than 3 intervals, not at exactly 3', () => {
    ws = makeWorkspace();
    const t = Date.UTC(2024, 0, 1);
    const file = fileWith({ tsMs: t }, t);
    expect(judgeHeartbeatFile(file, t + 6000).healthy, 'exactly 3 intervals').toBe(true);
    const v = judgeHeartbeatFile(file, t + 6001);
    expect(v.healthy).toBe(false);
    expect(v.reasons[0]).toMatch(/heartbeat is 6\.0 s old \(limit 6\.0 s = 3 intervals\)/);
  });

  it('unhealthy when the bot says so, when the file is missing, or not a heartbeat', () => {
    ws = makeWorkspace();
    const now = Date.UTC(2024, 0, 1);
    expect(judgeHeartbeatFile(fileWith({ healthy: false, problems: ['feed is down'] }, now), now)).toMatchObject({ healthy: false, reasons: ['feed is down'] });
    expect(judgeHeartbeatFile(`${ws.dir}/nope.json`, now).reasons[0]).toMatch(/no heartbeat at .*nope\.json: is the bot running\?/);
    writeFileSync(ws.heartbeatFile, '{"ts": 1');
    expect(judgeHeartbeatFile(ws.heartbeatFile, now).reasons[0]).toMatch(/not valid JSON/);
    writeFileSync(ws.heartbeatFile, '{"ts": "x"}');
    expect(judgeHeartbeatFile(ws.heartbeatFile, now).reasons[0]).toMatch(/is not a heartbeat/);
  });
});
