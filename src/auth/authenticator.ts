import { LRUCache } from 'lru-cache';
import { DomainError } from '../core/errors.js';
import type { TenantContext } from '../core/tenant.js';
import type { Sql } from '../store/db.js';
import { findLiveKeyByPrefix } from '../store/api-keys.js';
import { findTenantForToken } from '../store/accounts.js';
import { hashApiKey, hashesEqual, keyPrefix, looksLikeApiKey } from './api-key.js';
import { looksLikeJwt, TokenError, verifyTenantToken } from './jwt.js';
import type { KeyUsage } from './key-usage.js';

/** A verified credential: its tenant, and the key's id when it is an API key (for last_used_at). */
interface Verified {
  tenant: TenantContext;
  keyId: number | null;
}

/**
 * Turns an `Authorization: Bearer <key or tenant JWT>` header into a tenant. A verified
 * credential is remembered in-process for `cacheTtlMs` (never past a JWT's expiry) so hits
 * need no auth round trip; revocation through this process forgets it at once, elsewhere
 * within the TTL.
 */
export class ApiKeyAuth {
  private readonly verified: LRUCache<string, Verified>;

  constructor(
    private readonly sql: Sql,
    private readonly cacheTtlMs: number,
    /** Verifies tenant JWTs; without it only API keys are accepted. */
    private readonly jwtSecret?: string,
    /** Notes each use of a key (batched last_used_at); none in tools that only verify. */
    private readonly usage?: KeyUsage,
  ) {
    this.verified = new LRUCache<string, Verified>({ max: 10_000, ttl: Math.max(1, cacheTtlMs) });
  }

  async authenticate(header: string | undefined): Promise<TenantContext> {
    if (!header) {
      throw unauthenticated(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). Create one with `embedding-cache keys create --tenant NAME`.",
      );
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const key = m?.[1];
    if (key && this.jwtSecret && looksLikeJwt(key)) return this.authenticateJwt(key);
    if (!key || !looksLikeApiKey(key)) throw invalidKey(key);
    // Memoised by the key itself (already in this process's memory with every request): a hit
    // costs no hashing. Only verified keys enter, so guessing cannot fill it.
    const memo = this.verified.get(key);
    if (memo) {
      if (memo.keyId !== null) this.usage?.used(memo.keyId);
      return memo.tenant;
    }
    const rec = await findLiveKeyByPrefix(this.sql, keyPrefix(key));
    if (!rec || !hashesEqual(rec.keyHash, hashApiKey(key))) throw invalidKey(key);
    const tenant: TenantContext = { id: rec.tenantId, name: rec.tenantName, tier: rec.tier, sharePublic: rec.sharePublic };
    this.verified.set(key, { tenant, keyId: rec.id });
    this.usage?.used(rec.id);
    return tenant;
  }

  private async authenticateJwt(token: string): Promise<TenantContext> {
    const memoKey = token;
    const memo = this.verified.get(memoKey);
    if (memo) return memo.tenant;
    let claims;
    try {
      claims = await verifyTenantToken(this.jwtSecret!, token);
    } catch (err) {
      if (err instanceof TokenError) throw unauthenticated(`Invalid token: ${err.message}`, err);
      throw err;
    }
    const t = await findTenantForToken(this.sql, claims.tenant);
    // A token bound to a tenant id is refused by a newer tenant of the same name.
    if (!t || (claims.tenantId !== undefined && claims.tenantId !== t.id)) throw unauthenticated(`Invalid token: tenant ${claims.tenant} does not exist.`);
    // The operator revoked the account's sessions: tokens issued until then (to the second) are refused.
    if (t.sessionsRevokedAt && claims.iat <= Math.floor(t.sessionsRevokedAt.getTime() / 1000)) {
      throw unauthenticated('Invalid token: it was revoked by the operator. Log in again.');
    }
    // The database's tier is authoritative: a downgrade applies to tokens already issued.
    const tenant: TenantContext = { id: t.id, name: t.name, tier: t.tier, sharePublic: t.sharePublic };
    const ttl = Math.min(this.cacheTtlMs, claims.exp * 1000 - Date.now());
    if (ttl > 0) this.verified.set(memoKey, { tenant, keyId: null }, { ttl });
    return tenant;
  }

  /** Forgets verified keys (after a revoke or a tenant change in this process). */
  forgetAll(): void {
    this.verified.clear();
  }
}

function unauthenticated(message: string, cause?: unknown): DomainError {
  return new DomainError('unauthenticated', message, { code: 'invalid_api_key', cause });
}

function invalidKey(key: string | undefined): DomainError {
  const shown = key ? `${key.slice(0, 6)}${'*'.repeat(Math.max(0, Math.min(key.length, 20) - 10))}${key.slice(-4)}` : '';
  return unauthenticated(`Incorrect API key provided: ${shown}. Check the key, or create one with \`embedding-cache keys create --tenant NAME\`.`);
}
