import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.js';
import { retryAfterSeconds as retryAfterOf } from './providers/errors.js';
import { mapOpenAIError } from './upstream.js';

const operator = { kind: 'openai' as const, name: 'api.example.com', owner: 'operator' as const, keyHint: 'UPSTREAM_API_KEY' };
const tenant = { kind: 'openai' as const, name: 'my-openai', owner: 'tenant' as const };
const mapUpstreamError = (err: unknown, who: typeof operator | typeof tenant) => mapOpenAIError(who, err, 'sk-secret');
const answered = (status: number, headers: Record<string, string> = {}) =>
  APIError.generate(status, { error: { message: `upstream says ${status}` } }, undefined, new Headers(headers));

describe('upstream failures keep their meaning as domain errors', () => {
  it.each([
    [429, 'upstream_rate_limited'],
    [500, 'upstream_unreachable'],
    [503, 'upstream_unreachable'],
    [400, 'invalid_input'],
    [404, 'model_not_found'],
    [401, 'upstream_refused'],
    [403, 'upstream_refused'],
    [402, 'upstream_refused'],
  ])('an upstream %i becomes %s naming the provider', (status, kind) => {
    const e = mapUpstreamError(answered(status), operator);
    expect(e).toBeInstanceOf(DomainError);
    expect(e).toMatchObject({ kind, details: { provider: 'api.example.com', upstreamStatus: status, owner: 'operator' } });
    expect(e.message).toContain('api.example.com');
  });

  it('keeps the upstream’s Retry-After on a 429', () => {
    expect(mapUpstreamError(answered(429, { 'retry-after': '12' }), operator).details.retryAfterSeconds).toBe(12);
    expect(retryAfterOf('0.2')).toBe(1);
    expect(retryAfterOf(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30);
    expect(retryAfterOf('soon')).toBeUndefined();
  });

  it('tells a tenant its own key was rejected, and only the operator’s key sends people to the operator', () => {
    const own = mapUpstreamError(answered(401), tenant);
    expect(own.message).toMatch(/Your provider "my-openai" \(openai\) rejected its API key/);
    expect(own.message).not.toMatch(/operator/i);
    expect(mapUpstreamError(answered(401), operator).message).toMatch(/Ask the operator to check UPSTREAM_API_KEY/);
  });

  it('does not relay a 5xx upstream’s own text', () => {
    expect(mapUpstreamError(answered(500), operator).message).not.toContain('upstream says');
  });

  it('separates a timeout (504) from an unreachable provider (502)', () => {
    expect(mapUpstreamError(new APIConnectionTimeoutError(), operator).kind).toBe('upstream_timeout');
    expect(mapUpstreamError(new APIConnectionError({ message: 'ECONNREFUSED' }), operator).kind).toBe('upstream_unreachable');
  });
});

const upstreamAt = async (url: string, apiKey: string) => {
  const { buildProvider } = await import('../providers/factory.js');
  const { leanFetch } = await import('./lean-fetch.js');
  return buildProvider(
    { kind: 'openai', name: 'fake', baseUrl: url, apiKey, models: [{ id: 'text-embedding-3-small' }], options: {} },
    { owner: 'operator', fetch: leanFetch(), timeoutMs: 5000, maxRetries: 0 },
  );
};

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
