import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { TenantContext } from '../core/tenant.js';
import { limitHeaders } from '../limits/rate-limit.js';
import type { Tier } from '../core/domain.js';

export interface AuthPluginOptions {
  /**
   * Count each request against the tier's limits (default). Off for reads that spend no
   * backend work, such as the dashboard's polling of /v1/usage, so that looking at the
   * figures never uses up a tenant's quota.
   */
  admit?: boolean;
}

/**
 * Every route registered after this, in the same scope, runs for an authenticated tenant
 * whose request has been counted against its tier's limits (x-ratelimit-* headers set).
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: AuthPluginOptions = {}) => {
  app.decorateRequest('tenant', null as unknown as TenantContext);
  app.decorateRequest('tier', null as unknown as Tier);
  app.addHook('onRequest', async (request, reply) => {
    const { openTenant, auth, tiers, limits } = app.services;
    const tenant = openTenant ?? (await auth.authenticate(request.headers.authorization));
    request.tenant = tenant;
    request.tier = await tiers.resolve(tenant.tier);
    if (opts.admit === false) return;
    const state = await limits.admit(tenant.id, request.tier);
    void reply.headers(limitHeaders(state));
  });
});
