import type { FastifyInstance } from 'fastify';

/** /healthz: the process is alive. /readyz: Postgres answers and every backend is ready. */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const { db, registry, redis } = app.services;
    const checks: Record<string, boolean> = {};
    try {
      await db.sql`SELECT 1`;
      checks.postgres = true;
    } catch {
      checks.postgres = false;
    }
    if (redis) {
      // Limits keep working in-process without Redis, but the operator should know.
      checks.redis = await redis.ping().then(() => true, () => false);
    }
    for (const b of registry.backends) checks[b.name] = await b.ready().catch(() => false);
    const ok = Object.values(checks).every(Boolean);
    void reply.code(ok ? 200 : 503);
    return { status: ok ? 'ready' : 'not_ready', checks };
  });
}
