/**
 * An upstream that answers 200 with garbage: every bad-vector mode of the fake is a 502 in
 * OpenAI's shape naming the provider, nothing of it is stored, the metric counts it, and the
 * next good answer for the same inputs is computed and cached as usual.
 */
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BAD_VECTOR_MODES, type BadVectorMode } from '../src/testing/fake-upstream.js';
import { startTestServer, type TestServer } from './support/server.js';

let t: TestServer;
let key: string;
let tenantId: number;
let provider: string;
let client: OpenAI;

beforeAll(async () => {
  t = await startTestServer({ listen: true });
  key = await t.key('faults');
  tenantId = (await t.server.db.sql<{ id: number }[]>`SELECT id FROM tenants WHERE name = 'faults'`)[0].id;
  provider = new URL(t.fake.url).host;
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });
});
afterAll(async () => t?.close());
beforeEach(() => t.fake.reset());

const rowsOf = async () => {
  await t.server.embeddings.flush();
  const [{ n }] = await t.server.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM embeddings WHERE tenant_id = ${tenantId}`;
  return n;
};

const invalidCount = async (mode?: string): Promise<number> => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('ec_backend_invalid_responses_total{')) continue;
    if (mode && !line.includes(`fault="${mode}"`)) continue;
    sum += Number(line.split(' ').pop());
  }
  return sum;
};

const raw = (input: string[]) =>
  fetch(`${t.url}/v1/embeddings`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input }),
  });

/** What each mode's refusal is counted as (the fault label). */
const FAULT: Record<BadVectorMode, string> = {
  wrong_length: 'dimension',
  mixed_lengths: 'dimension',
  nan: 'non_finite',
  infinity: 'non_finite',
  zeros: 'zero_norm',
  huge: 'too_large',
  empty: 'dimension',
  strings: 'malformed',
  duplicate_index: 'malformed',
  missing_index: 'malformed',
  null_embedding: 'malformed',
  bad_base64: 'malformed',
  garbage: 'malformed',
  error_body: 'malformed',
};

describe('an upstream answering 200 with invalid vectors', () => {
  it.each(BAD_VECTOR_MODES.map((m) => [m]))('%s: raw fetch gets a 502 naming the provider, nothing is stored, the next good answer is cached', async (mode) => {
    const input = [`${mode} first`, `${mode} second`];
    const before = await rowsOf();
    const counted = await invalidCount(FAULT[mode]);
    t.fake.corruptNext(mode);
    const res = await raw(input);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error).toMatchObject({ type: 'server_error', code: 'upstream_invalid_response', param: null });
    expect(body.error.message).toContain(provider);
    expect(t.fake.stats().corrupted).toBe(1);
    expect(await rowsOf()).toBe(before);
    expect(await invalidCount(FAULT[mode])).toBe(counted + 1);

    const good = await raw(input);
    expect(good.status).toBe(200);
    expect(good.headers.get('x-cache')).toBe('miss');
    const again = await raw(input);
    expect(again.headers.get('x-cache')).toBe('hit');
    expect(t.fake.stats().calls).toBe(2);
    expect(await rowsOf()).toBe(before + 2);
  });

  it.each(BAD_VECTOR_MODES.map((m) => [m]))('%s: the openai SDK sees an APIError 502 (not a 500, not a parse error)', async (mode) => {
    t.fake.corruptNext(mode);
    const err = await client.embeddings.create({ model: 'text-embedding-3-small', input: [`sdk ${mode} a`, `sdk ${mode} b`] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(502);
    expect((err as APIError).code).toBe('upstream_invalid_response');
    expect((err as APIError).message).toContain(provider);
    const ok = await client.embeddings.create({ model: 'text-embedding-3-small', input: [`sdk ${mode} a`, `sdk ${mode} b`] });
    expect(ok.data.map((d) => d.index)).toEqual([0, 1]);
    expect(ok.data[0].embedding).toHaveLength(1536);
  });
});
