/**
 * Where the optimizer's backtests run: in its own thread (one at a time) or
 * on a pool of worker threads (optionally with this thread as one more
 * slot). Both take BacktestRequest objects (plain JSON) and give back
 * metrics, so the optimizer does not know which it has, and a run gives
 * the same figures either way.
 *
 * The pool hands tasks out in FIFO order: to each loaded worker up to
 * DEPTH at a time and, optionally, to this thread. Tasks take seconds, so
 * the message round trip is noise and a finer split would not balance
 * better. Results are matched by task id, so which thread ran what never
 * changes the answer. A worker that dies fails every task in flight and
 * queued: the optimization stops with that error rather than retrying a
 * backtest that may kill the next worker the same way.
 *
 * Start-up is the pool's real cost: a worker loads its own copy of the
 * modules (tsx, zod, pino, the kernel and, through it, ccxt), about 4 s of
 * CPU on the 2-core box. That is why this thread can take tasks too, and
 * why a worker gets none before it says it is ready.
 */
import { Worker } from 'node:worker_threads';
import type { BacktestRequest } from './job.ts';
import { BacktestTaskRunner, fromTaskError, type ReadyMessage, type TaskMessage, type TaskOutcome, type TaskReply, type TaskRunnerDeps, type WorkerInit } from './optimize-task.ts';

export interface BacktestExecutor {
  /** How many backtests run at once. */
  readonly workers: number;
  run(request: BacktestRequest): Promise<TaskOutcome>;
  close(): Promise<void>;
}

/** workers = 1: the optimizer's own thread, no worker start-up to pay. */
export class InProcessExecutor implements BacktestExecutor {
  readonly workers = 1;
  private readonly runner: BacktestTaskRunner;
  private chain: Promise<unknown> = Promise.resolve();
  private stopped: Error | undefined;

  constructor(deps: TaskRunnerDeps) {
    this.runner = new BacktestTaskRunner(deps);
  }

  run(request: BacktestRequest): Promise<TaskOutcome> {
    // Serial: runs are CPU-bound; interleaving two in one thread only adds memory.
    const p = this.chain.then(() => {
      // After a failure (or close) the queued runs are dropped, as the pool does.
      if (this.stopped) throw this.stopped;
      return this.runner.run(request);
    });
    this.chain = p.catch((e: unknown) => {
      this.stopped ??= e instanceof Error ? e : new Error(String(e));
    });
    return p;
  }

  async close(): Promise<void> {
    this.stopped ??= new Error('optimizer executor closed');
    await this.chain;
  }
}

interface Pending {
  readonly id: number;
  readonly request: BacktestRequest;
  readonly resolve: (o: TaskOutcome) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Sent and not answered yet, oldest first (a worker answers in order). */
  readonly tasks: Pending[];
  /** Loaded: until then, with this thread running tasks too, the worker gets none (they would wait on its start-up while this thread idles). */
  ready: boolean;
}

/**
 * Tasks a worker holds at once: the one it runs and the next. While this
 * thread runs a backtest of its own it reads no message for a second or
 * more; with a second task already in its port, a worker that finishes
 * meanwhile goes straight on instead of waiting for us.
 */
const DEPTH = 2;

export interface PoolOptions {
  /** Backtests at once, this thread's included. */
  readonly workers: number;
  readonly init: WorkerInit;
  /**
   * Run backtests in this thread too (one of `workers`): it is otherwise idle
   * while it waits, and it needs no start-up, so it works while the threads
   * boot (seconds: each loads its own copy of the modules). A caller whose
   * event loop must stay responsive (a running bot) leaves this out.
   */
  readonly inThisThread?: TaskRunnerDeps;
}

export class OptimizePool implements BacktestExecutor {
  readonly workers: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly local: BacktestTaskRunner | undefined;
  private localRun: Promise<void> | undefined;
  private nextId = 1;
  private failed: Error | undefined;
  private closing = false;

  private constructor(opts: PoolOptions) {
    this.workers = opts.workers;
    this.local = opts.inThisThread ? new BacktestTaskRunner(opts.inThisThread) : undefined;
    const threads = opts.workers - (this.local ? 1 : 0);
    for (let i = 0; i < threads; i++) {
      // execArgv []: the parent's flags (vitest's, --import tsx) are not for the worker; it registers tsx itself.
      const worker = new Worker(new URL('./optimize-worker.js', import.meta.url), { execArgv: [], workerData: opts.init });
      const slot: Slot = { worker, tasks: [], ready: false };
      worker.on('message', (m: TaskReply | ReadyMessage) => this.onMessage(slot, m));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`optimizer worker exited with code ${code}`));
      });
      // An idle worker must not keep the process alive.
      worker.unref();
      this.slots.push(slot);
    }
  }

  static start(opts: PoolOptions): OptimizePool {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError(`workers must be a whole number >= 1, got ${opts.workers}`);
    return new OptimizePool(opts);
  }

  run(request: BacktestRequest): Promise<TaskOutcome> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<TaskOutcome>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, request, resolve, reject });
      // Not at once: the caller queues a whole grid in one go, and this
      // thread's first backtest would otherwise start before the rest is queued.
      queueMicrotask(() => this.dispatch());
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.failed ??= new Error('optimizer pool closed');
    for (const p of this.queue.splice(0)) p.reject(this.failed);
    // A backtest running in this thread reads the caller's store: wait for it before the caller closes that.
    await Promise.all([this.localRun, ...this.slots.map((s) => s.worker.terminate())]);
  }

  private dispatch(): void {
    if (this.failed) return;
    // Threads first, so they hold work before this thread stops reading messages to run one.
    for (let depth = 1; depth <= DEPTH; depth++) {
      for (const slot of this.slots) {
        if (slot.tasks.length >= depth || (this.local && !slot.ready)) continue;
        const next = this.queue.shift();
        if (!next) return;
        slot.tasks.push(next);
        slot.worker.ref();
        slot.worker.postMessage({ id: next.id, request: next.request } satisfies TaskMessage);
      }
    }
    if (this.local && !this.localRun) {
      const next = this.queue.shift();
      if (!next) return;
      const local = this.local;
      this.localRun = (async () => {
        try {
          next.resolve(await local.run(next.request));
        } catch (e) {
          next.reject(e as Error);
          this.fail(e as Error);
        }
      })().finally(() => {
        this.localRun = undefined;
        this.dispatch();
      });
    }
  }

  private onMessage(slot: Slot, m: TaskReply | ReadyMessage): void {
    if ('ready' in m) {
      slot.ready = true;
      this.dispatch();
      return;
    }
    const i = slot.tasks.findIndex((t) => t.id === m.id);
    if (i < 0) return;
    const [task] = slot.tasks.splice(i, 1);
    if (slot.tasks.length === 0) slot.worker.unref();
    if ('error' in m) task!.reject(fromTaskError(m.error));
    else task!.resolve(m.outcome);
    this.dispatch();
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const s of this.slots) for (const t of s.tasks.splice(0)) t.reject(e);
    for (const p of this.queue.splice(0)) p.reject(e);
  }
}
