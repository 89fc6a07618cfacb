import { PassThrough } from 'node:stream';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeVector } from '../src/testing/fake-upstream.js';
import { startTestServer, type TestServer } from './support/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const MASTER_KEY = 'a'.repeat(64);
const PROVIDER_KEY = 'sk-tenant-provider-secret-key-XYZ9';

let t: TestServer;
const logs: string[] = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => logs.push(c.toString()));
  t = await startTestServer({
    env: { ADMIN_TOKEN: ADMIN, MASTER_KEY, PROVIDER_ALLOWLIST: '127.0.0.1', PROVIDER_ALLOW_HTTP: 'true' },
    logStream: stream,
  });
});
afterAll(async () => t?.close());

const admin = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown, token = ADMIN) =>
  t.server.app.inject({ method, url: `/admin/v1${url}`, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload: payload as object } : {}) });
const embed = (key: string, body: Record<string, unknown>) =>
  t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: body });

async function tenantWithKey(name: string, tier: string): Promise<string> {
  expect((await admin('POST', '/tenants', { name, tier })).statusCode).toBe(201);
  const res = await admin('POST', `/tenants/${name}/keys`, { name: 'test' });
  expect(res.statusCode).toBe(201);
  return res.json().key;
}

describe('admin API', () => {
  it('refuses requests without the admin token', async () => {
    expect((await t.server.app.inject({ url: '/admin/v1/tenants' })).statusCode).toBe(401);
    expect((await admin('GET', '/tenants', undefined, 'wrong-token-wrong-token')).statusCode).toBe(401);
  });

  it('creates, shows, updates and lists tenants; refuses duplicates and bad names', async () => {
    expect((await admin('POST', '/tenants', { name: 'initech', tier: 'free' })).json()).toMatchObject({ name: 'initech', tier: 'free', share_public: false });
    expect((await admin('POST', '/tenants', { name: 'initech' })).statusCode).toBe(409);
    expect((await admin('POST', '/tenants', { name: 'bad name!' })).json().error.param).toBe('name');
    expect((await admin('PATCH', '/tenants/initech', { tier: 'pro', share_public: true })).json()).toMatchObject({ tier: 'pro', share_public: true });
    expect((await admin('GET', '/tenants')).json().data.map((x: { name: string }) => x.name)).toContain('initech');
    expect((await admin('GET', '/tenants/nobody')).statusCode).toBe(404);
  });

  it('creates keys shown once, lists them by prefix, revokes them', async () => {
    const key = await tenantWithKey('keyco', 'pro');
    const prefix = key.slice(0, 11);
    const listed = (await admin('GET', `/keys?prefix=${prefix}`)).json().data;
    expect(listed).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(key);
    expect((await embed(key, { model: 'text-embedding-3-small', input: 'k' })).statusCode).toBe(200);
    expect((await admin('DELETE', `/keys/${prefix}`)).json()).toEqual({ revoked: true, prefix });
    expect((await embed(key, { model: 'text-embedding-3-small', input: 'k' })).statusCode).toBe(401);
    expect((await admin('DELETE', `/keys/${prefix}`)).statusCode).toBe(404);
  });

  it('describes itself in OpenAPI', async () => {
    const doc = (await admin('GET', '/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/tenants', '/tenants/{name}', '/tenants/{name}/keys', '/keys/{prefix}', '/tenants/{name}/providers', '/tiers/{name}']));
    expect(doc.paths['/tenants'].post.requestBody.content['application/json'].schema.properties.name).toBeDefined();
  });

  it('deletes a tenant with its cache', async () => {
    const key = await tenantWithKey('shortlived', 'pro');
    await embed(key, { model: 'text-embedding-3-small', input: 'gone soon' });
    const [{ id }] = await t.server.db.sql`SELECT id FROM tenants WHERE name = 'shortlived'`;
    expect((await admin('DELETE', '/tenants/shortlived')).statusCode).toBe(200);
    expect((await t.server.db.sql`SELECT count(*)::int AS n FROM embeddings WHERE tenant_id = ${id}`)[0].n).toBe(0);
    expect((await embed(key, { model: 'text-embedding-3-small', input: 'gone soon' })).statusCode).toBe(401);
  });
});

describe('the shared public pool', () => {
  it('serves tenants that opted in from each other’s misses, and never tenants that did not', async () => {
    const a = await tenantWithKey('pool-a', 'pro');
    const b = await tenantWithKey('pool-b', 'pro');
    const c = await tenantWithKey('pool-c', 'pro');
    await admin('PATCH', '/tenants/pool-a', { share_public: true });
    await admin('PATCH', '/tenants/pool-b', { share_public: true });
    t.fake.reset();
    const first = await embed(a, { model: 'text-embedding-3-small', input: 'pooled text', encoding_format: 'base64' });
    expect(first.headers['x-cache']).toBe('miss');
    const fromPool = await embed(b, { model: 'text-embedding-3-small', input: 'pooled text', encoding_format: 'base64' });
    expect(fromPool.headers['x-cache']).toBe('hit');
    expect(fromPool.json().data[0].embedding).toBe(first.json().data[0].embedding);
    expect((await embed(c, { model: 'text-embedding-3-small', input: 'pooled text' })).headers['x-cache']).toBe('miss');
    // through Postgres too, not only the in-process cache
    await t.server.embeddings.flush();
    t.server.embeddings.dropHotCache();
    expect((await embed(b, { model: 'text-embedding-3-small', input: 'pooled text' })).headers['x-cache']).toBe('hit');
    expect(t.fake.stats().calls).toBe(2);
  });
});

describe('tiers and BYOK providers', () => {
  it('keeps a free tenant off the server’s upstream until it brings its own provider', async () => {
    const key = await tenantWithKey('freebie', 'free');
    const refused = await embed(key, { model: 'text-embedding-3-small', input: 'byok' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error).toMatchObject({ type: 'permission_error', code: 'model_not_allowed' });
    expect((await t.server.app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${key}` } })).json().data).toEqual([]);

    const added = await admin('POST', '/tenants/freebie/providers', { name: 'mine', base_url: t.fake.url, api_key: 'upstream-secret', models: ['text-embedding-3-small'] });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ name: 'mine', api_key_last4: 'cret', models: ['text-embedding-3-small'] });
    expect(JSON.stringify(added.json())).not.toContain('upstream-secret');

    const ok = await embed(key, { model: 'text-embedding-3-small', input: 'byok' });
    expect(ok.statusCode).toBe(200);
    expect(Float32Array.from(ok.json().data[0].embedding)).toEqual(fakeVector('text-embedding-3-small', 'byok', 1536));
    const models = (await t.server.app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${key}` } })).json().data;
    expect(models).toEqual([expect.objectContaining({ id: 'text-embedding-3-small', owned_by: 'provider:mine' })]);
  });

  it('keeps provider keys out of the database and the logs in plaintext', async () => {
    await tenantWithKey('secretive', 'free');
    const res = await admin('POST', '/tenants/secretive/providers', { name: 'p', base_url: t.fake.url, api_key: PROVIDER_KEY, models: ['fake-768'] });
    expect(res.statusCode).toBe(201);
    expect(res.json().api_key_last4).toBe('XYZ9');
    const rows = await t.server.db.sql`SELECT * FROM providers`;
    const dump = rows.map((r) => Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') + v.toString('hex') + v.toString('base64') : String(v))).join('|')).join('\n');
    expect(dump).not.toContain(PROVIDER_KEY);
    expect(dump).not.toContain(PROVIDER_KEY.slice(0, 20));
    const listing = await admin('GET', '/tenants/secretive/providers');
    expect(JSON.stringify(listing.json())).not.toContain(PROVIDER_KEY);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join('')).not.toContain(PROVIDER_KEY);
    expect(logs.join('')).not.toContain(ADMIN);
  });

  it.each([
    ['http without the allowance', 'http://example.com/v1'],
    ['file URLs', 'file:///etc/passwd'],
    ['loopback by name', 'https://localhost/v1'],
    ['cloud metadata', 'https://169.254.169.254/latest/meta-data'],
    ['private ranges', 'https://10.0.0.5/v1'],
    ['IPv6 loopback', 'https://[::1]/v1'],
    ['IPv6 unique-local', 'https://[fd00::1]/v1'],
    ['IPv6 link-local', 'https://[fe80::1]/v1'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.2]/v1'],
    ['credentials in the URL', 'https://user:pass@api.example.com/v1'],
    ['integer-encoded loopback', 'https://2130706434/v1'],
  ])('refuses provider URLs with %s', async (_name, url) => {
    const strict = url.startsWith('http://') ? 'strict-http' : 'strict';
    await admin('POST', '/tenants', { name: strict, tier: 'free' });
    // 127.0.0.1 is allowlisted for this server; each of these must still be refused.
    const res = await admin('POST', `/tenants/${strict}/providers`, { name: 'x', base_url: url.replace('http://example.com', 'http://example.com'), api_key: 'k', models: ['m'] });
    if (url.startsWith('http://example.com')) {
      // This server allows http for tests; a default server refuses it (unit-tested in src/limits/ssrf.test.ts).
      expect(res.statusCode).toBe(201);
      return;
    }
    expect(res.statusCode).toBe(400);
    expect(res.json().error.param).toBe('base_url');
  });
});

describe('tenant JWTs', () => {
  it('accepts a minted tenant token as a bearer key, and an admin token on the admin API', async () => {
    await tenantWithKey('jwtco', 'pro');
    const minted = await admin('POST', '/tenants/jwtco/tokens', { ttl_seconds: 60 });
    expect(minted.statusCode).toBe(201);
    const res = await embed(minted.json().token, { model: 'text-embedding-3-small', input: 'via jwt' });
    expect(res.statusCode).toBe(200);
    const stats = await t.server.app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${minted.json().token}` } });
    expect(stats.json().tenant).toBe('jwtco');
    // a tenant token is no admin token
    expect((await admin('GET', '/tenants', undefined, minted.json().token)).statusCode).toBe(401);
    const adminJwt = (await admin('POST', '/tokens/admin', { ttl_seconds: 60 })).json().token;
    expect((await admin('GET', '/tenants', undefined, adminJwt)).statusCode).toBe(200);
  });

  it('refuses expired tokens, foreign signatures, tampered claims and unknown tenants', async () => {
    await tenantWithKey('jwt2', 'pro');
    const secretKey = new TextEncoder().encode('some-other-secret-entirely-0000');
    const foreign = await new SignJWT({ tier: 'team' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('jwt2')
      .setIssuer('embedding-cache')
      .setAudience('embedding-cache:tenant')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(secretKey);
    expect((await embed(foreign, { model: 'text-embedding-3-small', input: 'x' })).statusCode).toBe(401);

    const good = (await admin('POST', '/tenants/jwt2/tokens', { ttl_seconds: 60 })).json().token as string;
    const [h, p, s] = good.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = [h, Buffer.from(JSON.stringify({ ...claims, sub: 'jwtco' })).toString('base64url'), s].join('.');
    const res = await embed(tampered, { model: 'text-embedding-3-small', input: 'x' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('invalid_api_key');

    const short = (await admin('POST', '/tenants/jwt2/tokens', { ttl_seconds: 1 })).json().token as string;
    await new Promise((r) => setTimeout(r, 7_000)); // past expiry plus the verifier's 5 s clock tolerance
    t.server.auth.forgetAll();
    const expired = await embed(short, { model: 'text-embedding-3-small', input: 'x' });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.message).toMatch(/expired/i);

    const doomed = (await admin('POST', '/tenants/jwt2/tokens', { ttl_seconds: 60 })).json().token as string;
    await admin('DELETE', '/tenants/jwt2');
    expect((await embed(doomed, { model: 'text-embedding-3-small', input: 'x' })).statusCode).toBe(401);
  }, 20_000);
});

describe('rate limits, usage and metrics', () => {
  it('answers over-burst requests with 429, OpenAI’s body, Retry-After and x-ratelimit headers', async () => {
    await admin('PUT', '/tiers/tiny', { requests_per_day: 100, burst_per_second: 3, tokens_per_minute: 1_000_000, max_cached_rows: null, backends: ['upstream'] });
    const key = await tenantWithKey('bursty', 'tiny');
    // Concurrent, so all five land in one one-second window however slow the machine is.
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => embed(key, { model: 'text-embedding-3-small', input: `b${i}` })));
    const ok = results.filter((r) => r.statusCode === 200);
    const limited = results.filter((r) => r.statusCode === 429);
    expect(ok.length).toBe(3);
    expect(limited.length).toBe(2);
    for (const r of results) {
      expect(r.headers['x-ratelimit-limit-requests']).toBe('100');
      expect(r.headers['x-ratelimit-reset-requests']).toMatch(/^\d+h\d+m\d+s$/);
      expect(r.headers['x-ratelimit-limit-tokens']).toBe('1000000');
    }
    // every request counted once against the day: 99..95 remaining, each once
    expect(results.map((r) => Number(r.headers['x-ratelimit-remaining-requests'])).sort()).toEqual([95, 96, 97, 98, 99]);
    expect(limited[0].json().error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(Number(limited[0].headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('knows a tier created behind its back (another process) at once', async () => {
    const { upsertTier } = await import('../src/store/tiers.js');
    await upsertTier(t.server.db.sql, { name: 'fresh', requestsPerDay: 7, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    const key = await t.key('freshco', { tier: 'fresh' });
    const res = await embed(key, { model: 'text-embedding-3-small', input: 'fresh tier' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ratelimit-limit-requests']).toBe('7');
  });

  it('refuses requests once the tokens-per-minute budget is spent; hits cost no tokens', async () => {
    await admin('PUT', '/tiers/tokenish', { requests_per_day: null, burst_per_second: null, tokens_per_minute: 10, max_cached_rows: null, backends: ['upstream'] });
    const key = await tenantWithKey('tokenco', 'tokenish');
    const long = 'x'.repeat(44); // 11 tokens at the fake's 4 bytes per token
    expect((await embed(key, { model: 'text-embedding-3-small', input: long })).statusCode).toBe(200);
    const next = await embed(key, { model: 'text-embedding-3-small', input: 'another' });
    expect(next.statusCode).toBe(429);
    expect(next.json().error.message).toMatch(/tokens per minute/);
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('0');
  });

  it('reports usage with tokens saved by hits and an estimate in dollars', async () => {
    const key = await tenantWithKey('saver', 'pro');
    const text = 'y'.repeat(400); // 100 tokens
    await embed(key, { model: 'text-embedding-3-small', input: text });
    await embed(key, { model: 'text-embedding-3-small', input: text });
    await embed(key, { model: 'text-embedding-3-small', input: text });
    const stats = (await admin('GET', '/tenants/saver/usage')).json();
    expect(stats).toMatchObject({ requests: 3, hits: 2, misses: 1, prompt_tokens: 300, saved_tokens: 200, stored_rows: 1 });
    expect(stats.estimated_savings_usd).toBeCloseTo((200 * 0.02) / 1e6, 12);
  });

  it('exposes Prometheus metrics: request latency, hit ratio, backend latency, limiter decisions', async () => {
    const text = (await t.server.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/ec_http_request_duration_seconds_bucket\{.*route="\/v1\/embeddings".*status="200"/);
    expect(text).toMatch(/ec_cache_inputs_total\{result="hit",model="text-embedding-3-small"\} \d+/);
    expect(text).toMatch(/ec_backend_duration_seconds_count\{backend="upstream"\} \d+/);
    expect(text).toMatch(/ec_rate_limit_decisions_total\{decision="limited",window="burst"\} 2/);
    expect(text).toContain('ec_hot_cache_bytes');
  });

  it('evicts the least recently hit rows of a tenant over its tier’s row cap', async () => {
    await admin('PUT', '/tiers/small', { requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: 2, backends: ['upstream'] });
    const key = await tenantWithKey('smallco', 'small');
    const [{ id }] = await t.server.db.sql`SELECT id FROM tenants WHERE name = 'smallco'`;
    for (const x of ['e1', 'e2', 'e3', 'e4']) {
      await embed(key, { model: 'text-embedding-3-small', input: x });
      // Rows written in one batch tie on last_hit_at: age every row written so far by a minute,
      // so e1 is oldest and e4 newest whatever the batching.
      await t.server.embeddings.flush();
      await t.server.db.sql`UPDATE embeddings SET last_hit_at = last_hit_at - interval '1 minute' WHERE tenant_id = ${id}`;
    }
    await embed(key, { model: 'text-embedding-3-small', input: 'e1' }); // a hit: e1 is recent again
    await t.server.embeddings.flush();
    await t.server.evictor.sweep();
    const stats = (await admin('GET', '/tenants/smallco/usage')).json();
    expect(stats.stored_rows).toBe(2);
    t.server.embeddings.dropHotCache();
    expect((await embed(key, { model: 'text-embedding-3-small', input: 'e1' })).headers['x-cache']).toBe('hit');
    expect((await embed(key, { model: 'text-embedding-3-small', input: 'e2' })).headers['x-cache']).toBe('miss');
  });
});
