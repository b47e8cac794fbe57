/**
 * HTML report: a hand-made two-month run (Jan +8 %, Feb -2.5 %, three trades)
 * rendered and read back — a complete offline document, every metric with its
 * text, the heatmap cells, the trade rows, escaping of hostile strings — plus
 * the charts on a 500,000-point curve (bounded point count, a one-point spike
 * kept), the 5,000-row cap of the trade list and the drawdown of
 * 100 -> 120 -> 90 -> 130 (-25 %).
 */
import { describe, expect, it } from 'vitest';
import { CHART_BUCKETS, escapeHtml, formatDuration, formatUtc, renderHtmlReport } from '../../src/backtest/html-report.ts';
import type { BacktestMetrics, BacktestReport, BacktestTrade, EquityPoint } from '../../src/backtest/types.ts';

const MIN = 60_000;
const H = 3_600_000;
const DAY = 24 * H;
const JAN_1_2024 = Date.UTC(2024, 0, 1);
const MAR_1_2024 = Date.UTC(2024, 2, 1);
const EVIL = '<script>alert(1)</script>';

function at(month: number, day: number, hour = 0, minute = 0): number {
  return Date.UTC(2024, month - 1, day, hour, minute);
}

function pt(t: number, equity: string): EquityPoint {
  return { t, equity };
}

// Jan ends at 1080 (+8 % on 1000), Feb at 1053 (-2.5 % on 1080): total +5.3 %.
const EQUITY: EquityPoint[] = [
  pt(at(1, 2), '1010'),
  pt(at(1, 5), '1030'),
  pt(at(1, 10), '1005'),
  pt(at(1, 15), '1040'),
  pt(at(1, 20), '1065'),
  pt(at(1, 31, 20), '1080'),
  pt(at(2, 3), '1070'),
  pt(at(2, 8), '1030'),
  pt(at(2, 12), '1045'),
  pt(at(2, 18), '1060'),
  pt(at(2, 25), '1058'),
  pt(at(2, 29, 20), '1053'),
];

const TRADES: BacktestTrade[] = [
  {
    symbol: 'BTCUSDT', side: 'LONG', entryTime: at(1, 3, 10), exitTime: at(1, 6, 14, 30),
    entryPrice: '42000.5', exitPrice: '43500', quantity: '0.01', pnl: '14.57', pnlPct: 3.469, fees: '0.855', funding: '0.12', holdingMs: 3 * DAY + 4 * H + 30 * MIN,
  },
  {
    symbol: 'ETHUSDT', side: 'SHORT', entryTime: at(1, 20, 9, 15), exitTime: at(1, 22), entryPrice: '2450.25', exitPrice: '2400.75', quantity: '0.5', pnl: '24.1', pnlPct: 1.967, fees: '0.61', funding: '-0.05', holdingMs: 1 * DAY + 14 * H + 45 * MIN,
  },
  {
    symbol: 'BTCUSDT', side: 'LONG', entryTime: at(2, 5, 8), exitTime: at(2, 9, 8), entryPrice: '43100', exitPrice: '42150.5', quantity: '0.01', pnl: '-9.92', pnlPct: -2.302, fees: '0.853', funding: '0.2', holdingMs: 4 * DAY,
  },
];

const METRICS: BacktestMetrics = {
  startEquity: 1000,
  endEquity: 1053,
  totalReturn: 0.053,
  annualizedReturn: 0.3712,
  trades: 3,
  winRate: 2 / 3,
  profitFactor: Infinity,
  expectancy: 9.5833,
  sharpe: 1.8456,
  sortino: 2.5,
  calmar: 7.5,
  maxDrawdown: 0.0495,
  maxDrawdownDurationMs: 3 * DAY + 4 * H + 12 * MIN,
  monthly: [
    { month: '2024-01', return: 0.08 },
    { month: '2024-02', return: -0.025 },
  ],
  avgWin: 19.335,
  avgLoss: -9.92,
  largestWin: 24.1,
  largestLoss: -9.92,
  avgHoldingMs: 2 * DAY + 23 * H + 5 * MIN,
  timeInMarket: 0.146,
  feesPaid: 2.318,
  fundingPaid: 0.27,
};

function report(o: Partial<BacktestReport> = {}): BacktestReport {
  return {
    id: 17,
    createdAt: at(3, 2, 9, 30),
    gitCommit: '1a2b3c4d',
    config: {
      market: 'futures',
      strategies: [
        { strategy: 'sma-cross', symbol: 'BTCUSDT', timeframe: '15m', params: { fast: 10, slow: 30, label: EVIL } },
        { strategy: 'breakout<b>', symbol: 'ETHUSDT', timeframe: '1h', params: {}, source: 'files' },
      ],
      from: JAN_1_2024,
      to: MAR_1_2024,
      balance: '1000',
      fees: { maker: '0.0002', taker: '0.0005' },
      slippageBps: '2',
      latencyMs: 250,
      funding: { rate: '0.0001', source: 'flat' },
    },
    metrics: METRICS,
    trades: TRADES,
    equity: EQUITY,
    candles: 86_400,
    orders: { submitted: 8, denied: 1, filled: 6 },
    closedAtEnd: [],
    notes: ['Funding: a flat 0.01 % per 8 h settlement.', 'Note with <img src=x onerror=alert(1)> markup.'],
    elapsedMs: 1520,
    ...o,
  };
}

/** The markup from `start` to the first `end` after it. */
function slice(html: string, start: string, end: string): string {
  const i = html.indexOf(start);
  expect(i, `missing ${start}`).toBeGreaterThanOrEqual(0);
  const j = html.indexOf(end, i);
  expect(j).toBeGreaterThan(i);
  return html.slice(i, j + end.length);
}

function metricValue(html: string, key: string): string {
  const m = new RegExp(`<tr data-metric="${key}" title="[^"]*"><th>[^<]*</th><td class="num">([^<]*)</td>`).exec(html);
  expect(m, `metric row ${key}`).not.toBeNull();
  return (m as RegExpExecArray)[1] as string;
}

function polylinePoints(svg: string, cls: string): Array<[number, number]> {
  const m = new RegExp(`<polyline class="${cls}" points="([^"]*)"`).exec(svg);
  expect(m, `polyline ${cls}`).not.toBeNull();
  return ((m as RegExpExecArray)[1] as string).split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

/** y of each horizontal grid line, by its label. */
function yLabels(svg: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of svg.matchAll(/<text class="ylab" x="[^"]*" y="([^"]*)"[^>]*>([^<]*)<\/text>/g)) out.set(m[2] as string, Number(m[1]));
  return out;
}

describe('renderHtmlReport on a two-month run with three trades', () => {
  const html = renderHtmlReport(report());

  it('is one complete HTML document', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html.match(/<table/g)?.length).toBe(html.match(/<\/table>/g)?.length);
    expect(html.match(/<svg/g)?.length).toBe(2);
    expect(html.match(/<\/svg>/g)?.length).toBe(2);
  });

  it('loads nothing from outside (opens offline)', () => {
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<link');
    expect(html).not.toContain('http://');
    expect(html).not.toContain('https://');
    expect(html).not.toMatch(/<[^>]*\s(src|href)=/i);
    expect(html).not.toContain('url(');
    expect(html).not.toContain('@import');
  });

  it('escapes params, strategy names and notes', () => {
    expect(html).not.toContain(EVIL);
    expect(html).toContain('&quot;label&quot;:&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
    expect(html).toContain('breakout&lt;b&gt;');
    expect(html).not.toContain('breakout<b>');
    expect(html).not.toContain('<img');
    expect(html).toContain('<li>Note with &lt;img src=x onerror=alert(1)&gt; markup.</li>');
  });

  it('states the setup in the header', () => {
    const setup = slice(html, '<section id="setup">', '</section>');
    expect(setup).toContain('<td>sma-cross</td><td>BTCUSDT</td><td>15m</td>');
    expect(setup).toContain('&quot;fast&quot;:10,&quot;slow&quot;:30');
    expect(setup).toContain('<td>files</td>');
    expect(setup).toContain('<tr><th>Market</th><td>futures</td></tr>');
    expect(setup).toContain('2024-01-01 00:00 → 2024-03-01 00:00 UTC');
    expect(setup).toContain('<tr><th>Balance</th><td>1000</td></tr>');
    expect(setup).toContain('maker 0.02 %, taker 0.05 %');
    expect(setup).toContain('<tr><th>Slippage</th><td>2 bps</td></tr>');
    expect(setup).toContain('<tr><th>Latency</th><td>250 ms</td></tr>');
    expect(setup).toContain('flat rate 0.0001 (0.01 %) per 8 h');
    expect(setup).toContain('<code>1a2b3c4d</code>');
    expect(setup).toContain('<tr><th>Created</th><td>2024-03-02 09:30 UTC</td></tr>');
    expect(setup).toContain('<tr><th>Run id</th><td>17</td></tr>');
    expect(setup).toContain('<tr><th>Candles</th><td>86,400</td></tr>');
    expect(setup).toContain('8 submitted, 6 filled, 1 denied');
    const notes = slice(html, '<ul class="notes">', '</ul>');
    expect(notes.match(/<li>/g)).toHaveLength(2);
    expect(notes).toContain('<li>Funding: a flat 0.01 % per 8 h settlement.</li>');
  });

  it('leaves out the run id and funding when absent', () => {
    const spot = renderHtmlReport(report({ id: undefined, config: { ...report().config, market: 'spot', funding: undefined } }));
    expect(spot).not.toContain('Run id');
    expect(spot).toContain('<tr><th>Funding</th><td>none</td></tr>');
  });

  it('lists every metric with its formatted value and definition', () => {
    for (const key of Object.keys(METRICS)) {
      expect(html, key).toMatch(new RegExp(`<tr data-metric="${key}" title="[^"]+">`));
    }
    expect(metricValue(html, 'totalReturn')).toBe('+5.30 %');
    expect(metricValue(html, 'annualizedReturn')).toBe('+37.12 %');
    expect(metricValue(html, 'maxDrawdown')).toBe('4.95 %');
    expect(metricValue(html, 'maxDrawdownDurationMs')).toBe('3d 4h 12m');
    expect(metricValue(html, 'winRate')).toBe('66.7 %');
    expect(metricValue(html, 'profitFactor')).toBe('∞');
    expect(metricValue(html, 'sharpe')).toBe('1.85');
    expect(metricValue(html, 'endEquity')).toBe('1,053.00 USDT');
    expect(metricValue(html, 'avgLoss')).toBe('-9.92 USDT');
    expect(metricValue(html, 'avgHoldingMs')).toBe('2d 23h 5m');
    expect(metricValue(html, 'trades')).toBe('3');
    expect(metricValue(html, 'monthly')).toContain('2 months');
    expect(html).toContain('title="Fraction of trades with pnl &gt; 0."');
    expect(html).toContain('<td class="def">Net funding paid (positive = paid, negative = received).</td>');
  });

  it('colours the monthly heatmap by sign and compounds the year', () => {
    const heat = slice(html, '<table class="heatmap">', '</table>');
    expect(heat).toContain('<th>Jan</th>');
    expect(heat).toContain('<th>Dec</th>');
    expect(heat).toMatch(/<td class="hm pos" data-month="2024-01" [^>]*style="background:rgba\(26,127,55,[^"]*\)">\+8\.00 %<\/td>/);
    expect(heat).toMatch(/<td class="hm neg" data-month="2024-02" [^>]*style="background:rgba\(207,34,46,[^"]*\)">-2\.50 %<\/td>/);
    // 1.08 * 0.975 - 1 = 0.053.
    expect(heat).toMatch(/<td class="hm pos total" data-month="2024" [^>]*>\+5\.30 %<\/td>/);
    expect(heat.match(/<td class="hm empty"><\/td>/g)).toHaveLength(10);
    expect(heat.match(/<tr><th>\d{4}<\/th>/g)).toEqual(['<tr><th>2024</th>']);
  });

  it('lists the three trades with their prices and times', () => {
    const table = slice(html, '<table class="trades">', '</table>');
    const rows = [...table.matchAll(/<tr><td class="num">(\d+)<\/td>(.*?)<\/tr>/g)];
    expect(rows.map((r) => r[1])).toEqual(['1', '2', '3']);
    const cells = rows.map((r) => [...(r[2] as string).matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((c) => c[1]));
    expect(cells[0]).toEqual(['BTCUSDT', 'LONG', '2024-01-03 10:00', '42000.5', '2024-01-06 14:30', '43500', '0.01', '14.57', '+3.47 %', '0.855', '0.12', '3d 4h 30m']);
    expect(cells[1]).toEqual(['ETHUSDT', 'SHORT', '2024-01-20 09:15', '2450.25', '2024-01-22 00:00', '2400.75', '0.5', '24.1', '+1.97 %', '0.61', '-0.05', '1d 14h 45m']);
    expect(cells[2]).toEqual(['BTCUSDT', 'LONG', '2024-02-05 08:00', '43100', '2024-02-09 08:00', '42150.5', '0.01', '-9.92', '-2.30 %', '0.853', '0.2', '4d 0h 0m']);
    expect(table).toContain('<td class="num neg">-9.92</td>');
    expect(html).not.toContain('left out');
  });

  it('draws the equity curve exactly as steps from the start balance to `to`', () => {
    const svg = slice(html, '<svg class="chart-svg" id="equity-chart"', '</svg>');
    const pts = polylinePoints(svg, 'equity-line');
    // Start point + 12 points, each preceded by the carried value, + the carry to `to`.
    expect(pts).toHaveLength(1 + 12 * 2 + 1);
    expect(pts[0]?.[0]).toBe(72); // left edge of the plot at `from`
    expect(pts[pts.length - 1]?.[0]).toBe(944); // right edge at `to`
    // The highest point (smallest y) sits on the 1,080 grid line, the lowest on 1,000 (the start balance).
    const ys = pts.map((p) => p[1]);
    const labels = yLabels(svg);
    expect(Math.min(...ys)).toBe(labels.get('1,080'));
    expect(Math.max(...ys)).toBe(labels.get('1,000'));
    expect(pts[0]?.[1]).toBe(labels.get('1,000'));
    expect(svg).toContain('class="baseline"');
    expect(svg).toMatch(/<text class="xlab"[^>]*>2024-02-01<\/text>/);
  });
});

describe('renderHtmlReport charts on a 500,000-point curve', () => {
  const n = 500_000;
  const equity: EquityPoint[] = new Array(n);
  for (let i = 0; i < n; i++) {
    // A gentle wave around 10,000, with a single-minute spike to 20,000 and a crash to 5,000.
    const v = i === 123_457 ? 20_000 : i === 345_679 ? 5_000 : 10_000 + 500 * Math.sin(i / 5_000);
    equity[i] = { t: JAN_1_2024 + (i + 1) * MIN, equity: v.toFixed(2) };
  }
  const to = JAN_1_2024 + (n + 1) * MIN;
  const html = renderHtmlReport(report({ equity, config: { ...report().config, balance: '10000', to } }));

  it('bounds the point count of both charts', () => {
    const eq = polylinePoints(slice(html, 'id="equity-chart"', '</svg>'), 'equity-line');
    const dd = polylinePoints(slice(html, 'id="drawdown-chart"', '</svg>'), 'dd-line');
    expect(eq.length).toBeGreaterThan(CHART_BUCKETS);
    expect(eq.length).toBeLessThanOrEqual(2 * CHART_BUCKETS + 1);
    expect(CHART_BUCKETS * 2 + 1).toBeLessThanOrEqual(2 * 2000 + 10);
    expect(dd.length).toBeLessThanOrEqual(2 * CHART_BUCKETS + 1);
    for (let i = 1; i < eq.length; i++) expect((eq[i] as [number, number])[0]).toBeGreaterThanOrEqual((eq[i - 1] as [number, number])[0]);
  });

  it('keeps one-minute spikes in the downsampled curve', () => {
    const svg = slice(html, 'id="equity-chart"', '</svg>');
    const ys = polylinePoints(svg, 'equity-line').map((p) => p[1]);
    const labels = yLabels(svg);
    // Value at a y, from two grid labels (linear axis).
    const [l1, y1] = [...labels.entries()][0] as [string, number];
    const [l2, y2] = [...labels.entries()][1] as [string, number];
    const v1 = Number(l1.replaceAll(',', ''));
    const v2 = Number(l2.replaceAll(',', ''));
    const valueAt = (y: number): number => v1 + ((y - y1) / (y2 - y1)) * (v2 - v1);
    expect(valueAt(Math.min(...ys))).toBeCloseTo(20_000, -1);
    expect(valueAt(Math.max(...ys))).toBeCloseTo(5_000, -1);
    // The crash is a -75 % drawdown from the 20,000 peak.
    expect(html).toContain('max drawdown -75.00 %');
  });
});

describe('renderHtmlReport trade list cap', () => {
  it('shows the first 5,000 of 6,000 trades and says how many are left out', () => {
    const base = TRADES[0] as BacktestTrade;
    const trades: BacktestTrade[] = [];
    for (let i = 0; i < 6_000; i++) trades.push({ ...base, entryPrice: String(40_000 + i), entryTime: base.entryTime + i * MIN, exitTime: base.exitTime + i * MIN });
    const html = renderHtmlReport(report({ trades }));
    const table = slice(html, '<table class="trades">', '</table>');
    expect(table.match(/<tr><td class="num">/g)).toHaveLength(5_000);
    expect(table).toContain('<td class="num">44999</td>'); // entry price of trade #5000
    expect(table).not.toContain('<td class="num">45000</td>');
    expect(html).toContain('Showing the first 5,000 of 6,000 trades: 1,000 more are left out here; the JSON and CSV exports have all of them.');
  });
});

describe('renderHtmlReport drawdown chart', () => {
  it('reaches -25 % for 100 -> 120 -> 90 -> 130', () => {
    const t = (d: number): number => JAN_1_2024 + d * DAY;
    const html = renderHtmlReport(
      report({
        config: { ...report().config, balance: '100', from: t(0), to: t(4) },
        equity: [pt(t(1), '120'), pt(t(2), '90'), pt(t(3), '130')],
        metrics: { ...METRICS, monthly: [{ month: '2024-01', return: 0.3 }] },
      }),
    );
    const svg = slice(html, '<svg class="chart-svg" id="drawdown-chart"', '</svg>');
    expect(svg).toContain('data-min="-0.25"');
    expect(svg).toContain('<text class="dd-min"');
    expect(svg).toContain('max drawdown -25.00 %');
    expect(svg).toMatch(/<path class="dd-area" d="M[^"]+Z"\/>/);
    // The trough of the line sits at -25 % on the chart's own axis.
    const labels = yLabels(svg);
    const y0 = labels.get('0 %') as number;
    const y10 = labels.get('-10 %') as number;
    expect(y0).toBeDefined();
    expect(y10).toBeDefined();
    const lowest = Math.max(...polylinePoints(svg, 'dd-line').map((p) => p[1]));
    expect(((lowest - y0) / (y10 - y0)) * -0.1).toBeCloseTo(-0.25, 2);
    // Drawdown is never above 0: no point above the 0 % line.
    expect(Math.min(...polylinePoints(svg, 'dd-line').map((p) => p[1]))).toBeCloseTo(y0, 5);
  });
});

describe('html report helpers', () => {
  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(escapeHtml('plain')).toBe('plain');
  });

  it('formats durations and UTC times', () => {
    expect(formatDuration(3 * DAY + 4 * H + 12 * MIN)).toBe('3d 4h 12m');
    expect(formatDuration(5 * H)).toBe('5h 0m');
    expect(formatDuration(12 * MIN + 59_000)).toBe('12m');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatUtc(Date.UTC(2024, 0, 5, 13, 0))).toBe('2024-01-05 13:00');
    expect(formatUtc(Date.UTC(2000, 1, 29, 23, 59))).toBe('2000-02-29 23:59');
    expect(formatUtc(Date.UTC(1969, 11, 31, 6, 7))).toBe('1969-12-31 06:07');
  });
});
