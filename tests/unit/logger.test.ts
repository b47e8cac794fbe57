import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.ts';
import { redactKeys, REDACTED } from '../../src/core/redact.ts';
import { Secret } from '../../src/core/secret.ts';

const API_KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
const API_SECRET = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function collect() {
  const lines: string[] = [];
  return { lines, stdout: { write: (l: string) => lines.push(l) } };
}

describe('logger: secrets never reach a log line', () => {
  it('redacts by key at any depth, by value anywhere, and Secret objects', () => {
    const out = collect();
    const { logger } = createLogger({ level: 'info', format: 'json', secrets: [API_KEY, API_SECRET], stdout: out.stdout });
    logger.info({ apiKey: API_KEY, config: { exchange: { secret: API_SECRET, headers: { 'X-MBX-APIKEY': API_KEY, Authorization: 'Bearer abc.def.ghi' } } } }, 'config loaded');
    logger.info({ url: `https://api.binance.com/api/v3/order?signature=deadbeef&apiKey=${API_KEY}` }, `calling with ${API_SECRET}`);
    logger.error({ err: new Error(`request failed for key ${API_KEY}`) }, 'request failed');
    logger.info({ wrapped: new Secret('some-other-secret-value'), listenKey: 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1' }, 'stream');
    logger.info({ token: 'tg-bot-token-12345' }, 'notifier');
    const all = out.lines.join('');
    expect(out.lines).toHaveLength(5);
    for (const leak of [API_KEY, API_SECRET, 'Bearer abc.def.ghi', 'some-other-secret-value', 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1', 'tg-bot-token-12345']) {
      expect(all, `leaked ${leak.slice(0, 10)}...`).not.toContain(leak);
    }
    const first = JSON.parse(out.lines[0]!);
    expect(first.apiKey).toBe(REDACTED);
    expect(first.config.exchange.secret).toBe(REDACTED);
    expect(first.config.exchange.headers['X-MBX-APIKEY']).toBe(REDACTED);
    const third = JSON.parse(out.lines[2]!);
    expect(third.err.message, 'the error keeps its text, minus the secret').toBe(`request failed for key ${REDACTED}`);
    expect(third.err.stack).toContain('request failed for key');
    expect(JSON.parse(out.lines[1]!).msg).toBe(`calling with ${REDACTED}`);
  });

  it('pretty format redacts too', () => {
    const out = collect();
    const { logger } = createLogger({ level: 'info', format: 'pretty', secrets: [API_SECRET], stdout: out.stdout });
    logger.info({ note: `secret=${API_SECRET}`, password: 'hunter2hunter2' }, 'pretty line');
    const all = out.lines.join('');
    expect(all).toContain('pretty line');
    expect(all).not.toContain(API_SECRET);
    expect(all).not.toContain('hunter2hunter2');
  });

  it('redactKeys copes with cycles and leaves Decimals to their own JSON', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(redactKeys(a)).toEqual({ name: 'a', self: '[Circular]' });
  });
});

describe('logger: daily files', () => {
  it('writes JSON lines to logs/trader-YYYY-MM-DD.log, switching at UTC midnight, pruning old days', () => {
    dir = mkdtempSync(join(tmpdir(), 'trader-logs-'));
    // Files from long ago and from within the window.
    writeFileSync(join(dir, 'trader-2024-01-01.log'), 'old\n');
    writeFileSync(join(dir, 'trader-2024-03-08.log'), 'recent\n');
    writeFileSync(join(dir, 'unrelated.txt'), 'keep me\n');
    let now = Date.UTC(2024, 2, 10, 23, 59, 59, 500);
    const out = collect();
    const handle = createLogger({ level: 'info', format: 'json', dir, retentionDays: 7, now: () => now, stdout: out.stdout });
    handle.logger.info('before midnight');
    now = Date.UTC(2024, 2, 11, 0, 0, 0, 100);
    handle.logger.info('after midnight');
    handle.close();
    const day1 = readFileSync(join(dir, 'trader-2024-03-10.log'), 'utf8').trim().split('\n');
    const day2 = readFileSync(join(dir, 'trader-2024-03-11.log'), 'utf8').trim().split('\n');
    expect(day1.map((l) => JSON.parse(l).msg)).toEqual(['before midnight']);
    expect(day2.map((l) => JSON.parse(l).msg)).toEqual(['after midnight']);
    expect(JSON.parse(day2[0]!).time).toBe('2024-03-11T00:00:00.100Z');
    expect(existsSync(join(dir, 'trader-2024-01-01.log')), 'older than 7 days: pruned').toBe(false);
    expect(existsSync(join(dir, 'trader-2024-03-08.log')), 'within 7 days: kept').toBe(true);
    expect(readdirSync(dir)).toContain('unrelated.txt');
    expect(out.lines, 'stdout gets the same lines').toHaveLength(2);
  });
});
