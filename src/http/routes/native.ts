import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bytesToVector } from '../../core/codec.js';
import { deriveDimensions } from '../../core/dimensions.js';
import { ApiError } from '../../core/errors.js';
import type { EmbeddedItem } from '../../core/embed-service.js';
import type { DimensionsMethod } from '../../core/types.js';
import { tenantStats } from '../../core/stats.js';
import { EmbedBatchBody, EmbedBody, parseBody } from '../schemas.js';
import { cacheHeader, checkDerivable, checkDimensions } from './openai.js';

/** Native routes: POST /embed, POST /embed/batch, GET /stats. */
export async function nativeRoutes(app: FastifyInstance): Promise<void> {
  const { models, embeddings, config, db, limits } = app.services;

  const run = async (request: FastifyRequest, model: string | undefined, texts: string[], dims: number | undefined, taskType: EmbedBody['task_type']) => {
    if (texts.length > config.maxInputs) throw ApiError.invalid(`At most ${config.maxInputs} texts per request.`, 'texts');
    const id = model ?? (await models.defaultModel(request.tenant, request.tier));
    if (!id) throw ApiError.invalid('No model is available to you on this server; pass `model`.', 'model');
    const resolved = await models.resolve(request.tenant, request.tier, id);
    checkDimensions(resolved.spec, dims);
    const outcome = await embeddings.embed(request.tenant, { model: resolved, inputs: texts.map((text) => ({ kind: 'text', text })), taskType, dimensions: dims });
    limits.chargeTokens(request.tenant.id, request.tier, outcome.missTokens);
    checkDerivable(outcome, dims);
    return { outcome, vectors: outcome.items.map((it) => toArray(it, dims, resolved.spec.dimensionsMethod)) };
  };

  app.post('/embed', async (request, reply) => {
    const body = parseBody(EmbedBody, request.body);
    const { outcome, vectors } = await run(request, body.model, [body.text], body.dimensions, body.task_type);
    void reply.header('x-cache', cacheHeader(outcome));
    return { embedding: vectors[0], cached: outcome.items[0].cached, dimensions: vectors[0].length, model: outcome.spec.id };
  });

  app.post('/embed/batch', async (request, reply) => {
    const body = parseBody(EmbedBatchBody, request.body);
    const { outcome, vectors } = await run(request, body.model, body.texts, body.dimensions, body.task_type);
    void reply.header('x-cache', cacheHeader(outcome));
    return {
      embeddings: vectors,
      cached: outcome.items.map((i) => i.cached),
      cache_hits: outcome.hits,
      dimensions: vectors[0].length,
      model: outcome.spec.id,
    };
  });

  app.get('/stats', async (request) => {
    await embeddings.flush();
    return tenantStats(db.sql, request.tenant, config.prices);
  });
}

function toArray(item: EmbeddedItem, dims: number | undefined, method: DimensionsMethod): number[] {
  const full = bytesToVector(item.bytes);
  return Array.from(dims === undefined ? full : deriveDimensions(full, dims, method));
}
