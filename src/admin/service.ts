import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Tenant, Tier } from '../core/domain.js';
import { DomainError } from '../core/errors.js';
import { tenantStats, type TenantStats } from '../core/stats.js';
import { generateApiKey, keyPrefix } from '../auth/api-key.js';
import { mintAdminToken, mintTenantToken } from '../auth/jwt.js';
import { seal } from '../security/secret-box.js';
import { checkProviderUrl, SsrfError } from '../security/ssrf.js';
import type { Sql } from '../store/db.js';
import { findLiveKeyByPrefix, insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRecord } from '../store/api-keys.js';
import { clearRows } from '../store/embeddings.js';
import { deleteProvider, listProviders, upsertProvider, type ProviderRecord } from '../store/providers.js';
import { deleteTenant, ensureTenant, findTenantByName, listTenants, updateTenant } from '../store/tenants.js';
import { listTiers, upsertTier } from '../store/tiers.js';
import type { OnChange } from './changes.js';
import * as S from './schemas.js';

/**
 * The admin verbs, used alike by the admin API and the CLI: each takes its input as the schema
 * in ./schemas.ts describes it (validated here, whoever calls), returns plain data, refuses
 * with a DomainError and reports what it changed through `onChange`.
 */
export interface AdminDeps {
  sql: Sql;
  config: Pick<Config, 'defaultTier' | 'masterKeys' | 'ssrf' | 'jwtSecret' | 'prices'>;
  onChange: OnChange;
  /** Writes rows and counters this process still holds (the server's write-behind) before reading or deleting them. */
  flushPending?: () => Promise<void>;
}

export const tenantView = (t: Tenant) => ({ name: t.name, tier: t.tier, share_public: t.sharePublic, created_at: t.createdAt.toISOString() });
export const keyView = (k: ApiKeyRecord) => ({
  prefix: k.prefix,
  tenant: k.tenantName,
  name: k.name,
  created_at: k.createdAt.toISOString(),
  /** To the minute (written in batches off the request path). */
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
});
export const tierView = (t: Tier) => ({
  name: t.name,
  requests_per_day: t.requestsPerDay,
  burst_per_second: t.burstPerSecond,
  tokens_per_minute: t.tokensPerMinute,
  max_cached_rows: t.maxCachedRows,
  backends: t.backends,
});
/** What listings show of a provider: never the key, only its last four characters. */
export const providerView = (p: ProviderRecord) => ({
  name: p.name,
  base_url: p.baseUrl,
  models: p.models,
  api_key_last4: p.key.last4,
  key_id: p.key.keyId,
  created_at: p.createdAt.toISOString(),
});

export type TenantView = ReturnType<typeof tenantView>;
export type KeyView = ReturnType<typeof keyView>;
export type TierView = ReturnType<typeof tierView>;
export type ProviderView = ReturnType<typeof providerView>;

type In<T extends z.ZodType> = z.input<T>;

export function createAdminService(deps: AdminDeps) {
  const { sql, config, onChange } = deps;
  const flush = async () => deps.flushPending?.();

  const tenantOr404 = async (name: string, param = 'tenant') => {
    const t = await findTenantByName(sql, name);
    if (!t) throw new DomainError('not_found', `No tenant named ${name}. List them with \`tenants list\` (GET /admin/v1/tenants).`, { param, code: 'tenant_not_found' });
    return t;
  };
  /** Unknown tiers are refused rather than silently served with another tier's limits. */
  const tierMustExist = async (name: string, param = 'tier') => {
    const names = (await listTiers(sql)).map((t) => t.name);
    if (!names.includes(name)) {
      throw new DomainError('invalid_input', `Unknown tier ${name}: use one of ${names.filter((n) => n !== 'system').join(', ')}, or create it with \`tiers set\`.`, { param, code: 'tier_not_found' });
    }
  };
  const jwtSecret = () => {
    if (!config.jwtSecret) throw new DomainError('forbidden', 'Set JWT_SECRET (or ADMIN_TOKEN) to mint tokens.', { code: 'jwt_disabled' });
    return config.jwtSecret;
  };
  const expiresAt = (ttl: number) => new Date(Date.now() + ttl * 1000).toISOString();

  return {
    async createTenant(input: In<typeof S.CreateTenant>): Promise<TenantView> {
      const b = S.parse(S.CreateTenant, input);
      const tier = b.tier ?? config.defaultTier;
      await tierMustExist(tier);
      if (await findTenantByName(sql, b.name)) throw new DomainError('conflict', `Tenant ${b.name} exists already.`, { param: 'name', code: 'tenant_exists' });
      let t = await ensureTenant(sql, b.name, tier);
      if (b.share_public !== undefined) t = (await updateTenant(sql, b.name, { sharePublic: b.share_public })) ?? t;
      await onChange({ type: 'tenant_created', tenantId: t.id });
      return tenantView(t);
    },

    async listTenants(): Promise<TenantView[]> {
      return (await listTenants(sql)).map(tenantView);
    },

    async showTenant(input: In<typeof S.ShowTenant>): Promise<TenantView> {
      return tenantView(await tenantOr404(S.parse(S.ShowTenant, input).name, 'name'));
    },

    async updateTenant(input: In<typeof S.UpdateTenant>): Promise<TenantView> {
      const b = S.parse(S.UpdateTenant, input);
      if (b.tier !== undefined) await tierMustExist(b.tier);
      const t = (await updateTenant(sql, b.name, { tier: b.tier, sharePublic: b.share_public })) ?? (await tenantOr404(b.name, 'name'));
      await onChange({ type: 'tenant_updated', tenantId: t.id });
      return tenantView(t);
    },

    async deleteTenant(input: In<typeof S.ShowTenant>): Promise<{ deleted: true; name: string }> {
      const { name } = S.parse(S.ShowTenant, input);
      const t = await tenantOr404(name, 'name');
      // Rows this process still holds for the tenant are written first, then deleted with it.
      await flush();
      if (!(await deleteTenant(sql, name))) await tenantOr404(name, 'name');
      await onChange({ type: 'tenant_deleted', tenantId: t.id });
      return { deleted: true, name };
    },

    async createKey(input: In<typeof S.CreateKey>): Promise<{ key: string; prefix: string; tenant: string; tier: string; name: string | null; created_at: string }> {
      const b = S.parse(S.CreateKey, input);
      let t = await findTenantByName(sql, b.tenant);
      if (!t) {
        if (!b.create_tenant) await tenantOr404(b.tenant);
        const tier = b.tier ?? config.defaultTier;
        await tierMustExist(tier);
        t = await ensureTenant(sql, b.tenant, tier);
        await onChange({ type: 'tenant_created', tenantId: t.id });
      } else if (b.tier !== undefined) {
        await tierMustExist(b.tier);
      }
      const k = generateApiKey();
      const row = await insertApiKey(sql, { tenantId: t!.id, prefix: k.prefix, keyHash: k.hash, name: b.name ?? null });
      await onChange({ type: 'key_created', prefix: k.prefix, tenantId: t!.id });
      return { key: k.key, prefix: k.prefix, tenant: t!.name, tier: t!.tier, name: b.name ?? null, created_at: row.createdAt.toISOString() };
    },

    async listKeys(input: In<typeof S.ListKeys> = {}): Promise<KeyView[]> {
      const b = S.parse(S.ListKeys, input);
      return (await listApiKeys(sql, { tenant: b.tenant, prefix: b.prefix })).map(keyView);
    },

    /** With `tenant`, only that tenant's key (self-service: another tenant's prefix is not found). */
    async revokeKey(input: In<typeof S.RevokeTenantKey>): Promise<{ revoked: true; prefix: string }> {
      const b = S.parse(S.RevokeTenantKey, input);
      // A whole key works too: only its prefix is looked up.
      const prefix = keyPrefix(b.prefix);
      const live = await findLiveKeyByPrefix(sql, prefix);
      if (!live || (b.tenant !== undefined && live.tenantName !== b.tenant) || !(await revokeApiKey(sql, prefix, live.tenantId))) {
        throw new DomainError('not_found', `No live key with prefix ${prefix}. List them with \`keys list\`.`, { param: 'prefix', code: 'key_not_found' });
      }
      await onChange({ type: 'key_revoked', prefix, tenantId: live.tenantId });
      return { revoked: true, prefix };
    },

    async listTiers(): Promise<TierView[]> {
      return (await listTiers(sql)).map(tierView);
    },

    /** Creates a tier or changes the fields given; a new tier needs `backends`, its missing limits are unlimited. */
    async setTier(input: In<typeof S.SetTier>): Promise<TierView & { created: boolean }> {
      const b = S.parse(S.SetTier, input);
      const old = (await listTiers(sql)).find((t) => t.name === b.name);
      if (!old && b.backends === undefined) {
        throw new DomainError('invalid_input', `Tier ${b.name} does not exist: creating it needs its backends (some of byok, upstream, local).`, { param: 'backends', code: 'invalid_value' });
      }
      const t = await upsertTier(sql, {
        name: b.name,
        requestsPerDay: b.requests_per_day !== undefined ? b.requests_per_day : (old?.requestsPerDay ?? null),
        burstPerSecond: b.burst_per_second !== undefined ? b.burst_per_second : (old?.burstPerSecond ?? null),
        tokensPerMinute: b.tokens_per_minute !== undefined ? b.tokens_per_minute : (old?.tokensPerMinute ?? null),
        maxCachedRows: b.max_cached_rows !== undefined ? b.max_cached_rows : (old?.maxCachedRows ?? null),
        backends: b.backends ?? old!.backends,
      });
      await onChange({ type: 'tier_changed', name: t.name });
      return { ...tierView(t), created: !old };
    },

    /** Validates the URL against the SSRF rules, seals the key under MASTER_KEY, stores (or replaces, by name) the provider. */
    async addProvider(input: In<typeof S.AddProvider>): Promise<ProviderView> {
      const b = S.parse(S.AddProvider, input);
      const t = await tenantOr404(b.tenant);
      if (!config.masterKeys) {
        throw new DomainError('invalid_input', 'Provider keys are encrypted at rest: the operator must set MASTER_KEY first (e.g. `openssl rand -hex 32`).', { param: 'api_key', code: 'master_key_missing' });
      }
      try {
        checkProviderUrl(b.base_url, config.ssrf);
      } catch (err) {
        if (err instanceof SsrfError) throw new DomainError('invalid_input', err.message, { param: 'base_url', code: 'invalid_value' });
        throw err;
      }
      const p = await upsertProvider(sql, { tenantId: t.id, name: b.name, baseUrl: b.base_url, models: b.models, key: seal(b.api_key, config.masterKeys) });
      await onChange({ type: 'providers_changed', tenantId: t.id });
      return providerView(p);
    },

    async listProviders(input: In<typeof S.TenantRef>): Promise<ProviderView[]> {
      const t = await tenantOr404(S.parse(S.TenantRef, input).tenant);
      return (await listProviders(sql, t.id)).map(providerView);
    },

    async removeProvider(input: In<typeof S.RemoveProvider>): Promise<{ deleted: true; name: string }> {
      const b = S.parse(S.RemoveProvider, input);
      const t = await tenantOr404(b.tenant);
      if (!(await deleteProvider(sql, t.id, b.name))) {
        throw new DomainError('not_found', `Tenant ${t.name} has no provider ${b.name}.`, { param: 'provider', code: 'provider_not_found' });
      }
      await onChange({ type: 'providers_changed', tenantId: t.id });
      return { deleted: true, name: b.name };
    },

    async mintTenantToken(input: In<typeof S.MintTenantToken>): Promise<{ token: string; tenant: string; tier: string; expires_at: string }> {
      const b = S.parse(S.MintTenantToken, input);
      const t = await tenantOr404(b.tenant);
      const token = await mintTenantToken(jwtSecret(), { tenant: t.name, tier: t.tier, ttlSeconds: b.ttl_seconds });
      return { token, tenant: t.name, tier: t.tier, expires_at: expiresAt(b.ttl_seconds) };
    },

    async mintAdminToken(input: In<typeof S.MintAdminToken> = {}): Promise<{ token: string; expires_at: string }> {
      const b = S.parse(S.MintAdminToken, input);
      return { token: await mintAdminToken(jwtSecret(), b.ttl_seconds), expires_at: expiresAt(b.ttl_seconds) };
    },

    /** Deletes a tenant's cached vectors (all, or one cache model's). */
    async clearCache(input: In<typeof S.ClearCache>): Promise<{ deleted: number; tenant: string; model: string | null }> {
      const b = S.parse(S.ClearCache, input);
      const t = await tenantOr404(b.tenant);
      await flush();
      const deleted = await clearRows(sql, t.id, b.model);
      await onChange({ type: 'cache_cleared', tenantId: t.id, ...(b.model ? { model: b.model } : {}) });
      return { deleted, tenant: t.name, model: b.model ?? null };
    },

    async stats(input: In<typeof S.TenantRef>): Promise<TenantStats> {
      const t = await tenantOr404(S.parse(S.TenantRef, input).tenant);
      await flush();
      return tenantStats(sql, t, config.prices);
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
