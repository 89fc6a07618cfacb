import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { TenantContext } from '../core/tenant.js';

/** Every route registered after this, in the same scope, runs for an authenticated tenant. */
export const authPlugin = fp(async (app: FastifyInstance) => {
  app.decorateRequest('tenant', null as unknown as TenantContext);
  app.addHook('onRequest', async (request) => {
    const { openTenant, auth } = app.services;
    request.tenant = openTenant ?? (await auth.authenticate(request.headers.authorization));
  });
});
