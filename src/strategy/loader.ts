/**
 * Loads strategy modules (strategies/<name>/index.ts, TypeScript run as is)
 * and turns the YAML entries into instance specs with their parameters
 * checked against each strategy's own schema. Problems come back as
 * ConfigIssues naming the file and, for parameters, the YAML line.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import type { ConfigIssue } from '../core/errors.ts';
import type { Market, Timeframe } from '../model/market.ts';
import { describeIssues } from '../settings/describe-issues.ts';
import type { Settings, StrategyEntry } from '../settings/settings.ts';
import type { StrategyConfig } from '../settings/strategy-config.ts';
import { readYamlFile } from '../settings/yaml-file.ts';
import type { StrategyModule } from './api.ts';

export interface InstanceSpec {
  readonly strategy: string;
  readonly symbol: string;
  readonly market: Market;
  readonly timeframe: Timeframe;
  readonly params: Readonly<Record<string, unknown>>;
  readonly warmup: number;
  readonly module: StrategyModule;
  readonly config: StrategyConfig;
  readonly file: string;
}

export interface LoadedModules {
  modules: Map<string, StrategyModule>;
  issues: ConfigIssue[];
}

/**
 * Imports each named module. The URL carries the file's mtime, so an edited
 * index.ts is evaluated anew on hot reload while an unchanged one resolves
 * to the very same module object (and its instances are left running).
 */
export async function loadStrategyModules(dir: string, names: readonly string[], cwd: string): Promise<LoadedModules> {
  const modules = new Map<string, StrategyModule>();
  const issues: ConfigIssue[] = [];
  if (names.length > 0 && !insideEsmPackage(dir)) {
    // tsx compiles a .ts file as CommonJS unless the nearest package.json says "module",
    // and a CommonJS strategy cannot import the (ES module) strategy API.
    issues.push({ source: display(cwd, dir), field: '', message: 'strategies must live inside an ES module package: put a package.json containing {"type": "module"} in this folder or a parent' });
    return { modules, issues };
  }
  for (const name of names) {
    const file = join(dir, name, 'index.ts');
    const shown = display(cwd, file);
    let mod: unknown;
    try {
      // Whole microseconds: a "." in the query makes some loaders (vite) drop the .ts handling.
      const url = `${pathToFileURL(file).href}?v=${Math.round(statSync(file).mtimeMs * 1000)}`;
      mod = ((await import(url)) as { default?: unknown }).default;
    } catch (err) {
      issues.push({ source: shown, field: '', message: `cannot load strategy: ${firstLine((err as Error).message)}` });
      continue;
    }
    const problem = checkModuleShape(mod, name);
    if (problem) {
      issues.push({ source: shown, field: '', message: problem });
      continue;
    }
    modules.set(name, mod as StrategyModule);
  }
  return { modules, issues };
}

function checkModuleShape(m: unknown, folder: string): string | undefined {
  if (!m || typeof m !== 'object') return 'the default export must be defineStrategy({...})';
  const s = m as Partial<StrategyModule>;
  if (s.name !== folder) return `name must equal its folder name "${folder}", got ${JSON.stringify(s.name)}`;
  if (typeof s.description !== 'string') return 'description (string) is missing';
  if (!s.params || typeof (s.params as { safeParse?: unknown }).safeParse !== 'function') return 'params must be a zod schema';
  if (typeof s.warmup !== 'function') return 'warmup(params) is missing';
  if (typeof s.create !== 'function') return 'create(ctx, params) is missing';
  if (typeof s.defaultTimeframe !== 'string') return 'defaultTimeframe is missing';
  return undefined;
}

/**
 * Builds the instance specs for every enabled YAML entry whose strategy
 * loaded. `overrides` are CLI --param values per strategy (already parsed).
 */
export function resolveInstances(
  settings: Pick<Settings, 'market' | 'paths'>,
  entries: readonly StrategyEntry[],
  modules: ReadonlyMap<string, StrategyModule>,
  overrides: ReadonlyMap<string, Record<string, unknown>> = new Map(),
): { specs: InstanceSpec[]; issues: ConfigIssue[] } {
  const specs: InstanceSpec[] = [];
  const issues: ConfigIssue[] = [];
  for (const e of entries) {
    const module = modules.get(e.strategy);
    if (!module) continue;
    // Disabled files are checked too (a typo should not wait until someone enables it).
    if (e.config.enabled && module.markets && !module.markets.includes(settings.market)) {
      issues.push({ source: e.file, field: '', message: `strategy "${e.strategy}" trades ${module.markets.join(' or ')}, but config/bot.yaml says market: ${settings.market}` });
      continue;
    }
    const raw = { ...e.config.params, ...(overrides.get(e.strategy) ?? {}) };
    const schema = strictParams(module.params);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const yaml = readYamlFile(isAbsolute(e.file) ? e.file : join(settings.paths.cwd, e.file), e.file);
      const lineOf = yaml.ok ? (p: readonly PropertyKey[], key?: boolean) => yaml.file.lineOf(['params', ...p], key) : undefined;
      issues.push(...describeIssues(schema, raw, parsed.error.issues, { source: e.file, ...(lineOf ? { lineOf } : {}), fieldOf: (p) => ['params', ...p.map(String)].join('.') }));
      continue;
    }
    const params = parsed.data as Record<string, unknown>;
    let warmup: number;
    try {
      warmup = module.warmup(params);
    } catch (err) {
      issues.push({ source: e.file, field: 'params', message: `warmup() failed: ${(err as Error).message}` });
      continue;
    }
    if (!e.config.enabled) continue;
    specs.push({ strategy: e.strategy, symbol: e.symbol, market: settings.market, timeframe: e.config.timeframe ?? module.defaultTimeframe, params, warmup, module, config: e.config, file: e.file });
  }
  return { specs, issues };
}

/**
 * Unknown params are errors whatever the author wrote: a plain z.object()
 * would drop a typo silently and run with the default.
 */
function strictParams(schema: z.ZodType): z.ZodType {
  const def = schema._zod.def as { type: string };
  return def.type === 'object' && typeof (schema as z.ZodObject).strict === 'function' ? (schema as z.ZodObject).strict() : schema;
}

/**
 * Parses CLI --param values: "period=10" (every strategy) or "rsi.period=10".
 * Values are JSON when they parse (numbers, booleans, arrays), strings otherwise;
 * the strategy's schema then checks them like YAML values.
 */
export function parseParamOverrides(values: readonly string[], strategies: readonly string[]): { overrides: Map<string, Record<string, unknown>>; issues: ConfigIssue[] } {
  const overrides = new Map<string, Record<string, unknown>>();
  const issues: ConfigIssue[] = [];
  for (const v of values) {
    const m = /^(?:([a-z][a-z0-9-]*)\.)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(v);
    if (!m) {
      issues.push({ source: 'command line', field: '--param', message: `expected key=value or strategy.key=value, got ${JSON.stringify(v)}` });
      continue;
    }
    const [, strategy, key, rawValue] = m;
    let value: unknown = rawValue;
    try {
      value = JSON.parse(rawValue!);
    } catch {
      // Not JSON: keep the string; the schema says whether a string is wanted.
    }
    const targets = strategy ? [strategy] : strategies;
    if (strategy && !strategies.includes(strategy)) {
      issues.push({ source: 'command line', field: '--param', message: `no enabled strategy "${strategy}" (have: ${strategies.join(', ') || 'none'})` });
      continue;
    }
    for (const t of targets) overrides.set(t, { ...(overrides.get(t) ?? {}), [key!]: value });
  }
  return { overrides, issues };
}

/** True when the nearest package.json above dir declares "type": "module". */
function insideEsmPackage(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    if (dirname(d) === d) return false;
  }
}

function display(cwd: string, p: string): string {
  const r = relative(cwd, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
