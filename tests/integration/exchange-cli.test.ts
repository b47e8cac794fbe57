/** `trader exchange` as a user runs it: a child process printing its URLs, serving REST and WS, stopping on Ctrl-C. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killQuietly, runCli, startCli, waitFor, type RunningCli } from '../support/bot-process.ts';
import { REPO_ROOT } from '../support/workspace.ts';
import { connect } from '../support/ws-client.ts';

const FILE = join(REPO_ROOT, '..', 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2023-02.csv.gz');
let cli: RunningCli | undefined;
afterEach(() => killQuietly(cli));

describe('trader exchange', () => {
  it('prints its URLs, serves exchangeInfo, klines and streams, and exits 0 on SIGINT', async () => {
    cli = startCli(['exchange', '--replay', FILE, '--speed', '600', '--json'], { env: {}, cwd: REPO_ROOT });
    const line = await waitFor('URLs', () => cli!.stdout().split('\n').find((l) => l.startsWith('{')));
    const urls = JSON.parse(line) as { rest: string; futuresRest: string; futuresWs: string; apiKey: string };
    expect(urls.rest).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const info = (await (await fetch(`${urls.futuresRest}/exchangeInfo`)).json()) as { symbols: Array<{ symbol: string }> };
    expect(info.symbols.map((s) => s.symbol)).toContain('ALGOUSDT');
    const ws = await connect(`${urls.futuresWs}/market/ws/algousdt@kline_1m`);
    const k = await ws.next<{ k: { s: string; t: number } }>((m) => m.e === 'kline');
    expect(k.k.s).toBe('ALGOUSDT');
    expect(k.k.t).toBeGreaterThanOrEqual(Date.UTC(2023, 1, 1));
    ws.close();
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
  });

  it('bad arguments are usage errors naming the value', async () => {
    const r = await runCli(['exchange', '--replay', '/nonexistent/BTCUSDT-1m-2024-01.csv'], { env: {}, cwd: REPO_ROOT });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('no such file or folder: /nonexistent/BTCUSDT-1m-2024-01.csv');
  });
});
