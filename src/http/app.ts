import { randomUUID } from 'node:crypto';
import compress from '@fastify/compress';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import { authPlugin, type AuthPluginOptions } from './auth-plugin.js';
import { compressionPlugin, type CompressionOptions } from './compression.js';
import type { AdminServices } from './context.js';
import { errorServerOptions, installErrorHandlers } from './errors.js';
import { limitsPlugin, type LimitsPluginOptions } from './limits-plugin.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes, type HealthRoutesOptions } from './routes/health.js';
import { metricsRoutes, type MetricsRoutesOptions } from './routes/metrics.js';
import { nativeRoutes, type NativeRoutesOptions } from './routes/native.js';
import { openaiRoutes, type OpenAiRoutesOptions } from './routes/openai.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Everything the app's plugins need, built by server.ts: each plugin gets its own part. */
export interface AppOptions {
  bodyLimit: number;
  /** Response compression (COMPRESSION, COMPRESSION_MIN_BYTES); default: auto, 64 KiB. */
  compression?: CompressionOptions;
  auth: AuthPluginOptions;
  limits: LimitsPluginOptions;
  openai: Omit<OpenAiRoutesOptions, 'maxInputs'>;
  native: Omit<NativeRoutesOptions, 'maxInputs'>;
  maxInputs: number;
  health: HealthRoutesOptions;
  metrics: MetricsRoutesOptions;
  admin: AdminServices;
}

/** The Fastify app: plugins and hooks only; services are built by server.ts and passed in. */
export async function buildApp(opts: AppOptions, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    ...errorServerOptions(),
    // Keep a caller's x-request-id (when sane) so logs on both sides line up.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
  });
  installErrorHandlers(app);
  app.addHook('onRequest', async (request: FastifyRequest, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // @fastify/compress only for request bodies sent compressed (as before); responses are
  // compressed by compression.ts, which knows which bodies shrink (base64 embeddings do not).
  await app.register(compress, { globalCompression: false, encodings: ['gzip', 'deflate'] });
  await app.register(compressionPlugin, opts.compression ?? { mode: 'auto', minBytes: 64 * 1024 });
  await app.register(metricsRoutes, opts.metrics);
  await app.register(healthRoutes, opts.health);
  await app.register(
    async (v1) => {
      await v1.register(authPlugin, opts.auth);
      await v1.register(limitsPlugin, opts.limits);
      await v1.register(openaiRoutes, { ...opts.openai, maxInputs: opts.maxInputs });
      await v1.register(nativeRoutes, { ...opts.native, maxInputs: opts.maxInputs });
    },
    { prefix: '/v1' },
  );
  // The admin routes still read app.services (until they take explicit options).
  app.decorate('services', opts.admin);
  await app.register(adminRoutes, { prefix: '/admin/v1' });
  return app;
}
