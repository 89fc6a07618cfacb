import type { Config } from '../config.js';
import type { EmbedService } from '../core/embed-service.js';
import type { ModelRegistry } from '../core/models.js';
import type { TenantContext } from '../core/tenant.js';
import type { ApiKeyAuth } from '../limits/auth.js';
import type { Database } from '../store/db.js';

/** The services routes use, decorated onto the Fastify instance as `app.services`. */
export interface Services {
  config: Config;
  db: Database;
  registry: ModelRegistry;
  embeddings: EmbedService;
  auth: ApiKeyAuth;
  /** Tenant used for every request when AUTH_DISABLED is set. */
  openTenant: TenantContext | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
  interface FastifyRequest {
    tenant: TenantContext;
  }
}
