/**
 * Replay one real month of 1m klines (43,200 candles: ALGOUSDT, September
 * 2024) at full speed through the local exchange to a `ws` client, counting
 * the closed candles the client receives. Each candle is three frames
 * (two in-progress updates and the close) and three matching-engine steps.
 * Baseline in the same run: reading and parsing the same file alone.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { LocalExchange } from '../../src/local-exchange/local-exchange.ts';
import { readKlineFile } from '../../src/market-data/kline-files.ts';

const FILE = join(fileURLToPath(new URL('../../..', import.meta.url)), 'shared', 'data', 'binance-um-1m', 'ALGOUSDT-1m-2024-09.csv.gz');

export async function benchReplay(): Promise<Record<string, unknown>> {
  if (!existsSync(FILE)) return { benchmark: 'replay', skipped: `missing ${FILE}` };
  // Baseline: parse the file alone.
  const t0 = process.hrtime.bigint();
  let rows = 0;
  for (const _ of readKlineFile(FILE)) rows++;
  const parseSec = Number(process.hrtime.bigint() - t0) / 1e9;

  const ex = await LocalExchange.start({ replay: { sources: [{ market: 'futures', symbol: 'ALGOUSDT', files: [FILE] }], speed: 'max', autoStart: false } });
  const ws = new WebSocket(`${ex.urls().futuresWs}/market/ws/algousdt@kline_1m`);
  await new Promise((r) => ws.once('open', r));
  let closed = 0;
  let frames = 0;
  const done = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      frames++;
      // Cheap check for the closed flag without parsing every frame twice.
      if ((data as Buffer).includes('"x":true')) {
        closed++;
        if (closed === rows) resolve();
      }
    });
  });
  const rssBefore = process.memoryUsage().rss;
  const t1 = process.hrtime.bigint();
  ex.replay!.start();
  await done;
  const sec = Number(process.hrtime.bigint() - t1) / 1e9;
  const rssAfter = process.memoryUsage().rss;
  ws.close();
  await ex.close();
  return {
    benchmark: 'replay one month of 1m klines through the local exchange to a ws client',
    file: 'ALGOUSDT-1m-2024-09.csv.gz',
    candles: closed,
    frames,
    seconds: Math.round(sec * 1000) / 1000,
    candles_per_sec: Math.round(closed / sec),
    frames_per_sec: Math.round(frames / sec),
    baseline_parse_rows_per_sec: Math.round(rows / parseSec),
    ratio_replay_to_parse: Math.round((closed / sec / (rows / parseSec)) * 1000) / 1000,
    rss_growth_mb: Math.round((rssAfter - rssBefore) / 1048576),
  };
}
