import type { Sql } from './db.js';
import { countersOf, type CounterColumns, type UsageCounters } from './usage.js';

/** How usage is grouped: by tenant or model (from usage_daily), by UTC day or UTC hour. */
export const USAGE_GROUPS = ['tenant', 'model', 'day', 'hour'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

/** Summed counters of one bucket (tenant name, model, `YYYY-MM-DD` or hour ISO) and one cache scope. */
export interface UsageBucketRow extends UsageCounters {
  bucket: string;
  model: string;
}

export interface UsageRangeQuery {
  group: UsageGroup;
  /** Inclusive start, exclusive end. Days are taken whole: a day counts if it overlaps the range. */
  from: Date;
  to: Date;
  /** One tenant only (the tenant view); every tenant when absent. */
  tenantId?: number;
}

type RawRow = { bucket: string; model: string } & CounterColumns;

const toRow = (r: RawRow): UsageBucketRow => ({ bucket: r.bucket, model: r.model, ...countersOf(r) });

/** Usage summed by bucket and cache scope over a range: one query, on the table of the grouping's grain. */
export async function usageBuckets(sql: Sql, q: UsageRangeQuery): Promise<UsageBucketRow[]> {
  const tenantId = q.tenantId ?? null;
  const sums = sql`sum(u.requests) AS requests, sum(u.inputs) AS inputs, sum(u.hits) AS hits, sum(u.misses) AS misses,
    sum(u.prompt_tokens) AS prompt_tokens, sum(u.hit_tokens) AS hit_tokens, sum(u.backend_ms) AS backend_ms`;
  if (q.group === 'hour') {
    const rows = await sql<RawRow[]>`
      SELECT to_char(u.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"') AS bucket, u.model, ${sums}
      FROM usage_hourly u
      WHERE u.hour >= date_trunc('hour', ${q.from}::timestamptz) AND u.hour < ${q.to}::timestamptz
        AND (${tenantId}::bigint IS NULL OR u.tenant_id = ${tenantId})
      GROUP BY 1, u.model ORDER BY 1, u.model`;
    return rows.map(toRow);
  }
  const bucket =
    q.group === 'day' ? sql`to_char(u.day, 'YYYY-MM-DD')` : q.group === 'model' ? sql`u.model` : sql`t.name`;
  // A day overlaps [from, to) when day >= from's day and day < to (as a timestamp at midnight UTC).
  const rows = await sql<RawRow[]>`
    SELECT ${bucket} AS bucket, u.model, ${sums}
    FROM usage_daily u JOIN tenants t ON t.id = u.tenant_id
    WHERE u.day >= (${q.from}::timestamptz AT TIME ZONE 'UTC')::date AND u.day::timestamp < (${q.to}::timestamptz AT TIME ZONE 'UTC')
      AND (${tenantId}::bigint IS NULL OR u.tenant_id = ${tenantId})
    GROUP BY 1, u.model ORDER BY 1, u.model`;
  return rows.map(toRow);
}

export interface TenantOverview {
  id: number;
  name: string;
  tier: string;
  rowsStored: number;
  /** When usage was last written for it (ISO), or its last day of usage before hourly usage existed. */
  lastActivity: string | null;
}

/**
 * Every tenant (not the shared pool) with its stored rows and last activity. The row count
 * walks each tenant's part of the primary key: exact, and proportional to the cache's size.
 */
export async function tenantOverview(sql: Sql): Promise<TenantOverview[]> {
  const rows = await sql<{ id: string; name: string; tier: string; rows: string; last_seen: Date | null; last_day: string | null }[]>`
    SELECT t.id, t.name, t.tier,
      (SELECT count(*) FROM embeddings e WHERE e.tenant_id = t.id) AS rows,
      (SELECT max(h.last_seen_at) FROM usage_hourly h WHERE h.tenant_id = t.id) AS last_seen,
      (SELECT to_char(max(d.day), 'YYYY-MM-DD') FROM usage_daily d WHERE d.tenant_id = t.id) AS last_day
    FROM tenants t WHERE t.id <> 0 ORDER BY t.name`;
  return rows.map((r) => ({
    id: Number(r.id),
    name: r.name,
    tier: r.tier,
    rowsStored: Number(r.rows),
    lastActivity: r.last_seen ? r.last_seen.toISOString() : r.last_day ? `${r.last_day}T00:00:00.000Z` : null,
  }));
}

export interface CacheTotals {
  /** Rows in the cache, the shared pool's included. */
  rows: number;
  /** Tenants that made at least one request. */
  tenantsServed: number;
  inputs: number;
  hits: number;
  misses: number;
}

/** Installation-wide totals, with no tenant named: what the public stats page shows. */
export async function cacheTotals(sql: Sql): Promise<CacheTotals> {
  const [r] = await sql<{ rows: string; tenants: string; inputs: string | null; hits: string | null; misses: string | null }[]>`
    SELECT (SELECT count(*) FROM embeddings) AS rows,
      (SELECT count(DISTINCT tenant_id) FROM usage_daily WHERE requests > 0) AS tenants,
      sum(inputs) AS inputs, sum(hits) AS hits, sum(misses) AS misses
    FROM usage_daily`;
  return { rows: Number(r.rows), tenantsServed: Number(r.tenants), inputs: Number(r.inputs ?? 0), hits: Number(r.hits ?? 0), misses: Number(r.misses ?? 0) };
}
