import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { KeyUsage } from '../src/auth/key-usage.js';
import { MAX_OWN_KEYS } from '../src/http/routes/self-service.js';
import { upsertTier } from '../src/store/tiers.js';
import { startTestServer, type TestServer } from './support/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const MASTER_KEY = 'b'.repeat(64);
// The fake upstream's own key: the tenant brings it as its provider key.
const PROVIDER_KEY = 'upstream-secret';

let t: TestServer;
let keyA: string;
let keyB: string;

beforeAll(async () => {
  t = await startTestServer({ env: { ADMIN_TOKEN: ADMIN, MASTER_KEY, PROVIDER_ALLOWLIST: '127.0.0.1', PROVIDER_ALLOW_HTTP: 'true' } });
  keyA = await t.key('alpha');
  keyB = await t.key('beta');
});
afterAll(async () => t?.close());

type Method = 'GET' | 'POST' | 'DELETE';
const call = (key: string, method: Method, url: string, payload?: object) =>
  t.server.app.inject({ method, url: `/v1${url}`, headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) });
const embed = (key: string) => call(key, 'POST', '/embeddings', { model: 'text-embedding-3-small', input: 'self-service' });
const prefixes = async (key: string): Promise<string[]> => (await call(key, 'GET', '/keys')).json().data.map((k: { prefix: string }) => k.prefix);

describe('/v1/keys', () => {
  it('lists only the caller tenant keys, creates one shown once, revokes only its own', async () => {
    expect(await prefixes(keyA)).toEqual([keyA.slice(0, 11)]);
    expect(await prefixes(keyB)).toEqual([keyB.slice(0, 11)]);

    const created = await call(keyA, 'POST', '/keys', { name: 'ci' });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(Object.keys(body).sort()).toEqual(['created_at', 'key', 'name', 'prefix']);
    expect(body).toMatchObject({ name: 'ci', prefix: body.key.slice(0, 11) });
    const listing = await call(keyA, 'GET', '/keys');
    expect(listing.body).not.toContain(body.key);
    expect(listing.json().data.find((k: { prefix: string }) => k.prefix === body.prefix)).toEqual({
      prefix: body.prefix,
      name: 'ci',
      created_at: body.created_at,
      last_used_at: null,
      revoked_at: null,
    });
    expect((await embed(body.key)).statusCode).toBe(200);

    // Beta cannot see or revoke alpha's key: the prefix is simply not found.
    expect(await prefixes(keyB)).not.toContain(body.prefix);
    const foreign = await call(keyB, 'DELETE', `/keys/${body.prefix}`);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error.code).toBe('key_not_found');
    expect((await embed(body.key)).statusCode).toBe(200);

    expect((await call(keyA, 'DELETE', `/keys/${body.prefix}`)).json()).toEqual({ revoked: true, prefix: body.prefix });
    expect((await embed(body.key)).statusCode).toBe(401);
    const revoked = (await call(keyA, 'GET', '/keys')).json().data.find((k: { prefix: string }) => k.prefix === body.prefix);
    expect(revoked.revoked_at).toEqual(expect.any(String));
    expect((await call(keyA, 'DELETE', `/keys/${body.prefix}`)).statusCode).toBe(404);
  });

  it('records last use off the request path, visible after the batch is written', async () => {
    const fresh = (await call(keyB, 'POST', '/keys', {})).json();
    expect(fresh.name).toBeNull();
    const before = Date.now();
    expect((await embed(fresh.key)).statusCode).toBe(200);
    const row = async () => (await call(keyB, 'GET', '/keys')).json().data.find((k: { prefix: string }) => k.prefix === fresh.prefix);
    await t.server.keyUsage.flush();
    const used = await row();
    expect(Date.parse(used.last_used_at)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('writes a key at most once a minute, however often it is used', async () => {
    const sql = t.server.db.sql;
    const [{ id }] = await sql`SELECT id FROM api_keys WHERE prefix = ${keyA.slice(0, 11)}`;
    const usage = new KeyUsage(sql, pino({ level: 'silent' }));
    const lastUsed = async () => (await sql`SELECT last_used_at FROM api_keys WHERE id = ${id}`)[0].last_used_at.getTime();
    const t0 = Date.parse('2031-01-01T00:00:00Z');
    usage.used(Number(id), t0);
    usage.used(Number(id), t0 + 30_000);
    usage.used(Number(id), t0 + 59_999);
    await usage.flush();
    expect(await lastUsed()).toBe(t0);
    usage.used(Number(id), t0 + 60_000);
    await usage.flush();
    expect(await lastUsed()).toBe(t0 + 60_000);
    // Nothing noted, nothing written: an older time never overwrites a newer one either.
    await usage.flush();
    expect(await lastUsed()).toBe(t0 + 60_000);
    await usage.close();
  });

  it(`refuses a key past ${MAX_OWN_KEYS} live ones of a tenant`, async () => {
    const key = await t.key('hoarder');
    for (let i = 1; i < MAX_OWN_KEYS; i++) expect((await call(key, 'POST', '/keys', {})).statusCode).toBe(201);
    const refused = await call(key, 'POST', '/keys', {});
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('too_many_keys');
    const one = (await call(key, 'GET', '/keys')).json().data.find((k: { prefix: string }) => k.prefix !== key.slice(0, 11));
    expect((await call(key, 'DELETE', `/keys/${one.prefix}`)).statusCode).toBe(200);
    expect((await call(key, 'POST', '/keys', {})).statusCode).toBe(201);
  });

  it('refuses malformed bodies and unauthenticated calls', async () => {
    const bad = await call(keyA, 'POST', '/keys', { name: 5 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.param).toBe('name');
    expect((await call(keyA, 'POST', '/keys', { name: 'x', tenant: 'beta' })).statusCode).toBe(400);
    expect((await t.server.app.inject({ url: '/v1/keys' })).statusCode).toBe(401);
  });

  it('accepts a tenant JWT as well as a key', async () => {
    const minted = await t.server.app.inject({ method: 'POST', url: '/admin/v1/tenants/alpha/tokens', headers: { authorization: `Bearer ${ADMIN}` }, payload: {} });
    const jwt = minted.json().token;
    expect(await prefixes(jwt)).toContain(keyA.slice(0, 11));
    expect(await prefixes(jwt)).not.toContain(keyB.slice(0, 11));
  });
});

describe('/v1/providers', () => {
  const provider = (name: string) => ({ name, base_url: `${t.fake.url}`, api_key: PROVIDER_KEY, models: ['fake-768'] });

  it('adds, lists and removes the caller tenant providers only; never shows the key', async () => {
    const added = await call(keyA, 'POST', '/providers', provider('mine'));
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ name: 'mine', models: ['fake-768'], api_key_last4: 'cret' });
    expect(added.body).not.toContain(PROVIDER_KEY);
    const listed = await call(keyA, 'GET', '/providers');
    expect(listed.json().data.map((p: { name: string }) => p.name)).toEqual(['mine']);
    expect(listed.body).not.toContain(PROVIDER_KEY);
    const [row] = await t.server.db.sql`SELECT key_ciphertext FROM providers WHERE name = 'mine'`;
    expect(Buffer.from(row.key_ciphertext).toString()).not.toContain(PROVIDER_KEY);

    expect((await call(keyB, 'GET', '/providers')).json().data).toEqual([]);
    const foreign = await call(keyB, 'DELETE', '/providers/mine');
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error.code).toBe('provider_not_found');
    // Alpha's own model works through its provider; beta has no such model.
    const viaProvider = { model: 'fake-768', input: 'byok' };
    expect((await call(keyA, 'POST', '/embeddings', viaProvider)).statusCode).toBe(200);
    expect((await call(keyB, 'POST', '/embeddings', viaProvider)).statusCode).toBe(404);

    expect((await call(keyA, 'DELETE', '/providers/mine')).json()).toEqual({ deleted: true, name: 'mine' });
    expect((await call(keyA, 'GET', '/providers')).json().data).toEqual([]);
  });

  it('applies the admin API rules: SSRF, field validation', async () => {
    const metadata = await call(keyA, 'POST', '/providers', { ...provider('meta'), base_url: 'http://169.254.169.254/v1' });
    expect(metadata.statusCode).toBe(400);
    expect(metadata.json().error.param).toBe('base_url');
    const noModels = await call(keyA, 'POST', '/providers', { ...provider('empty'), models: [] });
    expect(noModels.statusCode).toBe(400);
    expect(noModels.json().error.param).toBe('models');
    expect((await t.server.db.sql`SELECT count(*)::int AS n FROM providers`)[0].n).toBe(0);
  });

  it('refuses a provider when the tier, read from the database, has no byok', async () => {
    await upsertTier(t.server.db.sql, { name: 'hosted-only', requestsPerDay: null, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    await t.server.tiers.refresh();
    const key = await t.key('gamma', { tier: 'hosted-only' });
    const res = await call(key, 'POST', '/providers', provider('nope'));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('tier_forbids_byok');
  });
});
