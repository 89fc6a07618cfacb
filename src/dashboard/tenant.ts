import { call, qs, rangeQuery, RequestError, type KeyView, type ProviderView, type TenantUsage, type UsageReport } from './api.js';
import { fill, h } from './dom.js';
import { int, pct, usd, utc } from './format.js';
import { currentToken } from './session.js';
import { card, ChartsPanel, emptyState, howToStart, periodControls, section, SortableTable, type PeriodChoice } from './widgets.js';

const PREFIX_LENGTH = 11;

/** The tenant view: its own figures and charts, keys, providers and the savings calculator. */
export class TenantView {
  readonly element: HTMLElement;
  private choice: PeriodChoice = { hours: 24 * 7, grain: 'day' };
  private readonly heading = h('h1', {}, 'Your usage');
  private readonly totals = h('div', { class: 'cards', id: 'tenant-totals' });
  private readonly start = h('div');
  private readonly charts = new ChartsPanel('tenant');
  private readonly keys = h('div', { id: 'tenant-keys' });
  private readonly keyNotice = h('div', { role: 'status', class: 'notice' });
  private readonly providers = h('div', { id: 'tenant-providers' });
  private readonly calculator = h('div', { id: 'tenant-savings' });
  private readonly priceInput = h('input', { id: 'calc-price', type: 'number', min: 0, step: 'any', inputmode: 'decimal' });
  private readonly modelSelect = h('select', { id: 'calc-model' });
  private readonly calcResult = h('output', { id: 'calc-result', for: 'calc-price calc-model' });
  private savedTokens = 0;
  private keysEnabled = true;
  private readonly byModel = new SortableTable<UsageReport['data'][number] & { price: number }>(
    'Savings by model',
    [
      { key: 'key', label: 'Model', sort: (r) => r.key, cell: (r) => r.key },
      { key: 'tokens_saved', label: 'Tokens saved', sort: (r) => r.tokens_saved, cell: (r) => int(r.tokens_saved), numeric: true },
      { key: 'price', label: 'Price per 1M tokens', sort: (r) => r.price, cell: (r) => (r.price > 0 ? usd(r.price) : 'not priced'), numeric: true },
      { key: 'money_saved_usd', label: 'Saved', sort: (r) => r.money_saved_usd, cell: (r) => usd(r.money_saved_usd), numeric: true },
    ],
    'money_saved_usd',
    'desc',
    (r) => r.key,
  );

  constructor(
    private readonly onChange: () => void,
    /** Called after the key this session signed in with was revoked. */
    private readonly onSessionKeyRevoked: (message: string) => void,
    /** Called with the tenant's name once the server has said it. */
    private readonly onTenant: (name: string) => void,
  ) {
    this.priceInput.addEventListener('input', () => {
      // The select names a model only while the price is that model's.
      const match = [...this.modelSelect.options].find((o) => o.value !== '' && Number(o.value) === Number(this.priceInput.value));
      this.modelSelect.value = match?.value ?? '';
      this.renderCalc();
    });
    this.modelSelect.addEventListener('change', () => {
      if (this.modelSelect.value) this.priceInput.value = this.modelSelect.value;
      this.renderCalc();
    });
    const createName = h('input', { id: 'key-name', type: 'text', maxlength: 200, autocomplete: 'off', placeholder: 'e.g. staging' });
    const createForm = h(
      'form',
      { class: 'inline-form', id: 'key-create' },
      h('label', { for: createName.id }, 'New key name'),
      createName,
      h('button', { type: 'submit' }, 'Create key'),
    );
    createForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.createKey(createName.value.trim());
    });
    this.element = h(
      'div',
      { class: 'view', id: 'tenant-view' },
      h('div', { class: 'view-head' }, this.heading, periodControls('tenant', this.choice, (c) => ((this.choice = c), this.onChange()))),
      section('tenant-totals-section', 'Totals, all time', this.start, this.totals),
      section('tenant-charts-section', 'Over time', this.charts.element),
      section(
        'tenant-savings-section',
        'Savings calculator',
        h('p', {}, 'What the inputs served from the cache would have cost a provider, at the prices this server is configured with.'),
        this.byModel.element,
        h(
          'div',
          { class: 'controls' },
          h('label', { for: this.modelSelect.id }, 'Compare with'),
          this.modelSelect,
          h('label', { for: this.priceInput.id }, 'USD per 1M tokens'),
          this.priceInput,
        ),
        h('p', {}, this.calcResult),
        this.calculator,
      ),
      section('tenant-keys-section', 'API keys', this.keyNotice, createForm, this.keys),
      section('tenant-providers-section', 'Providers', this.providers),
    );
  }

  async refresh(): Promise<void> {
    const range = rangeQuery(this.choice.hours, this.choice.grain);
    const dayRange = rangeQuery(this.choice.hours, 'day');
    const [usage, byModel] = await Promise.all([
      call<TenantUsage>('GET', `/v1/usage?${qs({ group_by: this.choice.grain, ...range })}`),
      call<UsageReport>('GET', `/v1/usage?${qs({ group_by: 'model', ...dayRange })}`),
    ]);
    this.render(usage, byModel);
  }

  /** Keys and providers change only by action: loaded at sign-in and after each change. */
  async refreshAccount(): Promise<void> {
    await Promise.all([this.loadKeys(), this.loadProviders()]);
  }

  private render(u: TenantUsage, byModel: UsageReport): void {
    const s = u.summary;
    this.heading.textContent = `Usage of ${u.tenant}`;
    this.onTenant(u.tenant);
    fill(
      this.totals,
      card('requests', 'Requests', int(s.requests), s.requests),
      card('inputs', 'Inputs', int(s.inputs), s.inputs),
      card('hit_ratio', 'Hit ratio', pct(s.hit_ratio), s.hit_ratio),
      card('hits', 'Hits', int(s.hits), s.hits),
      card('misses', 'Misses', int(s.misses), s.misses),
      card('saved_tokens', 'Tokens saved', int(s.saved_tokens), s.saved_tokens),
      card('estimated_savings_usd', 'Money saved', usd(s.estimated_savings_usd), s.estimated_savings_usd, 'at the configured prices'),
      card('stored_rows', 'Rows stored', int(s.stored_rows), s.stored_rows),
      card('tier', 'Tier', u.tier, u.tier),
    );
    fill(this.start, s.requests === 0 ? howToStart() : null);
    this.charts.update(u, this.choice.grain);
    this.byModel.update(byModel.data.map((d) => ({ ...d, price: u.prices[d.key] ?? 0 })));
    this.savedTokens = s.saved_tokens;
    this.renderPrices(u.prices);
    this.renderCalc();
  }

  private renderPrices(prices: Record<string, number>): void {
    const want = Object.entries(prices).map(([m, p]) => `${m}=${p}`).join('|');
    if (this.modelSelect.dataset.prices === want) return;
    this.modelSelect.dataset.prices = want;
    fill(
      this.modelSelect,
      h('option', { value: '' }, 'a price of my own'),
      ...Object.entries(prices).map(([m, p]) => h('option', { value: p }, `${m} (${usd(p)} per 1M)`)),
    );
    if (!this.priceInput.value) {
      const top = Math.max(0, ...Object.values(prices));
      this.priceInput.value = String(top);
      this.modelSelect.value = String(top);
    }
  }

  private renderCalc(): void {
    const price = Number(this.priceInput.value);
    if (!Number.isFinite(price) || price < 0) {
      this.calcResult.textContent = 'Enter a price in US dollars per million tokens.';
      return;
    }
    const cost = (this.savedTokens * price) / 1e6;
    this.calcResult.textContent = `At ${usd(price)} per million tokens, the ${int(this.savedTokens)} tokens served from the cache would have cost ${usd(cost)}.`;
    this.calcResult.dataset.value = String(cost);
  }

  private async loadKeys(): Promise<void> {
    let keys: KeyView[];
    try {
      keys = (await call<{ data: KeyView[] }>('GET', '/v1/keys')).data;
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) {
        this.keysEnabled = false;
        fill(this.keys, emptyState('Managing keys from here is not enabled on this server; the operator manages keys (', h('code', {}, 'embedding-cache keys'), ').'));
        return;
      }
      throw err;
    }
    this.keysEnabled = true;
    const inUse = currentToken()?.slice(0, PREFIX_LENGTH);
    const table = new SortableTable<KeyView>(
      'API keys',
      [
        { key: 'prefix', label: 'Prefix', sort: (k) => k.prefix, cell: (k) => h('code', {}, k.prefix, k.prefix === inUse ? ' (this session)' : '') },
        { key: 'name', label: 'Name', sort: (k) => k.name ?? '', cell: (k) => k.name ?? '—' },
        { key: 'created_at', label: 'Created', sort: (k) => k.created_at, cell: (k) => utc(k.created_at) },
        { key: 'last_used_at', label: 'Last used', sort: (k) => k.last_used_at ?? '', cell: (k) => (k.last_used_at === undefined ? 'not recorded' : utc(k.last_used_at)) },
        {
          key: 'revoked_at',
          label: 'Status',
          sort: (k) => k.revoked_at ?? '',
          cell: (k) =>
            k.revoked_at
              ? `revoked ${utc(k.revoked_at)}`
              : h('button', { type: 'button', class: 'danger', 'data-revoke': k.prefix, 'aria-label': `Revoke key ${k.prefix}`, onclick: () => void this.revoke(k.prefix, k.prefix === inUse) }, 'Revoke'),
        },
      ],
      'created_at',
      'desc',
      (k) => k.prefix,
    );
    table.update(keys);
    fill(this.keys, keys.length === 0 ? emptyState('No keys. Create one above.') : table.element);
  }

  private async loadProviders(): Promise<void> {
    let providers: ProviderView[];
    try {
      providers = (await call<{ data: ProviderView[] }>('GET', '/v1/providers')).data;
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) {
        fill(this.providers, emptyState('Providers are managed by the operator on this server.'));
        return;
      }
      throw err;
    }
    if (providers.length === 0) {
      fill(
        this.providers,
        emptyState(
          h('strong', {}, 'No providers of your own. '),
          'Misses are computed by the server’s models. To use your own OpenAI-compatible key (BYOK), add a provider: POST ',
          h('code', {}, '/v1/providers'),
          ' with ',
          h('code', {}, '{"name","base_url","api_key","models"}'),
          '.',
        ),
      );
      return;
    }
    const table = new SortableTable<ProviderView>(
      'Providers',
      [
        { key: 'name', label: 'Name', sort: (p) => p.name, cell: (p) => p.name },
        { key: 'base_url', label: 'Base URL', sort: (p) => p.base_url, cell: (p) => h('code', {}, p.base_url) },
        { key: 'models', label: 'Models', sort: (p) => p.models.join(','), cell: (p) => p.models.join(', ') },
        { key: 'api_key_last4', label: 'Key', sort: (p) => p.api_key_last4, cell: (p) => `…${p.api_key_last4}` },
        { key: 'created_at', label: 'Added', sort: (p) => p.created_at, cell: (p) => utc(p.created_at) },
      ],
      'name',
      'asc',
      (p) => p.name,
    );
    table.update(providers);
    fill(this.providers, table.element);
  }

  private async createKey(name: string): Promise<void> {
    if (!this.keysEnabled) return;
    try {
      const k = await call<{ key: string; prefix: string }>('POST', '/v1/keys', name ? { name } : {});
      const out = h('input', { type: 'text', readonly: true, value: k.key, id: 'new-key', 'aria-label': 'The new API key' });
      fill(this.keyNotice, h('p', {}, `Key ${k.prefix} created. Copy it now: it is shown only once.`), out);
      out.select();
      await this.loadKeys();
    } catch (err) {
      fill(this.keyNotice, h('p', { class: 'error' }, `Could not create a key: ${(err as Error).message}`));
    }
  }

  private async revoke(prefix: string, inUse: boolean): Promise<void> {
    const question = inUse
      ? `Revoke ${prefix}? You are signed in with this key: you will be signed out, and every client using it is refused from now on.`
      : `Revoke ${prefix}? Every client using this key is refused from now on.`;
    if (!window.confirm(question)) return;
    try {
      await call('DELETE', `/v1/keys/${encodeURIComponent(prefix)}`);
    } catch (err) {
      fill(this.keyNotice, h('p', { class: 'error' }, `Could not revoke ${prefix}: ${(err as Error).message}`));
      return;
    }
    if (inUse) return this.onSessionKeyRevoked(`Key ${prefix} was revoked, and this session used it: sign in with another key.`);
    fill(this.keyNotice, h('p', {}, `Key ${prefix} revoked.`));
    await this.loadKeys().catch((err: unknown) => fill(this.keyNotice, h('p', { class: 'error' }, `Could not reload the keys: ${(err as Error).message}`)));
  }
}
