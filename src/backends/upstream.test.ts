import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.js';
import { buildProvider } from '../providers/factory.js';
import { leanFetch } from './lean-fetch.js';
import { retryAfterSeconds as retryAfterOf } from './providers/errors.js';

/** A loopback upstream that answers each request with the next scripted answer (or never, for `hang`). */
async function scriptedUpstream() {
  const script: ({ status: number; headers?: Record<string, string>; body: string } | 'hang')[] = [];
  const seen: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      const next = script.shift() ?? { status: 500, body: '{"error":{"message":"nothing scripted"}}' };
      if (next === 'hang') return;
      res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
      res.end(next.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    url,
    seen,
    answer: (status: number, headers: Record<string, string> = {}, body = JSON.stringify({ error: { message: `upstream says ${status} to sk-secret` } })) =>
      void script.push({ status, headers, body }),
    hang: () => void script.push('hang'),
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const operator = { owner: 'operator' as const, keyHint: 'UPSTREAM_API_KEY' };
const providerAt = (url: string, over: { owner?: 'operator' | 'tenant'; name?: string; timeoutMs?: number; maxRetries?: number; apiKey?: string } = {}) =>
  buildProvider(
    { kind: 'openai', name: over.name ?? 'api.example.com', baseUrl: url, apiKey: over.apiKey ?? 'sk-secret', models: [{ id: 'text-embedding-3-small' }], options: {} },
    { ...operator, owner: over.owner ?? 'operator', fetch: leanFetch(), timeoutMs: over.timeoutMs ?? 5000, maxRetries: over.maxRetries ?? 0 },
  );
const fail = (p: Promise<unknown>) => p.then(() => expect.unreachable('should fail'), (e: unknown) => e as DomainError);
const one = [{ kind: 'text' as const, text: 'x' }];
const vectorBody = JSON.stringify({ data: [{ index: 0, embedding: Buffer.from(new Float32Array([0.6, 0.8]).buffer).toString('base64') }], usage: { prompt_tokens: 1 } });

describe('upstream failures keep their meaning as domain errors', () => {
  let up: Awaited<ReturnType<typeof scriptedUpstream>>;
  beforeAll(async () => {
    up = await scriptedUpstream();
  });
  afterAll(() => up.close());

  it.each([
    [429, 'upstream_rate_limited'],
    [500, 'upstream_unreachable'],
    [503, 'upstream_unreachable'],
    [400, 'invalid_input'],
    [404, 'model_not_found'],
    [401, 'upstream_refused'],
    [403, 'upstream_refused'],
    [402, 'upstream_refused'],
  ])('an upstream %i becomes %s naming the provider', async (status, kind) => {
    up.answer(status);
    const e = await fail(providerAt(up.url).embed('text-embedding-3-small', one));
    expect(e).toBeInstanceOf(DomainError);
    expect(e).toMatchObject({ kind, details: { provider: 'api.example.com', upstreamStatus: status, owner: 'operator' } });
    expect(e.message).toContain('api.example.com');
    expect(e.message).not.toContain('sk-secret');
  });

  it('relays what a 4xx upstream says (its key redacted), whichever way it words the error', async () => {
    up.answer(400);
    expect((await fail(providerAt(up.url).embed('text-embedding-3-small', one))).message).toContain('upstream says 400 to [key]');
    up.answer(400, {}, JSON.stringify({ error: 'input too long' }));
    expect((await fail(providerAt(up.url).embed('text-embedding-3-small', one))).message).toContain('input too long');
  });

  it('keeps the upstream’s Retry-After on a 429', async () => {
    up.answer(429, { 'retry-after': '12' });
    expect((await fail(providerAt(up.url).embed('text-embedding-3-small', one))).details.retryAfterSeconds).toBe(12);
    expect(retryAfterOf('0.2')).toBe(1);
    expect(retryAfterOf(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30);
    expect(retryAfterOf('soon')).toBeUndefined();
  });

  it('tells a tenant its own key was rejected, and only the operator’s key sends people to the operator', async () => {
    up.answer(401);
    const own = await fail(providerAt(up.url, { owner: 'tenant', name: 'my-openai' }).embed('text-embedding-3-small', one));
    expect(own.message).toMatch(/Your provider "my-openai" \(openai\) rejected its API key/);
    expect(own.message).not.toMatch(/operator/i);
    up.answer(401);
    expect((await fail(providerAt(up.url).embed('text-embedding-3-small', one))).message).toMatch(/Ask the operator to check UPSTREAM_API_KEY/);
  });

  it('does not relay a 5xx upstream’s own text', async () => {
    up.answer(500);
    expect((await fail(providerAt(up.url).embed('text-embedding-3-small', one))).message).not.toContain('upstream says');
  });

  it('separates a timeout (504) from an unreachable provider (502)', async () => {
    up.hang();
    expect(await fail(providerAt(up.url, { timeoutMs: 200 }).embed('text-embedding-3-small', one))).toMatchObject({ kind: 'upstream_timeout' });
    const closed = await scriptedUpstream();
    await closed.close();
    expect(await fail(providerAt(closed.url).embed('text-embedding-3-small', one))).toMatchObject({ kind: 'upstream_unreachable' });
  });

  it('retries a 5xx and a 429 that asks for a short wait, up to maxRetries, and not a 400', async () => {
    up.seen.length = 0;
    up.answer(503);
    up.answer(429, { 'retry-after': '1' });
    up.answer(200, {}, vectorBody);
    const r = await providerAt(up.url, { maxRetries: 2 }).embed('text-embedding-3-small', one);
    expect(Array.from(r.vectors[0])).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(up.seen).toHaveLength(3);
    up.seen.length = 0;
    up.answer(400);
    await fail(providerAt(up.url, { maxRetries: 2 }).embed('text-embedding-3-small', one));
    expect(up.seen).toHaveLength(1);
  });

  it('sends what an OpenAI-compatible server expects: POST {base}/embeddings, the key as a bearer token (none when keyless), base64 asked for', async () => {
    up.seen.length = 0;
    up.answer(200, {}, vectorBody);
    up.answer(200, {}, vectorBody);
    await providerAt(up.url).embed('text-embedding-3-small', one);
    await providerAt(up.url, { apiKey: '' }).embed('text-embedding-3-small', one);
    expect(up.seen.map((s) => s.url)).toEqual(['/v1/embeddings', '/v1/embeddings']);
    expect(up.seen[0].headers).toMatchObject({ authorization: 'Bearer sk-secret', 'content-type': 'application/json' });
    expect(up.seen[1].headers.authorization).toBeUndefined();
    expect(JSON.parse(up.seen[0].body)).toEqual({ model: 'text-embedding-3-small', input: ['x'], encoding_format: 'base64' });
  });
});

const upstreamAt = async (url: string, apiKey: string) => providerAt(url, { name: 'fake', apiKey });

describe('a provider’s ready() reflects recent calls', () => {
  it('turns false after 3 consecutive failed calls in the last minute, true again after a success or once they are old', async () => {
    const { startFakeUpstream } = await import('../testing/fake-upstream.js');
    const fake = await startFakeUpstream();
    let now = 1_000_000;
    const up = await upstreamAt(fake.url, 'k');
    up.now = () => now;
    const call = () => up.embed('text-embedding-3-small', [{ kind: 'text', text: 'x' }]);
    try {
      expect(await up.ready()).toBe(true);
      fake.failNext(500, 3);
      for (let i = 0; i < 2; i++) await expect(call()).rejects.toMatchObject({ kind: 'upstream_unreachable' });
      expect(await up.ready()).toBe(true);
      await expect(call()).rejects.toMatchObject({ kind: 'upstream_unreachable' });
      expect(await up.ready()).toBe(false);
      now += 60_001;
      expect(await up.ready()).toBe(true);
      now -= 60_001;
      await call();
      expect(await up.ready()).toBe(true);
      // The caller's own mistakes (a 400) say nothing about the provider's health.
      fake.failNext(400, 3);
      for (let i = 0; i < 3; i++) await expect(call()).rejects.toMatchObject({ kind: 'invalid_input' });
      expect(await up.ready()).toBe(true);
    } finally {
      await fake.close();
    }
  });
});

describe('an upstream without a key', () => {
  it('is served (UPSTREAM_BASE_URL alone: a local OpenAI-compatible server needs none)', async () => {
    const { startFakeUpstream } = await import('../testing/fake-upstream.js');
    const fake = await startFakeUpstream();
    try {
      const up = await upstreamAt(fake.url, '');
      expect((await up.embed('text-embedding-3-small', [{ kind: 'text', text: 'x' }])).vectors).toHaveLength(1);
    } finally {
      await fake.close();
    }
  });
});
