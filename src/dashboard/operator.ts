import { call, qs, rangeQuery, type LiveFigures, type UsageReport, type UsageRow } from './api.js';
import { fill, h } from './dom.js';
import { bytes, int, ms, pct, usd, utc } from './format.js';
import { card, ChartsPanel, emptyState, howToStart, periodControls, section, SortableTable, type Column, type PeriodChoice } from './widgets.js';

type TenantRow = UsageRow & { tier: string; rows_stored: number; last_activity: string | null };

const figureColumns = <T extends UsageRow>(): Column<T>[] => [
  { key: 'requests', label: 'Requests', sort: (r) => r.requests, cell: (r) => int(r.requests), numeric: true },
  { key: 'inputs', label: 'Inputs', sort: (r) => r.inputs, cell: (r) => int(r.inputs), numeric: true },
  { key: 'hit_ratio', label: 'Hit ratio', sort: (r) => r.hit_ratio, cell: (r) => pct(r.hit_ratio), numeric: true },
  { key: 'tokens_computed', label: 'Tokens computed', sort: (r) => r.tokens_computed, cell: (r) => int(r.tokens_computed), numeric: true },
  { key: 'tokens_saved', label: 'Tokens saved', sort: (r) => r.tokens_saved, cell: (r) => int(r.tokens_saved), numeric: true },
  { key: 'money_saved_usd', label: 'Money saved', sort: (r) => r.money_saved_usd, cell: (r) => usd(r.money_saved_usd), numeric: true },
];

/** The operator view: every tenant, every model, this process's live figures. */
export class OperatorView {
  readonly element: HTMLElement;
  private choice: PeriodChoice = { hours: 24, grain: 'hour' };
  private readonly totals = h('div', { class: 'cards', id: 'op-totals' });
  private readonly tenantsEmpty = h('div');
  private readonly tenants = new SortableTable<TenantRow>(
    'Usage by tenant',
    [
      { key: 'key', label: 'Tenant', sort: (r) => r.key, cell: (r) => r.key },
      { key: 'tier', label: 'Tier', sort: (r) => r.tier, cell: (r) => r.tier },
      ...figureColumns<TenantRow>(),
      { key: 'rows_stored', label: 'Rows stored', sort: (r) => r.rows_stored, cell: (r) => int(r.rows_stored), numeric: true },
      { key: 'last_activity', label: 'Last activity', sort: (r) => r.last_activity ?? '', cell: (r) => utc(r.last_activity) },
    ],
    'requests',
    'desc',
    (r) => r.key,
  );
  private readonly models = new SortableTable<UsageRow>('Usage by model', [{ key: 'key', label: 'Model', sort: (r) => r.key, cell: (r) => r.key }, ...figureColumns()], 'inputs', 'desc', (r) => r.key);
  private readonly charts = new ChartsPanel('op');
  private readonly live = h('div', { class: 'cards', id: 'op-live' });

  constructor(private readonly onChange: () => void) {
    this.element = h(
      'div',
      { class: 'view', id: 'operator-view' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Operator view'), periodControls('op', this.choice, (c) => ((this.choice = c), this.onChange()))),
      section('op-totals-section', 'Totals', h('p', { class: 'help', id: 'op-days' }), this.totals),
      section('op-tenants-section', 'Tenants', this.tenantsEmpty, this.tenants.element),
      section('op-charts-section', 'Over time', this.charts.element),
      section('op-models-section', 'Models', this.models.element),
      section('op-live-section', 'This process, now', this.live),
    );
  }

  async refresh(): Promise<void> {
    const range = rangeQuery(this.choice.hours, this.choice.grain);
    // Tenants and models over the same days as the charts.
    const dayRange = rangeQuery(this.choice.hours, 'day');
    const [byTenant, byModel, overTime, live] = await Promise.all([
      call<UsageReport>('GET', `/admin/v1/usage?${qs({ group_by: 'tenant', ...dayRange })}`),
      call<UsageReport>('GET', `/admin/v1/usage?${qs({ group_by: 'model', ...dayRange })}`),
      call<UsageReport>('GET', `/admin/v1/usage?${qs({ group_by: this.choice.grain, ...range })}`),
      call<LiveFigures>('GET', '/admin/v1/live'),
    ]);
    this.render(byTenant, byModel, overTime, live);
  }

  private render(byTenant: UsageReport, byModel: UsageReport, overTime: UsageReport, live: LiveFigures): void {
    const t = byTenant.totals;
    // Tenants, models and totals are counted in whole UTC days (usage_daily); the charts follow the period exactly.
    const lastDay = new Date(Date.parse(byTenant.to) - 86_400_000).toISOString().slice(0, 10);
    const firstDay = byTenant.from.slice(0, 10);
    this.element.querySelector('#op-days')!.textContent =
      firstDay === lastDay ? `Today (${firstDay}, UTC), tenants and models included.` : `UTC days ${firstDay} to ${lastDay}, tenants and models included.`;
    fill(
      this.totals,
      card('requests', 'Requests', int(t.requests), t.requests),
      card('inputs', 'Inputs', int(t.inputs), t.inputs),
      card('hit_ratio', 'Hit ratio', pct(t.hit_ratio), t.hit_ratio),
      card('tokens_computed', 'Tokens computed', int(t.tokens_computed), t.tokens_computed),
      card('tokens_saved', 'Tokens saved', int(t.tokens_saved), t.tokens_saved),
      card('money_saved_usd', 'Money saved', usd(t.money_saved_usd), t.money_saved_usd, 'at the configured prices'),
      card('rows_stored', 'Rows stored', int(t.rows_stored ?? 0), t.rows_stored ?? 0, 'all tenants and the shared pool'),
      card('tenants', 'Tenants', int(t.tenants ?? 0), t.tenants ?? 0),
    );
    const rows = byTenant.data as TenantRow[];
    fill(
      this.tenantsEmpty,
      rows.length === 0
        ? emptyState(h('strong', {}, 'No tenants yet. '), 'Create one with ', h('code', {}, 'embedding-cache keys create --tenant NAME'), ' (it prints the API key), or POST /admin/v1/tenants.')
        : t.requests === 0
          ? howToStart()
          : null,
    );
    this.tenants.update(rows);
    this.models.update(byModel.data);
    this.charts.update(overTime, this.choice.grain);
    this.renderLive(live);
  }

  private renderLive(l: LiveFigures): void {
    const queued = Object.values(l.queue_depth).reduce((a, b) => a + b, 0);
    const backends = Object.entries(l.backends);
    const health = (ok: boolean, latency: number | null, error: string | null) => (ok ? `up (${ms(latency)})` : `down: ${error ?? 'no answer'}`);
    fill(
      this.live,
      card('hot_bytes', 'Hot cache', bytes(l.hot_cache.bytes), l.hot_cache.bytes, `of ${bytes(l.hot_cache.max_bytes)}, ${int(l.hot_cache.entries)} vectors`),
      card('hot_hit_ratio', 'Hot cache hit ratio', pct(l.hot_cache.hit_ratio), l.hot_cache.hit_ratio, `${int(l.hot_cache.lookups)} lookups since start`),
      card('process_hit_ratio', 'Cache hit ratio', pct(l.cache.hit_ratio), l.cache.hit_ratio, `${int(l.cache.hits + l.cache.misses)} inputs since start`),
      card('queue_depth', 'Local model queue', int(queued), queued, Object.keys(l.queue_depth).length === 0 ? 'no local model' : 'inputs waiting'),
      ...(backends.length === 0
        ? [card('backend_p50', 'Backend p50 / p99', '—', '', 'no backend call in the last minute')]
        : backends.map(([name, b]) => card(`backend_${name}`, `${name} p50 / p99`, `${ms(b.p50_ms)} / ${ms(b.p99_ms)}`, b.p99_ms ?? '', `${int(b.calls)} calls, last minute`))),
      card('store', `Store (${l.store.kind})`, health(l.store.ok, l.store.latency_ms, l.store.error), String(l.store.ok)),
      card('redis', 'Redis', l.redis.configured ? health(l.redis.ok, l.redis.latency_ms, l.redis.error) : 'not configured', l.redis.configured ? String(l.redis.ok) : 'none', l.redis.configured ? undefined : 'limits are per process'),
    );
  }
}
