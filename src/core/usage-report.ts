import type { Sql } from '../store/db.js';
import { addCounters } from './domain.js';
import { cacheTotals, tenantOverview, usageBuckets, type UsageBucketRow, type UsageGroup } from '../store/usage-report.js';

/** USD per million tokens of a usage row's model. Usage rows are per cache scope (`model#task_type`); prices are per model. */
export function priceOf(prices: Record<string, number>, scopeModel: string): number {
  return prices[scopeModel.split('#')[0]] ?? 0;
}

/** The figures every usage view shows, for one bucket or for the whole range. */
export interface UsageFigures {
  requests: number;
  inputs: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses); 0 when nothing was asked. */
  hit_ratio: number;
  /** Tokens of every input, hit or miss. */
  prompt_tokens: number;
  /** Tokens a backend computed (the misses). */
  tokens_computed: number;
  /** Tokens served from the cache: what the hits would have cost. */
  tokens_saved: number;
  /** tokens_saved priced by the configured prices (USD). */
  money_saved_usd: number;
  /** Time spent waiting on backends, summed over requests. */
  backend_ms: number;
  /** backend_ms / requests: the mean backend wait per request, hits included as 0. */
  backend_ms_per_request: number;
}

export interface TenantUsageRow extends UsageFigures {
  key: string;
  tier: string;
  rows_stored: number;
  last_activity: string | null;
}

export interface UsageReport {
  object: 'usage_report';
  group_by: UsageGroup;
  from: string;
  to: string;
  data: (UsageFigures & { key: string } & Partial<Omit<TenantUsageRow, keyof UsageFigures | 'key'>>)[];
  totals: UsageFigures & { rows_stored?: number; tenants?: number };
  /** The price table the money figures use (USD per million tokens, by model). */
  prices: Record<string, number>;
}

const empty = () => ({ requests: 0, inputs: 0, hits: 0, misses: 0, promptTokens: 0, hitTokens: 0, backendMs: 0, saved: 0 });
type Sums = ReturnType<typeof empty>;

function add(into: Sums, r: UsageBucketRow, prices: Record<string, number>): void {
  addCounters(into, r);
  into.saved += (r.hitTokens * priceOf(prices, r.model)) / 1e6;
}

function figures(s: Sums): UsageFigures {
  return {
    requests: s.requests,
    inputs: s.inputs,
    hits: s.hits,
    misses: s.misses,
    hit_ratio: s.hits + s.misses > 0 ? s.hits / (s.hits + s.misses) : 0,
    prompt_tokens: s.promptTokens,
    tokens_computed: s.promptTokens - s.hitTokens,
    tokens_saved: s.hitTokens,
    money_saved_usd: s.saved,
    backend_ms: Math.round(s.backendMs),
    backend_ms_per_request: s.requests > 0 ? s.backendMs / s.requests : 0,
  };
}

/** Sums rows into buckets (in first-seen order) and a total, pricing each cache scope's saved tokens. */
export function foldUsage(rows: UsageBucketRow[], prices: Record<string, number>, keyOf: (r: UsageBucketRow) => string = (r) => r.bucket) {
  const buckets = new Map<string, Sums>();
  const total = empty();
  for (const r of rows) {
    const k = keyOf(r);
    let b = buckets.get(k);
    if (!b) buckets.set(k, (b = empty()));
    add(b, r, prices);
    add(total, r, prices);
  }
  return { data: [...buckets].map(([key, s]) => ({ key, ...figures(s) })), totals: figures(total) };
}

export interface UsageReportOptions {
  group: UsageGroup;
  from: Date;
  to: Date;
  prices: Record<string, number>;
  /** Only this tenant's usage (the tenant view). Grouping by tenant is for the operator. */
  tenantId?: number;
}

/**
 * Usage over a range, grouped by tenant, model, day or hour. By tenant, every tenant is listed
 * (those without usage in the range too) with its tier, stored rows and last activity.
 */
export async function usageReport(sql: Sql, o: UsageReportOptions): Promise<UsageReport> {
  const rows = await usageBuckets(sql, { group: o.group, from: o.from, to: o.to, tenantId: o.tenantId });
  // By model, the task-type variants of one model are one line: they share a price.
  const folded = foldUsage(rows, o.prices, o.group === 'model' ? (r) => r.bucket.split('#')[0] : undefined);
  const head = { object: 'usage_report' as const, group_by: o.group, from: o.from.toISOString(), to: o.to.toISOString(), prices: o.prices };
  if (o.group !== 'tenant') return { ...head, ...folded };
  const [tenants, totals] = await Promise.all([tenantOverview(sql), cacheTotals(sql)]);
  const byName = new Map(folded.data.map((d) => [d.key, d]));
  const zero = foldUsage([], o.prices).totals;
  const data = tenants.map((t) => ({
    ...(byName.get(t.name) ?? { key: t.name, ...zero }),
    tier: t.tier,
    rows_stored: t.rowsStored,
    last_activity: t.lastActivity,
  }));
  return { ...head, data, totals: { ...folded.totals, rows_stored: totals.rows, tenants: tenants.length } };
}

export interface PublicStats {
  embeddings_cached: number;
  tenants_served: number;
  inputs_served: number;
  hit_ratio: number;
  updated_at: string;
}

/** Installation-wide figures that name no tenant: the public stats page. */
export async function publicStats(sql: Sql): Promise<PublicStats> {
  const t = await cacheTotals(sql);
  return {
    embeddings_cached: t.rows,
    tenants_served: t.tenantsServed,
    inputs_served: t.inputs,
    hit_ratio: t.hits + t.misses > 0 ? t.hits / (t.hits + t.misses) : 0,
    updated_at: new Date().toISOString(),
  };
}
