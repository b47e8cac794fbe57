/**
 * Writing optimized params into a strategy's YAML (`trader optimize --apply`
 * and the scheduled re-optimizer): only params change; the running bot
 * hot-reloads the file.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Document, isScalar, parseDocument } from 'yaml';
import { InvariantError } from '../core/errors.ts';
import type { Settings } from '../settings/settings.ts';

export interface ApplyResult {
  /** Files rewritten (as settings name them, relative to cwd). */
  readonly written: string[];
  /** Symbols not applied, and why. */
  readonly refused: Array<{ symbol: string; reason: string }>;
}

/**
 * Writes params into strategies/<strategy>/<SYMBOL>.yaml for each symbol,
 * through the yaml Document API so comments, key order and every other key
 * survive; only `params.<name>` values change (withParams). A symbol with no YAML of its
 * own is refused (a backtest may borrow another symbol's YAML as a template;
 * --apply must not invent a file the user never wrote). Each file is
 * replaced by a rename, so the bot's hot reload never reads half a file.
 */
export function applyOptimizedParams(settings: Settings, strategy: string, symbols: readonly string[], params: Readonly<Record<string, unknown>>): ApplyResult {
  const result: ApplyResult = { written: [], refused: [] };
  for (const symbol of symbols) {
    const entry = settings.strategies.find((e) => e.strategy === strategy && e.symbol === symbol);
    if (!entry) {
      result.refused.push({ symbol, reason: `strategies/${strategy}/${symbol}.yaml does not exist; --apply only edits existing files (copy another symbol's YAML to start one)` });
      continue;
    }
    const file = isAbsolute(entry.file) ? entry.file : join(settings.paths.cwd, entry.file);
    const source = readFileSync(file, 'utf8');
    const doc = parseDocument(source);
    if (doc.errors.length > 0) {
      result.refused.push({ symbol, reason: `${entry.file} does not parse: ${doc.errors[0]!.message}` });
      continue;
    }
    const tmp = join(file, '..', `.${symbol}.yaml.${process.pid}.tmp`);
    writeFileSync(tmp, withParams(source, doc, params));
    renameSync(tmp, file);
    result.written.push(entry.file);
  }
  return result;
}

/**
 * The YAML text with params set. When every param already has a scalar in
 * the file, only those scalars' characters are replaced (the yaml printer
 * would re-flow the file: aligned comments lose their alignment); otherwise
 * (a param the file does not list yet) the Document API's setIn and
 * toString, which keep comments and every other key. Either way the result
 * is parsed back and checked.
 */
function withParams(source: string, doc: Document, params: Readonly<Record<string, unknown>>): string {
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const [k, v] of Object.entries(params)) {
    const node = doc.getIn(['params', k], true);
    if (!isScalar(node) || !node.range || !['number', 'boolean', 'string'].includes(typeof v)) {
      edits.length = 0;
      break;
    }
    edits.push({ start: node.range[0], end: node.range[1], text: new Document(v).toString().trimEnd() });
  }
  let text: string;
  if (edits.length === Object.keys(params).length) {
    text = source;
    for (const e of edits.sort((a, b) => b.start - a.start)) text = text.slice(0, e.start) + e.text + text.slice(e.end);
  } else {
    for (const [k, v] of Object.entries(params)) doc.setIn(['params', k], v);
    text = doc.toString();
  }
  const back = parseDocument(text);
  for (const [k, v] of Object.entries(params)) {
    if (back.errors.length > 0 || JSON.stringify(back.getIn(['params', k])) !== JSON.stringify(v)) throw new InvariantError(`--apply: writing params.${k} = ${JSON.stringify(v)} would not read back as written`);
  }
  return text;
}
