import type { FastifyInstance } from 'fastify';
import { cacheResult, type EmbedRequests } from '../../core/embed-request.js';
import type { ModelAccess } from '../../core/model-access.js';
import type { ModelSpec } from '../../core/types.js';
import { encodeEmbeddingsResponse, type VectorTextCache } from '../openai-response.js';
import { EmbeddingsBody, parseBody, parseInput } from '../schemas.js';
import { storeHeaders } from './embed-headers.js';

export interface OpenAiRoutesOptions {
  requests: EmbedRequests;
  models: ModelAccess;
  /** JSON text of hot vectors, for `float` responses. */
  vectorTexts: VectorTextCache;
  maxInputs: number;
}

/** OpenAI-compatible routes: POST /embeddings, GET /models, GET /models/:id. */
export async function openaiRoutes(app: FastifyInstance, opts: OpenAiRoutesOptions): Promise<void> {
  const { requests, models, vectorTexts, maxInputs } = opts;

  app.post('/embeddings', async (request, reply) => {
    const body = parseBody(EmbeddingsBody, request.body);
    const inputs = parseInput(body.input, maxInputs);
    const outcome = await requests.run(request.tenant, request.tier, { model: body.model, inputs, dimensions: body.dimensions, taskType: body.task_type });
    void reply.headers(storeHeaders(request, outcome)).header('x-cache', cacheResult(outcome)).type('application/json');
    const format = body.encoding_format ?? 'float';
    // float32 noise in base64 barely shrinks: compression.ts leaves it alone in `auto`.
    reply.incompressible = format === 'base64';
    return encodeEmbeddingsResponse(body.model, outcome.items, outcome.promptTokens, format, body.dimensions, outcome.spec.dimensionsMethod, vectorTexts);
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

function modelObject(spec: ModelSpec) {
  return { id: spec.id, object: 'model', created: spec.created, owned_by: spec.ownedBy };
}
