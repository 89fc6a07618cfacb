#!/usr/bin/env node
/**
 * The "static ceiling": a bare Fastify server that answers POST /static/<name> with response
 * bytes captured once from the real server, after Fastify's own JSON body parsing of the
 * request. Anything the real server does beyond that (auth, hashing, cache lookup, encoding)
 * is what the hit-path ratio measures.
 *
 *   node bench/lib/static-server.mjs --port P --bodies bodies.json [--workers N]
 *   bodies.json: { "<name>": "<path of a file holding the response body>", ... }
 *
 * --workers N: N processes on one port through node:cluster, as `serve` runs its workers: the
 * machine's own ceiling for adding processes (the `workers` scenario's reference).
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const port = Number(arg('port') ?? 0);
const workers = Number(arg('workers') ?? 1);

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  const bodies = new Map(Object.entries(JSON.parse(readFileSync(arg('bodies'), 'utf8'))).map(([k, file]) => [k, readFileSync(file)]));
  const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.post('/static/:name', (request, reply) => {
    const body = bodies.get(request.params.name);
    if (!body) return reply.code(404).send({ error: { message: 'no such body', type: 'invalid_request_error', param: null, code: null } });
    return reply.header('x-cache', 'hit').type('application/json').send(body);
  });
  await app.listen({ host: '127.0.0.1', port });
  // A worker whose primary is gone ends too (no orphan keeps the port).
  if (cluster.isWorker) process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
  process.once('SIGINT', () => app.close().then(() => process.exit(0)));
}
