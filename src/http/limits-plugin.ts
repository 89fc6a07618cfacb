import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { limitHeaders, type RateLimits } from '../limits/rate-limit.js';

export interface LimitsPluginOptions {
  limits: Pick<RateLimits, 'admit'>;
}

/**
 * Admission: counts each request against its tenant's tier (after auth, which it depends on)
 * and sets OpenAI's x-ratelimit-* headers; over a limit the request ends here with a 429.
 */
export const limitsPlugin = fp(
  async (app: FastifyInstance, opts: LimitsPluginOptions) => {
    app.addHook('onRequest', async (request, reply) => {
      const state = await opts.limits.admit(request.tenant.id, request.tier);
      void reply.headers(limitHeaders(state));
    });
  },
  { name: 'ec-limits', dependencies: ['ec-auth'] },
);
