/** A fake Voyage AI `/v1/embeddings`, checking the request as Voyage does. */
import type { FakeModel } from './cohere.js';
import { errorAnswer, isObject, isStringArray, providerVector, startFake, tokensOf, unknownFields, type FakeAnswer, type FakeKind, type FakeProvider } from './harness.js';

export const FAKE_VOYAGE_MODELS: Record<string, FakeModel> = {
  'voyage-3.5': { dimensions: 1024, outputDimensions: [256, 512, 1024, 2048] },
  'voyage-3-lite': { dimensions: 512 },
};

export function voyageKind(apiKey: string, models: Record<string, FakeModel> = FAKE_VOYAGE_MODELS): FakeKind {
  const error = (status: number, message: string, o: { retryAfterSeconds?: number } = {}): FakeAnswer => errorAnswer(status, { detail: message }, o.retryAfterSeconds);
  return {
    error,
    handle(req) {
      if (req.method !== 'POST' || req.path !== '/v1/embeddings') return error(404, 'Not Found');
      if (req.headers.authorization !== `Bearer ${apiKey}`) return error(401, 'Provided API key is invalid.');
      const b = req.body;
      if (!isObject(b)) return error(400, 'Request body must be a JSON object.');
      const extra = unknownFields(b, ['input', 'model', 'input_type', 'truncation', 'output_dimension', 'output_dtype', 'encoding_format']);
      if (extra.length > 0) return error(400, `Unexpected field: ${extra[0]}`);
      const model = typeof b.model === 'string' ? models[b.model] : undefined;
      if (!model) return error(400, `Model ${String(b.model)} is not supported.`);
      const input = typeof b.input === 'string' ? [b.input] : b.input;
      if (!isStringArray(input) || input.length === 0) return error(400, 'input must be a string or a non-empty list of strings.');
      if (input.length > 1000) return error(400, `The batch size limit is 1000. Your batch size is ${input.length}.`);
      if (b.input_type !== undefined && b.input_type !== null && b.input_type !== 'query' && b.input_type !== 'document') {
        return error(400, "input_type must be None, 'query' or 'document'.");
      }
      let dims = model.dimensions;
      if (b.output_dimension !== undefined && b.output_dimension !== null) {
        if (!model.outputDimensions || typeof b.output_dimension !== 'number' || !model.outputDimensions.includes(b.output_dimension)) {
          return error(400, `output_dimension ${String(b.output_dimension)} is not supported for ${String(b.model)}.`);
        }
        dims = b.output_dimension;
      }
      const inputType = typeof b.input_type === 'string' ? b.input_type : null;
      const data = input.map((t, index) => ({ object: 'embedding', embedding: Array.from(providerVector(String(b.model), t, dims, { inputType, reducedFrom: model.dimensions })), index }));
      return { status: 200, inputs: input.length, body: { object: 'list', data, model: b.model, usage: { total_tokens: input.reduce((a, t) => a + tokensOf(t), 0) } } };
    },
  };
}

export function startFakeVoyage(o: { apiKey: string; models?: Record<string, FakeModel>; latencyMs?: number }): Promise<FakeProvider> {
  return startFake(voyageKind(o.apiKey, o.models), { basePath: '/v1', latencyMs: o.latencyMs });
}
