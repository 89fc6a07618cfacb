import type { Sql } from '../store/db.js';
import { countRows } from '../store/embeddings.js';
import { usageForTenant } from '../store/usage.js';
import { priceOf } from './usage-report.js';

export interface TenantStats {
  tenant: string;
  requests: number;
  inputs: number;
  hits: number;
  misses: number;
  hit_ratio: number;
  prompt_tokens: number;
  /** Tokens served from the cache instead of a backend. */
  saved_tokens: number;
  /** saved_tokens priced by the price table (USD). */
  estimated_savings_usd: number;
  stored_rows: number;
  stored_bytes: number;
  by_day: {
    day: string;
    model: string;
    requests: number;
    inputs: number;
    hits: number;
    misses: number;
    prompt_tokens: number;
    saved_tokens: number;
    estimated_savings_usd: number;
    backend_ms: number;
  }[];
}

/** Usage, savings and stored rows of one tenant: what /v1/stats, the admin API and the CLI show. */
export async function tenantStats(sql: Sql, tenant: { id: number; name: string }, prices: Record<string, number>): Promise<TenantStats> {
  const [usage, stored] = await Promise.all([usageForTenant(sql, tenant.id), countRows(sql, tenant.id)]);
  const price = (model: string) => priceOf(prices, model);
  const byDay = usage.map((u) => ({
    day: u.day,
    model: u.model,
    requests: u.requests,
    inputs: u.inputs,
    hits: u.hits,
    misses: u.misses,
    prompt_tokens: u.promptTokens,
    saved_tokens: u.hitTokens,
    estimated_savings_usd: (u.hitTokens * price(u.model)) / 1e6,
    backend_ms: Math.round(u.backendMs),
  }));
  const sum = (k: 'requests' | 'inputs' | 'hits' | 'misses' | 'prompt_tokens' | 'saved_tokens' | 'estimated_savings_usd') => byDay.reduce((a, u) => a + u[k], 0);
  const hits = sum('hits');
  const misses = sum('misses');
  return {
    tenant: tenant.name,
    requests: sum('requests'),
    inputs: sum('inputs'),
    hits,
    misses,
    hit_ratio: hits + misses > 0 ? hits / (hits + misses) : 0,
    prompt_tokens: sum('prompt_tokens'),
    saved_tokens: sum('saved_tokens'),
    estimated_savings_usd: sum('estimated_savings_usd'),
    stored_rows: stored.rows,
    stored_bytes: stored.bytes,
    by_day: byDay,
  };
}
