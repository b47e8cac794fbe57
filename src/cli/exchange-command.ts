/**
 * `trader exchange`: runs the local Binance-compatible exchange standalone,
 * replaying kline dump files, so anyone can try the bot offline with no keys.
 */
import { EXIT } from '../core/errors.ts';
import { DEFAULT_ACCOUNT, LocalExchange } from '../local-exchange/local-exchange.ts';
import { replaySources, type ReplaySpeed } from '../market-data/replay.ts';
import { formatKlineFileIssue } from '../market-data/kline-files.ts';
import type { Market } from '../model/market.ts';

export interface ExchangeCommandOptions {
  replay?: string[];
  speed: string;
  port: string;
  host: string;
  market?: string;
  json?: boolean;
}

export async function runExchange(o: ExchangeCommandOptions): Promise<number> {
  const speed: ReplaySpeed | undefined = o.speed === 'max' ? 'max' : Number(o.speed);
  if (speed !== 'max' && !(typeof speed === 'number' && speed > 0)) {
    process.stderr.write(`trader exchange: --speed must be a positive number (60 = a minute per second) or "max", got ${JSON.stringify(o.speed)}\n`);
    return EXIT.USAGE;
  }
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`trader exchange: --port must be 0..65535, got ${JSON.stringify(o.port)}\n`);
    return EXIT.USAGE;
  }
  if (o.market && o.market !== 'spot' && o.market !== 'futures') {
    process.stderr.write(`trader exchange: --market must be spot or futures, got ${JSON.stringify(o.market)}\n`);
    return EXIT.USAGE;
  }
  const sources = o.replay?.length ? replaySources(o.replay, o.market as Market | undefined) : [];
  if (!Array.isArray(sources)) {
    process.stderr.write(`trader exchange: ${sources.error}\n`);
    return EXIT.USAGE;
  }
  const ex = await LocalExchange.start({
    host: o.host,
    port,
    ...(sources.length ? { replay: { sources, speed: speed! } } : {}),
    onIssue: (i) => process.stderr.write(`skipped ${formatKlineFileIssue(i)}\n`),
  });
  const u = ex.urls();
  if (o.json) {
    process.stdout.write(JSON.stringify({ rest: ex.url, ...u, apiKey: DEFAULT_ACCOUNT.apiKey, secret: DEFAULT_ACCOUNT.secret }) + '\n');
  } else {
    const what = sources.length ? `replaying ${sources.map((s) => `${s.symbol} (${s.market}, ${s.files.length} file${s.files.length > 1 ? 's' : ''})`).join(', ')} at ${speed === 'max' ? 'full speed' : `${speed}x`}` : 'no replay: set prices through the control API';
    process.stdout.write(
      [
        `local exchange running, ${what}`,
        `  REST      ${ex.url}   (spot ${u.spotRest}, futures ${u.futuresRest})`,
        `  WS        ${u.spotWs}   ${u.futuresWs}`,
        `  WS API    ${u.spotWsApi}`,
        `  control   ${u.control}`,
        `  API key   ${DEFAULT_ACCOUNT.apiKey}   secret ${DEFAULT_ACCOUNT.secret}   (10000 USDT spot, 10000 USDT futures)`,
        'Ctrl-C stops it.',
        '',
      ].join('\n'),
    );
  }
  void ex.replay?.done.then(({ candles }) => process.stdout.write(`replay finished: ${candles} candles; prices stay where they ended\n`));
  await new Promise<void>((r) => {
    process.once('SIGINT', () => r());
    process.once('SIGTERM', () => r());
  });
  await ex.close();
  return EXIT.OK;
}
