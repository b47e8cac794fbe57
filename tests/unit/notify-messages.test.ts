import { describe, expect, it } from 'vitest';
import { dec } from '../../src/core/decimal.ts';
import type { OrderUpdate, RiskStateChanged } from '../../src/model/events.ts';
import { dailySummaryMessage, errorDedupKey, errorMessage, killSwitchMessage, orderFailedMessage, orderFilledMessage, riskMessage, signalMessage } from '../../src/notify/messages.ts';

const fill: OrderUpdate = { kind: 'order.update', ts: 1, clientOrderId: 'x-rsi-1', symbol: 'BTCUSDT', status: 'FILLED', side: 'BUY', filledQuantity: dec('0.0100'), averagePrice: dec('42000.50'), strategy: 'rsi' };

describe('notification messages', () => {
  it('formats each event as one plain line, money with toFixed (no float artefacts)', () => {
    expect(signalMessage({ kind: 'signal', ts: 1, strategy: 'rsi', symbol: 'ETHUSDT', action: 'exitLong', reason: 'RSI 71 > 70' })).toBe('SIGNAL rsi ETHUSDT exitLong: RSI 71 > 70');
    expect(orderFilledMessage(fill)).toBe('FILLED BTCUSDT BUY 0.01 @ 42000.5 (rsi)');
    expect(orderFilledMessage({ ...fill, filledQuantity: dec('0.1').plus(dec('0.2')), averagePrice: undefined, strategy: undefined, side: undefined }), '0.1 + 0.2 stays 0.3').toBe('FILLED BTCUSDT 0.3');
    expect(orderFailedMessage({ ...fill, status: 'REJECTED', reason: 'MIN_NOTIONAL' })).toBe('ORDER REJECTED BTCUSDT BUY (rsi): MIN_NOTIONAL (x-rsi-1)');
    const halt: RiskStateChanged = { kind: 'risk.state', ts: 1, scope: 'symbol', key: 'BTCUSDT', from: 'ACTIVE', to: 'HALTED', reason: 'DAILY_LOSS: -5%', source: 'guard' };
    expect(riskMessage(halt)).toBe('RISK symbol BTCUSDT HALTED (ACTIVE -> HALTED): DAILY_LOSS: -5% [guard]');
    expect(riskMessage({ ...halt, scope: 'account', from: 'HALTED', to: 'ACTIVE', reason: 'RESUMED: by cli', source: 'cli' })).toBe('RISK account RESUMED (HALTED -> ACTIVE): RESUMED: by cli [cli]');
    expect(killSwitchMessage({ ...halt, scope: 'account', reason: 'KILL_SWITCH: stop-all by telegram' })).toBe('KILL SWITCH: account HALTED (was ACTIVE): KILL_SWITCH: stop-all by telegram');
    expect(errorMessage({ msg: 'boom', component: 'feed' }, 3)).toBe('ERROR [feed] boom (repeated 3 times)');
  });

  it('the daily summary lists the figures and every open position', () => {
    const text = dailySummaryMessage({
      day: '2024-03-10',
      quoteAsset: 'USDT',
      equity: '10234.5',
      dayPnl: '-12.25',
      totalPnl: '234.5',
      trades: 7,
      openPositions: [{ symbol: 'BTCUSDT', quantity: '0.01', entryPrice: '42000', unrealizedPnl: '3.2' }],
    });
    expect(text.split('\n')).toEqual([
      'DAILY SUMMARY 2024-03-10 (UTC)',
      'Equity: 10234.5 USDT',
      'PnL day: -12.25 USDT | total: 234.5 USDT',
      'Trades: 7',
      'Open positions (1):',
      '  BTCUSDT 0.01 @ 42000 (uPnL 3.2 USDT)',
    ]);
  });

  it('errors that differ only by ids, numbers or quoted values share a dedup key', () => {
    const k = (msg: string, component = 'execution') => errorDedupKey({ msg, component });
    expect(k('order abc123 failed: HTTP 500')).toBe(k('order abd124 failed: HTTP 502'));
    expect(k('order "x-1" failed at 2024-03-10T12:00:00.000Z')).toBe(k('order "y-2" failed at 2024-03-10T12:05:00.000Z'));
    expect(k('order abc123 failed'), 'different words are different errors').not.toBe(k('order abc123 rejected'));
    expect(k('boom', 'feed'), 'the component is part of the key').not.toBe(k('boom', 'execution'));
  });
});
