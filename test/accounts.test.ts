import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fakeVector } from '../src/testing/fake-upstream.js';
import { startTestServer, type TestServer } from './support/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const JWT_SECRET = 'jwt-secret-for-accounts-0123456789';
const PASSWORD = 'correct horse battery staple';
const PER_EMAIL = 3;
const PER_ADDRESS = 5;

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({
    listen: true,
    env: {
      SIGNUP_ENABLED: 'true',
      JWT_SECRET,
      ADMIN_TOKEN: ADMIN,
      DEFAULT_TIER: 'pro',
      MASTER_KEY: 'c'.repeat(64),
      PROVIDER_ALLOWLIST: '127.0.0.1',
      PROVIDER_ALLOW_HTTP: 'true',
      AUTH_LIMIT_PER_EMAIL: String(PER_EMAIL),
      AUTH_LIMIT_PER_ADDRESS: String(PER_ADDRESS),
    },
  });
});
afterAll(async () => t?.close());

/** Every test speaks from an address of its own, so one test's attempts never use up another's budget. */
let nextAddress = 1;
const newAddress = () => `10.0.0.${nextAddress++}`;

type Method = 'GET' | 'POST' | 'DELETE' | 'PATCH';
const post = (url: string, payload: unknown, address: string) =>
  t.server.app.inject({ method: 'POST', url, payload: payload as object, remoteAddress: address });
const call = (bearer: string, method: Method, url: string, payload?: object) =>
  t.server.app.inject({ method, url, headers: { authorization: `Bearer ${bearer}` }, ...(payload ? { payload } : {}) });
const admin = (method: Method, url: string, payload?: object) => call(ADMIN, method, `/admin/v1${url}`, payload);

async function signup(email: string, address = newAddress()) {
  const res = await post('/v1/auth/signup', { email, password: PASSWORD }, address);
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { key: string; prefix: string; tenant: string; tier: string; email: string };
}
async function login(email: string, password = PASSWORD, address = newAddress()) {
  return post('/v1/auth/login', { email, password }, address);
}
const counts = async () => {
  const [r] = await t.server.db.sql`SELECT
    (SELECT count(*)::int FROM tenants) AS tenants, (SELECT count(*)::int FROM accounts) AS accounts,
    (SELECT count(*)::int FROM api_keys) AS keys, (SELECT count(*)::int FROM refresh_tokens) AS refresh`;
  return r;
};

describe('the whole flow', () => {
  it('signup -> key works with the OpenAI SDK -> login -> second key -> revoke first -> refresh rotation and reuse -> logout', async () => {
    const s = await signup('  Ada.Lovelace@Example.COM ');
    expect(s).toMatchObject({ email: 'ada.lovelace@example.com', tenant: 'ada.lovelace', tier: 'pro', prefix: s.key.slice(0, 11) });

    // The first key works with the real SDK (which asks for base64 and decodes it).
    const sdk = new OpenAI({ apiKey: s.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const out = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'hello accounts' });
    expect(out.data[0].embedding).toEqual(Array.from(fakeVector('text-embedding-3-small', 'hello accounts', 1536)));

    // Login answers exactly what the dashboard's sign-in needs.
    const res = await login('ada.lovelace@example.com');
    expect(res.statusCode).toBe(200);
    const session = res.json();
    expect(Object.keys(session).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type']);
    expect(session).toMatchObject({ token_type: 'bearer', expires_in: 900 });

    // With the JWT: create a second key, revoke the first.
    const second = await call(session.access_token, 'POST', '/v1/keys', { name: 'second' });
    expect(second.statusCode).toBe(201);
    const listed = (await call(session.access_token, 'GET', '/v1/keys')).json().data;
    expect(listed.map((k: { prefix: string }) => k.prefix).sort()).toEqual([s.prefix, second.json().prefix].sort());
    expect((await call(session.access_token, 'DELETE', `/v1/keys/${s.prefix}`)).statusCode).toBe(200);
    await expect(sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'hello accounts' })).rejects.toMatchObject({ status: 401 });
    const sdk2 = new OpenAI({ apiKey: second.json().key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    expect((await sdk2.embeddings.create({ model: 'text-embedding-3-small', input: 'hello accounts' })).data).toHaveLength(1);

    // Refresh rotates: the new pair works, the old refresh token is spent.
    const r2 = await post('/v1/auth/refresh', { refresh_token: session.refresh_token }, newAddress());
    expect(r2.statusCode).toBe(200);
    const rotated = r2.json();
    expect(rotated.refresh_token).not.toBe(session.refresh_token);
    expect((await call(rotated.access_token, 'GET', '/v1/auth/me')).json().tenant.name).toBe('ada.lovelace');
    // Using the spent token again is reuse: refused, and the whole family goes with it.
    const reuse = await post('/v1/auth/refresh', { refresh_token: session.refresh_token }, newAddress());
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error.code).toBe('refresh_token_reused');
    const afterReuse = await post('/v1/auth/refresh', { refresh_token: rotated.refresh_token }, newAddress());
    expect(afterReuse.statusCode).toBe(401);
    expect(afterReuse.json().error.code).toBe('invalid_refresh_token');

    // Logout ends a fresh login's family.
    const fresh = (await login('ada.lovelace@example.com')).json();
    expect((await post('/v1/auth/logout', { refresh_token: fresh.refresh_token }, newAddress())).json()).toEqual({ logged_out: true });
    expect((await post('/v1/auth/refresh', { refresh_token: fresh.refresh_token }, newAddress())).statusCode).toBe(401);

    // Refresh tokens are stored hashed: no row holds the token's text.
    const stored = await t.server.db.sql`SELECT token_hash FROM refresh_tokens`;
    expect(stored.length).toBeGreaterThan(0);
    for (const row of stored) expect(Buffer.from(row.token_hash).toString('latin1')).not.toContain(fresh.refresh_token.slice(3, 20));
    const [acc] = await t.server.db.sql`SELECT password_hash FROM accounts WHERE email = 'ada.lovelace@example.com'`;
    expect(acc.password_hash).toMatch(/^\$argon2id\$/);
  });

  it('/v1/auth/me: tenant, tier and limits from the database, usage today', async () => {
    const s = await signup('grace@example.com');
    const before = (await call(s.key, 'GET', '/v1/auth/me')).json();
    expect(before).toMatchObject({
      tenant: { name: 'grace', tier: 'pro', share_public: false },
      account: { email: 'grace@example.com', last_login_at: null },
      limits: { requests_per_day: 100000, backends: ['byok', 'upstream', 'local'] },
    });
    await call(s.key, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b'] });
    await call(s.key, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: ['a'] });
    const me = (await call(s.key, 'GET', '/v1/auth/me')).json();
    expect(me.usage_today).toMatchObject({ requests: 2, inputs: 3, hits: 1, misses: 2 });

    // The operator changes the tier: a JWT minted before sees the new tier at once.
    const jwt = (await login('grace@example.com')).json().access_token;
    expect((await admin('PATCH', `/tenants/${s.tenant}`, { tier: 'free' })).statusCode).toBe(200);
    const downgraded = (await call(jwt, 'GET', '/v1/auth/me')).json();
    expect(downgraded.tenant.tier).toBe('free');
    expect(downgraded.limits.backends).toEqual(['byok']);
    expect((await call(jwt, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' })).statusCode).toBe(403);
  });

  it('a tier in the signup body is refused, never used', async () => {
    const before = await counts();
    const res = await post('/v1/auth/signup', { email: 'sneaky@example.com', password: PASSWORD, tier: 'team' }, newAddress());
    expect(res.statusCode).toBe(400);
    expect(res.json().error.param).toBe('tier');
    expect(await counts()).toEqual(before);
  });
});

describe('isolation between two self-service tenants', () => {
  it('keys, providers and stats of one are invisible to the other', async () => {
    const a = await signup('alice@one.example');
    const b = await signup('bob@two.example');
    const ja = (await login('alice@one.example')).json().access_token;
    const jb = (await login('bob@two.example')).json().access_token;

    expect((await call(ja, 'GET', '/v1/keys')).json().data.map((k: { prefix: string }) => k.prefix)).toEqual([a.prefix]);
    expect((await call(jb, 'GET', '/v1/keys')).json().data.map((k: { prefix: string }) => k.prefix)).toEqual([b.prefix]);
    expect((await call(jb, 'DELETE', `/v1/keys/${a.prefix}`)).statusCode).toBe(404);
    expect((await call(a.key, 'GET', '/v1/auth/me')).statusCode).toBe(200);

    const provider = { name: 'own', base_url: t.fake.url, api_key: 'upstream-secret', models: ['fake-768'] };
    expect((await call(ja, 'POST', '/v1/providers', provider)).statusCode).toBe(201);
    expect((await call(jb, 'GET', '/v1/providers')).json().data).toEqual([]);
    expect((await call(jb, 'DELETE', '/v1/providers/own')).statusCode).toBe(404);
    expect((await call(ja, 'GET', '/v1/providers')).json().data).toHaveLength(1);

    await call(a.key, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'only alice' });
    expect((await call(ja, 'GET', '/v1/stats')).json()).toMatchObject({ requests: 1, misses: 1 });
    expect((await call(jb, 'GET', '/v1/stats')).json()).toMatchObject({ requests: 0, stored_rows: 0 });
    expect((await call(jb, 'GET', '/v1/auth/me')).json().usage_today.requests).toBe(0);
  });
});

describe('brute force', () => {
  it(`refuses the attempt after ${PER_EMAIL} failures for one email (even with the right password), with Retry-After`, async () => {
    await signup('target@example.com');
    for (let i = 0; i < PER_EMAIL; i++) {
      // From a new address each time: only the per-email budget is at work.
      const res = await login('target@example.com', `wrong password ${i}`, newAddress());
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({ message: 'Incorrect email or password.', code: 'invalid_credentials' });
    }
    const blocked = await login('target@example.com', PASSWORD, newAddress());
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.json().error.code).toBe('too_many_attempts');
  });

  it(`refuses the attempt after ${PER_ADDRESS} failures from one address, whatever the email`, async () => {
    const address = newAddress();
    for (let i = 0; i < PER_ADDRESS; i++) {
      expect((await login(`nobody${i}@example.com`, 'some wrong password', address)).statusCode).toBe(401);
    }
    const blocked = await login('nobody-else@example.com', 'some wrong password', address);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await login('nobody-else@example.com', 'some wrong password', newAddress())).statusCode).toBe(401);
  });

  it('successful logins do not use up the budget', async () => {
    await signup('regular@example.com');
    const address = newAddress();
    for (let i = 0; i < PER_EMAIL + 2; i++) expect((await login('regular@example.com', PASSWORD, address)).statusCode).toBe(200);
  });

  it('limits signups per address', async () => {
    const address = newAddress();
    for (let i = 0; i < PER_ADDRESS; i++) await signup(`bulk${i}@example.com`, address);
    const res = await post('/v1/auth/signup', { email: 'bulk-more@example.com', password: PASSWORD }, address);
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBeDefined();
  });

  it('an unknown email and a wrong password get the same answer', async () => {
    await signup('known@example.com');
    const unknown = await login('unknown@example.com', 'a wrong password');
    const wrong = await login('known@example.com', 'a wrong password');
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json()).toEqual(wrong.json());
  });
});

describe('duplicate and malformed input', () => {
  it('a duplicate email (after normalisation) is a 409 and creates nothing', async () => {
    await signup('dup@example.com');
    const before = await counts();
    const res = await post('/v1/auth/signup', { email: ' DUP@Example.com', password: PASSWORD }, newAddress());
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ param: 'email', code: 'email_taken' });
    expect(await counts()).toEqual(before);
  });

  it('a second account whose email derives a taken tenant name gets another name', async () => {
    const first = await signup('same@one.example');
    const second = await signup('same@two.example');
    expect(first.tenant).toBe('same');
    expect(second.tenant).toMatch(/^same-[0-9a-f]{6}$/);
    // Reserved names are never taken by a signup.
    expect((await signup('public@example.com')).tenant).toMatch(/^public-[0-9a-f]{6}$/);
  });

  it.each([
    [{ password: PASSWORD }, 'email', /Missing required parameter: 'email'/],
    [{ email: 'not-an-email', password: PASSWORD }, 'email', /email address/],
    [{ email: 'short@example.com', password: 'short' }, 'password', /at least 10 characters/],
    [{ email: 'common@example.com', password: 'Password123' }, 'password', /most commonly used/],
    [{ email: 'typed@example.com', password: 1234567890123 }, 'password', /string/],
    [{ email: 'extra@example.com', password: PASSWORD, admin: true }, 'admin', /Unknown parameter/],
  ])('signup %j is a 400 naming %s, and creates nothing', async (body, param, message) => {
    const before = await counts();
    const res = await post('/v1/auth/signup', body, newAddress());
    expect(res.statusCode).toBe(400);
    expect(res.json().error.param).toBe(param);
    expect(res.json().error.message).toMatch(message);
    expect(await counts()).toEqual(before);
  });

  it('refuses bodies that are not JSON objects and malformed refresh tokens', async () => {
    const notJson = await t.server.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{nope' });
    expect(notJson.statusCode).toBe(400);
    expect((await post('/v1/auth/login', [1, 2], newAddress())).statusCode).toBe(400);
    // Unauthenticated routes take small bodies only.
    expect((await post('/v1/auth/signup', { email: 'big@example.com', password: 'x'.repeat(20_000) }, newAddress())).statusCode).toBe(413);
    expect((await post('/v1/auth/refresh', { refresh_token: 'rt_short' }, newAddress())).statusCode).toBe(401);
    expect((await post('/v1/auth/logout', {}, newAddress())).json().error.param).toBe('refresh_token');
  });
});

describe('the operator', () => {
  it('lists accounts and revokes one account sessions', async () => {
    await signup('revoked@example.com');
    const s = (await login('revoked@example.com')).json();
    const listed = (await admin('GET', '/accounts')).json().data;
    expect(listed.find((a: { email: string }) => a.email === 'revoked@example.com')).toMatchObject({ tenant: 'revoked', live_sessions: 1 });
    expect(JSON.stringify(listed)).not.toMatch(/argon2/);

    expect((await call(s.access_token, 'GET', '/v1/auth/me')).statusCode).toBe(200);

    const res = await admin('POST', '/accounts/revoke', { email: ' Revoked@example.com' });
    expect(res.json()).toEqual({ email: 'revoked@example.com', tenant: 'revoked', sessions_revoked: 1 });
    expect((await post('/v1/auth/refresh', { refresh_token: s.refresh_token }, newAddress())).statusCode).toBe(401);
    // Its JWTs issued until now are refused too (the one above was already verified and remembered).
    const refused = await call(s.access_token, 'GET', '/v1/auth/me');
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.message).toMatch(/revoked by the operator/);
    expect((await admin('POST', '/accounts/revoke', { email: 'nobody@example.com' })).statusCode).toBe(404);
  });
});

describe('tokens bound to the tenant id', () => {
  it('a login token is refused once its tenant is deleted and another takes the name', async () => {
    const s = await signup('phoenix@example.com');
    const jwt = (await login('phoenix@example.com')).json().access_token;
    expect((await call(jwt, 'GET', '/v1/auth/me')).statusCode).toBe(200);
    expect((await admin('DELETE', `/tenants/${s.tenant}`)).statusCode).toBe(200);
    expect((await admin('POST', '/tenants', { name: s.tenant })).statusCode).toBe(201);
    expect((await call(jwt, 'GET', '/v1/auth/me')).statusCode).toBe(401);
    // The account went with its tenant: the email can sign up again.
    expect((await signup('phoenix@example.com')).tenant).not.toBe(s.tenant);
  });
});

describe('OpenAPI', () => {
  it('describes the auth, keys and providers routes from their zod schemas', async () => {
    const doc = (await t.server.app.inject({ url: '/v1/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/auth/signup', '/v1/auth/login', '/v1/auth/refresh', '/v1/auth/logout', '/v1/auth/me', '/v1/keys', '/v1/keys/{prefix}', '/v1/providers', '/v1/providers/{name}']),
    );
    expect(doc.paths['/v1/auth/signup'].post.requestBody.content['application/json'].schema.required).toEqual(['email', 'password']);
    expect(doc.paths['/v1/auth/login'].post.responses['200'].content['application/json'].schema.properties.token_type).toBeDefined();
    expect(doc.paths['/v1/keys'].get.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/auth/login'].post.security).toEqual([]);
    // The operator's verbs are in the admin API's document.
    const adminDoc = (await admin('GET', '/openapi.json')).json();
    expect(Object.keys(adminDoc.paths)).toEqual(expect.arrayContaining(['/accounts', '/accounts/revoke']));
  });
});

describe('signup disabled (the default)', () => {
  let closed: TestServer;
  beforeAll(async () => {
    closed = await startTestServer({ env: { JWT_SECRET } });
  });
  afterAll(async () => closed?.close());

  it.each(['/v1/auth/signup', '/v1/auth/login', '/v1/auth/refresh', '/v1/auth/logout'])('%s answers 404 saying how to enable it', async (url) => {
    const res = await closed.server.app.inject({ method: 'POST', url, payload: { email: 'x@example.com', password: PASSWORD } });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'signup_disabled', message: expect.stringContaining('SIGNUP_ENABLED=true') });
    expect((await closed.server.db.sql`SELECT count(*)::int AS n FROM accounts`)[0].n).toBe(0);
  });
});

describe('brute-force limits with Redis', () => {
  let one: TestServer;
  let two: TestServer;
  beforeAll(async () => {
    // Two instances, one Redis: failures counted by one are refused by the other.
    const env = { SIGNUP_ENABLED: 'true', JWT_SECRET, REDIS_URL: inject('redisUrl'), REDIS_PREFIX: `t${randomBytes(4).toString('hex')}`, AUTH_LIMIT_PER_EMAIL: '2' };
    [one, two] = await Promise.all([startTestServer({ env }), startTestServer({ env })]);
  });
  afterAll(async () => Promise.all([one?.close(), two?.close()]));

  it('counts failures across instances', async () => {
    const attempt = (s: TestServer, address: string) =>
      s.server.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'shared@example.com', password: 'not the password' }, remoteAddress: address });
    expect((await attempt(one, '10.1.0.1')).statusCode).toBe(401);
    expect((await attempt(two, '10.1.0.2')).statusCode).toBe(401);
    const blocked = await attempt(one, '10.1.0.3');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
  });
});
