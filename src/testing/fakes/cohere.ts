/** A fake Cohere Embed v2 (`POST /v2/embed`), checking the request as Cohere does. */
import { randomUUID } from 'node:crypto';
import { errorAnswer, isObject, isStringArray, providerVector, startFake, tokensOf, unknownFields, type FakeAnswer, type FakeKind, type FakeProvider } from './harness.js';

export interface FakeModel {
  dimensions: number;
  /** Sizes `output_dimension` may ask for (none: the model refuses it). */
  outputDimensions?: number[];
}

export const FAKE_COHERE_MODELS: Record<string, FakeModel> = {
  'embed-v4.0': { dimensions: 1536, outputDimensions: [256, 512, 1024, 1536] },
  'embed-english-v3.0': { dimensions: 1024 },
};

const INPUT_TYPES = ['search_document', 'search_query', 'classification', 'clustering', 'image'];

export function cohereKind(apiKey: string, models: Record<string, FakeModel> = FAKE_COHERE_MODELS): FakeKind {
  const error = (status: number, message: string, o: { retryAfterSeconds?: number } = {}): FakeAnswer => errorAnswer(status, { id: randomUUID(), message }, o.retryAfterSeconds);
  return {
    error,
    handle(req) {
      if (req.method !== 'POST' || req.path !== '/v2/embed') return error(404, `no route for ${req.method} ${req.path}`);
      if (req.headers.authorization !== `Bearer ${apiKey}`) return error(401, 'invalid api token');
      const b = req.body;
      if (!isObject(b)) return error(400, 'invalid request: body must be a JSON object');
      const extra = unknownFields(b, ['model', 'texts', 'images', 'inputs', 'input_type', 'embedding_types', 'output_dimension', 'max_tokens', 'truncate']);
      if (extra.length > 0) return error(400, `invalid request: unknown field ${extra[0]}`);
      const model = typeof b.model === 'string' ? models[b.model] : undefined;
      if (!model) return error(404, `model '${String(b.model)}' not found, make sure the correct model ID was used and that you have access to the model.`);
      if (!isStringArray(b.texts) || b.texts.length === 0) return error(400, 'invalid request: texts must be a non-empty array of strings');
      if (b.texts.length > 96) return error(400, `invalid request: total number of texts must be at most 96 - received ${b.texts.length}`);
      if (typeof b.input_type !== 'string' || !INPUT_TYPES.includes(b.input_type)) {
        return error(400, `invalid request: input_type must be one of ${INPUT_TYPES.join(', ')}; it is required for embed models v3 and higher.`);
      }
      if (!Array.isArray(b.embedding_types) || !b.embedding_types.includes('float')) return error(400, 'invalid request: this fake serves embedding_types ["float"] only');
      let dims = model.dimensions;
      if (b.output_dimension !== undefined) {
        if (!model.outputDimensions) return error(400, `invalid request: output_dimension is not supported for model ${String(b.model)}`);
        if (typeof b.output_dimension !== 'number' || !model.outputDimensions.includes(b.output_dimension)) {
          return error(400, `invalid request: output_dimension must be one of ${model.outputDimensions.join(', ')}`);
        }
        dims = b.output_dimension;
      }
      const inputType = b.input_type;
      const texts = b.texts;
      const float = texts.map((t) => Array.from(providerVector(String(b.model), t, dims, { inputType, reducedFrom: model.dimensions })));
      return {
        status: 200,
        inputs: texts.length,
        body: {
          id: randomUUID(),
          embeddings: { float },
          texts,
          meta: { api_version: { version: '2' }, billed_units: { input_tokens: texts.reduce((a, t) => a + tokensOf(t), 0) } },
          response_type: 'embeddings_by_type',
        },
      };
    },
  };
}

export function startFakeCohere(o: { apiKey: string; models?: Record<string, FakeModel>; latencyMs?: number }): Promise<FakeProvider> {
  return startFake(cohereKind(o.apiKey, o.models), { latencyMs: o.latencyMs });
}
