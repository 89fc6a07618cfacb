import type { Redis } from 'ioredis';
import type { TenantProviders } from '../providers/tenant-providers.js';
import type { Config } from '../config.js';
import type { EmbedService } from '../core/embed-service.js';
import type { VectorTextCache } from './openai-response.js';
import type { Metrics } from '../core/metrics.js';
import type { ModelAccess } from '../core/model-access.js';
import type { ModelRegistry } from '../core/models.js';
import type { TenantContext } from '../core/tenant.js';
import type { ApiKeyAuth } from '../auth/authenticator.js';
import type { KeyUsage } from '../auth/key-usage.js';
import type { AccountService } from '../admin/accounts.js';
import type { RateLimits } from '../limits/rate-limit.js';
import type { TierCatalog } from '../limits/tier-catalog.js';
import type { Database } from '../store/db.js';
import type { Tier } from '../core/domain.js';

/** The services routes use, decorated onto the Fastify instance as `app.services`. */
export interface Services {
  config: Config;
  db: Database;
  redis: Redis | null;
  registry: ModelRegistry;
  models: ModelAccess;
  embeddings: EmbedService;
  /** JSON text of hot vectors, for `float` responses. */
  vectorTexts: VectorTextCache;
  auth: ApiKeyAuth;
  /** Batched api_keys.last_used_at. */
  keyUsage: KeyUsage;
  /** Self-service accounts (signup, login, refresh tokens). */
  accounts: AccountService;
  tiers: TierCatalog;
  limits: RateLimits;
  metrics: Metrics;
  /** Tenants' own providers (BYOK). */
  providers: TenantProviders;
  /** Tenant used for every request when AUTH_DISABLED is set. */
  openTenant: TenantContext | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
  interface FastifyRequest {
    tenant: TenantContext;
    tier: Tier;
  }
}
