#!/usr/bin/env node
/**
 * The local-model reference: the same ONNX model run by @huggingface/transformers'
 * feature-extraction pipeline (mean pooling, L2 normalise), behind a bare Fastify route that
 * takes the same OpenAI request the server takes (one text per request) and answers base64.
 * Each request is its own pipeline call, as a straightforward transformers.js service would do.
 *
 *   node bench/lib/transformers-server.mjs --port P --model-dir test/fixtures/tiny-bert [--prefix "search_document: "]
 */
import path from 'node:path';
import Fastify from 'fastify';
import { env, pipeline } from '@huggingface/transformers';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const modelDir = path.resolve(arg('model-dir'));
const prefix = arg('prefix', '');
const port = Number(arg('port', 0));

// Never download: load from the fixture directory (<localModelPath>/<model id>/...).
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(modelDir) + path.sep;
const modelId = path.basename(modelDir);
const extractor = await pipeline('feature-extraction', modelId, { dtype: 'fp32', device: 'cpu' });

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/v1/embeddings', async (request, reply) => {
  const { input } = request.body;
  const texts = Array.isArray(input) ? input : [input];
  const out = await extractor(texts.map((t) => prefix + t), { pooling: 'mean', normalize: true });
  const [rows, dims] = out.dims;
  const data = new Float32Array(out.data);
  let s = '{"object":"list","data":[';
  for (let i = 0; i < rows; i++) {
    const v = Buffer.from(data.buffer, i * dims * 4, dims * 4);
    s += `${i ? ',' : ''}{"object":"embedding","index":${i},"embedding":"${v.toString('base64')}"}`;
  }
  s += `],"model":${JSON.stringify(modelId)},"usage":{"prompt_tokens":0,"total_tokens":0}}`;
  return reply.type('application/json').send(s);
});
await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
process.once('SIGINT', () => app.close().then(() => process.exit(0)));
