/**
 * LangChain's `OpenAIEmbeddings` (@langchain/openai, on the openai SDK's default base64 path)
 * pointed at the proxy through `configuration.baseURL`.
 */
import { OpenAIEmbeddings } from '@langchain/openai';
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MODEL, caught, expectBitIdentical, expectedVector, l2, startLiveServer, texts, type LiveServer } from './support.js';

let t: LiveServer;
let apiKey: string;

type Fields = ConstructorParameters<typeof OpenAIEmbeddings>[0];
const embeddings = (fields: Fields = {}, server: LiveServer = t, key: string = apiKey) =>
  new OpenAIEmbeddings({ model: MODEL, apiKey: key, maxRetries: 0, ...fields, configuration: { baseURL: server.baseURL, ...fields?.configuration } });

beforeAll(async () => {
  t = await startLiveServer();
  apiKey = await t.key('langchain');
});
afterAll(async () => t?.close());
beforeEach(() => t.fake.reset());

describe('LangChain OpenAIEmbeddings: caching', () => {
  it('embedQuery twice: the second is served from the cache, bit-identical', async () => {
    const e = embeddings();
    const first = await e.embedQuery('what colour is the sky');
    expect(t.fake.stats().calls).toBe(1);
    const second = await e.embedQuery('what colour is the sky');
    expect(t.fake.stats().calls).toBe(1);
    const want = expectedVector('what colour is the sky');
    expectBitIdentical(first, want, 'miss');
    expectBitIdentical(second, want, 'hit');
    expect(second).toEqual(first);
  });

  it('encodingFormat float gives the same numbers as the default (base64) path', async () => {
    const viaDefault = await embeddings().embedDocuments(['lc float a', 'lc float b']);
    const viaFloat = await embeddings({ encodingFormat: 'float' }).embedDocuments(['lc float a', 'lc float b']);
    expect(t.fake.stats().calls).toBe(1);
    expect(viaFloat).toEqual(viaDefault);
    expectBitIdentical(viaFloat[1], expectedVector('lc float b'));
  });

  it('embedQuery and embedDocuments share cache rows', async () => {
    const e = embeddings();
    const [doc] = await e.embedDocuments(['shared between query and docs']);
    const query = await e.embedQuery('shared between query and docs');
    expect(t.fake.stats().calls).toBe(1);
    expect(query).toEqual(doc);
  });

  it('keys the cache on the exact text sent: stripNewLines changes what is embedded', async () => {
    const text = 'line one\nline two';
    const stripped = await embeddings().embedQuery(text); // LangChain sends "line one line two"
    expectBitIdentical(stripped, expectedVector('line one line two'));
    const exact = await embeddings({ stripNewLines: false }).embedQuery(text);
    expectBitIdentical(exact, expectedVector(text));
    expect(t.fake.stats().calls).toBe(2);
  });
});

describe('LangChain OpenAIEmbeddings: dimensions', () => {
  it('the dimensions option gives shorter unit vectors, identical on the cached call', async () => {
    const e = embeddings({ dimensions: 128 });
    const docs = ['lc dims one', 'lc dims two'];
    const first = await e.embedDocuments(docs);
    const second = await e.embedDocuments(docs);
    const query = await e.embedQuery('lc dims one');
    expect(t.fake.stats().calls).toBe(1);
    docs.forEach((d, i) => {
      expect(first[i]).toHaveLength(128);
      expect(l2(first[i])).toBeCloseTo(1, 5);
      expectBitIdentical(first[i], expectedVector(d, 128), `miss ${i}`);
      expectBitIdentical(second[i], expectedVector(d, 128), `hit ${i}`);
    });
    expect(query).toEqual(first[0]);
  });
});

describe('LangChain OpenAIEmbeddings: batching', () => {
  it('embedDocuments splits 100 texts by its own batchSize and keeps the order', async () => {
    const docs = texts('lc hundred', 100);
    const e = embeddings({ batchSize: 16 });
    const first = await e.embedDocuments(docs);
    expect(t.fake.stats().batchSizes.sort((a, b) => a - b)).toEqual([4, 16, 16, 16, 16, 16, 16]);
    const second = await e.embedDocuments(docs);
    expect(t.fake.stats().calls).toBe(7);
    expect(first).toHaveLength(100);
    docs.forEach((d, i) => {
      expectBitIdentical(first[i], expectedVector(d), `miss ${i}`);
      expectBitIdentical(second[i], expectedVector(d), `hit ${i}`);
    });
  });

  it('LangChain batches larger than the server’s upstream limit are split again and stay in order', async () => {
    const small = await startLiveServer({ maxBatch: 7 });
    try {
      const e = embeddings({ batchSize: 25, maxConcurrency: 3 }, small, await small.key('lc-small'));
      const docs = texts('lc small batch', 60);
      const out = await e.embedDocuments(docs);
      expect(small.fake.stats().inputs).toBe(60);
      expect(Math.max(...small.fake.stats().batchSizes)).toBeLessThanOrEqual(7);
      docs.forEach((d, i) => expectBitIdentical(out[i], expectedVector(d), `doc ${i}`));
    } finally {
      await small.close();
    }
  });
});

describe('LangChain OpenAIEmbeddings: tenants', () => {
  it('another tenant’s first call is a miss', async () => {
    const a = embeddings();
    const b = embeddings({}, t, await t.key('langchain-other'));
    const va = await a.embedQuery('lc tenant text');
    const vb = await b.embedQuery('lc tenant text');
    expect(t.fake.stats().calls).toBe(2);
    expect(vb).toEqual(va);
    await b.embedQuery('lc tenant text');
    expect(t.fake.stats().calls).toBe(2);
  });
});

describe('LangChain OpenAIEmbeddings: errors', () => {
  it('a bad key raises the SDK’s AuthenticationError (401), tagged MODEL_AUTHENTICATION', async () => {
    const err = await caught(() => embeddings({}, t, 'ec_bogus').embedQuery('x'));
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as APIError).status).toBe(401);
    expect((err as { lc_error_code?: string }).lc_error_code).toBe('MODEL_AUTHENTICATION');
  });

  it('an unknown model raises NotFoundError (404, model_not_found), tagged MODEL_NOT_FOUND', async () => {
    const err = await caught(() => embeddings({ model: 'no-such-model' }).embedDocuments(['x']));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as APIError).code).toBe('model_not_found');
    expect((err as { lc_error_code?: string }).lc_error_code).toBe('MODEL_NOT_FOUND');
  });

  it('an empty query raises BadRequestError (400); no upstream call', async () => {
    const err = await caught(() => embeddings().embedQuery(''));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as APIError).status).toBe(400);
    expect((err as APIError).param).toBe('input');
    expect(t.fake.stats().calls).toBe(0);
  });

  it('embedDocuments([]) makes no request at all', async () => {
    expect(await embeddings().embedDocuments([])).toEqual([]);
  });
});
