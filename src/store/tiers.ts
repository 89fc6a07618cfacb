import { BACKEND_KINDS, type BackendKind, type Tier } from '../core/domain.js';
import type { Sql } from './db.js';

interface TierRow {
  name: string;
  requests_per_day: number | null;
  burst_per_second: number | null;
  tokens_per_minute: number | null;
  max_cached_rows: string | null;
  backends: string[];
}

const toTier = (r: TierRow): Tier => ({
  name: r.name,
  requestsPerDay: r.requests_per_day,
  burstPerSecond: r.burst_per_second,
  tokensPerMinute: r.tokens_per_minute,
  maxCachedRows: r.max_cached_rows === null ? null : Number(r.max_cached_rows),
  backends: r.backends.filter((b): b is BackendKind => (BACKEND_KINDS as readonly string[]).includes(b)),
});

export async function listTiers(sql: Sql): Promise<Tier[]> {
  return (await sql<TierRow[]>`SELECT * FROM tiers ORDER BY name`).map(toTier);
}

export async function upsertTier(sql: Sql, t: Tier): Promise<Tier> {
  const [r] = await sql<TierRow[]>`
    INSERT INTO tiers (name, requests_per_day, burst_per_second, tokens_per_minute, max_cached_rows, backends)
    VALUES (${t.name}, ${t.requestsPerDay}, ${t.burstPerSecond}, ${t.tokensPerMinute}, ${t.maxCachedRows}, ${t.backends}::text[])
    ON CONFLICT (name) DO UPDATE SET
      requests_per_day = EXCLUDED.requests_per_day, burst_per_second = EXCLUDED.burst_per_second,
      tokens_per_minute = EXCLUDED.tokens_per_minute, max_cached_rows = EXCLUDED.max_cached_rows,
      backends = EXCLUDED.backends
    RETURNING *`;
  return toTier(r);
}

/** Tenants over their tier's row cap, with how many rows too many. */
export async function tenantsOverCapacity(sql: Sql): Promise<{ tenantId: number; excess: number }[]> {
  const rows = await sql<{ tenant_id: string; excess: string }[]>`
    SELECT e.tenant_id, count(*) - t.max_cached_rows AS excess
    FROM embeddings e JOIN tenants tn ON tn.id = e.tenant_id JOIN tiers t ON t.name = tn.tier
    WHERE t.max_cached_rows IS NOT NULL
    GROUP BY e.tenant_id, t.max_cached_rows
    HAVING count(*) > t.max_cached_rows`;
  return rows.map((r) => ({ tenantId: Number(r.tenant_id), excess: Number(r.excess) }));
}
