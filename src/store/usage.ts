import type { UsageDelta } from '../core/domain.js';
import type { Sql } from './db.js';

/**
 * Adds many deltas in one statement. Deltas of a tenant deleted meanwhile are dropped (the
 * join), so one stale entry cannot make the whole batch fail again and again.
 */
export async function addUsage(sql: Sql, deltas: UsageDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const col = <K extends keyof UsageDelta>(k: K) => deltas.map((d) => d[k]);
  await sql`
    INSERT INTO usage_daily (tenant_id, day, model, requests, inputs, hits, misses, prompt_tokens, hit_tokens, backend_ms)
    SELECT v.* FROM unnest(
      ${col('tenantId')}::bigint[], ${col('day')}::date[], ${col('model')}::text[], ${col('requests')}::bigint[],
      ${col('inputs')}::bigint[], ${col('hits')}::bigint[], ${col('misses')}::bigint[], ${col('promptTokens')}::bigint[],
      ${col('hitTokens')}::bigint[], ${col('backendMs')}::float8[]
    ) AS v(tenant_id, day, model, requests, inputs, hits, misses, prompt_tokens, hit_tokens, backend_ms)
    JOIN tenants t ON t.id = v.tenant_id
    ON CONFLICT (tenant_id, day, model) DO UPDATE SET
      requests = usage_daily.requests + EXCLUDED.requests,
      inputs = usage_daily.inputs + EXCLUDED.inputs,
      hits = usage_daily.hits + EXCLUDED.hits,
      misses = usage_daily.misses + EXCLUDED.misses,
      prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
      hit_tokens = usage_daily.hit_tokens + EXCLUDED.hit_tokens,
      backend_ms = usage_daily.backend_ms + EXCLUDED.backend_ms`;
}

/** A stored day of usage: the same counters as a delta, summed. */
export type UsageRow = Omit<UsageDelta, 'tenantId'>;

export async function usageForTenant(sql: Sql, tenantId: number, sinceDay?: string): Promise<UsageRow[]> {
  const rows = await sql<
    { day: string; model: string; requests: string; inputs: string; hits: string; misses: string; prompt_tokens: string; hit_tokens: string; backend_ms: number }[]
  >`SELECT to_char(day, 'YYYY-MM-DD') AS day, model, requests, inputs, hits, misses, prompt_tokens, hit_tokens, backend_ms
    FROM usage_daily WHERE tenant_id = ${tenantId} AND (${sinceDay ?? null}::date IS NULL OR day >= ${sinceDay ?? null}::date)
    ORDER BY day, model`;
  return rows.map((r) => ({
    day: r.day,
    model: r.model,
    requests: Number(r.requests),
    inputs: Number(r.inputs),
    hits: Number(r.hits),
    misses: Number(r.misses),
    promptTokens: Number(r.prompt_tokens),
    hitTokens: Number(r.hit_tokens),
    backendMs: Number(r.backend_ms),
  }));
}
