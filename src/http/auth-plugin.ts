import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Tier } from '../core/domain.js';
import type { TenantContext } from '../core/tenant.js';

export interface AuthPluginOptions {
  /** Bearer header -> tenant (API key or tenant JWT). */
  authenticate: (authorization: string | undefined) => Promise<TenantContext>;
  /** The tier a tenant's name refers to (a tier created a moment ago elsewhere included). */
  resolveTier: (name: string) => Promise<Tier>;
  /** AUTH_DISABLED: every request is this tenant's. */
  openTenant: TenantContext | null;
}

/** Every route registered after this, in the same scope, runs for an authenticated tenant (`request.tenant`, `request.tier`). */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: AuthPluginOptions) => {
    app.decorateRequest('tenant', null as unknown as TenantContext);
    app.decorateRequest('tier', null as unknown as Tier);
    app.addHook('onRequest', async (request) => {
      const tenant = opts.openTenant ?? (await opts.authenticate(request.headers.authorization));
      request.tenant = tenant;
      request.tier = await opts.resolveTier(tenant.tier);
    });
  },
  { name: 'ec-auth' },
);
