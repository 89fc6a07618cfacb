import type { Tenant } from '../core/domain.js';
import type postgres from 'postgres';
import type { Sql } from './db.js';

/** The pool or a transaction of it. */
type Queryable = Sql | postgres.TransactionSql;

export interface AccountRecord {
  id: number;
  tenantId: number;
  tenantName: string;
  tier: string;
  email: string;
  passwordHash: string;
  createdAt: Date;
  lastLoginAt: Date | null;
}

interface AccountRow {
  id: string;
  tenant_id: string;
  tenant_name: string;
  tier: string;
  email: string;
  password_hash: string;
  created_at: Date;
  last_login_at: Date | null;
}

const toAccount = (r: AccountRow): AccountRecord => ({
  id: Number(r.id),
  tenantId: Number(r.tenant_id),
  tenantName: r.tenant_name,
  tier: r.tier,
  email: r.email,
  passwordHash: r.password_hash,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at,
});

/** The unique-violation a duplicate email raises (SQLSTATE 23505 on accounts_email_key). */
export function isDuplicateEmail(err: unknown): boolean {
  const e = err as { code?: string; constraint_name?: string };
  return e?.code === '23505' && e.constraint_name === 'accounts_email_key';
}

/** The unique-violation a taken tenant name raises. */
export function isDuplicateTenantName(err: unknown): boolean {
  const e = err as { code?: string; constraint_name?: string };
  return e?.code === '23505' && e.constraint_name === 'tenants_name_key';
}

/** Inserts a tenant and its account in the caller's transaction; throws on a duplicate email or name. */
export async function insertTenantWithAccount(
  tx: Queryable,
  a: { tenantName: string; tier: string; email: string; passwordHash: string },
): Promise<{ tenant: Tenant; accountId: number }> {
  const [t] = await tx<{ id: string; name: string; tier: string; share_public: boolean; created_at: Date }[]>`
    INSERT INTO tenants (name, tier) VALUES (${a.tenantName}, ${a.tier}) RETURNING *`;
  const [acc] = await tx<{ id: string }[]>`
    INSERT INTO accounts (tenant_id, email, password_hash) VALUES (${t.id}, ${a.email}, ${a.passwordHash}) RETURNING id`;
  return {
    tenant: { id: Number(t.id), name: t.name, tier: t.tier, sharePublic: t.share_public, createdAt: t.created_at },
    accountId: Number(acc.id),
  };
}

export async function findAccountByEmail(sql: Sql, email: string): Promise<AccountRecord | null> {
  const rows = await sql<AccountRow[]>`
    SELECT a.*, t.name AS tenant_name, t.tier FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE a.email = ${email}`;
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function findAccountById(sql: Sql, id: number): Promise<AccountRecord | null> {
  const rows = await sql<AccountRow[]>`
    SELECT a.*, t.name AS tenant_name, t.tier FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE a.id = ${id}`;
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function findAccountByTenant(sql: Sql, tenantId: number): Promise<AccountRecord | null> {
  const rows = await sql<AccountRow[]>`
    SELECT a.*, t.name AS tenant_name, t.tier FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE a.tenant_id = ${tenantId}`;
  return rows[0] ? toAccount(rows[0]) : null;
}

/** A tenant by name with its account's JWT cut-off (null without an account or a revoke). */
export async function findTenantForToken(sql: Sql, name: string): Promise<(Tenant & { sessionsRevokedAt: Date | null }) | null> {
  const rows = await sql<{ id: string; name: string; tier: string; share_public: boolean; created_at: Date; sessions_revoked_at: Date | null }[]>`
    SELECT t.*, a.sessions_revoked_at FROM tenants t LEFT JOIN accounts a ON a.tenant_id = t.id WHERE t.name = ${name}`;
  const r = rows[0];
  return r ? { id: Number(r.id), name: r.name, tier: r.tier, sharePublic: r.share_public, createdAt: r.created_at, sessionsRevokedAt: r.sessions_revoked_at } : null;
}

export async function touchLogin(sql: Sql, accountId: number): Promise<void> {
  await sql`UPDATE accounts SET last_login_at = now() WHERE id = ${accountId}`;
}

export interface AccountListing extends Omit<AccountRecord, 'passwordHash'> {
  /** Refresh-token families still usable. */
  liveSessions: number;
}

export async function listAccounts(sql: Sql): Promise<AccountListing[]> {
  const rows = await sql<(AccountRow & { live_sessions: string })[]>`
    SELECT a.*, t.name AS tenant_name, t.tier,
      (SELECT count(DISTINCT r.family) FROM refresh_tokens r
        WHERE r.account_id = a.id AND r.revoked_at IS NULL AND r.replaced_at IS NULL AND r.expires_at > now()) AS live_sessions
    FROM accounts a JOIN tenants t ON t.id = a.tenant_id ORDER BY a.id`;
  return rows.map((r) => {
    const { passwordHash: _, ...rest } = toAccount(r);
    return { ...rest, liveSessions: Number(r.live_sessions) };
  });
}

export interface RefreshTokenRecord {
  id: number;
  accountId: number;
  family: string;
  expiresAt: Date;
  replacedAt: Date | null;
  revokedAt: Date | null;
}

interface RefreshRow {
  id: string;
  account_id: string;
  family: string;
  expires_at: Date;
  replaced_at: Date | null;
  revoked_at: Date | null;
}

const toRefresh = (r: RefreshRow): RefreshTokenRecord => ({
  id: Number(r.id),
  accountId: Number(r.account_id),
  family: r.family,
  expiresAt: r.expires_at,
  replacedAt: r.replaced_at,
  revokedAt: r.revoked_at,
});

/** Stores a refresh token's hash; a new family when `family` is omitted. */
export async function insertRefreshToken(
  sql: Queryable,
  t: { accountId: number; hash: Buffer; family?: string; ttlDays: number },
): Promise<void> {
  await sql`
    INSERT INTO refresh_tokens (account_id, family, token_hash, expires_at)
    VALUES (${t.accountId}, COALESCE(${t.family ?? null}::uuid, gen_random_uuid()), ${t.hash}, now() + make_interval(days => ${t.ttlDays}))`;
}

/** The token with this hash, locked for the caller's transaction (two refreshes of one token queue up). */
export async function lockRefreshToken(tx: Queryable, hash: Buffer): Promise<RefreshTokenRecord | null> {
  const rows = await tx<RefreshRow[]>`SELECT * FROM refresh_tokens WHERE token_hash = ${hash} FOR UPDATE`;
  return rows[0] ? toRefresh(rows[0]) : null;
}

export async function markReplaced(tx: Queryable, id: number): Promise<void> {
  await tx`UPDATE refresh_tokens SET replaced_at = now() WHERE id = ${id}`;
}

export async function revokeFamily(sql: Queryable, family: string): Promise<void> {
  await sql`UPDATE refresh_tokens SET revoked_at = now() WHERE family = ${family} AND revoked_at IS NULL`;
}

/** Revokes every refresh token of an account and cuts off its JWTs; returns how many families were live. */
export async function revokeAccountTokens(sql: Sql, accountId: number): Promise<number> {
  await sql`UPDATE accounts SET sessions_revoked_at = now() WHERE id = ${accountId}`;
  const rows = await sql<{ family: string }[]>`
    UPDATE refresh_tokens SET revoked_at = now()
    WHERE account_id = ${accountId} AND revoked_at IS NULL AND replaced_at IS NULL
    RETURNING family`;
  await sql`UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = ${accountId} AND revoked_at IS NULL`;
  return new Set(rows.map((r) => r.family)).size;
}
