import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Grain, UsageRow } from './api.js';
import { h, type Child } from './dom.js';
import { int, ms, pct, usd } from './format.js';

const HOUR = 3600;
const DAY = 24 * HOUR;

export interface Timeline {
  /** Bucket starts, seconds since the epoch (uPlot's unit). */
  xs: number[];
  /** The row of each bucket, null where nothing was asked. */
  rows: (UsageRow | null)[];
}

/** Every bucket of the range, in order, with the rows the server sent placed on it. */
export function timeline(rows: UsageRow[], from: string, to: string, grain: Grain): Timeline {
  const byStart = new Map(rows.map((r) => [Date.parse(r.key) / 1000, r]));
  const step = grain === 'hour' ? HOUR : DAY;
  const start = Math.floor(Date.parse(from) / 1000 / step) * step;
  // A date-only `to` includes that whole day; a time ends the range (its bucket is included).
  const end = /^\d{4}-\d{2}-\d{2}$/.test(to) ? Date.parse(to) / 1000 : Math.floor(Date.parse(to) / 1000 / step) * step;
  const xs: number[] = [];
  for (let x = start; x <= end && xs.length < 2000; x += step) xs.push(x);
  return { xs, rows: xs.map((x) => byStart.get(x) ?? null) };
}

interface SeriesDef {
  label: string;
  color: string;
  values: (t: Timeline) => (number | null)[];
  /** What the legend shows for a point (defaults to the plotted value). */
  shown?: (t: Timeline, i: number) => string;
  bars?: boolean;
}

export interface ChartDef {
  id: string;
  title: string;
  /** One sentence for screen readers: what the chart shows. */
  description: string;
  series: SeriesDef[];
  yFormat: (v: number) => string;
  yRange?: [number, number];
}

const bars = uPlot.paths.bars!({ size: [0.7, 40] });

/** A uPlot chart that follows its container's width and takes new data in place. */
export class UsageChart {
  readonly element: HTMLElement;
  private readonly plot: uPlot;
  private t: Timeline = { xs: [], rows: [] };
  private readonly resize: ResizeObserver;

  constructor(private readonly def: ChartDef, grain: Grain) {
    const body = h('div', { class: 'chart-body', 'aria-hidden': 'true' });
    const captionId = `${def.id}-caption`;
    this.element = h(
      'figure',
      { class: 'chart', id: def.id, role: 'group', 'aria-labelledby': captionId },
      h('figcaption', { id: captionId }, def.title, h('span', { class: 'visually-hidden' }, `. ${def.description}`)),
      body,
    );
    const self = this;
    const opts: uPlot.Options = {
      width: 600,
      height: 220,
      scales: { x: { time: true }, y: def.yRange ? { range: def.yRange } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: 'currentColor', grid: { stroke: 'rgba(127,127,127,0.15)' }, values: grain === 'hour' ? '{HH}:{mm}' : '{MMM} {D}' },
        {
          stroke: 'currentColor',
          grid: { stroke: 'rgba(127,127,127,0.15)' },
          values: (_u, vals) => vals.map((v) => def.yFormat(v)),
          // Room for the longest label (small dollar sums are long).
          size: (_u, values) => 16 + 7.5 * Math.max(4, ...(values ?? []).map((v) => String(v).length)),
        },
      ],
      series: [
        { label: 'Time (UTC)', value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toISOString().slice(0, grain === 'hour' ? 16 : 10).replace('T', ' ')) },
        ...def.series.map(
          (s): uPlot.Series => ({
            label: s.label,
            stroke: s.color,
            fill: s.bars ? s.color : undefined,
            width: s.bars ? 0 : 2,
            paths: s.bars ? bars : undefined,
            // Lines show their points when sparse (a single hour is one point, not a line); bars never.
            points: s.bars ? { show: false } : { size: 7, fill: s.color },
            spanGaps: false,
            value: (_u, v, _si, i) => (i == null || v == null ? '—' : s.shown ? s.shown(self.t, i) : def.yFormat(v)),
          }),
        ),
      ],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    this.plot = new uPlot(opts, [[], ...def.series.map(() => [])], body);
    this.resize = new ResizeObserver(() => {
      const w = Math.max(240, Math.floor(body.clientWidth));
      if (w !== this.plot.width) this.plot.setSize({ width: w, height: 220 });
    });
    this.resize.observe(body);
  }

  update(t: Timeline): void {
    this.t = t;
    this.plot.setData([t.xs, ...this.def.series.map((s) => s.values(t))]);
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}

const col = (t: Timeline, f: (r: UsageRow) => number | null) => t.rows.map((r) => (r ? f(r) : null));

/** The four usage charts both views show. */
export function usageChartDefs(prefix: string): ChartDef[] {
  return [
    {
      id: `${prefix}-chart-hit-ratio`,
      title: 'Hit ratio',
      description: 'Share of inputs served from the cache, per period',
      yFormat: (v) => pct(v),
      yRange: [0, 1],
      series: [{ label: 'Hit ratio', color: '#3b6fd9', values: (t) => col(t, (r) => (r.inputs > 0 ? r.hit_ratio : null)) }],
    },
    {
      id: `${prefix}-chart-hits-misses`,
      title: 'Hits and misses',
      description: 'Inputs served from the cache (hits) and computed (misses), stacked',
      yFormat: (v) => int(v),
      series: [
        // Drawn first and as tall as hits + misses: the hits bar drawn over it leaves the misses on top.
        { label: 'Misses', color: '#e8833a', bars: true, values: (t) => col(t, (r) => r.hits + r.misses), shown: (t, i) => int(t.rows[i]?.misses ?? 0) },
        { label: 'Hits', color: '#2f9e6f', bars: true, values: (t) => col(t, (r) => r.hits) },
      ],
    },
    {
      id: `${prefix}-chart-money`,
      title: 'Money saved',
      description: 'What the hits would have cost at the configured prices, in US dollars',
      yFormat: (v) => usd(v),
      series: [{ label: 'Saved', color: '#7b5cd6', bars: true, values: (t) => col(t, (r) => r.money_saved_usd) }],
    },
    {
      id: `${prefix}-chart-latency`,
      title: 'Backend time per request',
      description: 'Mean time requests waited on a backend, hits counted as zero, in milliseconds',
      yFormat: (v) => ms(v),
      series: [{ label: 'Backend', color: '#c0392b', values: (t) => col(t, (r) => (r.requests > 0 ? r.backend_ms_per_request : null)) }],
    },
  ];
}

/** The charts' numbers as a table, for readers who cannot see the charts. */
export function timelineTable(t: Timeline, grain: Grain): HTMLElement {
  const rows: Child[] = t.xs
    .map((x, i) => [x, t.rows[i]] as const)
    .filter(([, r]) => r !== null)
    .reverse()
    .map(([x, r]) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, new Date(x * 1000).toISOString().slice(0, grain === 'hour' ? 16 : 10).replace('T', ' ')),
        h('td', {}, int(r!.requests)),
        h('td', {}, int(r!.hits)),
        h('td', {}, int(r!.misses)),
        h('td', {}, pct(r!.hit_ratio)),
        h('td', {}, usd(r!.money_saved_usd)),
        h('td', {}, ms(r!.backend_ms_per_request)),
      ),
    );
  return h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, `Usage by ${grain}`),
    h(
      'thead',
      {},
      h('tr', {}, ...['Time (UTC)', 'Requests', 'Hits', 'Misses', 'Hit ratio', 'Money saved', 'Backend per request'].map((c) => h('th', { scope: 'col' }, c))),
    ),
    h('tbody', {}, ...(rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: 7 }, 'Nothing in this period.'))])),
  );
}
