/**
 * A small .env reader that keeps line numbers, so an error can say
 * `.env:7 HEARTBEAT_INTERVAL_MS: ...`. Format: KEY=VALUE per line, optional
 * `export ` prefix, `#` comments, single quotes (literal) or double quotes
 * (\n, \t, \", \\ escapes); an unquoted value ends at " #".
 */
import type { ConfigIssue } from '../core/errors.ts';

export interface EnvEntry {
  value: string;
  line: number;
}

export interface DotenvResult {
  entries: Map<string, EnvEntry>;
  issues: ConfigIssue[];
}

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/;

export function parseDotenv(text: string, source: string): DotenvResult {
  const entries = new Map<string, EnvEntry>();
  const issues: ConfigIssue[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (/^\s*(#.*)?$/.test(raw)) return;
    const m = LINE.exec(raw);
    if (!m) {
      issues.push({ source, line, field: '', message: `expected KEY=VALUE, got ${JSON.stringify(raw.trim().slice(0, 60))}` });
      return;
    }
    const key = m[1]!;
    const value = unquote(m[2]!);
    if (value === undefined) {
      issues.push({ source, line, field: key, message: `unterminated quote in value ${JSON.stringify(m[2]!.slice(0, 60))}` });
      return;
    }
    const previous = entries.get(key);
    if (previous) issues.push({ source, line, field: key, message: `set twice (first on line ${previous.line}); remove one` });
    entries.set(key, { value, line });
  });
  return { entries, issues };
}

function unquote(v: string): string | undefined {
  const q = v[0];
  if (q === '"' || q === "'") {
    const end = v.indexOf(q, 1);
    // Find the closing quote that is not escaped (double quotes only).
    let close = end;
    if (q === '"') {
      close = -1;
      for (let i = 1; i < v.length; i++) {
        if (v[i] === '\\') i++;
        else if (v[i] === '"') {
          close = i;
          break;
        }
      }
    }
    if (close < 0) return undefined;
    const rest = v.slice(close + 1).trim();
    if (rest !== '' && !rest.startsWith('#')) return undefined;
    const body = v.slice(1, close);
    return q === "'" ? body : body.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c]!);
  }
  const hash = v.search(/\s#/);
  return (hash >= 0 ? v.slice(0, hash) : v).trim();
}
