/**
 * Every provider kind, through the real openai SDK against a listening server, twice: as the
 * operator's upstream (declared in a config file, key by ${ENV}) and as a tenant's BYOK
 * provider (admin API, sealed key, SSRF-guarded). Each kind's fake speaks its real wire format.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI, { APIError } from 'openai';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseUrlOf, FAKE_KEY, KIND_CASES, type Fake, type KindCase } from './support/provider-kinds.js';
import { startTestServer, type TestServer } from './support/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const fakes = new Map<string, Fake>();
let t: TestServer;
let opsKey: string;
let byokKey: string;
let badKey: string;

const sdk = (key: string) => new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
const admin = (url: string, payload: object) =>
  t.server.app.inject({ method: 'POST', url: `/admin/v1${url}`, headers: { authorization: `Bearer ${ADMIN}` }, payload });

beforeAll(async () => {
  for (const c of KIND_CASES) fakes.set(c.kind, await c.start());
  const upstreams = KIND_CASES.flatMap((c) => {
    const base = { kind: c.kind, base_url: baseUrlOf(c, fakes.get(c.kind)!), options: c.options };
    return [
      { ...base, name: `ops-${c.kind}`, api_key: '${FAKE_PROVIDER_KEY}', models: [c.fileModel] },
      // Same endpoint, a wrong key, under another public name.
      { ...base, name: `wrong-${c.kind}`, api_key: 'not-the-key', models: [{ id: `wrong-${c.kind}`, model: modelOf(c) }] },
    ];
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'ec-kinds-'));
  const file = path.join(dir, 'embedding-cache.yaml');
  writeFileSync(file, stringify({ upstreams }));
  t = await startTestServer({
    listen: true,
    env: {
      CONFIG_FILE: file,
      FAKE_PROVIDER_KEY: FAKE_KEY,
      // The test server's own fake upstream keeps out of the way of these model ids.
      UPSTREAM_MODELS: 'fake-768',
      UPSTREAM_MAX_BATCH: '100',
      ADMIN_TOKEN: ADMIN,
      MASTER_KEY: 'b'.repeat(64),
      PROVIDER_ALLOWLIST: '127.0.0.1',
      PROVIDER_ALLOW_HTTP: 'true',
    },
  });
  opsKey = await t.key('ops');
  byokKey = await t.key('byok');
  badKey = await t.key('byok-bad');
  for (const c of KIND_CASES) {
    const p = { name: `mine-${c.kind}`, kind: c.kind, base_url: baseUrlOf(c, fakes.get(c.kind)!), models: [c.model], options: c.options };
    expect((await admin('/tenants/byok/providers', { ...p, api_key: FAKE_KEY })).statusCode).toBe(201);
    expect((await admin('/tenants/byok-bad/providers', { ...p, api_key: 'revoked-key-0000' })).statusCode).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await t?.close();
  for (const f of fakes.values()) await f.close();
});

function modelOf(c: KindCase): string {
  return typeof c.fileModel === 'string' ? c.fileModel : ((c.fileModel as { model?: string; id: string }).model ?? (c.fileModel as { id: string }).id);
}

const asArray = (v: Float32Array) => Array.from(v);
let seq = 0;
const fresh = (what: string) => `${what} ${++seq} ${Math.random()}`;

describe.each(KIND_CASES)('$kind', (c) => {
  const fake = () => fakes.get(c.kind)!;

  describe.each([
    ['operator upstream', () => opsKey, () => c.model, () => `wrong-${c.kind}`],
    ['tenant BYOK provider', () => byokKey, () => c.model, () => c.model],
  ] as const)('as %s', (owner, key, model, wrongModel) => {
    const byok = owner === 'tenant BYOK provider';

    it('misses, then hits bit for bit without calling the provider', async () => {
      const text = fresh('hello');
      fake().reset();
      const miss = await sdk(key()).embeddings.create({ model: model(), input: [text], encoding_format: 'float' }).withResponse();
      expect(miss.response.headers.get('x-cache')).toBe('miss');
      expect(miss.data.data[0].embedding).toEqual(asArray(c.full(text)));
      expect(miss.data.usage.prompt_tokens).toBeGreaterThan(0);
      const hit = await sdk(key()).embeddings.create({ model: model(), input: [text] }).withResponse();
      expect(hit.response.headers.get('x-cache')).toBe('hit');
      // The SDK's default is base64: the same float32 bits as the miss.
      expect(hit.data.data[0].embedding).toEqual(miss.data.data[0].embedding);
      expect(fake().batchSizes()).toEqual([1]);
    });

    it('answers dimensions: natively where the model reduces itself, else derived from the full vector', async () => {
      const text = fresh('dims');
      // A BYOK provider names models only: an unknown model's dimensions are not claimed.
      if (byok && (c.kind === 'openai' || c.kind === 'template')) {
        await expect(sdk(key()).embeddings.create({ model: model(), input: text, dimensions: c.dims })).rejects.toMatchObject({ status: 400 });
        return;
      }
      const first = await sdk(key()).embeddings.create({ model: model(), input: text, dimensions: c.dims, encoding_format: 'float' });
      expect(first.data[0].embedding).toEqual(asArray(c.reduced(text)));
      const again = await sdk(key()).embeddings.create({ model: model(), input: text, dimensions: c.dims }).withResponse();
      expect(again.response.headers.get('x-cache')).toBe('hit');
      expect(again.data.data[0].embedding).toEqual(first.data[0].embedding);
    });

    it('splits 250 inputs to the provider’s batch limit and keeps their order', async () => {
      const texts = Array.from({ length: 250 }, (_, i) => fresh(`batch ${i}`));
      fake().reset();
      const res = await sdk(key()).embeddings.create({ model: model(), input: texts, encoding_format: 'float' });
      expect(fake().batchSizes()).toEqual(c.batches);
      expect(res.data.map((d) => d.index)).toEqual(texts.map((_, i) => i));
      for (const i of [0, 99, 100, 249]) expect(res.data[i].embedding).toEqual(asArray(c.full(texts[i])));
    });

    it('keeps the provider’s 429 a 429, with its Retry-After', async () => {
      fake().reset();
      fake().failNext(429, 1, 7);
      const err = await sdk(key()).embeddings.create({ model: model(), input: fresh('limited') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(429);
      expect((err as APIError).headers?.get('retry-after')).toBe(c.retryAfter);
      expect((err as APIError).message).toContain(c.kind);
    });

    it('answers a rejected key with 502 naming the provider, and tells the right person to fix it', async () => {
      const err = await sdk(byok ? badKey : key())
        .embeddings.create({ model: wrongModel(), input: fresh('refused') })
        .catch((e: unknown) => e);
      expect((err as APIError).status).toBe(502);
      const message = (err as APIError).message;
      expect(message).toContain(byok ? `mine-${c.kind}` : `wrong-${c.kind}`);
      expect(message).toContain(`(${c.kind})`);
      expect(message).not.toContain('revoked-key-0000');
      expect(message).not.toContain('not-the-key');
      if (byok) expect(message).not.toMatch(/operator/i);
      else expect(message).toMatch(/Ask the operator/);
    });

    if (c.query) {
      it('maps task_type (and the -search_query alias) to the provider’s input type, each its own cache scope', async () => {
        const text = fresh('query');
        const asQuery = await sdk(key()).embeddings.create({ model: model(), input: text, encoding_format: 'float', task_type: 'search_query' } as never);
        expect(asQuery.data[0].embedding).toEqual(asArray(c.query!(text)));
        const viaAlias = await sdk(key()).embeddings.create({ model: `${model()}-search_query`, input: text, encoding_format: 'float' }).withResponse();
        expect(viaAlias.response.headers.get('x-cache')).toBe('hit');
        const plain = await sdk(key()).embeddings.create({ model: model(), input: text, encoding_format: 'float' }).withResponse();
        expect(plain.response.headers.get('x-cache')).toBe('miss');
        expect(plain.data.data[0].embedding).toEqual(asArray(c.full(text)));
      });
    }
  });
});
