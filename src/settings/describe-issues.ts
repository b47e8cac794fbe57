/**
 * Turns zod issues into ConfigIssues a person can act on:
 *   strategies/rsi/BTCUSDT.yaml:4 params.period: expected integer >= 2, got "fourteen"
 * "Expected" is read from the schema at the issue's path when possible (it
 * knows the bounds and choices), falling back to zod's own wording.
 */
import type { z } from 'zod';
import type { ConfigIssue } from '../core/errors.ts';

type AnySchema = z.core.$ZodType;
type Issue = z.core.$ZodIssue;

export interface IssueContext {
  source: string;
  /** Line lookup for a path (YAML files); undefined for the environment. */
  lineOf?: (path: readonly PropertyKey[], key?: boolean) => number | undefined;
  /** Prefix for field names (none for YAML files). */
  fieldOf?: (path: readonly PropertyKey[]) => string;
}

export function describeIssues(schema: AnySchema, input: unknown, issues: readonly Issue[], ctx: IssueContext): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const fieldOf = ctx.fieldOf ?? ((p: readonly PropertyKey[]) => p.map(String).join('.'));
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schemaAt(schema, input, path));
      for (const key of issue.keys) {
        const hint = known ? suggestion(key, known) : '';
        out.push({
          source: ctx.source,
          line: ctx.lineOf?.([...path, key], true),
          field: fieldOf([...path, key]),
          message: `unknown key${hint}${known ? ` (allowed here: ${known.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    const value = valueAt(input, path);
    const expected = expectedFor(issue, schemaAt(schema, input, path));
    const message =
      issue.code === 'custom'
        ? issue.message
        : value === undefined
          ? `required: expected ${expected}, got nothing`
          : `expected ${expected}, got ${show(value)}`;
    out.push({ source: ctx.source, line: ctx.lineOf?.(path), field: fieldOf(path), message });
  }
  return out;
}

export function show(value: unknown): string {
  let s: string;
  try {
    s = typeof value === 'string' ? JSON.stringify(value) : value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function expectedFor(issue: Issue, schema: AnySchema | undefined): string {
  const described = schema ? describeSchema(schema) : undefined;
  if (described) return described;
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'int' ? 'integer' : issue.expected;
    case 'invalid_value':
      return 'one of ' + issue.values.map((v) => JSON.stringify(v)).join(' | ');
    case 'invalid_union':
      return 'options' in issue && Array.isArray((issue as { options?: unknown }).options)
        ? 'one of ' + ((issue as unknown as { options: unknown[] }).options.map((v) => JSON.stringify(v)).join(' | '))
        : 'one of the allowed forms';
    case 'too_small':
      return `${issue.origin} ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.origin} ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

/** A short human description of what a leaf schema accepts. */
export function describeSchema(schema: AnySchema): string | undefined {
  const desc = (schema as { description?: string }).description;
  if (desc) return desc;
  const def = schema._zod.def as { type: string; innerType?: AnySchema; entries?: Record<string, unknown>; values?: unknown[]; in?: AnySchema };
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
      return describeSchema(def.innerType!);
    case 'pipe':
      return describeSchema(def.in!);
    case 'enum':
      return 'one of ' + Object.values(def.entries!).map((v) => JSON.stringify(v)).join(' | ');
    case 'literal':
      return def.values!.map((v) => JSON.stringify(v)).join(' | ');
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a string';
    case 'number': {
      // Bounds and integer-ness from the schema's checks (zod fills _zod.bag lazily).
      const checks = ((schema._zod.def as { checks?: { _zod: { def: { check: string; value?: number; inclusive?: boolean; format?: string } } }[] }).checks ?? []).map((c) => c._zod.def);
      let kind = 'number';
      let min: { value: number; inclusive: boolean } | undefined;
      let max: { value: number; inclusive: boolean } | undefined;
      for (const c of checks) {
        if (c.check === 'number_format' && c.format && /int/.test(c.format)) kind = 'integer';
        else if (c.check === 'greater_than' && c.value !== undefined) min = { value: c.value, inclusive: c.inclusive ?? false };
        else if (c.check === 'less_than' && c.value !== undefined) max = { value: c.value, inclusive: c.inclusive ?? false };
      }
      if (min?.inclusive && max?.inclusive) return `${kind} from ${min.value} to ${max.value}`;
      const parts = [kind];
      if (min) parts.push(`${min.inclusive ? '>=' : '>'} ${min.value}`);
      if (max) parts.push(`${min ? 'and ' : ''}${max.inclusive ? '<=' : '<'} ${max.value}`);
      return parts.join(' ');
    }
    case 'object':
      return 'a mapping of keys to values';
    case 'record':
      return 'a mapping';
    case 'array':
      return 'a list';
    default:
      return undefined;
  }
}

/** The schema that validates the value at path, following wrappers, records and discriminated unions. */
export function schemaAt(schema: AnySchema, input: unknown, path: readonly PropertyKey[]): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  let data: unknown = input;
  for (let i = 0; i <= path.length && s; ) {
    const def = s._zod.def as {
      type: string;
      innerType?: AnySchema;
      in?: AnySchema;
      shape?: Record<string, AnySchema>;
      valueType?: AnySchema;
      element?: AnySchema;
      options?: AnySchema[];
      discriminator?: string;
    };
    if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(def.type)) {
      s = def.innerType;
      continue;
    }
    if (def.type === 'pipe') {
      s = def.in;
      continue;
    }
    if (def.type === 'union' && def.discriminator && isRecord(data)) {
      const want = data[def.discriminator];
      s = def.options!.find((o) => {
        const shape = (o._zod.def as { shape?: Record<string, AnySchema> }).shape;
        const lit = shape?.[def.discriminator!]?._zod.def as { values?: unknown[] } | undefined;
        return lit?.values?.includes(want);
      });
      continue;
    }
    if (i === path.length) return s;
    const seg = path[i]!;
    if (def.type === 'object') s = def.shape![String(seg)];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return undefined;
    data = isRecord(data) ? data[String(seg)] : undefined;
    i++;
  }
  return s;
}

function knownKeys(schema: AnySchema | undefined): string[] | undefined {
  const shape = (schema?._zod.def as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : undefined;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** ", did you mean "period"?" when a known key is close to the typo. */
export function suggestion(typo: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(typo.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(typo.length / 3)) ? `, did you mean "${best}"?` : '';
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
