import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { limitHeaders, type RateLimits } from '../limits/rate-limit.js';
import { stepSync } from './step-sync.js';

export interface LimitsPluginOptions {
  limits: Pick<RateLimits, 'admit'>;
}

/**
 * Admission: counts each request against its tenant's tier (after auth, which it depends on)
 * and sets OpenAI's x-ratelimit-* headers; over a limit the request ends here with a 429.
 * An unlimited tier is admitted without a promise.
 */
export const limitsPlugin = fp(
  async (app: FastifyInstance, opts: LimitsPluginOptions) => {
    app.addHook('onRequest', (request, reply, done) => {
      stepSync(
        () => opts.limits.admit(request.tenant.id, request.tier),
        (state) => {
          void reply.headers(limitHeaders(state));
          done();
        },
        done,
      );
    });
  },
  { name: 'ec-limits', dependencies: ['ec-auth'] },
);
