import { LRUCache } from 'lru-cache';
import { DomainError } from '../core/errors.js';
import type { TenantContext } from '../core/tenant.js';
import { isConnectionError, withinMs, type Sql } from '../store/db.js';
import { findLiveKeyByPrefix } from '../store/api-keys.js';
import { findTenantForToken } from '../store/accounts.js';
import { hashApiKey, hashesEqual, keyPrefix, looksLikeApiKey, maskKey } from './api-key.js';
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
 * need no auth round trip; every change to a tenant's keys, tokens or settings, in any
 * process, forgets its entries (the change feed calls forgetTenant), the TTL is the backstop.
 * A tenant JWT is good while its tenant id exists with the token generation it was minted under.
 */
export class ApiKeyAuth {
  private readonly verified: LRUCache<string, Verified>;
  /**
   * Credentials verified once, kept past the TTL for one purpose: while the database is
   * unreachable a known key keeps working (a never-seen one gets a fast 503, not a 401).
   */
  private readonly lastKnown = new LRUCache<string, TenantContext>({ max: 10_000 });
  /** A credential lookup slower than this is answered 503 (the database is away), not awaited. */
  storeTimeoutMs = 1000;

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

  /** A key verified before is answered at once, without a promise (the hot path); others are looked up. */
  authenticate(header: string | undefined): TenantContext | Promise<TenantContext> {
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
    return this.lookUpKey(key);
  }

  private async lookUpKey(key: string): Promise<TenantContext> {
    let rec;
    try {
      rec = await withinMs(findLiveKeyByPrefix(this.sql, keyPrefix(key)), this.storeTimeoutMs);
    } catch (err) {
      return this.whileStoreAway(key, err);
    }
    if (!rec || !hashesEqual(rec.keyHash, hashApiKey(key))) throw invalidKey(key);
    const tenant: TenantContext = { id: rec.tenantId, name: rec.tenantName, tier: rec.tier, sharePublic: rec.sharePublic, cacheEpoch: rec.cacheEpoch };
    this.verified.set(key, { tenant, keyId: rec.id });
    this.lastKnown.set(key, tenant);
    this.usage?.used(rec.id);
    return tenant;
  }

  /** The database failed: a credential verified before still works; anything else is a 503. */
  private whileStoreAway(memoKey: string, err: unknown): TenantContext {
    if (!isConnectionError(err)) throw err;
    const known = this.lastKnown.get(memoKey);
    if (known) return known;
    throw new DomainError('unavailable', 'The database is unavailable at the moment, so this key cannot be checked. Retry in a few seconds.', {
      retryAfterSeconds: 2,
      cause: err,
    });
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
    let t;
    try {
      t = await withinMs(findTenantForToken(this.sql, claims.tenantId), this.storeTimeoutMs);
    } catch (err) {
      return this.whileStoreAway(memoKey, err);
    }
    // A tenant deleted and recreated under the same name has a new id: its old tokens stay dead.
    if (!t) throw unauthenticated(`Invalid token: tenant ${claims.tenant} no longer exists. Ask for a new token.`);
    if (t.tokenGeneration !== claims.generation) throw unauthenticated(`Invalid token: the tokens of tenant ${t.name} were revoked. Ask for a new token.`);
    // The operator revoked the account's sessions: tokens issued until then (to the second) are refused.
    if (t.sessionsRevokedAt && claims.iat <= Math.floor(t.sessionsRevokedAt.getTime() / 1000)) {
      throw unauthenticated('Invalid token: it was revoked by the operator. Log in again.');
    }
    // The database's tier is authoritative: a downgrade applies to tokens already issued.
    const tenant: TenantContext = { id: t.id, name: t.name, tier: t.tier, sharePublic: t.sharePublic, cacheEpoch: t.cacheEpoch };
    const ttl = Math.min(this.cacheTtlMs, claims.exp * 1000 - Date.now());
    if (ttl > 0) {
      this.verified.set(memoKey, { tenant, keyId: null }, { ttl });
      this.lastKnown.set(memoKey, tenant, { ttl: claims.exp * 1000 - Date.now() });
    }
    return tenant;
  }

  /** Forgets one tenant's verified keys and tokens (after a revoke or a change to the tenant). */
  forgetTenant(tenantId: number): void {
    const mine = [...this.verified.entries()].filter(([, v]) => v.tenant.id === tenantId);
    for (const [credential] of mine) this.verified.delete(credential);
    for (const [credential, t] of [...this.lastKnown.entries()]) if (t.id === tenantId) this.lastKnown.delete(credential);
  }

  /** Forgets every verified key and token. */
  forgetAll(): void {
    this.verified.clear();
    this.lastKnown.clear();
  }
}

function unauthenticated(message: string, cause?: unknown): DomainError {
  return new DomainError('unauthenticated', message, { code: 'invalid_api_key', cause });
}

function invalidKey(key: string | undefined): DomainError {
  const shown = key ? maskKey(key) : '';
  return unauthenticated(`Incorrect API key provided: ${shown}. Check the key, or create one with \`embedding-cache keys create --tenant NAME\`.`);
}
