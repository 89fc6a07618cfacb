import type postgres from 'postgres';
import type { Sql } from './db.js';

export interface ApiKeyRecord {
  id: number;
  tenantId: number;
  tenantName: string;
  tier: string;
  sharePublic: boolean;
  prefix: string;
  keyHash: Buffer;
  name: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

interface KeyRow {
  id: string;
  tenant_id: string;
  tenant_name: string;
  tier: string;
  share_public: boolean;
  prefix: string;
  key_hash: Buffer;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const toRecord = (r: KeyRow): ApiKeyRecord => ({
  id: Number(r.id),
  tenantId: Number(r.tenant_id),
  tenantName: r.tenant_name,
  tier: r.tier,
  sharePublic: r.share_public,
  prefix: r.prefix,
  keyHash: r.key_hash,
  name: r.name,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at ?? null,
});

export async function insertApiKey(
  sql: Sql | postgres.TransactionSql,
  k: { tenantId: number; prefix: string; keyHash: Buffer; name: string | null },
): Promise<{ id: number; createdAt: Date }> {
  const [r] = await sql<{ id: string; created_at: Date }[]>`
    INSERT INTO api_keys (tenant_id, prefix, key_hash, name)
    VALUES (${k.tenantId}, ${k.prefix}, ${k.keyHash}, ${k.name})
    RETURNING id, created_at`;
  return { id: Number(r.id), createdAt: r.created_at };
}

/** The live (not revoked) key with this prefix, with its tenant. */
export async function findLiveKeyByPrefix(sql: Sql, prefix: string): Promise<ApiKeyRecord | null> {
  const rows = await sql<KeyRow[]>`
    SELECT k.*, t.name AS tenant_name, t.tier, t.share_public
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
    WHERE k.prefix = ${prefix} AND k.revoked_at IS NULL`;
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function listApiKeys(sql: Sql, opts: { tenant?: string; tenantId?: number; prefix?: string } = {}): Promise<ApiKeyRecord[]> {
  const rows = await sql<KeyRow[]>`
    SELECT k.*, t.name AS tenant_name, t.tier, t.share_public
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
    WHERE (${opts.tenant ?? null}::text IS NULL OR t.name = ${opts.tenant ?? null})
      AND (${opts.tenantId ?? null}::bigint IS NULL OR k.tenant_id = ${opts.tenantId ?? null})
      AND (${opts.prefix ?? null}::text IS NULL OR k.prefix LIKE ${(opts.prefix ?? '') + '%'})
    ORDER BY k.id`;
  return rows.map(toRecord);
}

/** Revokes the live key with exactly this prefix (of this tenant, when given); false if there is none. */
export async function revokeApiKey(sql: Sql, prefix: string, tenantId?: number): Promise<boolean> {
  const rows = await sql`
    UPDATE api_keys SET revoked_at = now()
    WHERE prefix = ${prefix} AND revoked_at IS NULL
      AND (${tenantId ?? null}::bigint IS NULL OR tenant_id = ${tenantId ?? null})
    RETURNING id`;
  return rows.length > 0;
}

/** Records when keys were last used: one statement for a whole batch (ids and times side by side). */
export async function recordKeysUsed(sql: Sql, uses: { id: number; at: Date }[]): Promise<void> {
  if (uses.length === 0) return;
  await sql`
    UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
    FROM (SELECT unnest(${uses.map((u) => u.id)}::bigint[]) AS id,
                 unnest(${uses.map((u) => u.at.toISOString())}::timestamptz[]) AS at) u
    WHERE k.id = u.id`;
}
