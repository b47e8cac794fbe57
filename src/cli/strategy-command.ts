/** `trader strategy list | info <name> | validate`. */
import { z } from 'zod';
import { ConfigError, EXIT } from '../core/errors.ts';
import type { Settings } from '../settings/settings.ts';
import type { StrategyModule } from '../strategy/api.ts';
import { loadStrategyModules } from '../strategy/loader.ts';
import { loadSettingsOrReport, loadStrategiesOrReport, printConfigError } from './run.ts';

async function modules(): Promise<{ settings: Settings; modules: Map<string, StrategyModule> } | number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const loaded = await loadStrategyModules(settings.paths.strategiesDir, settings.strategyModules, settings.paths.cwd);
  if (loaded.issues.length) {
    printConfigError(new ConfigError(loaded.issues));
    return EXIT.CONFIG;
  }
  return { settings, modules: loaded.modules };
}

export async function strategyList(): Promise<number> {
  const m = await modules();
  if (typeof m === 'number') return m;
  if (m.modules.size === 0) {
    process.stdout.write(`no strategies in ${m.settings.paths.strategiesDir}\n`);
    return EXIT.OK;
  }
  for (const [name, mod] of m.modules) {
    const entries = m.settings.strategies.filter((e) => e.strategy === name);
    const symbols = entries.map((e) => `${e.symbol}${e.config.enabled ? '' : ' (disabled)'}${e.config.timeframe ? ` ${e.config.timeframe}` : ''}`);
    process.stdout.write(`${name.padEnd(16)} ${mod.description}\n${''.padEnd(16)} symbols: ${symbols.join(', ') || 'none'}\n`);
  }
  return EXIT.OK;
}

export async function strategyInfo(name: string): Promise<number> {
  const m = await modules();
  if (typeof m === 'number') return m;
  const mod = m.modules.get(name);
  if (!mod) {
    process.stderr.write(`trader strategy info: no strategy "${name}" (have: ${[...m.modules.keys()].join(', ') || 'none'})\n`);
    return EXIT.USAGE;
  }
  const schema = z.toJSONSchema(mod.params as z.ZodType, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  const lines = [`${mod.name}: ${mod.description}`, `default timeframe: ${mod.defaultTimeframe}; markets: ${(mod.markets ?? ['spot', 'futures']).join(', ')}`, '', 'params:'];
  const describe = (key: string, p: Record<string, unknown>): void => {
    // Nested objects (e.g. ensemble weights) list their fields as parent.child.
    if (p.type === 'object' && p.properties) {
      lines.push(`  ${key.padEnd(22)} ${'object'.padEnd(30)}${p.description ? ` ${String(p.description)}` : ''}`);
      for (const [k, child] of Object.entries(p.properties as Record<string, Record<string, unknown>>)) describe(`${key}.${k}`, child);
      return;
    }
    const type = Array.isArray(p.enum) ? (p.enum as unknown[]).map((v) => JSON.stringify(v)).join(' | ') : p.type === 'integer' ? 'integer' : String(p.type ?? 'any');
    const bounds = [
      p.minimum !== undefined ? `>= ${String(p.minimum)}` : '',
      p.exclusiveMinimum !== undefined ? `> ${String(p.exclusiveMinimum)}` : '',
      p.maximum !== undefined ? `<= ${String(p.maximum)}` : '',
      p.exclusiveMaximum !== undefined ? `< ${String(p.exclusiveMaximum)}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(`  ${key.padEnd(22)} ${`${type}${bounds ? ` (${bounds})` : ''}`.padEnd(30)} default ${p.default === undefined ? '(required)' : JSON.stringify(p.default)}${p.description ? `  ${String(p.description)}` : ''}`);
  };
  for (const [key, p] of Object.entries(schema.properties ?? {})) describe(key, p);
  process.stdout.write(lines.join('\n') + '\n');
  return EXIT.OK;
}

export async function strategyValidate(params: string[]): Promise<number> {
  const settings = loadSettingsOrReport();
  if (!settings) return EXIT.CONFIG;
  const r = await loadStrategiesOrReport(settings, params);
  if (!r) return EXIT.CONFIG;
  const disabled = settings.strategies.filter((e) => !e.config.enabled).length;
  process.stdout.write(`ok: ${r.specs.length} instance${r.specs.length === 1 ? '' : 's'} (${r.specs.map((s) => `${s.strategy}/${s.symbol} ${s.timeframe}`).join(', ') || 'none'})${disabled ? `, ${disabled} disabled` : ''}\n`);
  return EXIT.OK;
}
