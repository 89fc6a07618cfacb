import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { base64ToVector } from '../src/core/codec.js';
import { fakeVector } from '../src/testing/fake-upstream.js';
import { startTestServer, type TestServer } from './support/server.js';

let t: TestServer;
let key: string;
let otherKey: string;

beforeAll(async () => {
  t = await startTestServer();
  key = await t.key('acme');
  otherKey = await t.key('globex');
});
afterAll(async () => t?.close());
beforeEach(() => t.fake.reset());

const post = (body: unknown, k: string | null = key, url = '/v1/embeddings') =>
  t.server.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...(k ? { authorization: `Bearer ${k}` } : {}) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('POST /v1/embeddings', () => {
  it('returns OpenAI’s response shape with the upstream’s vectors and usage', async () => {
    const res = await post({ model: 'text-embedding-3-small', input: ['shape a', 'shape b'] });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.object).toBe('list');
    expect(body.model).toBe('text-embedding-3-small');
    expect(body.data).toHaveLength(2);
    expect(body.data[0]).toMatchObject({ object: 'embedding', index: 0 });
    expect(body.data[1].index).toBe(1);
    expect(body.data[0].embedding).toHaveLength(1536);
    expect(Float32Array.from(body.data[1].embedding)).toEqual(fakeVector('text-embedding-3-small', 'shape b', 1536));
    expect(body.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
    expect(res.headers['x-cache']).toBe('miss');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('serves the second identical call from the cache, bit for bit, without calling the upstream', async () => {
    const first = await post({ model: 'text-embedding-3-small', input: ['repeat me', 'and me'], encoding_format: 'base64' });
    expect(t.fake.stats().calls).toBe(1);
    const second = await post({ model: 'text-embedding-3-small', input: ['repeat me', 'and me'], encoding_format: 'base64' });
    expect(t.fake.stats().calls).toBe(1);
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
  });

  it('serves hits from Postgres after the in-process cache is dropped', async () => {
    const first = await post({ model: 'text-embedding-3-small', input: 'cold row', encoding_format: 'base64' });
    await t.server.embeddings.flush();
    t.server.embeddings.dropHotCache();
    const second = await post({ model: 'text-embedding-3-small', input: 'cold row', encoding_format: 'base64' });
    expect(t.fake.stats().calls).toBe(1);
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
  });

  it('gives the same floats for float and base64 encodings', async () => {
    const f = (await post({ model: 'text-embedding-3-small', input: 'enc' })).json();
    const b = (await post({ model: 'text-embedding-3-small', input: 'enc', encoding_format: 'base64' })).json();
    expect(Array.from(base64ToVector(b.data[0].embedding))).toEqual(f.data[0].embedding);
  });

  it('derives dimensions from the stored full vector identically on miss and hit', async () => {
    const miss = await post({ model: 'text-embedding-3-small', input: 'dims', dimensions: 256 });
    const hit = await post({ model: 'text-embedding-3-small', input: 'dims', dimensions: 256 });
    expect(miss.headers['x-cache']).toBe('miss');
    expect(hit.headers['x-cache']).toBe('hit');
    expect(hit.body).toBe(miss.body);
    const v: number[] = miss.json().data[0].embedding;
    expect(v).toHaveLength(256);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    // truncate + renormalise of the full vector
    const full = fakeVector('text-embedding-3-small', 'dims', 1536);
    const norm = Math.hypot(...full.slice(0, 256));
    expect(v[3]).toBeCloseTo(full[3] / norm, 6);
    // the full-dimension request afterwards is a hit too
    const fullRes = await post({ model: 'text-embedding-3-small', input: 'dims' });
    expect(fullRes.headers['x-cache']).toBe('hit');
    expect(t.fake.stats().calls).toBe(1);
  });

  it('sends only the missing inputs upstream on a partial hit and keeps the order', async () => {
    await post({ model: 'text-embedding-3-small', input: ['p1', 'p3'] });
    t.fake.reset();
    const res = await post({ model: 'text-embedding-3-small', input: ['p1', 'p2', 'p3', 'p4', 'p2'], encoding_format: 'base64' });
    expect(res.headers['x-cache']).toBe('partial');
    expect(t.fake.stats()).toMatchObject({ calls: 1, inputs: 2 });
    const got = res.json().data.map((d: { embedding: string }) => base64ToVector(d.embedding));
    ['p1', 'p2', 'p3', 'p4', 'p2'].forEach((text, i) => expect(got[i]).toEqual(fakeVector('text-embedding-3-small', text, 1536)));
  });

  it('writes computed rows behind the response, batched, and loses none at shutdown', async () => {
    const own = await startTestServer();
    try {
      const k = await own.key('writer');
      await Promise.all(Array.from({ length: 20 }, (_, i) => own.server.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        payload: { model: 'text-embedding-3-small', input: [`wb ${i}`, `wb ${i + 100}`] },
      })));
    } finally {
      // close() must flush whatever the write-behind still holds
      const sql = (await import('postgres')).default(own.server.config.databaseUrl!, { max: 1 });
      await own.close();
      const [{ n }] = await sql`SELECT count(*)::int AS n FROM embeddings`;
      await sql.end();
      expect(n).toBe(40);
    }
  });

  it('computes concurrent identical misses once', async () => {
    t.fake.setLatency(100);
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => post({ model: 'text-embedding-3-small', input: ['together', 'as one'] })));
      expect(results.every((r) => r.statusCode === 200)).toBe(true);
      expect(t.fake.stats()).toMatchObject({ calls: 1, inputs: 2 });
      expect(new Set(results.map((r) => r.body)).size).toBe(1);
    } finally {
      t.fake.setLatency(0);
    }
  });

  it('accepts token-id inputs, one array or many', async () => {
    const one = await post({ model: 'text-embedding-3-small', input: [1, 2, 3] });
    expect(one.statusCode).toBe(200);
    expect(Float32Array.from(one.json().data[0].embedding)).toEqual(fakeVector('text-embedding-3-small', [1, 2, 3], 1536));
    const many = await post({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4, 5]] });
    expect(many.json().data).toHaveLength(2);
    expect(many.json().usage.prompt_tokens).toBe(5);
    expect(many.headers['x-cache']).toBe('partial');
  });

  it('keeps tenants apart: the same text is a miss for another tenant', async () => {
    await post({ model: 'text-embedding-3-small', input: 'private text' });
    const other = await post({ model: 'text-embedding-3-small', input: 'private text' }, otherKey);
    expect(other.headers['x-cache']).toBe('miss');
    expect(t.fake.stats().calls).toBe(2);
  });

  it('stores hashes and vectors, never the plaintext', async () => {
    await post({ model: 'text-embedding-3-small', input: 'secret plaintext 12345' });
    await t.server.embeddings.flush();
    const rows = await t.server.db.sql`SELECT * FROM embeddings`;
    const dump = JSON.stringify(rows.map((r) => Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : v))));
    expect(rows.length).toBeGreaterThan(0);
    expect(dump).not.toContain('secret plaintext');
    expect((rows[0].input_hash as Buffer).length).toBe(32);
  });

  it('splits requests larger than the upstream batch limit and reassembles in order', async () => {
    const small = await startTestServer({ env: { UPSTREAM_MAX_BATCH: '3' }, fakeMaxBatch: 3 });
    try {
      const k = await small.key('acme');
      const input = Array.from({ length: 8 }, (_, i) => `split ${i}`);
      const res = await small.server.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        payload: { model: 'text-embedding-3-small', input, encoding_format: 'base64' },
      });
      expect(res.statusCode).toBe(200);
      expect(small.fake.stats().batchSizes.sort()).toEqual([2, 3, 3]);
      res.json().data.forEach((d: { embedding: string; index: number }, i: number) => {
        expect(d.index).toBe(i);
        expect(base64ToVector(d.embedding)).toEqual(fakeVector('text-embedding-3-small', input[i], 1536));
      });
    } finally {
      await small.close();
    }
  });
});

describe('errors', () => {
  const cases: [string, unknown, number, string | null][] = [
    ['malformed JSON', '{"model": ', 400, null],
    ['a body that is not an object', '[1,2]', 400, null],
    ['a missing model', { input: 'x' }, 400, 'model'],
    ['a missing input', { model: 'text-embedding-3-small' }, 400, 'input'],
    ['an empty string', { model: 'text-embedding-3-small', input: '' }, 400, 'input'],
    ['an empty array', { model: 'text-embedding-3-small', input: [] }, 400, 'input'],
    ['an empty string in an array', { model: 'text-embedding-3-small', input: ['a', ''] }, 400, 'input'],
    ['mixed input types', { model: 'text-embedding-3-small', input: ['a', 1] }, 400, 'input'],
    ['a number as input', { model: 'text-embedding-3-small', input: 5 }, 400, 'input'],
    ['negative token ids', { model: 'text-embedding-3-small', input: [1, -2] }, 400, 'input'],
    ['fractional token ids', { model: 'text-embedding-3-small', input: [[1.5]] }, 400, 'input'],
    ['too many inputs', { model: 'text-embedding-3-small', input: Array.from({ length: 2049 }, (_, i) => `x${i}`) }, 400, 'input'],
    ['a bad encoding_format', { model: 'text-embedding-3-small', input: 'x', encoding_format: 'int8' }, 400, 'encoding_format'],
    ['zero dimensions', { model: 'text-embedding-3-small', input: 'x', dimensions: 0 }, 400, 'dimensions'],
    ['fractional dimensions', { model: 'text-embedding-3-small', input: 'x', dimensions: 1.5 }, 400, 'dimensions'],
    ['too many dimensions', { model: 'text-embedding-3-small', input: 'x', dimensions: 5000 }, 400, 'dimensions'],
    ['dimensions on a model without them', { model: 'text-embedding-ada-002', input: 'x', dimensions: 8 }, 400, 'dimensions'],
    ['a non-string model', { model: 42, input: 'x' }, 400, 'model'],
  ];
  it.each(cases)('refuses %s with 400 and an OpenAI error body', async (_name, body, status, param) => {
    const res = await post(body);
    expect(res.statusCode).toBe(status);
    const e = res.json().error;
    expect(e.type).toBe('invalid_request_error');
    expect(typeof e.message).toBe('string');
    expect(e.message.length).toBeGreaterThan(5);
    expect(e.param).toBe(param);
    expect(Object.keys(res.json().error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(t.fake.stats().calls).toBe(0);
  });

  it('answers an unknown model with 404 model_not_found', async () => {
    const res = await post({ model: 'no-such-model', input: 'x' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    // ...listing the models this caller can use
    expect(res.json().error.message).toMatch(/Models you can use: text-embedding-3-small, text-embedding-3-large, text-embedding-ada-002\./);
  });

  it('says how to configure a model where the server has none', async () => {
    const bare = await startTestServer({ backends: [] });
    try {
      const res = await bare.server.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: { authorization: `Bearer ${await bare.key('lonely')}` },
        payload: { model: 'text-embedding-3-small', input: 'x' },
      });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.message).toMatch(/No model is configured.*UPSTREAM_BASE_URL.*MODEL_DIR.*models pull/);
    } finally {
      await bare.close();
    }
  });

  it.each([
    ['no Authorization header', null],
    ['a malformed key', 'not-a-key'],
    ['an unknown key', 'ec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
  ])('answers %s with 401', async (_name, k) => {
    const res = await post({ model: 'text-embedding-3-small', input: 'x' }, k);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('invalid_api_key');
  });

  it('refuses a revoked key', async () => {
    const k = await t.key('revokee');
    expect((await post({ model: 'text-embedding-3-small', input: 'r' }, k)).statusCode).toBe(200);
    const { revokeApiKey } = await import('../src/store/api-keys.js');
    expect(await revokeApiKey(t.server.db.sql, k.slice(0, 11))).toBe(true);
    t.server.auth.forgetAll();
    expect((await post({ model: 'text-embedding-3-small', input: 'r' }, k)).statusCode).toBe(401);
  });

  it('maps upstream failures to OpenAI errors: 429 stays 429, 5xx becomes 502', async () => {
    t.fake.failNext(429, 1);
    const limited = await post({ model: 'text-embedding-3-small', input: 'upstream 429' });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.type).toBe('rate_limit_error');
    t.fake.failNext(500, 1);
    const broken = await post({ model: 'text-embedding-3-small', input: 'upstream 500' });
    expect(broken.statusCode).toBe(502);
    expect(broken.json().error.type).toBe('server_error');
    // nothing was cached from the failures
    const ok = await post({ model: 'text-embedding-3-small', input: 'upstream 500' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['x-cache']).toBe('miss');
  });

  it('answers 504 when the upstream does not answer within UPSTREAM_TIMEOUT_MS', async () => {
    const slow = await startTestServer({ env: { UPSTREAM_TIMEOUT_MS: '100' }, fakeLatencyMs: 1000 });
    try {
      const k = await slow.key('patient');
      // The fake answers after 1 s, with vectors: a 504 can only come from our 100 ms deadline
      // (no wall-clock bound, which a loaded machine breaks).
      const res = await slow.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${k}` }, payload: { model: 'text-embedding-3-small', input: 'slow' } });
      expect(res.statusCode).toBe(504);
      expect(res.json().error.code).toBe('upstream_timeout');
    } finally {
      await slow.close();
    }
  });

  it('refuses, and never caches, vectors shorter than the model declares, on both route families', async () => {
    // a provider serving 8-dim vectors under a name we know has 1536
    const odd = await startTestServer({ fakeModels: { 'text-embedding-3-small': 8 } });
    try {
      const k = await odd.key('odd');
      const ask = (url: string, payload: object) => odd.server.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${k}` }, payload });
      for (let attempt = 0; attempt < 2; attempt++) {
        const a = await ask('/v1/embeddings', { model: 'text-embedding-3-small', input: 'short' });
        expect(a.statusCode).toBe(502);
        expect(a.json().error).toMatchObject({ code: 'upstream_invalid_response', message: expect.stringMatching(/127\.0\.0\.1:\d+" \(openai\) returned invalid embeddings: vector 0 has 8 dimensions, expected 1536/) });
        const b = await ask('/v1/embed', { model: 'text-embedding-3-small', text: 'short', dimensions: 4 });
        expect(b.statusCode).toBe(502);
      }
      await odd.server.embeddings.flush();
      const [{ n }] = await odd.server.db.sql<{ n: string }[]>`SELECT count(*) AS n FROM embeddings`;
      expect(Number(n)).toBe(0);
    } finally {
      await odd.close();
    }
  });

  it('answers unknown routes with an OpenAI-style 404', async () => {
    const res = await t.server.app.inject({ method: 'GET', url: '/v1/nope', headers: { authorization: `Bearer ${key}` } });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.type).toBe('invalid_request_error');
  });
});

describe('models, native routes, stats, health', () => {
  it('lists models in OpenAI’s shape and finds one by id', async () => {
    const list = await t.server.app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${key}` } });
    expect(list.json().object).toBe('list');
    expect(list.json().data.map((m: { id: string }) => m.id)).toContain('text-embedding-3-small');
    const one = await t.server.app.inject({ url: '/v1/models/text-embedding-3-large', headers: { authorization: `Bearer ${key}` } });
    expect(one.json()).toMatchObject({ id: 'text-embedding-3-large', object: 'model', owned_by: 'upstream' });
    const missing = await t.server.app.inject({ url: '/v1/models/nope', headers: { authorization: `Bearer ${key}` } });
    expect(missing.statusCode).toBe(404);
  });

  it('POST /v1/embed says whether the vector came from the cache', async () => {
    const a = await post({ text: 'native one', model: 'text-embedding-3-small' }, key, '/v1/embed');
    const b = await post({ text: 'native one', model: 'text-embedding-3-small' }, key, '/v1/embed');
    expect(a.json()).toMatchObject({ cached: false, dimensions: 1536 });
    expect(b.json().cached).toBe(true);
    expect(b.json().embedding).toEqual(a.json().embedding);
  });

  it('POST /v1/embed/batch flags each input', async () => {
    await post({ text: 'nb1', model: 'text-embedding-3-small' }, key, '/v1/embed');
    const res = await post({ texts: ['nb1', 'nb2'], model: 'text-embedding-3-small', dimensions: 8 }, key, '/v1/embed/batch');
    expect(res.json()).toMatchObject({ cached: [true, false], cache_hits: 1, dimensions: 8 });
    expect(res.json().embeddings).toHaveLength(2);
    const bad = await post({ texts: [], model: 'text-embedding-3-small' }, key, '/v1/embed/batch');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.param).toBe('texts');
  });

  it('GET /v1/stats counts this tenant’s hits, misses, tokens and rows only', async () => {
    const k = await t.key('statsco');
    await post({ model: 'text-embedding-3-small', input: ['s1', 's2'] }, k);
    await post({ model: 'text-embedding-3-small', input: ['s1', 's2', 's3'] }, k);
    const res = await t.server.app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${k}` } });
    expect(res.json()).toMatchObject({ tenant: 'statsco', requests: 2, inputs: 5, hits: 2, misses: 3, stored_rows: 3 });
    expect(res.json().prompt_tokens).toBe(5);
  });

  it('healthz and readyz answer', async () => {
    expect((await t.server.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await t.server.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ postgres: true, upstream: true });
  });
});
