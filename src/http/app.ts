import { randomUUID } from 'node:crypto';
import compress from '@fastify/compress';
import fp from 'fastify-plugin';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../log.js';
import { authPlugin } from './auth-plugin.js';
import type { Services } from './context.js';
import { installErrorHandlers } from './errors.js';
import { adminRoutes, serverAdminService } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { nativeRoutes } from './routes/native.js';
import { openaiRoutes } from './routes/openai.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The Fastify app: routes and hooks only; services are built by server.ts and passed in. */
export async function buildApp(services: Services, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: services.config.bodyLimit,
    // Keep a caller's x-request-id (when sane) so logs on both sides line up.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
  });
  app.decorate('services', services);
  installErrorHandlers(app);
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // Level 1: big float responses compress well even so, and level 6 costs more CPU than it saves on a LAN.
  await app.register(compress, { encodings: ['gzip', 'deflate'], threshold: 4096, zlibOptions: { level: 1 } });
  await app.register(fp(metricsRoutes));
  await app.register(healthRoutes);
  await app.register(async (v1) => {
    await v1.register(authPlugin);
    await v1.register(openaiRoutes);
    await v1.register(nativeRoutes);
  }, { prefix: '/v1' });
  await app.register(adminRoutes, { prefix: '/admin/v1', admin: serverAdminService(services), adminToken: services.config.adminToken, jwtSecret: services.config.jwtSecret });
  return app;
}
