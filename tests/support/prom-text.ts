/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4),
 * written from the format's description so tests check what a Prometheus
 * server would accept, not what prom-client happens to print:
 *
 *   # HELP <name> <docstring>
 *   # TYPE <name> counter|gauge|histogram|summary|untyped
 *   <name>{<label>="<value>",...} <float> [<timestamp>]
 *
 * Any line that does not parse throws with its line number.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: value ${JSON.stringify(text)} is not a float`);
  return Number(text);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label ${name} value is not quoted`);
    let j = eq + 2;
    let value = '';
    for (; j < text.length; j++) {
      const c = text[j]!;
      if (c === '\\') {
        const n = text[++j];
        value += n === 'n' ? '\n' : n === '"' ? '"' : n === '\\' ? '\\' : (() => { throw new Error(`${where}: bad escape \\${n}`); })();
      } else if (c === '"') break;
      else value += c;
    }
    if (j >= text.length) throw new Error(`${where}: unterminated label value`);
    if (name in out) throw new Error(`${where}: label ${name} twice`);
    out[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`${where}: expected "," after label ${name}`);
  }
  return out;
}

/** Parses the whole exposition; families keyed by name. */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const owner = (sample: string): Family => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (sample.endsWith(suffix)) {
        const base = families.get(sample.slice(0, -suffix.length));
        if (base && (base.type === 'histogram' || base.type === 'summary')) return base;
      }
    }
    return family(sample);
  };
  text.split('\n').forEach((raw, idx) => {
    const where = `line ${idx + 1}`;
    const line = raw.trimEnd();
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // A plain comment.
      const [, kind, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`${where}: bad metric name ${name}`);
      const f = family(name!);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest!)) throw new Error(`${where}: unknown type ${rest}`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        f.type = rest!;
      } else f.help = rest!;
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample: ${line}`);
    const [, name, , labels, value] = m;
    owner(name!).samples.push({ name: name!, labels: labels ? parseLabels(labels, where) : {}, value: parseValue(value!, where) });
  });
  return families;
}

/** The value of one sample, or undefined. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
