/**
 * Spot user data subscribes through the WebSocket API
 * (userDataStream.subscribe.signature). Its error answers carry an HTTP-like
 * status (binance-spot-api-docs web-socket-api.md, "Status codes"). At start
 * a permanent refusal must end the start (the start gate retries only
 * transient kinds); every refusal used to be RETRYABLE, so a request the
 * exchange will never accept was retried forever.
 */
import { describe, expect, it } from 'vitest';
import { wsApiErrorKind } from '../../src/venues/binance/user-data.ts';

describe('WebSocket API error answers', () => {
  it('map to the venue error kinds the start gate and the reconnect loop act on', () => {
    expect(wsApiErrorKind(401, -2015), 'invalid key').toBe('AUTH');
    expect(wsApiErrorKind(400, -1022), 'bad signature').toBe('AUTH');
    expect(wsApiErrorKind(400, -1021), 'timestamp outside recvWindow').toBe('CLOCK_SKEW');
    expect(wsApiErrorKind(429, -1003)).toBe('RATE_LIMITED');
    expect(wsApiErrorKind(418, -1003)).toBe('BANNED');
    expect(wsApiErrorKind(503, -1001), '5XX: Binance side').toBe('RETRYABLE');
    expect(wsApiErrorKind(400, -1007), 'timeout waiting for the backend').toBe('RETRYABLE');
    expect(wsApiErrorKind(400, -1102), 'a malformed request is refused for good').toBe('REJECTED');
    expect(wsApiErrorKind(400, -1020), 'an unsupported method').toBe('REJECTED');
  });
});
