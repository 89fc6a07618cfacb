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
    for (const b of registry.backends) checks[b.name] = await b.ready().catch(() => false);
    const ok = Object.values(checks).every(Boolean);
    // Without Redis, limits fall back to in-process counters and requests are still served:
    // report it, but stay ready so a load balancer keeps sending traffic.
    const redisUp = redis ? await redis.ping().then(() => true, () => false) : null;
    if (redisUp !== null) checks.redis = redisUp;
    void reply.code(ok ? 200 : 503);
    return { status: ok ? (redisUp === false ? 'degraded' : 'ready') : 'not_ready', checks };
  });
}
