/**
 * Writes status/heartbeat.json every HEARTBEAT_INTERVAL_MS. Each write goes
 * to a temp file in the same folder and is renamed over the old one: rename
 * is atomic, so a reader sees the old file or the new one, never half of one.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Bus } from '../bus/bus.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { BLOCK_NAMES, type BlockName, type Heartbeat, type HealthBlock, type LifecycleState } from './heartbeat-schema.ts';

export interface HeartbeatIdentity {
  pid: number;
  version: string;
  runId: string;
  mode: string;
  market: string;
  symbols: readonly string[];
  strategies: readonly string[];
}

export interface HeartbeatWriterDeps {
  clock: Clock;
  bus: Bus;
  file: string;
  intervalMs: number;
  identity: HeartbeatIdentity;
  /** Process figures; injectable so tests need not depend on the real process. */
  memory?: () => { rss: number; heapUsed: number };
  /**
   * Called when a timed write fails (disk full, folder removed). The
   * heartbeat only observes: a failed write must not stop trading; the file
   * going stale is what tells the outside world.
   */
  onWriteError?: (err: unknown) => void;
  /** Cuts known secret values out of the file's text (error texts inside blocks could carry one). */
  scrub?: (text: string) => string;
}

/** Breakers and notifiers, read at each write. A breaker that guards trading (critical) and is OPEN makes the bot unhealthy. */
export interface HeartbeatExtras {
  breakers: Array<Heartbeat['breakers'][number] & { critical?: boolean }>;
  notifiers: Heartbeat['notifiers'];
}

const MB = 1024 * 1024;
/** Sampling interval of the event-loop monitor; Node's readings include it, so it is subtracted. */
const LAG_RESOLUTION_MS = 10;

export class HeartbeatWriter {
  private state: LifecycleState = 'starting';
  /** What the state is about: the start-up step being waited for, why the bot stopped. */
  private detail: string | undefined;
  /** Why the start is not coming up yet (a failed attempt being retried): makes the bot unhealthy. */
  private startProblem: string | undefined;
  private tradingState = 'n/a';
  private readonly blocks: Record<BlockName, HealthBlock>;
  private readonly startedAt: number;
  private timer: TimerHandle | undefined;
  private readonly lag: IntervalHistogram;
  private readonly tmpFile: string;
  private lastWritten: Heartbeat | undefined;
  private readonly blockProviders = new Map<BlockName, () => HealthBlock>();
  private strategiesProvider: (() => { instances: Heartbeat['instances']; configErrors: string[] }) | undefined;
  private extrasProvider: (() => HeartbeatExtras) | undefined;

  constructor(private readonly deps: HeartbeatWriterDeps) {
    this.startedAt = deps.clock.now();
    this.tmpFile = `${deps.file}.${deps.identity.pid}.tmp`;
    this.blocks = Object.fromEntries(BLOCK_NAMES.map((n) => [n, { status: 'n/a' }])) as Record<BlockName, HealthBlock>;
    this.lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    mkdirSync(dirname(deps.file), { recursive: true });
  }

  start(): void {
    this.lag.enable();
    this.write();
    this.timer = this.deps.clock.every(this.deps.intervalMs, () => this.writeOrReport());
  }

  /** Stops the timer; the final write is the caller's (after the DB is closed). */
  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.lag.disable();
  }

  /** The lifecycle state and, optionally, a line about it (absent: none). */
  setState(state: LifecycleState, detail?: string): void {
    this.state = state;
    this.detail = detail;
    if (state !== 'starting') this.startProblem = undefined;
  }

  /** A start-up step is failing and being retried (undefined: it is not). */
  setStartProblem(problem: string | undefined): void {
    this.startProblem = problem;
  }

  setTradingState(state: string): void {
    this.tradingState = state;
  }

  /** Where the strategy instances' status comes from (the host, once it exists). */
  setStrategies(provider: () => { instances: Heartbeat['instances']; configErrors: string[] }): void {
    this.strategiesProvider = provider;
  }

  setBlock(name: BlockName, block: HealthBlock): void {
    this.blocks[name] = block;
  }

  /** A block computed at every write (e.g. the feed's live connection figures). */
  setBlockProvider(name: BlockName, provider: () => HealthBlock): void {
    this.blockProviders.set(name, provider);
  }

  get last(): Heartbeat | undefined {
    return this.lastWritten;
  }

  private failing = false;

  /** The timed write: errors are reported once per failure streak, never thrown. */
  private writeOrReport(): void {
    try {
      this.write();
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.deps.onWriteError?.(err);
      this.failing = true;
    }
  }

  setExtras(provider: () => HeartbeatExtras): void {
    this.extrasProvider = provider;
  }

  /** Builds and writes the heartbeat now; also published on the bus. */
  write(): Heartbeat {
    const hb = this.build();
    this.lag.reset();
    const text = JSON.stringify(hb, null, 2) + '\n';
    writeFileSync(this.tmpFile, this.deps.scrub ? this.deps.scrub(text) : text);
    renameSync(this.tmpFile, this.deps.file);
    this.lastWritten = hb;
    if (!this.deps.bus.isClosed) this.deps.bus.publish('heartbeat', { kind: 'heartbeat', ts: hb.tsMs, state: hb.state, healthy: hb.healthy });
    return hb;
  }

  /** The heartbeat as of now, without writing it (/health and the control API's status). */
  build(): Heartbeat {
    const now = this.deps.clock.now();
    const mem = (this.deps.memory ?? process.memoryUsage)();
    for (const [name, provider] of this.blockProviders) this.blocks[name] = provider();
    const problems: string[] = [];
    if (this.state === 'stopping' || this.state === 'stopped') problems.push(`bot is ${this.state}${this.detail ? `: ${this.detail}` : ''}`);
    if (this.startProblem) problems.push(this.startProblem);
    for (const name of BLOCK_NAMES) {
      const b = this.blocks[name];
      if (b.status === 'down') problems.push(`${name} is down${b.detail ? `: ${b.detail}` : ''}`);
    }
    const extras = this.extrasProvider?.() ?? { breakers: [], notifiers: [] };
    for (const b of extras.breakers) {
      if (b.critical && b.state === 'OPEN') problems.push(`${b.name} circuit OPEN after ${b.consecutiveFailures} failures in a row${b.lastError ? ` (last: ${b.lastError})` : ''}; next try ${b.retryAt ?? 'soon'}`);
    }
    const lagMs = (ns: number): number => (this.lag.count > 0 ? round(Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS)) : 0);
    const pct = (p: number): number => lagMs(this.lag.percentile(p));
    const hb: Heartbeat = {
      ts: new Date(now).toISOString(),
      tsMs: now,
      ...this.deps.identity,
      symbols: [...this.deps.identity.symbols],
      strategies: [...this.deps.identity.strategies],
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSec: Math.round((now - this.startedAt) / 1000),
      state: this.state,
      ...(this.detail ? { detail: this.detail } : {}),
      healthy: problems.length === 0,
      problems,
      tradingState: this.tradingState,
      intervalMs: this.deps.intervalMs,
      feed: this.blocks.feed,
      userStream: this.blocks.userStream,
      db: this.blocks.db,
      reconcile: this.blocks.reconcile,
      risk: this.blocks.risk,
      protection: this.blocks.protection,
      eventLoopLagMs: { p50: pct(50), p99: pct(99), max: lagMs(this.lag.max) },
      rssMb: round(mem.rss / MB),
      heapUsedMb: round(mem.heapUsed / MB),
      faults: this.deps.bus.stats().faults,
      ...(this.strategiesProvider ? this.strategiesProvider() : { instances: [], configErrors: [] }),
      breakers: extras.breakers.map(({ critical: _critical, ...b }) => b),
      notifiers: extras.notifiers,
    };
    return hb;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
