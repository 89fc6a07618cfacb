import type { FastifyInstance } from 'fastify';
import { encodeEmbeddingsResponse } from '../openai-response.js';
import { ApiError } from '../../core/errors.js';
import type { EmbedOutcome } from '../../core/embed-service.js';
import type { ModelSpec } from '../../core/types.js';
import { EmbeddingsBody, parseBody, parseInput } from '../schemas.js';

/** OpenAI-compatible routes: POST /embeddings, GET /models, GET /models/:id. */
export async function openaiRoutes(app: FastifyInstance): Promise<void> {
  const { models, embeddings, config, limits, vectorTexts } = app.services;

  app.post('/embeddings', async (request, reply) => {
    const body = parseBody(EmbeddingsBody, request.body);
    const inputs = parseInput(body.input, config.maxInputs);
    const model = await models.resolve(request.tenant, request.tier, body.model);
    checkDimensions(model.spec, body.dimensions);
    const outcome = await embeddings.embed(request.tenant, { model, inputs, taskType: body.task_type, dimensions: body.dimensions });
    limits.chargeTokens(request.tenant.id, request.tier, outcome.missTokens);
    checkDerivable(outcome, body.dimensions);
    void reply.header('x-cache', cacheHeader(outcome)).type('application/json');
    return encodeEmbeddingsResponse(body.model, outcome.items, outcome.promptTokens, body.encoding_format ?? 'float', body.dimensions, outcome.spec.dimensionsMethod, vectorTexts);
  });

  app.get('/models', async (request) => ({
    object: 'list',
    data: (await models.list(request.tenant, request.tier)).map((m) => modelObject(m.spec)),
  }));

  app.get<{ Params: { id: string } }>('/models/:id', async (request) => {
    const m = await models.resolve(request.tenant, request.tier, request.params.id);
    return modelObject(m.spec);
  });
}

/** Refuses a `dimensions` the model cannot give, before any work is done. */
export function checkDimensions(spec: ModelSpec, dims: number | undefined): void {
  if (dims === undefined) return;
  if (spec.dimensionsMethod === 'none' && dims !== spec.dimensions) {
    throw ApiError.invalid(`This model (${spec.id}) does not support specifying dimensions.`, 'dimensions');
  }
  if (spec.dimensions !== null && dims > spec.dimensions) throw tooManyDimensions(spec.id, spec.dimensions);
}

/**
 * After the fact: a provider may return vectors shorter than its model's spec says (an
 * OpenAI-compatible server serving another model under a known name). Never derive past them.
 */
export function checkDerivable(outcome: EmbedOutcome, dims: number | undefined): void {
  const full = outcome.items[0].bytes.length / 4;
  if (dims !== undefined && dims > full) throw tooManyDimensions(outcome.spec.id, full);
}

function tooManyDimensions(model: string, full: number): ApiError {
  return ApiError.invalid(`dimensions must be at most ${full} for ${model}.`, 'dimensions');
}

export function cacheHeader(o: EmbedOutcome): 'hit' | 'miss' | 'partial' {
  return o.hits === o.items.length ? 'hit' : o.hits === 0 ? 'miss' : 'partial';
}

function modelObject(spec: ModelSpec) {
  return { id: spec.id, object: 'model', created: spec.created, owned_by: spec.ownedBy };
}
