/**
 * The Vercel AI SDK (ai v6, @ai-sdk/openai v3: embedding models are EmbeddingModelV3) pointed at
 * the proxy with `createOpenAI({ baseURL })`. It asks for `encoding_format: "float"`, reads
 * `data[].embedding` in array order (ignoring `index`), and splits embedMany itself at 2048
 * values per call.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, embed, embedMany } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MODEL, caught, expectBitIdentical, expectedVector, l2, startLiveServer, texts, type LiveServer } from './support.js';

let t: LiveServer;
let apiKey: string;

const modelFor = (server: LiveServer = t, key: string = apiKey, id: string = MODEL) =>
  createOpenAI({ baseURL: server.baseURL, apiKey: key }).embedding(id);

beforeAll(async () => {
  t = await startLiveServer();
  apiKey = await t.key('ai-sdk');
});
afterAll(async () => t?.close());
beforeEach(() => t.fake.reset());

describe('AI SDK: caching', () => {
  it('embed twice: the second is a cache hit (x-cache visible), bit-identical', async () => {
    const model = modelFor();
    const first = await embed({ model, value: 'sunny with a chance of rain', maxRetries: 0 });
    const second = await embed({ model, value: 'sunny with a chance of rain', maxRetries: 0 });
    expect(first.response?.headers?.['x-cache']).toBe('miss');
    expect(second.response?.headers?.['x-cache']).toBe('hit');
    expect(second.response?.headers?.['x-request-id']).toBeTruthy();
    expect(t.fake.stats().calls).toBe(1);
    const want = expectedVector('sunny with a chance of rain');
    expectBitIdentical(first.embedding, want, 'miss');
    expectBitIdentical(second.embedding, want, 'hit');
    expect(second.embedding).toEqual(first.embedding);
    expect(second.usage.tokens).toBe(first.usage.tokens);
    expect(first.usage.tokens).toBeGreaterThan(0);
  });
});

describe('AI SDK: dimensions', () => {
  it('providerOptions.openai.dimensions gives shorter unit vectors, identical on the cached call', async () => {
    const model = modelFor();
    const providerOptions = { openai: { dimensions: 32 } };
    const first = await embedMany({ model, values: ['ai dims a', 'ai dims b'], providerOptions, maxRetries: 0 });
    const second = await embedMany({ model, values: ['ai dims a', 'ai dims b'], providerOptions, maxRetries: 0 });
    const single = await embed({ model, value: 'ai dims b', providerOptions, maxRetries: 0 });
    expect(t.fake.stats().calls).toBe(1);
    expect(second.responses?.[0]?.headers?.['x-cache']).toBe('hit');
    ['ai dims a', 'ai dims b'].forEach((v, i) => {
      expect(first.embeddings[i]).toHaveLength(32);
      expect(l2(first.embeddings[i])).toBeCloseTo(1, 5);
      expectBitIdentical(first.embeddings[i], expectedVector(v, 32), `miss ${i}`);
      expectBitIdentical(second.embeddings[i], expectedVector(v, 32), `hit ${i}`);
    });
    expect(single.embedding).toEqual(first.embeddings[1]);
  });
});

describe('AI SDK: embedMany and order', () => {
  it('embedMany of 100 values comes back in order, then entirely from the cache', async () => {
    const model = modelFor();
    const values = texts('ai hundred', 100);
    const first = await embedMany({ model, values, maxRetries: 0 });
    const second = await embedMany({ model, values, maxRetries: 0 });
    expect(t.fake.stats().calls).toBe(1);
    expect(first.responses?.[0]?.headers?.['x-cache']).toBe('miss');
    expect(second.responses?.[0]?.headers?.['x-cache']).toBe('hit');
    expect(second.values).toEqual(values);
    values.forEach((v, i) => {
      expectBitIdentical(first.embeddings[i], expectedVector(v), `miss ${i}`);
      expectBitIdentical(second.embeddings[i], expectedVector(v), `hit ${i}`);
    });
  });

  it('embedMany past its own 2048-per-call limit: two parallel calls, order kept', async () => {
    const model = modelFor();
    const values = texts('ai many', 2100);
    const providerOptions = { openai: { dimensions: 4 } }; // keeps the responses small
    const res = await embedMany({ model, values, providerOptions, maxRetries: 0 });
    expect(res.responses).toHaveLength(2);
    expect(res.embeddings).toHaveLength(2100);
    expect(t.fake.stats().inputs).toBe(2100);
    values.forEach((v, i) => expectBitIdentical(res.embeddings[i], expectedVector(v, 4), `value ${i}`));
    const again = await embedMany({ model, values, providerOptions, maxRetries: 0, maxParallelCalls: 1 });
    expect(again.responses?.map((r) => r?.headers?.['x-cache'])).toEqual(['hit', 'hit']);
    expect(again.embeddings).toEqual(res.embeddings);
    expect(t.fake.stats().inputs).toBe(2100);
  });

  it('embedMany against a small upstream batch limit: split by the server, order kept', async () => {
    const small = await startLiveServer({ maxBatch: 7 });
    try {
      const model = modelFor(small, await small.key('ai-small'));
      const values = texts('ai small batch', 45);
      const res = await embedMany({ model, values, maxRetries: 0 });
      expect(small.fake.stats().calls).toBe(7);
      values.forEach((v, i) => expectBitIdentical(res.embeddings[i], expectedVector(v), `value ${i}`));
    } finally {
      await small.close();
    }
  });
});

describe('AI SDK: tenants', () => {
  it('another tenant’s first call is a miss', async () => {
    const a = await embed({ model: modelFor(), value: 'ai tenant text', maxRetries: 0 });
    const other = modelFor(t, await t.key('ai-sdk-other'));
    const b = await embed({ model: other, value: 'ai tenant text', maxRetries: 0 });
    expect(b.response?.headers?.['x-cache']).toBe('miss');
    expect(t.fake.stats().calls).toBe(2);
    expect(b.embedding).toEqual(a.embedding);
  });
});

describe('AI SDK: errors', () => {
  it('a bad key raises APICallError 401 carrying the OpenAI error body', async () => {
    const err = await caught(() => embed({ model: modelFor(t, 'ec_bogus'), value: 'x', maxRetries: 0 }));
    expect(APICallError.isInstance(err)).toBe(true);
    const e = err as APICallError;
    expect(e.statusCode).toBe(401);
    expect(e.isRetryable).toBe(false);
    expect(e.message).toMatch(/key/i);
    expect(e.responseHeaders?.['x-request-id']).toBeTruthy();
    expect(JSON.parse(e.responseBody ?? '{}').error.code).toBe('invalid_api_key');
  });

  it('an unknown model raises APICallError 404 with code model_not_found', async () => {
    const err = await caught(() => embed({ model: modelFor(t, apiKey, 'no-such-model'), value: 'x', maxRetries: 0 }));
    expect(APICallError.isInstance(err)).toBe(true);
    const e = err as APICallError;
    expect(e.statusCode).toBe(404);
    expect(JSON.parse(e.responseBody ?? '{}').error).toMatchObject({ code: 'model_not_found', type: 'invalid_request_error' });
  });

  it('an empty value raises APICallError 400 (param input); no upstream call', async () => {
    const err = await caught(() => embed({ model: modelFor(), value: '', maxRetries: 0 }));
    expect(APICallError.isInstance(err)).toBe(true);
    const e = err as APICallError;
    expect(e.statusCode).toBe(400);
    expect(JSON.parse(e.responseBody ?? '{}').error.param).toBe('input');
    expect(t.fake.stats().calls).toBe(0);
  });
});
