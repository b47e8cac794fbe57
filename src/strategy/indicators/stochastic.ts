/**
 * Slow stochastic, as TA_STOCH with SMA for both smoothings (MA type 0):
 *
 * - fast %K = (close - lowest low) / ((highest high - lowest low) / 100) over
 *   the last `kPeriod` bars, and 0 when that range is 0 (TA-Lib's division
 *   order and convention);
 * - slow %K = SMA(kSlowing) of fast %K;
 * - %D = SMA(dPeriod) of slow %K;
 * - both are reported once %D exists: lookback = (kPeriod-1) + (kSlowing-1) + (dPeriod-1).
 *
 * The highest high and lowest low come from monotonic deques (amortized O(1)).
 * The result object is new on every update (see macd.ts for why).
 */
import { checkBar, checkPeriod } from './common.ts';
import { Sma } from './moving-averages.ts';
import { RollingExtreme } from './rolling-extreme.ts';
import type { Bar, Indicator, StochasticValue } from './types.ts';

export class Stochastic implements Indicator<Bar, StochasticValue> {
  private readonly highest: RollingExtreme;
  private readonly lowest: RollingExtreme;
  private readonly slowK: Sma;
  private readonly slowD: Sma;
  private count = 0;
  private current: StochasticValue | undefined;

  constructor(
    readonly kPeriod: number,
    readonly kSlowing: number,
    readonly dPeriod: number,
  ) {
    checkPeriod('Stochastic', 'kPeriod', kPeriod, 1);
    checkPeriod('Stochastic', 'kSlowing', kSlowing, 1);
    checkPeriod('Stochastic', 'dPeriod', dPeriod, 1);
    this.highest = new RollingExtreme(kPeriod, true);
    this.lowest = new RollingExtreme(kPeriod, false);
    // %K is bounded to 0..100, so its running sums cannot drift far; one total
    // forever keeps the output bit-identical to a single TA_STOCH call.
    this.slowK = new Sma(kSlowing, 0);
    this.slowD = new Sma(dPeriod, 0);
  }

  get value(): StochasticValue | undefined {
    return this.current;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  update(bar: Bar): StochasticValue | undefined {
    checkBar('Stochastic', bar, false);
    const highest = this.highest.push(bar.high);
    const lowest = this.lowest.push(bar.low);
    if (this.count < this.kPeriod && ++this.count < this.kPeriod) return undefined;
    const diff = (highest - lowest) / 100;
    const fastK = diff !== 0 ? (bar.close - lowest) / diff : 0;
    const k = this.slowK.update(fastK);
    if (k === undefined) return undefined;
    const d = this.slowD.update(k);
    if (d === undefined) return undefined;
    return (this.current = { k, d });
  }

  reset(): void {
    this.highest.reset();
    this.lowest.reset();
    this.slowK.reset();
    this.slowD.reset();
    this.count = 0;
    this.current = undefined;
  }
}
