/**
 * Rolling volume profile over the last `period` bars. TA-Lib has none; this
 * is the definition, and the tests check it against a direct recomputation.
 *
 * Bins. lo = lowest low and hi = highest high of the window; the range is cut
 * into `bins` equal bins of width w = (hi - lo) / bins, with edges
 * e_k = lo + k * w for k < bins and e_bins = hi. Bin k is [e_k, e_k+1), the
 * last bin also includes hi.
 *
 * Volume. Each bar's volume is spread uniformly over its own [low, high]: bin
 * k receives volume * overlap([low, high], [e_k, e_k+1]) / (high - low). A bar
 * with high == low puts all its volume in the bin containing that price.
 *
 * Outputs.
 * - poc: the centre, lo + (k + 0.5) * w, of the bin with the most volume
 *   (the lowest such bin on a tie);
 * - value area: starting from the POC bin, repeatedly add whichever
 *   neighbouring bin (just below the area, or just above it) has more volume,
 *   the upper one on a tie, until the area holds at least valueAreaPct of the
 *   window's volume; valueAreaLow is the lower edge of its lowest bin and
 *   valueAreaHigh the upper edge of its highest bin;
 * - when the whole window is one price (hi == lo), all three are that price.
 * The profile is defined once `period` bars have been seen.
 *
 * Cost. The bin edges move with the window's low and high, so every bar's
 * split changes on every update and the histogram cannot be patched by adding
 * one bar and removing another. Instead the bars' lows and highs are kept as a
 * sorted list of breakpoints (each carrying the change in volume density
 * there, volume / (high - low), or a point mass for a zero-range bar). An
 * update removes the leaving bar's breakpoints and inserts the new bar's
 * (binary search plus a memmove of at most 2*period doubles), then one merge
 * sweep over breakpoints and bin edges integrates the density into the bins:
 * O(period + bins) per update, against O(period * bins) for rebuilding the
 * histogram bar by bar. Nothing is allocated per update except the result.
 */
import { checkBar, checkPeriod } from './common.ts';
import type { Bar, Indicator, VolumeProfileValue } from './types.ts';

export class VolumeProfile implements Indicator<Bar, VolumeProfileValue> {
  // The window's bars, to remove their breakpoints when they leave.
  private readonly lows: Float64Array;
  private readonly highs: Float64Array;
  private readonly volumes: Float64Array;
  private pos = 0;
  private count = 0;
  // Breakpoints sorted by price; `slope` is the change in density there, `mass` a point mass.
  private readonly bpPrice: Float64Array;
  private readonly bpSlope: Float64Array;
  private readonly bpMass: Float64Array;
  private nbp = 0;
  private readonly binVolume: Float64Array;
  private lo = 0;
  private hi = 0;
  private current: VolumeProfileValue | undefined;

  constructor(
    readonly period: number,
    readonly bins: number,
    readonly valueAreaPct: number,
  ) {
    checkPeriod('VolumeProfile', 'period', period, 1);
    checkPeriod('VolumeProfile', 'bins', bins, 1);
    if (!(valueAreaPct > 0 && valueAreaPct <= 1)) throw new RangeError(`VolumeProfile: valueAreaPct must be in (0, 1], got ${valueAreaPct}`);
    this.lows = new Float64Array(period);
    this.highs = new Float64Array(period);
    this.volumes = new Float64Array(period);
    this.bpPrice = new Float64Array(2 * period);
    this.bpSlope = new Float64Array(2 * period);
    this.bpMass = new Float64Array(2 * period);
    this.binVolume = new Float64Array(bins);
  }

  get value(): VolumeProfileValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  /** Lowest low of the current window (valid when ready). */
  get windowLow(): number {
    return this.lo;
  }

  /** Highest high of the current window (valid when ready). */
  get windowHigh(): number {
    return this.hi;
  }

  /** Copies the current histogram (volume per bin, lowest bin first) into `out`, or a new array. */
  binVolumes(out: Float64Array = new Float64Array(this.bins)): Float64Array {
    out.set(this.binVolume);
    return out;
  }

  update(bar: Bar): VolumeProfileValue | undefined {
    checkBar('VolumeProfile', bar, true);
    if (bar.high < bar.low) throw new RangeError(`VolumeProfile: bar high ${bar.high} is below its low ${bar.low}`);
    if (bar.volume < 0) throw new RangeError(`VolumeProfile: bar volume ${bar.volume} is negative`);
    const period = this.period;
    const at = this.pos;
    if (this.count === period) this.removeBar(this.lows[at]!, this.highs[at]!, this.volumes[at]!);
    else this.count++;
    this.lows[at] = bar.low;
    this.highs[at] = bar.high;
    this.volumes[at] = bar.volume;
    this.pos = at + 1 === period ? 0 : at + 1;
    this.addBar(bar.low, bar.high, bar.volume);
    if (this.count < period) return undefined;
    return (this.current = this.compute());
  }

  reset(): void {
    this.pos = 0;
    this.count = 0;
    this.nbp = 0;
    this.binVolume.fill(0);
    this.lo = 0;
    this.hi = 0;
    this.current = undefined;
  }

  private addBar(low: number, high: number, volume: number): void {
    if (high > low) {
      const density = volume / (high - low);
      this.insert(low, density, 0);
      this.insert(high, -density, 0);
    } else {
      this.insert(low, 0, volume);
    }
  }

  private removeBar(low: number, high: number, volume: number): void {
    // Same arithmetic as addBar, so the stored entries compare equal.
    if (high > low) {
      const density = volume / (high - low);
      this.remove(low, density, 0);
      this.remove(high, -density, 0);
    } else {
      this.remove(low, 0, volume);
    }
  }

  private insert(price: number, slope: number, mass: number): void {
    const prices = this.bpPrice;
    // First index with a greater price (after equal ones).
    let a = 0;
    let b = this.nbp;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (prices[m]! <= price) a = m + 1;
      else b = m;
    }
    if (a < this.nbp) {
      prices.copyWithin(a + 1, a, this.nbp);
      this.bpSlope.copyWithin(a + 1, a, this.nbp);
      this.bpMass.copyWithin(a + 1, a, this.nbp);
    }
    prices[a] = price;
    this.bpSlope[a] = slope;
    this.bpMass[a] = mass;
    this.nbp++;
  }

  private remove(price: number, slope: number, mass: number): void {
    const prices = this.bpPrice;
    // First index with this price, then the matching entry among equal prices.
    let a = 0;
    let b = this.nbp;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (prices[m]! < price) a = m + 1;
      else b = m;
    }
    while (a < this.nbp && prices[a] === price && !(this.bpSlope[a] === slope && this.bpMass[a] === mass)) a++;
    if (a >= this.nbp || prices[a] !== price) throw new Error(`VolumeProfile: breakpoint ${price} of a leaving bar is missing (internal state corrupt)`);
    const n = --this.nbp;
    if (a < n) {
      prices.copyWithin(a, a + 1, n + 1);
      this.bpSlope.copyWithin(a, a + 1, n + 1);
      this.bpMass.copyWithin(a, a + 1, n + 1);
    }
  }

  private compute(): VolumeProfileValue {
    const n = this.nbp;
    const prices = this.bpPrice;
    const lo = prices[0]!;
    const hi = prices[n - 1]!;
    this.lo = lo;
    this.hi = hi;
    const bins = this.bins;
    const vol = this.binVolume;
    vol.fill(0);
    if (hi === lo) {
      // One price for the whole window: every volume is a point mass there.
      let total = 0;
      for (let i = 0; i < n; i++) total += this.bpMass[i]!;
      vol[0] = total;
      return { poc: lo, valueAreaHigh: lo, valueAreaLow: lo };
    }
    const width = (hi - lo) / bins;

    // Merge sweep: integrate the piecewise-constant density between breakpoints.
    let k = 0;
    let nextEdge = bins === 1 ? hi : lo + width;
    let x = lo;
    let density = 0;
    for (let i = 0; i < n; i++) {
      const p = prices[i]!;
      while (k < bins - 1 && p >= nextEdge) {
        vol[k]! += density * (nextEdge - x);
        x = nextEdge;
        k++;
        nextEdge = k + 1 === bins ? hi : lo + (k + 1) * width;
      }
      vol[k]! += density * (p - x) + this.bpMass[i]!;
      x = p;
      density += this.bpSlope[i]!;
    }

    // Cancellation in the running density can leave -1e-12-sized dust in an empty bin.
    let total = 0;
    let poc = 0;
    for (let i = 0; i < bins; i++) {
      let v = vol[i]!;
      if (v < 0) vol[i] = v = 0;
      total += v;
      if (v > vol[poc]!) poc = i;
    }

    const target = this.valueAreaPct * total;
    let low = poc;
    let high = poc;
    let area = vol[poc]!;
    while (area < target) {
      const below = low > 0 ? vol[low - 1]! : -1;
      const above = high < bins - 1 ? vol[high + 1]! : -1;
      if (below < 0 && above < 0) break;
      if (above >= below) area += vol[++high]!;
      else area += vol[--low]!;
    }
    return {
      poc: lo + (poc + 0.5) * width,
      valueAreaLow: lo + low * width,
      valueAreaHigh: high + 1 === bins ? hi : lo + (high + 1) * width,
    };
  }
}
