/** Small zod building blocks shared by the settings schemas. */
import { z } from 'zod';
import { Dec, isDecimalString } from '../core/decimal.ts';

/**
 * A money or quantity value from YAML: a number or a numeric string, held as
 * Dec. YAML numbers are doubles, so write values with more than 15
 * significant digits as quoted strings.
 */
export function decimal(opts: { positive?: boolean; nonNegative?: boolean } = {}) {
  const label = opts.positive ? 'a decimal > 0' : opts.nonNegative ? 'a decimal >= 0' : 'a decimal';
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const text = typeof v === 'number' ? String(v) : v.trim();
      if (!isDecimalString(text)) {
        ctx.addIssue({ code: 'custom', message: `expected ${label}, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const d = new Dec(text);
      if ((opts.positive && !d.gt(0)) || (opts.nonNegative && d.isNeg())) {
        ctx.addIssue({ code: 'custom', message: `expected ${label}, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return d;
    })
    .describe(label);
}

/** A percentage in (0, 100]. */
export const percent = () => z.number().gt(0).max(100).describe('a percentage > 0 and <= 100');

export const positiveInt = (max = 1_000_000) => z.number().int().min(1).max(max);
