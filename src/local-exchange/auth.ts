/**
 * Binance request signing: HMAC-SHA256 of the "total params" (the query
 * string followed by the request body, signature removed) with the API
 * secret, hex-encoded, in the `signature` parameter; the key travels in the
 * X-MBX-APIKEY header; `timestamp` must fall within `recvWindow` of the
 * server time (and at most 1 s ahead of it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ERR, type BinanceError } from './binance-errors.ts';

export function sign(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/** Removes the signature parameter from a raw query or body, returning both. */
function stripSignature(raw: string): { rest: string; signature: string | undefined } {
  if (!raw) return { rest: '', signature: undefined };
  const parts = raw.split('&');
  let signature: string | undefined;
  const kept = parts.filter((p) => {
    if (p.startsWith('signature=')) {
      signature = decodeURIComponent(p.slice('signature='.length));
      return false;
    }
    return true;
  });
  return { rest: kept.join('&'), signature };
}

export function verifySignature(secret: string, rawQuery: string, rawBody: string): BinanceError | undefined {
  const q = stripSignature(rawQuery);
  const b = stripSignature(rawBody);
  const signature = q.signature ?? b.signature;
  if (!signature) return ERR.mandatory('signature');
  const payload = q.rest + b.rest;
  const expected = Buffer.from(sign(secret, payload), 'utf8');
  const given = Buffer.from(signature.toLowerCase(), 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return ERR.badSignature();
  return undefined;
}

export function checkTimestamp(params: Record<string, string>, serverNow: number): BinanceError | undefined {
  const ts = params.timestamp;
  if (ts === undefined || ts === '') return ERR.mandatory('timestamp');
  if (!/^\d{1,20}$/.test(ts)) return ERR.illegalChars('timestamp');
  const recv = params.recvWindow === undefined ? 5000 : Number(params.recvWindow);
  if (!Number.isFinite(recv) || recv <= 0 || recv > 60_000) return ERR.badRecvWindow();
  const t = Number(ts);
  // Binance processes a request only if timestamp < serverTime + 1000 (Timing security).
  if (t >= serverNow + 1000) return ERR.timestampAhead();
  if (serverNow - t > recv) return ERR.timestampOutside();
  return undefined;
}
