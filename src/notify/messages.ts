/**
 * Plain-text notification messages, one function per event. Plain text on
 * purpose: no Markdown/HTML parse mode, so a reason or symbol containing
 * "_" or "<" can never make Telegram reject the message.
 *
 * Money arrives as Dec and is printed with toFixed(): never through Number.
 */
import type { OrderUpdate, RiskStateChanged, Signal } from '../model/events.ts';
import type { DaySummary as DailySummary } from '../portfolio/history.ts';

/** Figures for the 00:00 UTC summary of the UTC day that just ended: the portfolio history's day summary. */
export type { DailySummary };

export function signalMessage(s: Signal): string {
  return `SIGNAL ${s.strategy} ${s.symbol} ${s.action}: ${s.reason}`;
}

export function orderFilledMessage(u: OrderUpdate): string {
  const side = u.side ? ` ${u.side}` : '';
  const price = u.averagePrice ? ` @ ${u.averagePrice.toFixed()}` : '';
  return `FILLED ${u.symbol}${side} ${u.filledQuantity.toFixed()}${price}${byStrategy(u)}`;
}

export function orderFailedMessage(u: OrderUpdate): string {
  const side = u.side ? ` ${u.side}` : '';
  return `ORDER ${u.status} ${u.symbol}${side}${byStrategy(u)}: ${u.reason ?? 'no reason given'} (${u.clientOrderId})`;
}

export function riskMessage(c: RiskStateChanged): string {
  const what = c.scope === 'account' ? 'account' : `${c.scope} ${c.key}`;
  const verb = c.to === 'ACTIVE' ? 'RESUMED' : c.to;
  return `RISK ${what} ${verb} (${c.from} -> ${c.to}): ${c.reason} [${c.source}]`;
}

export function killSwitchMessage(c: RiskStateChanged): string {
  return `KILL SWITCH: account ${c.to} (was ${c.from}): ${c.reason}`;
}

export function errorMessage(entry: { msg: string; component?: string | undefined }, repeated = 0): string {
  const where = entry.component ? ` [${entry.component}]` : '';
  const times = repeated > 0 ? ` (repeated ${repeated} time${repeated === 1 ? '' : 's'})` : '';
  return `ERROR${where} ${entry.msg}${times}`;
}

export function dailySummaryMessage(s: DailySummary): string {
  const q = s.quoteAsset;
  const lines = [
    `DAILY SUMMARY ${s.day} (UTC)`,
    `Equity: ${s.equity} ${q}`,
    `PnL day: ${s.dayPnl} ${q} | total: ${s.totalPnl} ${q}`,
    `Trades: ${s.trades}`,
  ];
  if (s.openPositions.length === 0) lines.push('Open positions: none');
  else {
    lines.push(`Open positions (${s.openPositions.length}):`);
    for (const p of s.openPositions) lines.push(`  ${p.symbol} ${p.quantity} @ ${p.entryPrice} (uPnL ${p.unrealizedPnl} ${q})`);
  }
  return lines.join('\n');
}

function byStrategy(u: OrderUpdate): string {
  return u.strategy ? ` (${u.strategy})` : '';
}

/**
 * The key under which repeats of an error log are merged: digits, hex ids
 * and quoted values vary between otherwise identical failures
 * ("order abc123 failed", "order abd124 failed"), so they are masked.
 */
export function errorDedupKey(entry: { msg: string; component?: string | undefined }): string {
  const msg = entry.msg
    .replace(/"[^"]*"|'[^']*'/g, '"…"')
    // Any token containing a digit is an id, a number, a time or a price.
    .replace(/[\w.:/-]*\d[\w.:/-]*/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
  return `${entry.component ?? ''}|${msg}`;
}
