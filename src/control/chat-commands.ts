/**
 * What the Telegram commands do, as short plain-text replies: /status,
 * /positions, /pnl, /pause, /resume, /stopall. They use the same
 * operations as the control API (pause / resume / the kill switch), with
 * "operator (telegram)" recorded as who did it.
 */
import type { HeartbeatWriter } from '../health/heartbeat-writer.ts';
import type { TradingCore } from '../kernel/trading-core.ts';
import type { BotCommands } from '../notify/notifications.ts';
import { pause, resume } from './trade-controls.ts';

const WHO = 'operator (telegram)';

export function chatCommands(core: TradingCore, heartbeat: HeartbeatWriter): BotCommands {
  const p = core.portfolio;
  const q = p.quoteAsset;
  return {
    status: () => {
      const hb = heartbeat.build();
      const lines = [
        `${hb.mode} ${hb.market}, ${hb.state}, ${hb.healthy ? 'healthy' : 'UNHEALTHY'}; account ${hb.tradingState}`,
        `equity ${p.equity().toFixed(2)} ${q}; ${p.positions().length} open position(s)`,
        `feed: ${hb.feed.detail ?? hb.feed.status}`,
        ...hb.breakers.filter((b) => b.state !== 'CLOSED').map((b) => `circuit ${b.name}: ${b.state}`),
        ...hb.problems.map((x) => `problem: ${x}`),
      ];
      return lines.join('\n');
    },
    positions: () => {
      const ps = p.positions();
      if (ps.length === 0) return 'no open positions';
      return ps
        .map((x) => `${x.symbol} ${x.quantity.toFixed()} @ ${x.entryPrice.toFixed()}, mark ${x.markPrice?.toFixed() ?? '?'}, unrealized ${x.unrealizedPnl.toFixed(2)} ${q}`)
        .join('\n');
    },
    pnl: () => {
      const eq = p.equity();
      const start = p.dayStartEquity();
      return [
        `today: ${eq.minus(start).toFixed(2)} ${q} (realized ${p.realizedToday().toFixed(2)}, unrealized now ${p.unrealized().toFixed(2)})`,
        `equity ${eq.toFixed(2)} ${q} (day start ${start.toFixed(2)}, peak ${p.peakEquity().toFixed(2)})`,
      ].join('\n');
    },
    pause: () => {
      const r = pause(core.risk, {}, WHO);
      return r.changed ? `paused: account REDUCING (was ${String(r.from)}); exits and stops keep working` : `already ${String(r.state)}`;
    },
    resume: () => {
      const r = resume(core.risk, {}, WHO);
      return r.changed ? `resumed: account ACTIVE (was ${String(r.from)})` : 'already ACTIVE';
    },
    stopAll: async () => {
      const r = await core.killSwitch.stopAll(false, WHO);
      return [
        `kill switch: account HALTED; ${r.cancelled.length} open order(s) cancelled`,
        ...(r.failures.length ? [`failures: ${r.failures.join('; ')}`] : []),
        `left open: ${r.remaining.openOrders} order(s), ${r.remaining.positions.length} position(s) (positions are not closed; use trader trade stop-all --flatten)`,
      ].join('\n');
    },
  };
}
