import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/**
 * A route with its zod schemas beside its handler: the handler parses with `body`, and the same
 * schemas describe the route in OpenAPI (GET /v1/openapi.json), so the two cannot drift.
 */
export interface DocumentedRoute {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  summary: string;
  tag: string;
  /** The JSON body it accepts. */
  body?: z.ZodType;
  /** What it answers with on success, and with which status. */
  response: z.ZodType;
  status?: 200 | 201;
  /** `bearer`: an API key or tenant JWT; `none`: public (signup, login, refresh). */
  security: 'bearer' | 'none';
  /** A tighter body limit than the server's (public routes: nobody unauthenticated sends megabytes). */
  bodyLimit?: number;
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

export function registerRoutes(app: FastifyInstance, routes: DocumentedRoute[]): void {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.path,
      ...(r.bodyLimit ? { bodyLimit: r.bodyLimit } : {}),
      handler: async (request, reply) => {
        const out = await r.handler(request, reply);
        if (r.status) void reply.code(r.status);
        return out;
      },
    });
  }
}

const ErrorBody = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

/** An OpenAPI 3.1 document for routes served under `prefix`. */
export function openApiDocument(title: string, prefix: string, routes: DocumentedRoute[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  const errors = { description: 'OpenAI-style error', content: { 'application/json': { schema: z.toJSONSchema(ErrorBody) } } };
  for (const r of routes) {
    const p = `${prefix}${r.path}`.replace(/:(\w+)/g, '{$1}');
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      security: r.security === 'bearer' ? [{ bearer: [] }] : [],
      parameters: [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input' }) } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: 'OK', content: { 'application/json': { schema: z.toJSONSchema(r.response) } } },
        '4XX': errors,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title, version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key (ec_...) or a tenant JWT from /v1/auth/login' } } },
    paths,
  };
}

/** GET /openapi.json serving the document of `routes` (their handlers are not called). */
export async function openApiRoutes(app: FastifyInstance, opts: { title: string; basePath: string; routes: DocumentedRoute[] }): Promise<void> {
  const doc = openApiDocument(opts.title, opts.basePath, opts.routes);
  app.get('/openapi.json', async () => doc);
}
