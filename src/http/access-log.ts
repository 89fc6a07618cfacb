import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';

/** Probes and scrapes every few seconds would drown the requests people read logs for. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One line per completed request (Fastify's own two lines are off): request id (pino's reqId),
 * method, route, status and time, and for embeddings the tenant, model, inputs, hits, misses
 * and backend time. Errors add their code; their detail is logged where they are mapped.
 */
export const accessLog = fp(
  async (app: FastifyInstance) => {
    // Callback style, and the line is built only when it is written (LOG_LEVEL=warn writes none).
    app.addHook('onResponse', (request, reply, done) => {
      const url = request.routeOptions.url ?? request.url;
      const level = QUIET_ROUTES.has(url) ? 'debug' : 'info';
      // The app's logger is pino (buildApp), whose children have isLevelEnabled.
      if ((request.log as Logger).isLevelEnabled(level)) request.log[level](fields(request, reply, url), line(request, reply, url));
      done();
    });
  },
  { name: 'ec-access-log' },
);

function line(request: FastifyRequest, reply: FastifyReply, url: string): string {
  const o = request.embedOutcome;
  const base = `${request.method} ${url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)}ms`;
  if (!o) return request.errorCode ? `${base} ${request.errorCode}` : base;
  return `${base} ${request.tenant?.name ?? '-'} ${o.spec.id} ${o.items.length} in, ${o.hits} hit, ${o.items.length - o.hits} miss${o.backendMs > 0 ? `, backend ${o.backendMs.toFixed(1)}ms` : ''}`;
}

function fields(request: FastifyRequest, reply: FastifyReply, url: string): Record<string, unknown> {
  const o = request.embedOutcome;
  const f: Record<string, unknown> = { method: request.method, url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
  if (request.tenant) f.tenant = request.tenant.name;
  if (o) {
    f.model = o.spec.id;
    f.inputs = o.items.length;
    f.hits = o.hits;
    f.misses = o.items.length - o.hits;
    f.backend_ms = Math.round(o.backendMs * 10) / 10;
    if (!o.storeAvailable) f.store = 'unavailable';
  }
  if (request.errorCode) f.error = request.errorCode;
  return f;
}
