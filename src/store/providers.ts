import type { SealedSecret } from '../security/secret-box.js';
import type { Sql } from './db.js';

export interface ProviderRecord {
  id: number;
  tenantId: number;
  name: string;
  /** The wire format (see providers/factory.ts); `openai` for rows made before kinds existed. */
  kind: string;
  baseUrl: string;
  models: string[];
  /** Kind-specific settings, validated by the factory. */
  options: Record<string, unknown>;
  key: SealedSecret;
  createdAt: Date;
}

interface ProviderRow {
  id: string;
  tenant_id: string;
  name: string;
  kind: string;
  base_url: string;
  models: string[];
  options: Record<string, unknown>;
  key_id: string;
  key_iv: Buffer;
  key_tag: Buffer;
  key_ciphertext: Buffer;
  key_last4: string;
  created_at: Date;
}

const toRecord = (r: ProviderRow): ProviderRecord => ({
  id: Number(r.id),
  tenantId: Number(r.tenant_id),
  name: r.name,
  kind: r.kind,
  baseUrl: r.base_url,
  models: r.models,
  options: r.options,
  key: { keyId: r.key_id, iv: r.key_iv, tag: r.key_tag, ciphertext: r.key_ciphertext, last4: r.key_last4 },
  createdAt: r.created_at,
});

/** Adds or replaces (by name) a tenant's provider. Only the sealed key is stored. */
export async function upsertProvider(
  sql: Sql,
  p: { tenantId: number; name: string; kind: string; baseUrl: string; models: string[]; options: Record<string, unknown>; key: SealedSecret },
): Promise<ProviderRecord> {
  const [r] = await sql<ProviderRow[]>`
    INSERT INTO providers (tenant_id, name, kind, base_url, models, options, key_id, key_iv, key_tag, key_ciphertext, key_last4)
    VALUES (${p.tenantId}, ${p.name}, ${p.kind}, ${p.baseUrl}, ${p.models}::text[], ${sql.json(p.options as never)}, ${p.key.keyId}, ${p.key.iv}, ${p.key.tag}, ${p.key.ciphertext}, ${p.key.last4})
    ON CONFLICT (tenant_id, name) DO UPDATE SET
      kind = EXCLUDED.kind, base_url = EXCLUDED.base_url, models = EXCLUDED.models, options = EXCLUDED.options, key_id = EXCLUDED.key_id, key_iv = EXCLUDED.key_iv,
      key_tag = EXCLUDED.key_tag, key_ciphertext = EXCLUDED.key_ciphertext, key_last4 = EXCLUDED.key_last4
    RETURNING *`;
  return toRecord(r);
}

export async function listProviders(sql: Sql, tenantId: number): Promise<ProviderRecord[]> {
  return (await sql<ProviderRow[]>`SELECT * FROM providers WHERE tenant_id = ${tenantId} ORDER BY id`).map(toRecord);
}

export async function deleteProvider(sql: Sql, tenantId: number, name: string): Promise<boolean> {
  const r = await sql`DELETE FROM providers WHERE tenant_id = ${tenantId} AND name = ${name}`;
  return r.count > 0;
}
