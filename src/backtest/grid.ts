/**
 * Parameter grids for the optimizer: `--grid period=10..30:2,oversold=20..35:5,allowShort=true|false`.
 *
 *   name=start..end:step   an inclusive range; the step is required (a
 *                          range without one is ambiguous: 1 or 0.1?)
 *   name=a|b|c             a list; true/false become booleans, numbers
 *                          numbers, anything else stays a string (the
 *                          strategy's schema decides what it accepts)
 *   name=v                 one value (a fixed param, written in the grid)
 *
 * Decimal ranges are computed as start + i * step rounded to the decimals
 * written (0.5..2:0.25 gives 0.5, 0.75, ... 2 exactly, never 1.2500000000000002),
 * so a value read back from the database or written into a YAML is the one
 * the user typed.
 */
import { TraderError } from '../core/errors.ts';

export type GridValue = number | boolean | string;
/** Parameter name -> the values to try, in the order they are tried. */
export type Grid = Readonly<Record<string, readonly GridValue[]>>;
export type ParamSet = Readonly<Record<string, GridValue>>;

/** Past this many sets a grid is almost certainly a typo (a step of 0.001); refuse rather than run for days. */
export const MAX_GRID_SETS = 100_000;

/** A bad --grid (or --walk-forward) option: the CLI exits 64. */
export class GridError extends TraderError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Plain decimals only: an exponent (1e-3) has no "decimals written" to round to.
const NUMBER = /^-?\d+(\.\d+)?$/;
const RANGE = /^(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)(?::(.*))?$/;

function decimals(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

function scalar(raw: string): GridValue {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (NUMBER.test(raw)) return Number(raw);
  return raw;
}

/** Values of one token's right-hand side (the token is quoted in errors). */
function valuesOf(name: string, rhs: string, token: string): GridValue[] {
  const range = RANGE.exec(rhs);
  if (range) {
    const [, a, b, stepText] = range;
    if (stepText === undefined) throw new GridError(`--grid ${JSON.stringify(token)}: a range needs a step, e.g. ${name}=${a}..${b}:1`);
    if (!NUMBER.test(stepText) || Number(stepText) <= 0) throw new GridError(`--grid ${JSON.stringify(token)}: the step must be a positive number such as 1 or 0.25, got ${JSON.stringify(stepText)}`);
    const start = Number(a);
    const end = Number(b);
    const step = Number(stepText);
    if (end < start) throw new GridError(`--grid ${JSON.stringify(token)}: the range ends (${b}) before it starts (${a})`);
    const places = Math.max(decimals(a!), decimals(stepText));
    const round = (x: number): number => Number(x.toFixed(places));
    // Rounded before the floor: (2 - 0.5) / 0.25 may come out as 5.999999999.
    const count = Math.floor(Number(((end - start) / step).toFixed(9))) + 1;
    if (count > MAX_GRID_SETS) throw new GridError(`--grid ${JSON.stringify(token)}: ${count} values, more than the ${MAX_GRID_SETS} sets a grid may have; use a larger step`);
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(round(start + i * step));
    return out;
  }
  if (rhs.includes('..')) throw new GridError(`--grid ${JSON.stringify(token)}: expected a range such as ${name}=10..30:2 (plain numbers, inclusive, with a step)`);
  const parts = rhs.split('|');
  if (parts.some((p) => p.trim() === '')) throw new GridError(`--grid ${JSON.stringify(token)}: empty value; a list is written a|b|c`);
  const values = parts.map((p) => scalar(p.trim()));
  const seen = new Set<string>();
  for (const v of values) {
    const k = `${typeof v}:${String(v)}`;
    if (seen.has(k)) throw new GridError(`--grid ${JSON.stringify(token)}: ${JSON.stringify(v)} is listed twice`);
    seen.add(k);
  }
  return values;
}

/**
 * Parses a --grid string (tokens separated by commas; the option may be
 * repeated, pass every occurrence). Names keep the order written.
 */
export function parseGrid(specs: string | readonly string[]): Record<string, GridValue[]> {
  const grid: Record<string, GridValue[]> = {};
  const tokens = (typeof specs === 'string' ? [specs] : specs).flatMap((s) => s.split(',')).map((t) => t.trim());
  if (tokens.length === 0 || tokens.every((t) => t === '')) throw new GridError('--grid is required, e.g. --grid period=10..30:2,oversold=20..35:5');
  for (const token of tokens) {
    if (token === '') throw new GridError('--grid: empty entry (two commas in a row, or a trailing comma)');
    const eq = token.indexOf('=');
    if (eq < 0) throw new GridError(`--grid ${JSON.stringify(token)}: expected name=values, e.g. period=10..30:2 or allowShort=true|false`);
    const name = token.slice(0, eq).trim();
    const rhs = token.slice(eq + 1).trim();
    if (!NAME.test(name)) throw new GridError(`--grid ${JSON.stringify(token)}: ${JSON.stringify(name)} is not a parameter name`);
    if (rhs === '') throw new GridError(`--grid ${JSON.stringify(token)}: no values after "="`);
    if (Object.hasOwn(grid, name)) throw new GridError(`--grid ${JSON.stringify(token)}: ${name} is given twice`);
    grid[name] = valuesOf(name, rhs, token);
  }
  gridSize(grid);
  return grid;
}

/** Number of sets; throws past MAX_GRID_SETS (checked before any set is built). */
export function gridSize(grid: Grid): number {
  let n = 1;
  for (const values of Object.values(grid)) {
    n *= values.length;
    if (n > MAX_GRID_SETS) {
      const sizes = Object.entries(grid).map(([k, v]) => `${k}: ${v.length}`).join(', ');
      throw new GridError(`--grid has more than ${MAX_GRID_SETS} parameter sets (${sizes}); use larger steps or fewer values`);
    }
  }
  return n;
}

/**
 * Every combination, in a stable order: like nested loops in the order the
 * names were written, the last name varying fastest. Ties in the optimizer
 * go to the first set in this order, so the order is part of the result.
 */
export function cartesian(grid: Grid): ParamSet[] {
  gridSize(grid);
  const names = Object.keys(grid);
  let sets: Record<string, GridValue>[] = [{}];
  for (const name of names) {
    const next: Record<string, GridValue>[] = [];
    for (const s of sets) for (const v of grid[name]!) next.push({ ...s, [name]: v });
    sets = next;
  }
  return sets;
}

/** "period=10 oversold=25" (for tables and messages). */
export function formatParams(p: Readonly<Record<string, unknown>>): string {
  return Object.entries(p).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}
