import { MAX_HOURLY_HOURS, PERIODS, rangeQuery, type Grain, type UsageReport } from './api.js';
import { timeline, timelineTable, UsageChart, usageChartDefs } from './charts.js';
import { fill, h, type Child } from './dom.js';

/** One headline figure; `data-value` holds the exact number the text was formatted from. */
export function card(id: string, label: string, text: string, raw: number | string, hint?: string): HTMLElement {
  return h(
    'div',
    { class: 'card', 'data-figure': id },
    h('span', { class: 'card-label' }, label),
    h('span', { class: 'card-value', 'data-value': String(raw) }, text),
    hint ? h('span', { class: 'card-hint' }, hint) : null,
  );
}

export function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h('section', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...children);
}

/** What to do when there is nothing to show yet. */
export function emptyState(...children: Child[]): HTMLElement {
  return h('div', { class: 'empty', role: 'note' }, ...children);
}

export function howToStart(): HTMLElement {
  const base = `${location.origin}/v1`;
  return emptyState(
    h('strong', {}, 'No requests yet. '),
    'Point your OpenAI client at ',
    h('code', {}, base),
    ' with an API key of this server, e.g. ',
    h('code', {}, `new OpenAI({ baseURL: '${base}', apiKey: 'ec_…' })`),
    ', and call ',
    h('code', {}, 'embeddings.create'),
    '. Figures appear here within seconds.',
  );
}

export interface Column<T> {
  key: string;
  label: string;
  /** What sorting compares. */
  sort: (row: T) => number | string;
  cell: (row: T) => Child;
  numeric?: boolean;
}

/** A table whose column headers are buttons that sort it (state kept across refreshes). */
export class SortableTable<T> {
  readonly element: HTMLElement;
  private rows: T[] = [];
  private dir: 1 | -1;

  constructor(
    private readonly caption: string,
    private readonly columns: Column<T>[],
    private sortKey: string,
    dir: 'asc' | 'desc' = 'desc',
    private readonly rowId?: (row: T) => string,
  ) {
    this.dir = dir === 'asc' ? 1 : -1;
    this.element = h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 });
  }

  update(rows: T[]): void {
    this.rows = rows;
    this.render();
  }

  private render(): void {
    const col = this.columns.find((c) => c.key === this.sortKey) ?? this.columns[0];
    const sorted = [...this.rows].sort((a, b) => {
      const x = col.sort(a);
      const y = col.sort(b);
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * this.dir;
    });
    // Focus stays on the header button that was used, across the re-render.
    const focused = (document.activeElement as HTMLElement | null)?.dataset?.sortKey;
    const head = this.columns.map((c) => {
      const active = c.key === this.sortKey;
      const button = h(
        'button',
        {
          type: 'button',
          class: 'sort',
          'data-sort-key': c.key,
          onclick: () => {
            if (this.sortKey === c.key) this.dir = this.dir === 1 ? -1 : 1;
            else {
              this.sortKey = c.key;
              this.dir = c.numeric ? -1 : 1;
            }
            this.render();
          },
        },
        c.label,
        h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (this.dir === 1 ? ' ▲' : ' ▼') : ''),
      );
      return h('th', { scope: 'col', class: c.numeric ? 'num' : '', 'aria-sort': active ? (this.dir === 1 ? 'ascending' : 'descending') : 'none' }, button);
    });
    const body = sorted.map((r) =>
      h(
        'tr',
        { 'data-row': this.rowId?.(r) },
        ...this.columns.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c.cell(r)) : h('td', { class: c.numeric ? 'num' : '', 'data-col': c.key }, c.cell(r)))),
      ),
    );
    fill(this.element, h('table', {}, h('caption', { class: 'visually-hidden' }, this.caption), h('thead', {}, h('tr', {}, ...head)), h('tbody', {}, ...body)));
    if (focused) (this.element.querySelector(`button[data-sort-key="${focused}"]`) as HTMLElement | null)?.focus();
  }
}

export interface PeriodChoice {
  hours: number;
  grain: Grain;
}

/** The period and grain selects; calls back when either changes. */
export function periodControls(prefix: string, initial: PeriodChoice, onChange: (c: PeriodChoice) => void): HTMLElement {
  const period = h('select', { id: `${prefix}-period` }, ...PERIODS.map((p) => h('option', { value: p.hours, selected: p.hours === initial.hours }, p.label)));
  const grain = h(
    'select',
    { id: `${prefix}-grain` },
    h('option', { value: 'hour', selected: initial.grain === 'hour' }, 'By hour'),
    h('option', { value: 'day', selected: initial.grain === 'day' }, 'By day'),
  );
  const sync = () => {
    const hours = Number(period.value);
    const hourOption = grain.querySelector('option[value="hour"]') as HTMLOptionElement;
    // Hourly figures exist for a month at most: longer periods are shown by day.
    hourOption.disabled = hours > MAX_HOURLY_HOURS;
    if (hourOption.disabled) grain.value = 'day';
    onChange({ hours, grain: grain.value as Grain });
  };
  period.addEventListener('change', sync);
  grain.addEventListener('change', sync);
  return h(
    'div',
    { class: 'controls' },
    h('label', { for: period.id }, 'Period'),
    period,
    h('label', { for: grain.id }, 'Charts'),
    grain,
  );
}

/** The four usage charts and their data table, rebuilt when the grain changes. */
export class ChartsPanel {
  readonly element = h('div', { class: 'charts-panel' });
  private charts: UsageChart[] = [];
  private grain: Grain | null = null;
  private readonly grid = h('div', { class: 'charts' });
  private readonly table = h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Chart data', tabindex: 0 });

  constructor(private readonly prefix: string) {
    this.element.append(this.grid, h('details', {}, h('summary', {}, 'Chart data as a table'), this.table));
  }

  update(report: UsageReport, grain: Grain): void {
    if (grain !== this.grain) {
      for (const c of this.charts) c.destroy();
      this.charts = usageChartDefs(this.prefix).map((d) => new UsageChart(d, grain));
      fill(this.grid, ...this.charts.map((c) => c.element));
      this.grain = grain;
    }
    const t = timeline(report.data, queryOf(report, grain).from, queryOf(report, grain).to, grain);
    for (const c of this.charts) c.update(t);
    fill(this.table, timelineTable(t, grain));
  }
}

/** The range a report covers, in the shape rangeQuery gives (date-only for days). */
function queryOf(report: UsageReport, grain: Grain): { from: string; to: string } {
  if (grain === 'hour') return { from: report.from, to: report.to };
  // By day the server was asked for whole days: `to` is the start of the day after the last.
  const last = new Date(Date.parse(report.to) - 86_400_000);
  return { from: report.from.slice(0, 10), to: last.toISOString().slice(0, 10) };
}

export { rangeQuery };
