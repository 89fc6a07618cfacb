import { randomUUID } from 'node:crypto';
import compress from '@fastify/compress';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import { accessLog } from './access-log.js';
import { authPlugin, type AuthPluginOptions } from './auth-plugin.js';
import { compressionPlugin, type CompressionOptions } from './compression.js';
import { drainPlugin } from './drain.js';
import { errorServerOptions, installErrorHandlers } from './errors.js';
import { limitsPlugin, type LimitsPluginOptions } from './limits-plugin.js';
import { adminRoutes, type AdminRoutesOptions } from './routes/admin.js';
import { healthRoutes, type HealthRoutesOptions } from './routes/health.js';
import { metricsRoutes, type MetricsRoutesOptions } from './routes/metrics.js';
import { nativeRoutes, type NativeRoutesOptions } from './routes/native.js';
import { openaiRoutes, type OpenAiRoutesOptions } from './routes/openai.js';
import { selfServiceRouteTable, selfServiceRoutes, type SelfServiceOptions } from './routes/self-service.js';
import { authRouteTable, authRoutes, meRouteTable, meRoutes, type AuthRoutesOptions, type MeRoutesOptions } from './routes/auth.js';
import { openApiRoutes } from './route-table.js';
import { dashboardRoutes, type DashboardRoutesOptions } from './routes/dashboard.js';
import { tenantUsageRoutes, type AdminUsageRoutesOptions, type UsageRoutesOptions } from './routes/usage.js';

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
  /** The tenant's own keys and providers (/v1/keys, /v1/providers). */
  selfService: SelfServiceOptions;
  /** /v1/auth/me. */
  me: MeRoutesOptions;
  /** /v1/auth/signup|login|refresh|logout. */
  accounts: AuthRoutesOptions;
  admin: AdminRoutesOptions;
  /** The usage reports: the operator's (with this process's live figures) and a tenant's own. */
  usage: { admin: AdminUsageRoutesOptions; tenant: UsageRoutesOptions };
  dashboard: DashboardRoutesOptions;
}

/** The Fastify app: plugins and hooks only; services are built by server.ts and passed in. */
export async function buildApp(opts: AppOptions, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    ...errorServerOptions(),
    // One line per request from accessLog instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Keep a caller's x-request-id (when sane) so logs on both sides line up.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
  });
  installErrorHandlers(app);
  await app.register(drainPlugin);
  await app.register(accessLog);
  // Callback-style hooks where nothing is awaited: an async hook costs a promise per request.
  app.addHook('onRequest', (request: FastifyRequest, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
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
      await v1.register(selfServiceRoutes, opts.selfService);
      await v1.register(meRoutes, opts.me);
    },
    { prefix: '/v1' },
  );
  // Signup, login, refresh, logout and the tenant API's OpenAPI: no API key to present, so
  // outside the auth plugin's scope.
  await app.register(authRoutes, { prefix: '/v1', ...opts.accounts });
  await app.register(openApiRoutes, {
    prefix: '/v1',
    basePath: '/v1',
    title: 'embedding-cache tenant API (accounts, keys, providers)',
    routes: [...authRouteTable(opts.accounts), ...meRouteTable(opts.me), ...selfServiceRouteTable(opts.selfService)],
  });
  // The dashboard polls this every few seconds: authenticated, but not counted against limits,
  // so that looking at the figures never uses up a tenant's quota.
  await app.register(
    async (v1) => {
      await v1.register(authPlugin, opts.auth);
      await v1.register(tenantUsageRoutes, opts.usage.tenant);
    },
    { prefix: '/v1' },
  );
  await app.register(adminRoutes, { ...opts.admin, usage: opts.usage.admin, prefix: '/admin/v1' });
  await app.register(dashboardRoutes, opts.dashboard);
  return app;
}
