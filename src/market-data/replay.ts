/**
 * Replays Binance kline dump files as Binance streams them: for each minute,
 * two in-progress updates (x=false) along the candle's path, then the closed
 * candle (x=true). Several symbols advance together, minute by minute.
 *
 * The path inside a candle is open -> first extreme -> second extreme ->
 * close, taking the low first on an up candle and the high first on a down
 * candle (the usual OHLC path assumption). Each leg is one price step for
 * the matching engine, so resting orders and stops fill where the path
 * crosses them.
 *
 * Speed: a multiple of real time (1 = a minute per minute, 60 = a minute per
 * second), or 'max': as fast as the slowest WebSocket client reads.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Dec } from '../core/decimal.ts';
import { readKlineFile, type KlineFileIssue, type RawKline } from './kline-files.ts';
import type { Market } from '../model/market.ts';
import type { PriceStep } from '../venues/sim/types.ts';

export interface ReplaySource {
  readonly market: Market;
  readonly symbol: string;
  readonly files: readonly string[];
}

export type ReplaySpeed = number | 'max';

export interface ReplaySink {
  /** An in-progress update (closed=false) or the closed candle, with the price step that led to it. */
  onKline(market: Market, symbol: string, k: RawKline, closed: boolean, step: PriceStep): void;
  /** Wraps the delivery of one phase of one minute (all symbols), e.g. to batch socket writes. */
  batch?(fn: () => void): void;
  /** Called between minutes when pacing 'max': resolves when clients have drained. */
  backpressure?(): Promise<void>;
  onIssue?(issue: KlineFileIssue): void;
}

interface Cursor {
  source: ReplaySource;
  iter: Iterator<RawKline>;
  next: RawKline | undefined;
}

const THIRD = new Dec(1).div(3);

export class KlineReplay {
  private stopped = false;
  private readonly cursors: Cursor[];
  readonly done: Promise<{ candles: number }>;
  private resolveDone!: (v: { candles: number }) => void;
  private started = false;
  candles = 0;

  constructor(
    sources: readonly ReplaySource[],
    private readonly speed: ReplaySpeed,
    private readonly sink: ReplaySink,
  ) {
    this.cursors = sources.map((source) => {
      const iter = chain(source.files, sink.onIssue);
      return { source, iter, next: iter.next().value as RawKline | undefined };
    });
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    if (this.speed === 'max') {
      // Full speed: 64 minutes at a time inside one write batch, then let the
      // clients drain (and I/O run) before the next chunk.
      let more = true;
      while (more && !this.stopped) {
        const chunk = (): void => {
          for (let i = 0; i < 64 && more && !this.stopped; i++) {
            const legs = this.nextMinute();
            if (!legs) more = false;
            else for (let phase = 0; phase < 3; phase++) this.emitPhase(legs, phase);
          }
        };
        if (this.sink.batch) this.sink.batch(chunk);
        else chunk();
        if (this.sink.backpressure) await this.sink.backpressure();
        else await new Promise((r) => setImmediate(r));
      }
    } else {
      // Paced: each minute of data takes 60 s / speed, split over its three frames.
      const phaseMs = 60_000 / this.speed / 3;
      for (let legs = this.nextMinute(); legs && !this.stopped; legs = this.nextMinute()) {
        for (let phase = 0; phase < 3 && !this.stopped; phase++) {
          const current = legs;
          if (this.sink.batch) this.sink.batch(() => this.emitPhase(current, phase));
          else this.emitPhase(current, phase);
          await sleep(phaseMs);
        }
      }
    }
    this.resolveDone({ candles: this.candles });
  }

  /** Takes the next minute's candle of every source that has one; undefined when all are exhausted. */
  private nextMinute(): Leg[] | undefined {
    let t = Infinity;
    for (const c of this.cursors) if (c.next && c.next.openTime < t) t = c.next.openTime;
    if (t === Infinity) return undefined;
    const legs: Leg[] = [];
    for (const c of this.cursors) {
      if (c.next?.openTime !== t) continue;
      legs.push({ c, k: c.next, path: pathOf(c.next) });
      c.next = c.iter.next().value as RawKline | undefined;
      this.candles++;
    }
    return legs;
  }

  /** Phase 0 and 1: in-progress updates after the first and second leg; phase 2: the closed candle. */
  private emitPhase(legs: readonly Leg[], phase: number): void {
    for (const { c, k, path } of legs) {
      const closed = phase === 2;
      const from = path[phase]!;
      const to = path[phase + 1]!;
      const volume = new Dec(k.volume);
      let shown = k;
      if (!closed) {
        const upto = path.slice(0, phase + 2);
        const high = upto.reduce((a, b) => Dec.max(a, b));
        const low = upto.reduce((a, b) => Dec.min(a, b));
        shown = { ...k, high: high.toFixed(), low: low.toFixed(), close: to.toFixed(), volume: volume.times(phase + 1).times(THIRD).toDecimalPlaces(8).toFixed() };
      }
      const step: PriceStep = { open: from, high: Dec.max(from, to), low: Dec.min(from, to), last: to, volume: volume.times(THIRD) };
      this.sink.onKline(c.source.market, c.source.symbol, shown, closed, step);
    }
  }
}

interface Leg {
  c: Cursor;
  k: RawKline;
  path: [Dec, Dec, Dec, Dec];
}

/** The four path points of a candle: open, first extreme, second extreme, close. */
function pathOf(k: RawKline): [Dec, Dec, Dec, Dec] {
  const o = new Dec(k.open);
  const h = new Dec(k.high);
  const l = new Dec(k.low);
  const c = new Dec(k.close);
  return c.gte(o) ? [o, l, h, c] : [o, h, l, c];
}

function* chain(files: readonly string[], onIssue: ((i: KlineFileIssue) => void) | undefined): Generator<RawKline> {
  for (const f of files) yield* readKlineFile(f, onIssue ? { onIssue } : {});
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Guesses (market, symbol) from a Binance dump file name such as BTCUSDT-1m-2024-01.csv.gz. */
export function sourceFromFile(file: string, market?: Market): { market: Market; symbol: string } | undefined {
  const base = file.split('/').pop() ?? file;
  const m = /^([A-Z0-9]{2,20})-1m-/.exec(base);
  if (!m) return undefined;
  return { market: market ?? (/spot/i.test(file) ? 'spot' : 'futures'), symbol: m[1]! };
}

/** Expands folders into their kline files and groups files by (market, symbol), in name order. */
export function replaySources(paths: readonly string[], market?: Market): ReplaySource[] | { error: string } {
  const files: string[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    let st;
    try {
      st = statSync(abs);
    } catch {
      return { error: `no such file or folder: ${p}` };
    }
    if (st.isDirectory()) files.push(...readdirSync(abs).filter((f) => /\.(csv|csv\.gz|zip)$/.test(f)).sort().map((f) => join(abs, f)));
    else files.push(abs);
  }
  const groups = new Map<string, ReplaySource & { files: string[] }>();
  for (const f of files) {
    const src = sourceFromFile(f, market);
    if (!src) return { error: `cannot tell the symbol from ${f}: expected a Binance dump name such as BTCUSDT-1m-2024-01.csv.gz` };
    const k = `${src.market}:${src.symbol}`;
    const g = groups.get(k) ?? { ...src, files: [] };
    g.files.push(f);
    groups.set(k, g);
  }
  return [...groups.values()];
}
