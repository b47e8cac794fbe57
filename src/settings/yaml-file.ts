/**
 * Reads a YAML file and keeps enough of its syntax tree to turn a field path
 * (from a zod issue) back into a line number.
 */
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from '../core/errors.ts';

export interface YamlFile {
  /** The parsed value (undefined for an empty file). */
  data: unknown;
  /** 1-based line of the node at path, or of its nearest existing parent. */
  lineOf(path: readonly PropertyKey[], key?: boolean): number | undefined;
}

export type YamlRead = { ok: true; file: YamlFile } | { ok: false; issues: ConfigIssue[] };

export function readYamlFile(path: string, displayName: string): YamlRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, issues: [{ source: displayName, field: '', message: `cannot read file: ${(err as Error).message}` }] };
  }
  return parseYamlText(text, displayName);
}

export function parseYamlText(text: string, displayName: string): YamlRead {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => ({
        source: displayName,
        line: lineCounter.linePos(e.pos[0]).line,
        field: '',
        message: `invalid YAML: ${e.message.split('\n')[0]}`,
      })),
    };
  }
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  return { ok: true, file: { data: doc.toJS({ maxAliasCount: 100 }) ?? undefined, lineOf: (path, key) => locate(doc, path, key ?? false, lineAt) } };
}

function locate(doc: Document, path: readonly PropertyKey[], wantKey: boolean, lineAt: (o: number) => number): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = rangeLine(node, lineAt);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return line;
      const keyLine = rangeLine(pair.key, lineAt);
      if (last && wantKey) return keyLine ?? line;
      node = pair.value;
      line = rangeLine(node, lineAt) ?? keyLine ?? line;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      line = rangeLine(node, lineAt) ?? line;
    } else {
      return line;
    }
  }
  return line;
}

function rangeLine(node: unknown, lineAt: (o: number) => number): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? lineAt(range[0]) : undefined;
}
