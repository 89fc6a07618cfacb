import { LRUCache } from 'lru-cache';
import { ApiError } from '../core/errors.js';
import type { TenantContext } from '../core/tenant.js';
import type { Sql } from '../store/db.js';
import { findLiveKeyByPrefix } from '../store/api-keys.js';
import { hashApiKey, hashesEqual, keyPrefix, looksLikeApiKey } from './api-key.js';

/**
 * Turns an `Authorization: Bearer <key>` header into a tenant. A verified key is remembered
 * in-process for `cacheTtlMs` so hits need no auth round trip; revocation through this process
 * forgets it at once, elsewhere within the TTL.
 */
export class ApiKeyAuth {
  private readonly verified: LRUCache<string, TenantContext>;

  constructor(
    private readonly sql: Sql,
    cacheTtlMs: number,
  ) {
    this.verified = new LRUCache<string, TenantContext>({ max: 10_000, ttl: Math.max(1, cacheTtlMs) });
  }

  async authenticate(header: string | undefined): Promise<TenantContext> {
    if (!header) {
      throw ApiError.unauthorized(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). Create one with `embedding-cache keys create --tenant NAME`.",
      );
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const key = m?.[1];
    if (!key || !looksLikeApiKey(key)) throw invalidKey(key);
    const hash = hashApiKey(key);
    const memo = this.verified.get(hash.toString('base64'));
    if (memo) return memo;
    const rec = await findLiveKeyByPrefix(this.sql, keyPrefix(key));
    if (!rec || !hashesEqual(rec.keyHash, hash)) throw invalidKey(key);
    const tenant: TenantContext = { id: rec.tenantId, name: rec.tenantName, tier: rec.tier, sharePublic: rec.sharePublic };
    this.verified.set(hash.toString('base64'), tenant);
    return tenant;
  }

  /** Forgets verified keys (after a revoke or a tenant change in this process). */
  forgetAll(): void {
    this.verified.clear();
  }
}

function invalidKey(key: string | undefined): ApiError {
  const shown = key ? `${key.slice(0, 6)}${'*'.repeat(Math.max(0, Math.min(key.length, 20) - 10))}${key.slice(-4)}` : '';
  return ApiError.unauthorized(`Incorrect API key provided: ${shown}. Check the key, or create one with \`embedding-cache keys create --tenant NAME\`.`);
}
