import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bytesToVector } from '../../core/codec.js';
import { deriveDimensions } from '../../core/dimensions.js';
import { cacheResult, type EmbedRequests } from '../../core/embed-request.js';
import type { EmbeddedItem } from '../../core/embed-service.js';
import { DomainError } from '../../core/errors.js';
import type { DimensionsMethod, TaskType } from '../../core/types.js';
import { EmbedBatchBody, EmbedBody, parseBody } from '../schemas.js';
import { storeHeaders } from './embed-headers.js';

export interface NativeRoutesOptions {
  requests: EmbedRequests;
  maxInputs: number;
  /** The caller's usage and stored rows (GET /stats). */
  stats: (request: FastifyRequest) => Promise<unknown>;
}

/** Native routes: POST /embed, POST /embed/batch, GET /stats. */
export async function nativeRoutes(app: FastifyInstance, opts: NativeRoutesOptions): Promise<void> {
  const { requests, maxInputs } = opts;

  const run = async (request: FastifyRequest, model: string | undefined, texts: string[], dims: number | undefined, taskType: TaskType | undefined) => {
    if (texts.length > maxInputs) throw new DomainError('invalid_input', `At most ${maxInputs} texts per request.`, { param: 'texts' });
    const outcome = await requests.run(request.tenant, request.tier, { model, inputs: texts.map((text) => ({ kind: 'text', text })), dimensions: dims, taskType });
    return { outcome, vectors: outcome.items.map((it) => toArray(it, dims, outcome.spec.dimensionsMethod)) };
  };

  app.post('/embed', async (request, reply) => {
    const body = parseBody(EmbedBody, request.body);
    const { outcome, vectors } = await run(request, body.model, [body.text], body.dimensions, body.task_type);
    void reply.headers(storeHeaders(request, outcome)).header('x-cache', cacheResult(outcome));
    return { embedding: vectors[0], cached: outcome.items[0].cached, dimensions: vectors[0].length, model: outcome.spec.id };
  });

  app.post('/embed/batch', async (request, reply) => {
    const body = parseBody(EmbedBatchBody, request.body);
    const { outcome, vectors } = await run(request, body.model, body.texts, body.dimensions, body.task_type);
    void reply.headers(storeHeaders(request, outcome)).header('x-cache', cacheResult(outcome));
    return {
      embeddings: vectors,
      cached: outcome.items.map((i) => i.cached),
      cache_hits: outcome.hits,
      dimensions: vectors[0].length,
      model: outcome.spec.id,
    };
  });

  app.get('/stats', async (request) => opts.stats(request));
}

function toArray(item: EmbeddedItem, dims: number | undefined, method: DimensionsMethod): number[] {
  const full = bytesToVector(item.bytes);
  return Array.from(dims === undefined ? full : deriveDimensions(full, dims, method));
}
