import { LRUCache } from 'lru-cache';
import { DomainError } from '../core/errors.js';
import type { TenantModelSource } from '../core/model-access.js';
import type { ResolvedModel } from '../core/models.js';
import { open, type MasterKeys } from '../security/secret-box.js';
import { guardedFetch, type SsrfPolicy } from '../security/ssrf.js';
import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { listProviders, type ProviderRecord } from '../store/providers.js';
import type { ProviderEmbedder } from '../backends/providers/base.js';
import { buildProvider, PROVIDER_KINDS, type ProviderKind } from './factory.js';

export interface TenantProvidersOptions {
  masterKeys: MasterKeys | undefined;
  ssrf: SsrfPolicy;
  timeoutMs: number;
  maxRetries: number;
  maxBatch: number;
  /** How long a tenant's provider list is remembered in-process. */
  cacheTtlMs?: number;
  logger: Logger;
}

/**
 * BYOK: a tenant's own providers (any kind) as models it may use. Keys are unsealed
 * only here, in memory; every connection goes through the SSRF guard. Provider lists are
 * cached per tenant, so a request costs no extra round trip.
 */
export class TenantProviders implements TenantModelSource {
  private readonly byTenant: LRUCache<number, ResolvedModel[]>;
  private readonly fetch: typeof fetch;

  constructor(
    private readonly sql: Sql,
    private readonly opts: TenantProvidersOptions,
  ) {
    this.byTenant = new LRUCache<number, ResolvedModel[]>({ max: 10_000, ttl: opts.cacheTtlMs ?? 30_000 });
    // One guarded connection pool for every tenant provider.
    this.fetch = guardedFetch(opts.ssrf);
  }

  async models(tenantId: number): Promise<ResolvedModel[]> {
    const cached = this.byTenant.get(tenantId);
    if (cached) return cached;
    const rows = await listProviders(this.sql, tenantId);
    if (rows.length > 0 && !this.opts.masterKeys) {
      throw new DomainError('internal', 'This server stores provider keys but has no MASTER_KEY to open them; the operator must set MASTER_KEY.');
    }
    const models: ResolvedModel[] = [];
    for (const p of rows) {
      if (!(PROVIDER_KINDS as readonly string[]).includes(p.kind)) {
        this.opts.logger.warn({ tenantId, provider: p.name, kind: p.kind }, 'provider of an unknown kind skipped');
        continue;
      }
      const backend = buildTenantProvider(p, { ...this.opts, masterKeys: this.opts.masterKeys!, fetch: this.fetch });
      for (const spec of backend.models()) models.push({ spec, backend, kind: 'byok' });
    }
    this.byTenant.set(tenantId, models);
    return models;
  }

  /** Drops a tenant's cached providers (after a change through this process). */
  forget(tenantId: number): void {
    this.byTenant.delete(tenantId);
  }

  forgetAll(): void {
    this.byTenant.clear();
  }
}

/**
 * One stored provider as an Embedder: its key unsealed in memory only, every connection through
 * the SSRF-guarded `fetch` whatever the kind's wire format.
 */
export function buildTenantProvider(
  p: ProviderRecord,
  deps: { masterKeys: MasterKeys; fetch: typeof fetch; timeoutMs: number; maxRetries: number; maxBatch: number },
): ProviderEmbedder {
  return buildProvider(
    { kind: p.kind as ProviderKind, name: p.name, baseUrl: p.baseUrl, apiKey: open(p.key, deps.masterKeys), models: p.models.map((id) => ({ id })), options: p.options },
    { owner: 'tenant', fetch: deps.fetch, timeoutMs: deps.timeoutMs, maxRetries: deps.maxRetries, maxBatch: deps.maxBatch, ownedBy: `provider:${p.name}` },
  );
}
