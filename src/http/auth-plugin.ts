import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { stepSync } from './step-sync.js';
import type { Tier } from '../core/domain.js';
import type { TenantContext } from '../core/tenant.js';

export interface AuthPluginOptions {
  /** Bearer header -> tenant (API key or tenant JWT); a credential verified before answers without a promise. */
  authenticate: (authorization: string | undefined) => TenantContext | Promise<TenantContext>;
  /** The tier a tenant's name refers to (a tier created a moment ago elsewhere included). */
  resolveTier: (name: string) => Tier | Promise<Tier>;
  /** AUTH_DISABLED: every request is this tenant's. */
  openTenant: TenantContext | null;
}

/** Every route registered after this, in the same scope, runs for an authenticated tenant (`request.tenant`, `request.tier`). */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: AuthPluginOptions) => {
    app.decorateRequest('tenant', null as unknown as TenantContext);
    app.decorateRequest('tier', null as unknown as Tier);
    const withTier = (request: FastifyRequest, done: HookHandlerDoneFunction) => (tenant: TenantContext) => {
      request.tenant = tenant;
      stepSync(
        () => opts.resolveTier(tenant.tier),
        (tier) => {
          request.tier = tier;
          done();
        },
        done,
      );
    };
    app.addHook('onRequest', (request, _reply, done) => {
      stepSync(() => opts.openTenant ?? opts.authenticate(request.headers.authorization), withTier(request, done), done);
    });
  },
  { name: 'ec-auth' },
);
