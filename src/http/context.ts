import type { Tier } from '../core/domain.js';
import type { EmbedOutcome } from '../core/embed-service.js';
import type { TenantContext } from '../core/tenant.js';

/** What hooks put on a request for the routes after them. */

declare module 'fastify' {
  interface FastifyRequest {
    tenant: TenantContext;
    tier: Tier;
    /** Set by embedding routes for the access log line. */
    embedOutcome?: EmbedOutcome;
    /** Set by the error handler for the access log line. */
    errorCode?: string;
  }
}
