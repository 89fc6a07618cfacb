/**
 * A fake "anything else" embeddings API for the template kind: `POST /embed` with
 * `{"model", "texts": [...]}` (batch) or `{"model", "text": "..."}` (one), the key in
 * `x-api-key: Key <key>`, vectors under `result.vectors` (or `result.vector`), tokens under
 * `usage.tokens`.
 */
import { errorAnswer, isObject, isStringArray, providerVector, startFake, tokensOf, unknownFields, type FakeAnswer, type FakeKind, type FakeProvider } from './harness.js';

export function templateKind(apiKey: string, models: Record<string, number>, maxBatch: number): FakeKind {
  const error = (status: number, message: string, o: { retryAfterSeconds?: number } = {}): FakeAnswer => errorAnswer(status, { error: message }, o.retryAfterSeconds);
  return {
    error,
    handle(req) {
      if (req.method !== 'POST' || req.path !== '/embed') return error(404, 'no such route');
      if (req.headers['x-api-key'] !== `Key ${apiKey}`) return error(401, 'bad key');
      const b = req.body;
      if (!isObject(b)) return error(400, 'body must be an object');
      const extra = unknownFields(b, ['model', 'texts', 'text', 'normalize']);
      if (extra.length > 0) return error(400, `unknown field ${extra[0]}`);
      const dims = typeof b.model === 'string' ? models[b.model] : undefined;
      if (!dims) return error(404, `unknown model ${String(b.model)}`);
      if (typeof b.text === 'string') {
        return { status: 200, inputs: 1, body: { result: { vector: Array.from(providerVector(String(b.model), b.text, dims)) }, usage: { tokens: tokensOf(b.text) } } };
      }
      if (!isStringArray(b.texts) || b.texts.length === 0) return error(400, 'texts must be a non-empty array of strings');
      if (b.texts.length > maxBatch) return error(400, `at most ${maxBatch} texts per call`);
      const vectors = b.texts.map((t) => Array.from(providerVector(String(b.model), t, dims)));
      return { status: 200, inputs: b.texts.length, body: { result: { vectors }, usage: { tokens: b.texts.reduce((a, t) => a + tokensOf(t), 0) } } };
    },
  };
}

export function startFakeTemplate(o: { apiKey: string; models?: Record<string, number>; maxBatch?: number; latencyMs?: number }): Promise<FakeProvider> {
  return startFake(templateKind(o.apiKey, o.models ?? { 'house-embed': 384 }, o.maxBatch ?? 32), { latencyMs: o.latencyMs });
}
