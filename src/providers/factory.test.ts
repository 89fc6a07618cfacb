import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leanFetch } from '../backends/lean-fetch.js';
import { checkOptions } from '../backends/providers/options.js';
import { cleanProviderMessage } from '../backends/providers/errors.js';
import { fillTemplate, templateIsBatch } from '../backends/providers/template.js';
import { DomainError } from '../core/errors.js';
import { startFakeAzure } from '../testing/fakes/azure-openai.js';
import { startFakeCohere } from '../testing/fakes/cohere.js';
import { fakeVector } from '../testing/fake-upstream.js';
import { startFakeGemini } from '../testing/fakes/gemini.js';
import type { FakeProvider } from '../testing/fakes/harness.js';
import { startFakeVoyage } from '../testing/fakes/voyage.js';
import { buildProvider, type BuildContext, type ProviderDescription } from './factory.js';

const KEY = 'unit-test-provider-key-42';
const ctx = (over: Partial<BuildContext> = {}): BuildContext => ({ owner: 'operator', fetch: leanFetch(), timeoutMs: 2000, maxRetries: 0, ...over });
const desc = (over: Partial<ProviderDescription>): ProviderDescription => ({ kind: 'openai', name: 'p', apiKey: KEY, models: [{ id: 'm' }], options: {}, ...over });
const specOf = (d: ProviderDescription) => buildProvider(d, ctx()).models()[0];

describe('cache scope of a provider', () => {
  it('keeps the scope rows cached before kinds existed carry for OpenAI-compatible upstreams', () => {
    expect(specOf(desc({ baseUrl: 'https://api.openai.com/v1', models: [{ id: 'text-embedding-3-small' }] }))).toMatchObject({
      cacheModel: 'text-embedding-3-small',
      version: 'api:api.openai.com',
    });
  });

  it('names kind, host and path (never the key); two endpoints of one kind never share rows', () => {
    const a = specOf(desc({ kind: 'cohere', baseUrl: 'https://api.cohere.com' }));
    const b = specOf(desc({ kind: 'cohere', baseUrl: 'https://cohere.example.net/proxy' }));
    expect(a.version).toBe('cohere:api.cohere.com');
    expect(b.version).toBe('cohere:cohere.example.net/proxy');
    expect(JSON.stringify([a, b])).not.toContain(KEY);
  });

  it('shares rows only where the operator says so: the same cache_scope, the provider’s model version appended', () => {
    const a = specOf(desc({ kind: 'azure-openai', baseUrl: 'https://east.openai.azure.com', cacheScope: 'emb-3-small', models: [{ id: 'x', model: 'dep' }] }));
    const b = specOf(desc({ kind: 'azure-openai', baseUrl: 'https://west.openai.azure.com', cacheScope: 'emb-3-small', models: [{ id: 'y', model: 'dep' }] }));
    expect([a.cacheModel, a.version]).toEqual([b.cacheModel, b.version]);
    expect(specOf(desc({ kind: 'voyage', models: [{ id: 'voyage-3.5', version: '2025-05' }] })).version).toBe('voyage:api.voyageai.com/v1:2025-05');
  });

  it('gives input-type kinds a -search_query (etc.) alias per model, and known models their native dimensions', () => {
    const ids = buildProvider(desc({ kind: 'cohere', models: [{ id: 'embed-v4.0' }] }), ctx()).models().map((m) => [m.id, m.defaultTaskType, m.dimensionsMethod]);
    expect(ids).toContainEqual(['embed-v4.0', 'search_document', 'native']);
    expect(ids).toContainEqual(['embed-v4.0-search_query', 'search_query', 'native']);
    expect(buildProvider(desc({ models: [{ id: 'text-embedding-3-small' }] }), ctx()).models()).toHaveLength(1);
  });
});

describe('Azure OpenAI routes', () => {
  it('calls the deployments route with api-version, and the v1 route with the deployment as model, the key in api-key only', async () => {
    const fake = await startFakeAzure({ apiKey: KEY, deployments: { dep: { model: 'text-embedding-3-small', dimensions: 1536 } } });
    try {
      for (const api_version of ['2024-10-21', 'v1']) {
        const p = buildProvider(desc({ kind: 'azure-openai', baseUrl: fake.url, models: [{ id: 'text-embedding-3-small', model: 'dep' }], options: { api_version } }), ctx());
        const r = await p.embed('text-embedding-3-small', [{ kind: 'text', text: 'hi' }]);
        expect(Array.from(r.vectors[0])).toEqual(Array.from(fakeVector('text-embedding-3-small', 'hi', 1536)));
      }
      expect(fake.calls().map((c) => [c.path, c.status])).toEqual([
        ['/openai/deployments/dep/embeddings', 200],
        ['/openai/v1/embeddings', 200],
      ]);
    } finally {
      await fake.close();
    }
  });
});

describe('kind options', () => {
  it('names each bad option with its path and what is allowed', () => {
    expect(checkOptions('template', { vectors_path: 'data.embedding', request: '{not json' }, 'https://x.example/embed').problems).toEqual([
      { path: 'options.request', message: expect.stringContaining('JSON request template') },
      { path: 'options.vectors_path', message: expect.stringContaining('JSONPath') },
    ]);
    expect(checkOptions('cohere', { deployment: 'x' }, undefined).problems).toEqual([{ path: 'options.deployment', message: 'is not an option of kind cohere (it takes none)' }]);
    expect(checkOptions('azure-openai', {}, undefined).problems).toEqual([{ path: 'base_url', message: 'is required for kind azure-openai' }]);
    expect(() => buildProvider(desc({ kind: 'azure-openai', baseUrl: 'https://r.openai.azure.com', options: { api_version: 'latest' } }), ctx())).toThrow(DomainError);
  });

  it('fills a request template with values, never by splicing text', () => {
    const t = { model: '{{model}}', texts: '{{inputs}}', meta: ['x {{input}} y'] };
    expect(templateIsBatch(t)).toBe(true);
    expect(templateIsBatch({ q: '{{input}}' })).toBe(false);
    expect(fillTemplate({ q: '{{input}}', m: '{{model}}' }, { inputs: ['say "hi"\n'], model: 'mm' })).toEqual({ q: 'say "hi"\n', m: 'mm' });
    expect(fillTemplate(t, { inputs: ['a', 'b'], model: 'mm' })).toEqual({ model: 'mm', texts: ['a', 'b'], meta: ['x a y'] });
  });
});

describe('provider errors, as each provider words them', () => {
  let cohere: FakeProvider;
  let gemini: FakeProvider;
  let voyage: FakeProvider;
  beforeAll(async () => {
    [cohere, gemini, voyage] = await Promise.all([
      startFakeCohere({ apiKey: KEY }),
      startFakeGemini({ apiKey: KEY }),
      startFakeVoyage({ apiKey: KEY }),
    ]);
  });
  afterAll(async () => Promise.all([cohere, gemini, voyage].map((f) => f.close())));

  const text = [{ kind: 'text' as const, text: 'hello' }];
  const fail = (p: Promise<unknown>) => p.then(() => expect.unreachable('should fail'), (e: unknown) => e as DomainError);

  it('maps a rejected key to upstream_refused naming the provider, worded for who owns it', async () => {
    const g = buildProvider(desc({ kind: 'gemini', name: 'g', baseUrl: gemini.url, apiKey: 'wrong', models: [{ id: 'gemini-embedding-001' }] }), ctx({ owner: 'tenant' }));
    // Gemini says "bad key" with a 400 (ErrorInfo API_KEY_INVALID), not a 401.
    const e = await fail(g.embed('gemini-embedding-001', text));
    expect(e).toMatchObject({ kind: 'upstream_refused', details: { provider: 'g', owner: 'tenant', upstreamStatus: 400 } });
    expect(e.message).toContain('Your provider "g" (gemini)');
    const c = buildProvider(desc({ kind: 'cohere', name: 'c', baseUrl: cohere.url, apiKey: 'wrong', models: [{ id: 'embed-v4.0' }] }), ctx({ keyHint: 'upstreams[0].api_key' }));
    expect((await fail(c.embed('embed-v4.0', text))).message).toContain('Ask the operator to check upstreams[0].api_key');
  });

  it('keeps the provider’s retry delay, from a header or from Google’s RetryInfo', async () => {
    const g = buildProvider(desc({ kind: 'gemini', baseUrl: gemini.url, models: [{ id: 'gemini-embedding-001' }] }), ctx());
    gemini.failNext(429, 1, { retryAfterSeconds: 12 });
    expect(await fail(g.embed('gemini-embedding-001', text))).toMatchObject({ kind: 'upstream_rate_limited', details: { retryAfterSeconds: 12 } });
    const v = buildProvider(desc({ kind: 'voyage', baseUrl: voyage.url, models: [{ id: 'voyage-3.5' }] }), ctx());
    voyage.failNext(429, 1, { retryAfterSeconds: 9 });
    expect(await fail(v.embed('voyage-3.5', text))).toMatchObject({ kind: 'upstream_rate_limited', details: { retryAfterSeconds: 9 } });
  });

  it('retries a 5xx within max_retries, then reports upstream_unreachable; a dead port too', async () => {
    const c = (retries: number) => buildProvider(desc({ kind: 'cohere', baseUrl: cohere.url, models: [{ id: 'embed-v4.0' }] }), ctx({ maxRetries: retries }));
    cohere.reset();
    cohere.failNext(503, 1);
    expect((await c(1).embed('embed-v4.0', text)).vectors).toHaveLength(1);
    expect(cohere.calls().map((x) => x.status)).toEqual([503, 200]);
    cohere.failNext(500, 1);
    expect(await fail(c(0).embed('embed-v4.0', text))).toMatchObject({ kind: 'upstream_unreachable', details: { upstreamStatus: 500 } });
    const dead = buildProvider(desc({ kind: 'cohere', baseUrl: 'http://127.0.0.1:9', models: [{ id: 'embed-v4.0' }] }), ctx());
    expect(await fail(dead.embed('embed-v4.0', text))).toMatchObject({ kind: 'upstream_unreachable' });
  });

  it('answers upstream_timeout when the provider is slower than the deadline', async () => {
    const v = buildProvider(desc({ kind: 'voyage', baseUrl: voyage.url, models: [{ id: 'voyage-3.5' }] }), ctx({ timeoutMs: 50 }));
    voyage.setLatency(1000);
    try {
      expect(await fail(v.embed('voyage-3.5', text))).toMatchObject({ kind: 'upstream_timeout' });
    } finally {
      voyage.setLatency(0);
    }
  });

  it('refuses a malformed body as upstream_invalid_response, and a wrong vector count', async () => {
    const c = buildProvider(desc({ kind: 'cohere', baseUrl: cohere.url, models: [{ id: 'embed-v4.0' }] }), ctx());
    cohere.corruptNext(() => ({ embeddings: { int8: [[1]] } }));
    expect(await fail(c.embed('embed-v4.0', text))).toMatchObject({ kind: 'upstream_invalid_response' });
    cohere.corruptNext((b) => ({ ...(b as object), embeddings: { float: [] } }));
    expect((await fail(c.embed('embed-v4.0', text))).message).toContain('0 vectors for 1 inputs');
  });

  it('never echoes the key a provider repeats in its error, nor control characters, nor pages of text', () => {
    expect(cleanProviderMessage(`Incorrect API key provided: ${KEY}.\n\u0000`, KEY)).toBe('Incorrect API key provided: [key].');
    expect(cleanProviderMessage('x'.repeat(1000), KEY)).toHaveLength(301);
  });

  it('estimates and marks tokens where the provider reports none (Gemini)', async () => {
    const g = buildProvider(desc({ kind: 'gemini', baseUrl: gemini.url, models: [{ id: 'gemini-embedding-001' }] }), ctx());
    expect(await g.embed('gemini-embedding-001', text)).toMatchObject({ tokens: [2], tokensEstimated: true });
    const c = buildProvider(desc({ kind: 'cohere', baseUrl: cohere.url, models: [{ id: 'embed-v4.0' }] }), ctx());
    expect((await c.embed('embed-v4.0', text)).tokensEstimated).toBeUndefined();
  });

  it('refuses token-id inputs for kinds that take text only', async () => {
    const c = buildProvider(desc({ kind: 'cohere', baseUrl: cohere.url, models: [{ id: 'embed-v4.0' }] }), ctx());
    expect(await fail(c.embed('embed-v4.0', [{ kind: 'tokens', ids: [1, 2] }]))).toMatchObject({ kind: 'invalid_input', param: 'input' });
  });
});
