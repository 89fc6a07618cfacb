/**
 * One case per provider kind for the integration tests: its fake, how the operator's config
 * file and a tenant's BYOK provider name it, and what the vectors must be.
 */
import { l2Normalise } from '../../src/core/dimensions.js';
import { fakeVector, startFakeUpstream } from '../../src/testing/fake-upstream.js';
import { startFakeAzure } from '../../src/testing/fakes/azure-openai.js';
import { startFakeCohere } from '../../src/testing/fakes/cohere.js';
import { startFakeGemini } from '../../src/testing/fakes/gemini.js';
import { providerVector, type FakeProvider } from '../../src/testing/fakes/harness.js';
import { startFakeTemplate } from '../../src/testing/fakes/template.js';
import { startFakeVoyage } from '../../src/testing/fakes/voyage.js';
import type { ProviderKind } from '../../src/providers/factory.js';

export const FAKE_KEY = 'fake-provider-key-0123456789';

/** The pieces of a fake the tests use, whichever fake it is. */
export interface Fake {
  url: string;
  batchSizes(): number[];
  calls(): { path: string; status: number; body: unknown }[];
  reset(): void;
  failNext(status: number, count: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

export interface KindCase {
  kind: ProviderKind;
  start(): Promise<Fake>;
  /** The public model id and its entry in the config file. */
  model: string;
  fileModel: unknown;
  /** The BYOK provider's options (the config file's are the same). */
  options: Record<string, unknown>;
  /** The full vector the provider gives for `text` with the default input type. */
  full(text: string): Float32Array;
  /** A `dimensions` to ask for, and the vector that must come back. */
  dims: number;
  reduced(text: string): Float32Array;
  /** Call sizes for 250 inputs with UPSTREAM_MAX_BATCH=100. */
  batches: number[];
  /** The Retry-After the client must see after the fake's 429. */
  retryAfter: string;
  /** Input types: the vector for task_type search_query, where the kind maps it. */
  query?(text: string): Float32Array;
  tokensEstimated?: boolean;
}

const fromHarness = (f: FakeProvider): Fake => ({
  url: f.url,
  batchSizes: f.batchSizes,
  calls: f.calls,
  reset: f.reset,
  failNext: (status, count, retryAfterSeconds) => f.failNext(status, count, { retryAfterSeconds }),
  close: f.close,
});

export const KIND_CASES: KindCase[] = [
  {
    kind: 'openai',
    async start() {
      const f = await startFakeUpstream({ apiKey: FAKE_KEY, maxBatch: 100, models: { 'oai-embed': 512 } });
      return {
        url: f.url,
        batchSizes: () => f.stats().batchSizes,
        calls: () => [],
        reset: f.reset,
        // This fake answers its 429s with Retry-After: 0.
        failNext: (status, count) => f.failNext(status, count),
        close: f.close,
      };
    },
    model: 'oai-embed',
    fileModel: { id: 'oai-embed', dimensions: 512, dimensions_method: 'truncate' },
    options: {},
    full: (t) => fakeVector('oai-embed', t, 512),
    dims: 128,
    // Derived here (truncate + L2) from the stored full vector.
    reduced: (t) => l2Normalise(fakeVector('oai-embed', t, 512), 128),
    batches: [100, 100, 50],
    // (this fake sends 0; the server never tells a client to retry after 0 s)
    retryAfter: '1',
  },
  {
    kind: 'azure-openai',
    start: async () => fromHarness(await startFakeAzure({ apiKey: FAKE_KEY, deployments: { 'emb-small': { model: 'text-embedding-3-small', dimensions: 1536 } } })),
    // The public OpenAI name, served by an Azure deployment of another name.
    model: 'text-embedding-3-small',
    fileModel: { id: 'text-embedding-3-small', model: 'emb-small' },
    options: { api_version: '2024-10-21', deployment: 'emb-small' },
    full: (t) => fakeVector('text-embedding-3-small', t, 1536),
    dims: 256,
    reduced: (t) => l2Normalise(fakeVector('text-embedding-3-small', t, 1536), 256),
    batches: [100, 100, 50],
    retryAfter: '7',
  },
  {
    kind: 'cohere',
    start: async () => fromHarness(await startFakeCohere({ apiKey: FAKE_KEY })),
    model: 'embed-v4.0',
    fileModel: 'embed-v4.0',
    options: {},
    full: (t) => providerVector('embed-v4.0', t, 1536, { inputType: 'search_document' }),
    dims: 256,
    // Reduced by Cohere itself (output_dimension): not what truncating would give.
    reduced: (t) => providerVector('embed-v4.0', t, 256, { inputType: 'search_document', reducedFrom: 1536 }),
    // Cohere's own limit (96) is below the operator's 100.
    batches: [96, 96, 58],
    retryAfter: '7',
    query: (t) => providerVector('embed-v4.0', t, 1536, { inputType: 'search_query' }),
  },
  {
    kind: 'voyage',
    start: async () => fromHarness(await startFakeVoyage({ apiKey: FAKE_KEY })),
    model: 'voyage-3.5',
    fileModel: 'voyage-3.5',
    options: {},
    // No task_type: no input_type, Voyage's own default.
    full: (t) => providerVector('voyage-3.5', t, 1024),
    dims: 256,
    reduced: (t) => providerVector('voyage-3.5', t, 256, { reducedFrom: 1024 }),
    batches: [100, 100, 50],
    retryAfter: '7',
    query: (t) => providerVector('voyage-3.5', t, 1024, { inputType: 'query' }),
  },
  {
    kind: 'gemini',
    start: async () => fromHarness(await startFakeGemini({ apiKey: FAKE_KEY })),
    model: 'gemini-embedding-001',
    fileModel: 'gemini-embedding-001',
    options: {},
    full: (t) => providerVector('gemini-embedding-001', t, 3072),
    dims: 256,
    reduced: (t) => providerVector('gemini-embedding-001', t, 256, { reducedFrom: 3072 }),
    batches: [100, 100, 50],
    // Gemini says it in the body (RetryInfo "7s"), not in a header: the client gets a header.
    retryAfter: '7',
    query: (t) => providerVector('gemini-embedding-001', t, 3072, { inputType: 'RETRIEVAL_QUERY' }),
    tokensEstimated: true,
  },
  {
    kind: 'template',
    start: async () => fromHarness(await startFakeTemplate({ apiKey: FAKE_KEY, maxBatch: 32 })),
    model: 'house-embed',
    fileModel: { id: 'house-embed', dimensions: 384, dimensions_method: 'truncate' },
    options: {
      request: { model: '{{model}}', texts: '{{inputs}}' },
      vectors_path: '$.result.vectors',
      tokens_path: '$.usage.tokens',
      auth_header: 'x-api-key',
      auth_format: 'Key {{key}}',
      max_batch: 32,
    },
    full: (t) => providerVector('house-embed', t, 384),
    dims: 96,
    reduced: (t) => l2Normalise(providerVector('house-embed', t, 384), 96),
    batches: [32, 32, 32, 32, 32, 32, 32, 26],
    retryAfter: '7',
  },
];

/** The fake's URL as the kind's base URL (template: the full endpoint). */
export const baseUrlOf = (c: KindCase, f: Fake): string => (c.kind === 'template' ? `${f.url}/embed` : f.url);
