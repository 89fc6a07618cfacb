import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../core/metrics.js';

export interface MetricsRoutesOptions {
  metrics: Metrics;
}

/** GET /metrics in Prometheus text format, and request latency for every route of the app. */
export const metricsRoutes = fp(
  async (app: FastifyInstance, { metrics }: MetricsRoutesOptions) => {
    app.get('/metrics', async (_request, reply) => {
      void reply.type(metrics.registry.contentType);
      return metrics.text();
    });

    // Latency by route pattern (not raw URL: bounded label values) and status.
    app.addHook('onResponse', (request, reply, done) => {
      metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  },
  { name: 'ec-metrics' },
);
