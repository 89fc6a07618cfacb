/**
 * The official `openai` Node SDK (v6) pointed at the proxy with nothing changed but baseURL
 * and apiKey: the drop-in promise of the wire contract.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FULL_DIMS, MODEL, caught, expectBitIdentical, expectedVector, l2, startLiveServer, texts, type LiveServer } from './support.js';

let t: LiveServer;
let client: OpenAI;

beforeAll(async () => {
  t = await startLiveServer();
  client = new OpenAI({ baseURL: t.baseURL, apiKey: await t.key('openai-sdk'), maxRetries: 0 });
});
afterAll(async () => t?.close());
beforeEach(() => t.fake.reset());

describe('openai SDK: caching', () => {
  it('serves the second identical call from the cache, bit-identical to the upstream vector', async () => {
    const input = 'the quick brown fox';
    const first = await client.embeddings.create({ model: MODEL, input, encoding_format: 'float' }).withResponse();
    expect(first.response.headers.get('x-cache')).toBe('miss');
    expect(t.fake.stats().calls).toBe(1);
    const second = await client.embeddings.create({ model: MODEL, input, encoding_format: 'float' }).withResponse();
    expect(second.response.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(1);

    const want = expectedVector(input);
    expectBitIdentical(first.data.data[0].embedding, want, 'miss');
    expectBitIdentical(second.data.data[0].embedding, want, 'hit');
    expect(Float32Array.from(second.data.data[0].embedding)).toEqual(Float32Array.from(first.data.data[0].embedding));
    expect(second.data).toMatchObject({ object: 'list', model: MODEL, data: [{ object: 'embedding', index: 0 }] });
    expect(second.data.usage).toEqual(first.data.usage);
    expect(second.data.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('the default path (SDK asks for base64 and decodes) gives the same floats as encoding_format float', async () => {
    const inputs = ['default path one', 'default path two'];
    // miss through the default (base64) path
    const viaDefault = await client.embeddings.create({ model: MODEL, input: inputs }).withResponse();
    expect(viaDefault.response.headers.get('x-cache')).toBe('miss');
    // hit through float, hit again through default
    const viaFloat = await client.embeddings.create({ model: MODEL, input: inputs, encoding_format: 'float' });
    const viaDefaultAgain = await client.embeddings.create({ model: MODEL, input: inputs }).withResponse();
    expect(viaDefaultAgain.response.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(1);
    inputs.forEach((text, i) => {
      const want = expectedVector(text);
      expectBitIdentical(viaDefault.data.data[i].embedding, want, `default[${i}]`);
      expectBitIdentical(viaFloat.data[i].embedding, want, `float[${i}]`);
      expectBitIdentical(viaDefaultAgain.data.data[i].embedding, want, `default again[${i}]`);
      // exactly the same JS numbers, not just the same float32 bits
      expect(viaDefault.data.data[i].embedding).toEqual(viaFloat.data[i].embedding);
    });
  });

  it('explicit encoding_format base64 returns the raw little-endian float32 bytes', async () => {
    const res = await client.embeddings.create({ model: MODEL, input: 'raw base64', encoding_format: 'base64' });
    const b64 = res.data[0].embedding as unknown as string;
    expect(typeof b64).toBe('string');
    const buf = Buffer.from(b64, 'base64');
    const want = expectedVector('raw base64');
    expect(buf.equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
  });

  it('accepts the `user` field without it changing the cache key', async () => {
    const a = await client.embeddings.create({ model: MODEL, input: 'with a user', user: 'user-1' }).withResponse();
    const b = await client.embeddings.create({ model: MODEL, input: 'with a user', user: 'user-2' }).withResponse();
    expect(a.response.headers.get('x-cache')).toBe('miss');
    expect(b.response.headers.get('x-cache')).toBe('hit');
    expectBitIdentical(b.data.data[0].embedding, expectedVector('with a user'));
  });

  it('accepts token-id inputs (one array, and an array of arrays)', async () => {
    const one = await client.embeddings.create({ model: MODEL, input: [11, 22, 33] });
    expectBitIdentical(one.data[0].embedding, expectedVector([11, 22, 33]));
    const many = await client.embeddings.create({ model: MODEL, input: [[11, 22, 33], [44, 55]] });
    expect(many.data).toHaveLength(2);
    expectBitIdentical(many.data[0].embedding, expectedVector([11, 22, 33]));
    expectBitIdentical(many.data[1].embedding, expectedVector([44, 55]));
    expect(t.fake.stats().calls).toBe(2); // the second call computed only [44, 55]
  });
});

describe('openai SDK: dimensions', () => {
  it.each([256, 64, 8])('gives %i-long unit vectors, identical on the cached call and across encodings', async (dims) => {
    const input = `dimensions ${dims}`;
    const miss = await client.embeddings.create({ model: MODEL, input, dimensions: dims }).withResponse();
    const hit = await client.embeddings.create({ model: MODEL, input, dimensions: dims }).withResponse();
    const hitFloat = await client.embeddings.create({ model: MODEL, input, dimensions: dims, encoding_format: 'float' });
    expect(miss.response.headers.get('x-cache')).toBe('miss');
    expect(hit.response.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(1);
    const v = miss.data.data[0].embedding;
    expect(v).toHaveLength(dims);
    expect(l2(v)).toBeCloseTo(1, 5);
    const want = expectedVector(input, dims);
    expectBitIdentical(v, want, 'miss');
    expectBitIdentical(hit.data.data[0].embedding, want, 'hit');
    expectBitIdentical(hitFloat.data[0].embedding, want, 'hit float');
    // and the full vector is still there (a hit, no upstream call)
    const full = await client.embeddings.create({ model: MODEL, input }).withResponse();
    expect(full.response.headers.get('x-cache')).toBe('hit');
    expectBitIdentical(full.data.data[0].embedding, expectedVector(input));
  });

  it('matches what the upstream itself answers for the same dimensions', async () => {
    const input = 'dims vs upstream';
    const proxied = await client.embeddings.create({ model: MODEL, input, dimensions: 100 });
    const direct = new OpenAI({ baseURL: t.fake.url, apiKey: 'upstream-secret', maxRetries: 0 });
    const upstream = await direct.embeddings.create({ model: MODEL, input, dimensions: 100 });
    expectBitIdentical(proxied.data[0].embedding, upstream.data[0].embedding);
  });
});

describe('openai SDK: batching order', () => {
  it('returns 100 inputs in order, then all from the cache', async () => {
    const input = texts('hundred', 100);
    const first = await client.embeddings.create({ model: MODEL, input }).withResponse();
    expect(first.response.headers.get('x-cache')).toBe('miss');
    const second = await client.embeddings.create({ model: MODEL, input }).withResponse();
    expect(second.response.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(1);
    for (const res of [first.data, second.data]) {
      expect(res.data).toHaveLength(100);
      res.data.forEach((d, i) => {
        expect(d.index).toBe(i);
        expectBitIdentical(d.embedding, expectedVector(input[i]), `input ${i}`);
      });
    }
  });

  it('splits past a small upstream batch limit and keeps the order (partial hits too)', async () => {
    const small = await startLiveServer({ maxBatch: 7 });
    try {
      const c = new OpenAI({ baseURL: small.baseURL, apiKey: await small.key('batchy'), maxRetries: 0 });
      const input = texts('small batch', 50);
      // warm every third input first so the big call is a partial hit with gaps
      const warm = input.filter((_, i) => i % 3 === 0);
      await c.embeddings.create({ model: MODEL, input: warm });
      small.fake.reset();
      const res = await c.embeddings.create({ model: MODEL, input }).withResponse();
      expect(res.response.headers.get('x-cache')).toBe('partial');
      const missing = input.length - warm.length;
      expect(small.fake.stats().inputs).toBe(missing);
      expect(Math.max(...small.fake.stats().batchSizes)).toBeLessThanOrEqual(7);
      expect(small.fake.stats().calls).toBe(Math.ceil(missing / 7));
      res.data.data.forEach((d, i) => {
        expect(d.index).toBe(i);
        expectBitIdentical(d.embedding, expectedVector(input[i]), `input ${i}`);
      });
    } finally {
      await small.close();
    }
  });

  it('keeps duplicates within one request apart by position', async () => {
    const input = ['dup a', 'dup b', 'dup a', 'dup c', 'dup b'];
    const res = await client.embeddings.create({ model: MODEL, input });
    expect(t.fake.stats().inputs).toBe(3);
    res.data.forEach((d, i) => expectBitIdentical(d.embedding, expectedVector(input[i]), `input ${i}`));
  });
});

describe('openai SDK: tenants', () => {
  it('a second tenant’s first call is a miss that calls the upstream again', async () => {
    const input = 'shared words, private caches';
    const other = new OpenAI({ baseURL: t.baseURL, apiKey: await t.key('openai-sdk-other'), maxRetries: 0 });
    const a = await client.embeddings.create({ model: MODEL, input }).withResponse();
    const b = await other.embeddings.create({ model: MODEL, input }).withResponse();
    expect(a.response.headers.get('x-cache')).toBe('miss');
    expect(b.response.headers.get('x-cache')).toBe('miss');
    expect(t.fake.stats().calls).toBe(2);
    const b2 = await other.embeddings.create({ model: MODEL, input }).withResponse();
    expect(b2.response.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(2);
    expectBitIdentical(b2.data.data[0].embedding, a.data.data[0].embedding);
  });
});

describe('openai SDK: models', () => {
  it('lists and retrieves models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain(MODEL);
    const m = await client.models.retrieve(MODEL);
    expect(m).toMatchObject({ id: MODEL, object: 'model' });
    const err = await caught(() => client.models.retrieve('no-such-model'));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('openai SDK: errors and headers', () => {
  it('a bad key raises AuthenticationError (401)', async () => {
    const bad = new OpenAI({ baseURL: t.baseURL, apiKey: 'ec_not-a-real-key', maxRetries: 0 });
    const err = await caught(() => bad.embeddings.create({ model: MODEL, input: 'x' }));
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const e = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(e.status).toBe(401);
    expect(e.code).toBe('invalid_api_key');
    expect(e.requestID).toBeTruthy();
    expect(t.fake.stats().calls).toBe(0);
  });

  it('an unknown model raises NotFoundError (404, model_not_found)', async () => {
    const err = await caught(() => client.embeddings.create({ model: 'no-such-model', input: 'x' }));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const e = err as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.status).toBe(404);
    expect(e.code).toBe('model_not_found');
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toContain('no-such-model');
  });

  it.each([
    ['an empty string', ''],
    ['an empty array', [] as string[]],
    ['an empty string in an array', ['ok', '']],
  ])('%s raises BadRequestError (400, param input)', async (_name, input) => {
    const err = await caught(() => client.embeddings.create({ model: MODEL, input }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.type).toBe('invalid_request_error');
    expect(e.param).toBe('input');
    expect(t.fake.stats().calls).toBe(0);
  });

  it('too many dimensions raises BadRequestError (400, param dimensions)', async () => {
    const err = await caught(() => client.embeddings.create({ model: MODEL, input: 'x', dimensions: FULL_DIMS + 1 }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('dimensions');
  });

  it('surfaces x-request-id as _request_id and via withResponse, and keeps a caller’s own id', async () => {
    const res = await client.embeddings.create({ model: MODEL, input: 'request id' });
    expect(res._request_id).toMatch(/^[A-Za-z0-9._:-]+$/);
    const { response, request_id } = await client.embeddings.create({ model: MODEL, input: 'request id' }).withResponse();
    expect(request_id).toBe(response.headers.get('x-request-id'));
    expect(request_id).toBeTruthy();
    expect(request_id).not.toBe(res._request_id);
    const mine = await client.embeddings.create({ model: MODEL, input: 'request id' }, { headers: { 'x-request-id': 'caller-chosen-42' } });
    expect(mine._request_id).toBe('caller-chosen-42');
  });

  it('with the SDK’s own retries on, transient upstream 429 and 5xx are retried and succeed', async () => {
    const retrying = new OpenAI({ baseURL: t.baseURL, apiKey: await t.key('openai-sdk-retry'), maxRetries: 2 });
    t.fake.failNext(429, 1);
    const started = Date.now();
    const res = await retrying.embeddings.create({ model: MODEL, input: 'retry me' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expectBitIdentical(res.data[0].embedding, expectedVector('retry me'));
    expect(t.fake.stats().failures).toBe(1);
    // an upstream 5xx reaches the client as a 502, which the SDK also retries
    t.fake.failNext(500, 1);
    const again = await retrying.embeddings.create({ model: MODEL, input: 'retry me too' });
    expectBitIdentical(again.data[0].embedding, expectedVector('retry me too'));
    expect(t.fake.stats().failures).toBe(2);
  });
});
