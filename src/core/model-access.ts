import type { Tier } from './domain.js';
import { DomainError, modelNotFound } from './errors.js';
import type { ModelRegistry, ResolvedModel } from './models.js';
import type { TenantContext } from './tenant.js';

/** A tenant's own models (BYOK providers). */
export interface TenantModelSource {
  models(tenantId: number): Promise<ResolvedModel[]>;
}

/**
 * Which models a tenant may use: its own providers' models first, then the server's, each
 * allowed only when the tenant's tier includes that kind of backend.
 */
export class ModelAccess {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly tenantModels: TenantModelSource | null,
  ) {}

  async resolve(tenant: TenantContext, tier: Tier, id: string): Promise<ResolvedModel> {
    const own = this.tenantModels ? await this.tenantModels.models(tenant.id) : [];
    const m = own.find((o) => o.spec.id === id) ?? this.registry.resolve(id);
    if (!m) throw modelNotFound(id, (await this.list(tenant, tier)).map((x) => x.spec.id));
    if (!tier.backends.includes(m.kind)) {
      throw new DomainError(
        'forbidden',
        `Your tier (${tier.name}) does not include ${m.kind === 'local' ? 'server-side models' : m.kind === 'upstream' ? "the server's upstream models" : 'your own providers'}. ` +
          (tier.backends.includes('byok') ? 'Add a provider with your own API key, or ask for a higher tier.' : 'Ask the operator for a higher tier.'),
        { param: 'model', code: 'model_not_allowed' },
      );
    }
    return m;
  }

  async list(tenant: TenantContext, tier: Tier): Promise<ResolvedModel[]> {
    const own = this.tenantModels ? await this.tenantModels.models(tenant.id) : [];
    const ids = new Set(own.map((o) => o.spec.id));
    return [...own, ...this.registry.list().filter((m) => !ids.has(m.spec.id))].filter((m) => tier.backends.includes(m.kind));
  }

  /** The model a native request gets when it names none: the first the tenant may use. */
  async defaultModel(tenant: TenantContext, tier: Tier): Promise<string | undefined> {
    return (await this.list(tenant, tier))[0]?.spec.id;
  }
}
