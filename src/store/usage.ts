import type { UsageCounters, UsageDelta } from '../core/domain.js';

export { addCounters, type UsageCounters } from '../core/domain.js';
import type { Sql } from './db.js';

/** The summed counters of a usage row, as the tables name them (constants: safe to splice into SQL). */
const COUNTERS = ['requests', 'inputs', 'hits', 'misses', 'prompt_tokens', 'hit_tokens', 'backend_ms'] as const;

/**
 * Adds many deltas to usage_daily and usage_hourly in one statement (one round trip). Deltas of
 * a tenant deleted meanwhile are dropped (the join), so one stale entry cannot make the whole
 * batch fail again and again. Deltas are summed per conflict key first: a batch may hold two
 * hours of one day, and ON CONFLICT may touch a row only once per statement.
 */
export async function addUsage(sql: Sql, deltas: UsageDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const col = <K extends keyof UsageDelta>(k: K) => deltas.map((d) => d[k]);
  const now = new Date().toISOString();
  const hours = deltas.map((d) => `${hourOf(d, now)}:00:00Z`);
  const columns = sql.unsafe(COUNTERS.join(', '));
  const sums = sql.unsafe(COUNTERS.map((c) => `sum(${c})`).join(', '));
  const added = (table: string) => sql.unsafe(COUNTERS.map((c) => `${c} = ${table}.${c} + EXCLUDED.${c}`).join(', '));
  await sql`
    WITH v AS (
      SELECT v.* FROM unnest(
        ${col('tenantId')}::bigint[], ${col('day')}::date[], ${hours}::timestamptz[], ${col('model')}::text[], ${col('requests')}::bigint[],
        ${col('inputs')}::bigint[], ${col('hits')}::bigint[], ${col('misses')}::bigint[], ${col('promptTokens')}::bigint[],
        ${col('hitTokens')}::bigint[], ${col('backendMs')}::float8[]
      ) AS v(tenant_id, day, hour, model, ${columns})
      JOIN tenants t ON t.id = v.tenant_id
    ), daily AS (
      INSERT INTO usage_daily (tenant_id, day, model, ${columns})
      SELECT tenant_id, day, model, ${sums} FROM v GROUP BY tenant_id, day, model
      ON CONFLICT (tenant_id, day, model) DO UPDATE SET ${added('usage_daily')}
    )
    INSERT INTO usage_hourly (tenant_id, hour, model, ${columns})
    SELECT tenant_id, hour, model, ${sums} FROM v GROUP BY tenant_id, hour, model
    ON CONFLICT (tenant_id, hour, model) DO UPDATE SET ${added('usage_hourly')}, last_seen_at = now()`;
}

/** `YYYY-MM-DDTHH` of a delta: its own hour, else the hour of `nowIso` if that is on its day, else the day's last hour. */
export function hourOf(d: Pick<UsageDelta, 'day' | 'hour'>, nowIso: string): string {
  if (d.hour) return d.hour;
  return nowIso.slice(0, 10) === d.day ? nowIso.slice(0, 13) : `${d.day}T23`;
}

/** The counters as PostgreSQL returns them (bigint sums arrive as strings). */
export interface CounterColumns {
  requests: string;
  inputs: string;
  hits: string;
  misses: string;
  prompt_tokens: string;
  hit_tokens: string;
  backend_ms: number | string;
}

export function countersOf(r: CounterColumns): UsageCounters {
  return {
    requests: Number(r.requests),
    inputs: Number(r.inputs),
    hits: Number(r.hits),
    misses: Number(r.misses),
    promptTokens: Number(r.prompt_tokens),
    hitTokens: Number(r.hit_tokens),
    backendMs: Number(r.backend_ms),
  };
}

/** A stored day of usage: the same counters as a delta, summed. */
export type UsageRow = Omit<UsageDelta, 'tenantId' | 'hour'>;

export async function usageForTenant(sql: Sql, tenantId: number, sinceDay?: string): Promise<UsageRow[]> {
  const rows = await sql<({ day: string; model: string } & CounterColumns)[]>`SELECT to_char(day, 'YYYY-MM-DD') AS day, model, requests, inputs, hits, misses, prompt_tokens, hit_tokens, backend_ms
    FROM usage_daily WHERE tenant_id = ${tenantId} AND (${sinceDay ?? null}::date IS NULL OR day >= ${sinceDay ?? null}::date)
    ORDER BY day, model`;
  return rows.map((r) => ({ day: r.day, model: r.model, ...countersOf(r) }));
}
