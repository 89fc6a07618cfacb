import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Tier } from '../core/domain.js';
import type { EmbedOutcome } from '../core/embed-service.js';
import type { EmbedService } from '../core/embed-service.js';
import type { TenantContext } from '../core/tenant.js';
import type { ApiKeyAuth } from '../auth/authenticator.js';
import type { TierCatalog } from '../limits/tier-catalog.js';
import type { TenantProviders } from '../providers/tenant-providers.js';
import type { Database } from '../store/db.js';

/**
 * What the admin routes still read from `app.services` until they take explicit options like
 * every other plugin (see routes/admin.ts).
 */
export interface AdminServices {
  config: Config;
  db: Database;
  redis: Redis | null;
  embeddings: EmbedService;
  auth: ApiKeyAuth;
  tiers: TierCatalog;
  providers: TenantProviders;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AdminServices;
  }
  interface FastifyRequest {
    tenant: TenantContext;
    tier: Tier;
    /** Set by embedding routes for the access log line. */
    embedOutcome?: EmbedOutcome;
  }
}
