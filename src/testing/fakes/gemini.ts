/** A fake Gemini API `models/{model}:batchEmbedContents`, with Google's error format. */
import type { FakeModel } from './cohere.js';
import { isObject, providerVector, startFake, unknownFields, type FakeAnswer, type FakeKind, type FakeProvider } from './harness.js';

export const FAKE_GEMINI_MODELS: Record<string, FakeModel> = {
  'gemini-embedding-001': { dimensions: 3072, outputDimensions: [128, 256, 512, 768, 1536, 3072] },
};

const STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
const TASK_TYPES = ['TASK_TYPE_UNSPECIFIED', 'RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT', 'SEMANTIC_SIMILARITY', 'CLASSIFICATION', 'CLUSTERING', 'QUESTION_ANSWERING', 'FACT_VERIFICATION', 'CODE_RETRIEVAL_QUERY'];

export function geminiKind(apiKey: string, models: Record<string, FakeModel> = FAKE_GEMINI_MODELS): FakeKind {
  const error = (status: number, message: string, o: { retryAfterSeconds?: number; details?: unknown[] } = {}): FakeAnswer => ({
    status,
    // Google puts the retry delay in the body (RetryInfo), not in a Retry-After header.
    body: {
      error: {
        code: status,
        message,
        status: STATUS[status] ?? 'UNKNOWN',
        ...(status === 429 ? { details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${o.retryAfterSeconds ?? 7}s` }] } : o.details ? { details: o.details } : {}),
      },
    },
  });
  return {
    error,
    handle(req) {
      const m = /^\/v1beta\/models\/([^/:]+):batchEmbedContents$/.exec(req.path);
      if (req.method !== 'POST' || !m) return error(404, `The requested URL ${req.path} was not found on this server.`);
      const key = req.headers['x-goog-api-key'];
      if (key === undefined) return error(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
      if (key !== apiKey) {
        return error(400, 'API key not valid. Please pass a valid API key.', {
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' }],
        });
      }
      const model = models[m[1]];
      if (!model) return error(404, `models/${m[1]} is not found for API version v1beta, or is not supported for embedContent.`);
      const b = req.body;
      if (!isObject(b) || !Array.isArray(b.requests)) return error(400, 'Invalid JSON payload received. Expected field "requests".');
      const extra = unknownFields(b, ['requests']);
      if (extra.length > 0) return error(400, `Invalid JSON payload received. Unknown name "${extra[0]}": Cannot find field.`);
      if (b.requests.length > 100) return error(400, '* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch');
      const out: { values: number[] }[] = [];
      for (const [i, r] of b.requests.entries()) {
        if (!isObject(r)) return error(400, `Invalid value at 'requests[${i}]'.`);
        const bad = unknownFields(r, ['model', 'content', 'taskType', 'title', 'outputDimensionality']);
        if (bad.length > 0) return error(400, `Invalid JSON payload received. Unknown name "${bad[0]}" at 'requests[${i}]': Cannot find field.`);
        if (r.model !== `models/${m[1]}`) return error(400, `* BatchEmbedContentsRequest.model: model in the request does not match the path (requests[${i}].model is ${String(r.model)}).`);
        const parts = isObject(r.content) ? r.content.parts : undefined;
        const text = Array.isArray(parts) && parts.length === 1 && isObject(parts[0]) ? parts[0].text : undefined;
        if (typeof text !== 'string') return error(400, `* BatchEmbedContentsRequest.requests[${i}].content.parts: one text part is expected.`);
        if (r.taskType !== undefined && (typeof r.taskType !== 'string' || !TASK_TYPES.includes(r.taskType))) {
          return error(400, `Invalid value at 'requests[${i}].task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), "${String(r.taskType)}"`);
        }
        let dims = model.dimensions;
        if (r.outputDimensionality !== undefined) {
          if (typeof r.outputDimensionality !== 'number' || !(model.outputDimensions ?? []).includes(r.outputDimensionality)) {
            return error(400, `* BatchEmbedContentsRequest.requests[${i}].output_dimensionality: unsupported value ${String(r.outputDimensionality)}`);
          }
          dims = r.outputDimensionality;
        }
        const inputType = typeof r.taskType === 'string' ? r.taskType : null;
        out.push({ values: Array.from(providerVector(m[1], text, dims, { inputType, reducedFrom: model.dimensions })) });
      }
      return { status: 200, inputs: out.length, body: { embeddings: out } };
    },
  };
}

export function startFakeGemini(o: { apiKey: string; models?: Record<string, FakeModel>; latencyMs?: number }): Promise<FakeProvider> {
  return startFake(geminiKind(o.apiKey, o.models), { basePath: '/v1beta', latencyMs: o.latencyMs });
}
