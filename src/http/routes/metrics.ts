import type { FastifyInstance } from 'fastify';

/** GET /metrics in Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { metrics } = app.services;
  app.get('/metrics', async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // Latency by route pattern (not raw URL: bounded label values) and status.
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
  });
}
