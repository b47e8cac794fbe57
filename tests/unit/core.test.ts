import { describe, expect, it } from 'vitest';
import { TestClock, utcDay } from '../../src/core/clock.ts';
import { dec, Dec, decToString, isDecimalString } from '../../src/core/decimal.ts';

describe('TestClock', () => {
  it('fires timers in due order at their due time, and repeats intervals', () => {
    const clock = new TestClock(1000);
    const fired: string[] = [];
    clock.every(100, () => fired.push(`tick@${clock.now()}`));
    clock.after(250, () => fired.push(`once@${clock.now()}`));
    const cancelled = clock.after(150, () => fired.push('never'));
    cancelled.cancel();
    clock.advanceTo(1300);
    expect(fired).toEqual(['tick@1100', 'tick@1200', 'once@1250', 'tick@1300']);
    expect(clock.now()).toBe(1300);
    expect(() => clock.advanceTo(1299)).toThrow(/cannot go back/);
  });

  it('utcDay uses UTC boundaries', () => {
    expect(utcDay(Date.UTC(2024, 0, 1, 23, 59, 59, 999))).toBe('2024-01-01');
    expect(utcDay(Date.UTC(2024, 0, 2))).toBe('2024-01-02');
  });
});

describe('Decimal setup', () => {
  it('is exact where floats are not', () => {
    expect(dec('0.1').plus('0.2').eq('0.3')).toBe(true);
    expect(decToString(dec('1e-8').times(3))).toBe('0.00000003');
    expect(decToString(dec('123456789.12345678').times('100000'))).toBe('12345678912345.678');
  });

  it('refuses NaN and Infinity', () => {
    expect(() => dec(Number.NaN)).toThrow(/finite/);
    expect(() => dec(Infinity)).toThrow(/finite/);
    expect(isDecimalString('1.5e-3')).toBe(true);
    expect(isDecimalString('1,5')).toBe(false);
  });

  it('is a clone: changing the global Decimal does not change ours', async () => {
    const { Decimal } = await import('decimal.js');
    const before = Decimal.precision;
    Decimal.set({ precision: 5 });
    try {
      expect(new Dec('1').div(3).toFixed().length).toBeGreaterThan(30);
    } finally {
      Decimal.set({ precision: before });
    }
  });
});
