/**
 * Reads and judges a heartbeat file for `trader status` (and the Docker
 * HEALTHCHECK): unhealthy when the file is missing or invalid, older than
 * three intervals, or says so itself.
 */
import { readFileSync } from 'node:fs';
import { heartbeatSchema, type Heartbeat } from './heartbeat-schema.ts';

export interface StatusVerdict {
  healthy: boolean;
  reasons: string[];
  heartbeat?: Heartbeat;
  ageMs?: number;
}

export const STALE_INTERVALS = 3;

export function judgeHeartbeatFile(file: string, now: number): StatusVerdict {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { healthy: false, reasons: [code === 'ENOENT' ? `no heartbeat at ${file}: is the bot running?` : `cannot read ${file}: ${code}`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { healthy: false, reasons: [`${file} is not valid JSON`] };
  }
  const parsed = heartbeatSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    return { healthy: false, reasons: [`${file} is not a heartbeat: ${first.path.join('.')}: ${first.message}`] };
  }
  const hb = parsed.data;
  const ageMs = now - hb.tsMs;
  const reasons = [...hb.problems];
  if (!hb.healthy && reasons.length === 0) reasons.push('bot reports itself unhealthy');
  if (ageMs > STALE_INTERVALS * hb.intervalMs) {
    reasons.unshift(`heartbeat is ${(ageMs / 1000).toFixed(1)} s old (limit ${((STALE_INTERVALS * hb.intervalMs) / 1000).toFixed(1)} s = ${STALE_INTERVALS} intervals)${hb.state === 'stopped' ? '' : ': the bot may have hung or died'}`);
  }
  return { healthy: reasons.length === 0 && hb.healthy, reasons, heartbeat: hb, ageMs };
}

/** A readable table of the heartbeat for people. */
export function formatStatus(v: StatusVerdict): string {
  const lines: string[] = [];
  const hb = v.heartbeat;
  lines.push(`status:     ${v.healthy ? 'HEALTHY' : 'UNHEALTHY'}`);
  for (const r of v.reasons) lines.push(`  - ${r}`);
  if (!hb) return lines.join('\n');
  const row = (k: string, val: string): void => {
    lines.push(`${(k + ':').padEnd(12)}${val}`);
  };
  row('state', `${hb.state}${hb.detail ? `: ${hb.detail}` : ''} (pid ${hb.pid}, up ${formatDuration(hb.uptimeSec)}, version ${hb.version})`);
  row('updated', `${hb.ts} (${((v.ageMs ?? 0) / 1000).toFixed(1)} s ago, every ${hb.intervalMs / 1000} s)`);
  row('mode', `${hb.mode}, market ${hb.market}`);
  row('trading', hb.tradingState);
  row('symbols', hb.symbols.length ? `${hb.symbols.length}: ${abbreviate(hb.symbols)}` : 'none');
  row('strategies', hb.strategies.length ? abbreviate(hb.strategies) : 'none');
  lines.push('');
  lines.push(`${'component'.padEnd(12)}${'status'.padEnd(10)}detail`);
  for (const name of ['feed', 'userStream', 'db', 'reconcile', 'risk', 'protection'] as const) {
    const b = hb[name];
    lines.push(`${name.padEnd(12)}${b.status.padEnd(10)}${b.detail ?? ''}`);
  }
  if (hb.instances.length > 0) {
    lines.push('');
    lines.push(`${'strategy'.padEnd(16)}${'symbol'.padEnd(14)}${'tf'.padEnd(5)}${'state'.padEnd(10)}${'warm'.padEnd(10)}${'signals'.padEnd(9)}detail`);
    for (const i of hb.instances) lines.push(`${i.strategy.padEnd(16)}${i.symbol.padEnd(14)}${i.timeframe.padEnd(5)}${i.state.padEnd(10)}${i.warm.padEnd(10)}${String(i.signals).padEnd(9)}${i.detail ?? ''}`);
  }
  for (const e of hb.configErrors) lines.push(`config error (last good config still running): ${e}`);
  for (const b of hb.breakers) {
    lines.push(`${(`circuit ${b.name}`).padEnd(22)}${b.state}${b.state !== 'CLOSED' ? ` (${b.consecutiveFailures} failures in a row${b.retryAt ? `, next try ${b.retryAt}` : ''}${b.lastError ? `; last: ${b.lastError}` : ''})` : ''}`);
  }
  for (const n of hb.notifiers) {
    const c = n as Record<string, unknown>;
    lines.push(`${(`notify ${n.channel}`).padEnd(22)}${String(c.delivered ?? 0)} delivered, ${String(c.failed ?? 0)} failed, ${String(c.dropped ?? 0)} dropped, ${String(c.queued ?? 0)} queued`);
  }
  lines.push('');
  row('loop lag', `p50 ${hb.eventLoopLagMs.p50} ms, p99 ${hb.eventLoopLagMs.p99} ms, max ${hb.eventLoopLagMs.max} ms`);
  row('memory', `rss ${hb.rssMb} MB, heap ${hb.heapUsedMb} MB`);
  row('faults', String(hb.faults));
  return lines.join('\n');
}

function abbreviate(items: readonly string[], max = 10): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

function formatDuration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}
