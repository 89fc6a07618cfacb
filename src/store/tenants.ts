import type { Tenant } from '../core/domain.js';
import type { Sql } from './db.js';

export interface TenantRow {
  id: string;
  name: string;
  tier: string;
  share_public: boolean;
  created_at: Date;
  token_generation: number;
  cache_epoch: number;
}

export const toTenant = (r: TenantRow): Tenant => ({
  id: Number(r.id),
  name: r.name,
  tier: r.tier,
  sharePublic: r.share_public,
  createdAt: r.created_at,
  tokenGeneration: r.token_generation,
  cacheEpoch: r.cache_epoch,
});

export async function findTenantByName(sql: Sql, name: string): Promise<Tenant | null> {
  const rows = await sql<TenantRow[]>`SELECT * FROM tenants WHERE name = ${name}`;
  return rows[0] ? toTenant(rows[0]) : null;
}

export async function findTenantById(sql: Sql, id: number): Promise<Tenant | null> {
  const rows = await sql<TenantRow[]>`SELECT * FROM tenants WHERE id = ${id}`;
  return rows[0] ? toTenant(rows[0]) : null;
}

/** Bumps a tenant's token generation: every JWT minted before stops verifying. Null: no such tenant. */
export async function bumpTokenGeneration(sql: Sql, name: string): Promise<Tenant | null> {
  const rows = await sql<TenantRow[]>`
    UPDATE tenants SET token_generation = token_generation + 1 WHERE name = ${name} AND id <> 0 RETURNING *`;
  return rows[0] ? toTenant(rows[0]) : null;
}

/** Returns the tenant called `name`, creating it (with `tier`) if it does not exist. */
export async function ensureTenant(sql: Sql, name: string, tier = 'free'): Promise<Tenant> {
  const rows = await sql<TenantRow[]>`
    INSERT INTO tenants (name, tier) VALUES (${name}, ${tier})
    ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
    RETURNING *`;
  return toTenant(rows[0]);
}

export async function listTenants(sql: Sql): Promise<Tenant[]> {
  const rows = await sql<TenantRow[]>`SELECT * FROM tenants WHERE id <> 0 ORDER BY id`;
  return rows.map(toTenant);
}

export async function updateTenant(
  sql: Sql,
  name: string,
  patch: { tier?: string; sharePublic?: boolean },
): Promise<Tenant | null> {
  const rows = await sql<TenantRow[]>`
    UPDATE tenants SET
      tier = COALESCE(${patch.tier ?? null}, tier),
      share_public = COALESCE(${patch.sharePublic ?? null}, share_public)
    WHERE name = ${name} AND id <> 0
    RETURNING *`;
  return rows[0] ? toTenant(rows[0]) : null;
}

/** Deletes a tenant, its keys, usage and cache rows. */
export async function deleteTenant(sql: Sql, name: string): Promise<boolean> {
  return sql.begin(async (tx) => {
    const rows = await tx<{ id: string }[]>`DELETE FROM tenants WHERE name = ${name} AND id <> 0 RETURNING id`;
    if (!rows[0]) return false;
    await tx`DELETE FROM embeddings WHERE tenant_id = ${rows[0].id}`;
    return true;
  });
}
