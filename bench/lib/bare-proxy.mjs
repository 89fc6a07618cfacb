#!/usr/bin/env node
/**
 * The floor of the `miss` scenario, as the static server is the ceiling of `hit`: a bare
 * Fastify server that passes POST /v1/embeddings to the upstream with undici (the libraries the
 * server itself uses) and returns the upstream's bytes. With --database-url it first does what
 * any read-through cache must do before it may call out: one postgres.js point lookup of the
 * input's sha256, the server's own query shape. No auth, no checks, no write-behind, no
 * accounting: what one more process hop, and one more PostgreSQL round trip, cost on this
 * machine whoever implements them.
 *
 * With --answer-hits a found row is answered as the OpenAI body with its base64 (the floor of
 * `store-hit`: HTTP, one point lookup per request, no coalescing, no batching); without it the
 * miss scenario's never-seen texts must find none.
 *
 *   node bench/lib/bare-proxy.mjs --port P --upstream http://127.0.0.1:U [--database-url URL --tenant-id T --model M --model-version V [--answer-hits]]
 */
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import postgres from 'postgres';
import { Agent, request } from 'undici';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const port = Number(arg('port') ?? 0);
const upstream = `${arg('upstream').replace(/\/+$/, '')}/v1/embeddings`;
const dbUrl = arg('database-url');
const sql = dbUrl ? postgres(dbUrl, { max: 10, prepare: true, onnotice: () => {} }) : null;
const model = arg('model') ?? 'text-embedding-3-small';
const modelVersion = arg('model-version') ?? '';
const tenantId = Number(arg('tenant-id') ?? 1);
const answerHits = process.argv.includes('--answer-hits');
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128 });

const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
// Lookups made, so the bench can tell this process's PostgreSQL transactions from the server's.
let lookups = 0;
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/stats', async () => ({ lookups }));
app.post('/v1/embeddings', async (req, reply) => {
  const body = req.body;
  if (sql) {
    // The server's key: sha256 of a 0x00 tag byte and the text (src/core/cache-key.ts).
    const hash = createHash('sha256').update('\u0000' + String(body.input)).digest();
    lookups++;
    const rows = await sql`SELECT vector, tokens FROM embeddings WHERE tenant_id = ${tenantId} AND model = ${model} AND model_version = ${modelVersion} AND input_hash = ${hash}`;
    if (rows.length > 0 && answerHits) {
      const [row] = rows;
      return reply.type('application/json').send(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":"${row.vector.toString('base64')}"}],"model":${JSON.stringify(body.model)},"usage":{"prompt_tokens":${row.tokens},"total_tokens":${row.tokens}}}`);
    }
    // The miss scenario sends never-seen texts only: a found row means the bench is wrong.
    if (rows.length > 0) return reply.code(500).send({ error: { message: 'bare proxy: the lookup found a row; the miss scenario must send unseen texts', type: 'server_error', param: null, code: null } });
  }
  const res = await request(upstream, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
    body: JSON.stringify(body),
    dispatcher: agent,
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return reply.code(res.statusCode).type('application/json').send(bytes);
});
await app.listen({ host: '127.0.0.1', port });
const stop = () =>
  app
    .close()
    .then(() => sql?.end({ timeout: 2 }))
    .then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
