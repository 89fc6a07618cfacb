/**
 * The CLI and the admin API side by side, against one database: every admin verb gives the same
 * result and the same defaults, and refuses the same inputs (the API with a 400/404/409 naming
 * the field, the CLI with a non-zero exit and the same message on stderr).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREFIX_LENGTH } from '../src/auth/api-key.js';
import { verifyTenantToken } from '../src/auth/jwt.js';
import { freshDatabaseUrl } from './support/db.js';
import { startTestServer, type TestServer } from './support/server.js';

const run = promisify(execFile);
const ADMIN = 'parity-admin-token-0123456789';
const MASTER_KEY = 'c'.repeat(64);
let t: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  const databaseUrl = await freshDatabaseUrl();
  t = await startTestServer({ databaseUrl, env: { ADMIN_TOKEN: ADMIN, MASTER_KEY } });
  // The CLI sees the server's configuration, minus nothing: DEFAULT_TIER is left at its default in both.
  env = { ...(process.env as Record<string, string>), DATABASE_URL: databaseUrl, ADMIN_TOKEN: ADMIN, MASTER_KEY, LOG_LEVEL: 'silent', PROVIDER_API_KEY: 'sk-parity-provider-5678' };
  delete env.DEFAULT_TIER;
}, 60_000);
afterAll(async () => t?.close());

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, timeout: 120_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}
const lastLine = (s: string) => s.trim().split('\n').pop()!;
const api = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object, token = ADMIN) =>
  t.server.app.inject({ method, url: `/admin/v1${url}`, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

describe('CLI and admin API refuse the same inputs', () => {
  // [what, CLI args, API call, status, param, message both must show]
  const cases: [string, string[], () => ReturnType<typeof api>, number, string | null, RegExp][] = [
    ['a bad tenant name', ['tenants', 'create', 'bad name!'], () => api('POST', '/tenants', { name: 'bad name!' }), 400, 'name', /names are 1-63 letters/],
    ['an unknown tier', ['tenants', 'create', 'gold-cli', '--tier', 'gold'], () => api('POST', '/tenants', { name: 'gold-api', tier: 'gold' }), 400, 'tier', /Unknown tier gold: use one of .*free.*unlimited/],
    ['an unknown tier on update', ['tenants', 'update', 'dup', '--tier', 'gold'], () => api('PATCH', '/tenants/dup', { tier: 'gold' }), 400, 'tier', /Unknown tier gold/],
    ['an unknown tier for a new key', ['keys', 'create', '--tenant', 'gold-key', '--tier', 'gold'], () => api('POST', '/tenants', { name: 'gold-key', tier: 'gold' }), 400, 'tier', /Unknown tier gold/],
    ['a duplicate tenant', ['tenants', 'create', 'dup'], () => api('POST', '/tenants', { name: 'dup' }), 409, 'name', /Tenant dup exists already/],
    ['a limit of 2^31', ['tiers', 'set', 'big', '--burst-per-second', '2147483648', '--backends', 'byok'], () => api('PATCH', '/tiers/big', { burst_per_second: 2 ** 31, backends: ['byok'] }), 400, 'burst_per_second', /whole number from 0 to 2147483647/],
    ['a limit of abc', ['tiers', 'set', 'abc', '--burst-per-second', 'abc', '--backends', 'byok'], () => api('PATCH', '/tiers/abc', { burst_per_second: 'abc', backends: ['byok'] }), 400, 'burst_per_second', /whole number from 0 to 2147483647/],
    ['a limit of -5', ['tiers', 'set', 'neg', '--requests-per-day', '-5', '--backends', 'byok'], () => api('PATCH', '/tiers/neg', { requests_per_day: -5, backends: ['byok'] }), 400, 'requests_per_day', /whole number from 0 to 2147483647/],
    ['a new tier without backends', ['tiers', 'set', 'nobackends', '--burst-per-second', '1'], () => api('PATCH', '/tiers/nobackends', { burst_per_second: 1 }), 400, 'backends', /needs its backends/],
    ['an unknown backend', ['tiers', 'set', 'gpu', '--backends', 'gpu'], () => api('PATCH', '/tiers/gpu', { backends: ['gpu'] }), 400, 'backends.0', /Unknown backends: gpu/],
    ['an unknown tenant', ['tenants', 'show', 'nobody'], () => api('GET', '/tenants/nobody'), 404, 'name', /No tenant named nobody/],
    ['stats of an unknown tenant', ['stats', '--tenant', 'nobody'], () => api('GET', '/tenants/nobody/usage'), 404, 'tenant', /No tenant named nobody/],
    ['revoking an unknown key', ['keys', 'revoke', 'ec_nothere0'], () => api('DELETE', '/keys/ec_nothere0'), 404, 'prefix', /No live key with prefix ec_nothere0/],
    ['a token TTL past 7 days', ['tokens', 'admin', '--ttl', '999999999'], () => api('POST', '/tokens/admin', { ttl_seconds: 999999999 }), 400, 'ttl_seconds', /at most 604800/],
    ['a provider URL at the metadata service', ['providers', 'add', '--tenant', 'dup', '--name', 'evil', '--base-url', 'https://169.254.169.254/v1', '--models', 'm'], () => api('POST', '/tenants/dup/providers', { name: 'evil', base_url: 'https://169.254.169.254/v1', api_key: 'k', models: ['m'] }), 400, 'base_url', /169\.254/],
  ];

  beforeAll(async () => {
    expect((await api('POST', '/tenants', { name: 'dup' })).statusCode).toBe(201);
  });

  it.each(cases)('%s', async (_what, args, call, status, param, message) => {
    const [c, res] = await Promise.all([cli(...args), call()]);
    expect(res.statusCode).toBe(status);
    expect(res.json().error).toMatchObject({ param, message: expect.stringMatching(message) });
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(message);
    expect(c.stdout).toBe('');
  }, 240_000);

  it('refuses NUL bytes in any string with a 400 (the CLI cannot receive one: argv and the environment are NUL-terminated)', async () => {
    for (const [url, payload, param] of [
      ['/tenants', { name: 'nul\u0000x' }, 'name'],
      ['/tenants/dup/keys', { name: 'label\u0000' }, 'name'],
      ['/tenants/dup/providers', { name: 'p', base_url: 'https://api.example.com/v1', api_key: 'k\u0000', models: ['m'] }, 'api_key'],
      ['/tenants/dup/providers', { name: 'p', base_url: 'https://api.example.com/v1', api_key: 'k', models: ['m\u0000'] }, 'models.0'],
    ] as const) {
      const res = await api('POST', url, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ type: 'invalid_request_error', param, message: expect.stringMatching(/NUL bytes|names are/) });
    }
    const q = await t.server.app.inject({ method: 'DELETE', url: '/admin/v1/tenants/dup/cache?model=a%00b', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(q.statusCode).toBe(400);
    expect(q.json().error.param).toBe('model');
  });
});

describe('CLI and admin API: every verb, same results and defaults', () => {
  it('tenants: create with DEFAULT_TIER, show, list, update, delete', async () => {
    const [c, a] = await Promise.all([cli('tenants', 'create', 'cli-co'), api('POST', '/tenants', { name: 'api-co' })]);
    expect(c.code).toBe(0);
    expect(a.statusCode).toBe(201);
    // One default everywhere: the config's DEFAULT_TIER, `unlimited` out of the box.
    expect(a.json().tier).toBe('unlimited');
    expect(c.stdout).toMatch(/tenant cli-co: tier unlimited, share_public false/);
    const [shown, viaApi] = await Promise.all([cli('tenants', 'show', 'cli-co'), api('GET', '/tenants/cli-co')]);
    expect(JSON.parse(shown.stdout)).toEqual(viaApi.json());
    const listed = await cli('tenants', 'list');
    for (const n of ['cli-co', 'api-co']) expect(listed.stdout).toMatch(new RegExp(`^${n}\\tunlimited\\tfalse\\t`, 'm'));
    expect((await api('GET', '/tenants')).json().data.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['cli-co', 'api-co']));

    expect((await cli('tenants', 'update', 'cli-co', '--tier', 'pro', '--share-public', 'true')).code).toBe(0);
    expect((await api('PATCH', '/tenants/api-co', { tier: 'pro', share_public: true })).json()).toMatchObject({ tier: 'pro', share_public: true });
    expect((await api('GET', '/tenants/cli-co')).json()).toMatchObject({ tier: 'pro', share_public: true });

    expect((await cli('tenants', 'delete', 'cli-co')).code).toBe(0);
    expect((await api('DELETE', '/tenants/api-co')).json()).toEqual({ deleted: true, name: 'api-co' });
    const [gone1, gone2] = await Promise.all([cli('tenants', 'delete', 'cli-co'), api('DELETE', '/tenants/api-co')]);
    expect(gone1.code).toBe(1);
    expect(gone2.statusCode).toBe(404);
  }, 240_000);

  it('keys: create (prefix length from api-key.ts), list, revoke, from either side', async () => {
    const created = await cli('keys', 'create', '--tenant', 'keys-cli', '--name', 'laptop');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/tier unlimited/);
    const cliKey = lastLine(created.stdout);
    const apiKey = (await api('POST', '/tenants/keys-cli/keys', { name: 'server' })).json().key as string;
    const listedCli = (await cli('keys', 'list', '--tenant', 'keys-cli')).stdout;
    const listedApi = (await api('GET', '/keys?tenant=keys-cli')).json().data.map((k: { prefix: string }) => k.prefix);
    expect(listedApi).toEqual([cliKey.slice(0, PREFIX_LENGTH), apiKey.slice(0, PREFIX_LENGTH)]);
    for (const p of listedApi) expect(listedCli).toContain(p);
    // Each side revokes the other's key; a whole key names its prefix too.
    expect((await cli('keys', 'revoke', apiKey)).stdout).toContain(`Revoked ${apiKey.slice(0, PREFIX_LENGTH)}.`);
    expect((await api('DELETE', `/keys/${cliKey.slice(0, PREFIX_LENGTH)}`)).json()).toEqual({ revoked: true, prefix: cliKey.slice(0, PREFIX_LENGTH) });
    expect((await api('GET', '/keys?tenant=keys-cli')).json().data.every((k: { revoked_at: string | null }) => k.revoked_at !== null)).toBe(true);
    // The API's tenant must exist; the CLI creates it (both with DEFAULT_TIER, see above).
    expect((await api('POST', '/tenants/keys-nobody/keys', {})).statusCode).toBe(404);
  }, 240_000);

  it('tiers: list, and partial set from both sides', async () => {
    expect((await cli('tiers', 'set', 'partial', '--backends', 'byok', '--requests-per-day', '10')).stdout).toMatch(/tier partial created/);
    // One limit changes; the rest stays.
    expect((await cli('tiers', 'set', 'partial', '--burst-per-second', '10')).code).toBe(0);
    expect((await api('PATCH', '/tiers/partial', { tokens_per_minute: 5 })).json()).toEqual({
      name: 'partial', requests_per_day: 10, burst_per_second: 10, tokens_per_minute: 5, max_cached_rows: null, backends: ['byok'],
    });
    expect((await cli('tiers', 'set', 'partial', '--max-cached-rows', '3000000000', '--requests-per-day', 'unlimited')).code).toBe(0);
    const listed = (await api('GET', '/tiers')).json().data;
    expect(listed.find((x: { name: string }) => x.name === 'partial')).toEqual({
      name: 'partial', requests_per_day: null, burst_per_second: 10, tokens_per_minute: 5, max_cached_rows: 3_000_000_000, backends: ['byok'],
    });
    expect(listed.find((x: { name: string }) => x.name === 'unlimited')).toEqual({
      name: 'unlimited', requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: null, backends: ['byok', 'upstream', 'local'],
    });
    const cliList = (await cli('tiers', 'list')).stdout;
    expect(cliList).toMatch(/^partial\t∞\t10\t5\t3000000000\tbyok$/m);
    expect(cliList).toMatch(/^unlimited\t∞\t∞\t∞\t∞\tbyok,upstream,local$/m);
    // PUT replaces: every field is required.
    expect((await api('PUT', '/tiers/partial', { burst_per_second: 1 })).json().error.param).toBe('requests_per_day');
  }, 240_000);

  it('providers, tokens, stats and clear', async () => {
    await api('POST', '/tenants', { name: 'prov' });
    const added = await cli('providers', 'add', '--tenant', 'prov', '--name', 'cli-p', '--base-url', 'https://api.openai.com/v1', '--models', 'text-embedding-3-small');
    expect(added.code).toBe(0);
    const viaApi = await api('POST', '/tenants/prov/providers', { name: 'api-p', base_url: 'https://api.openai.com/v1', api_key: 'sk-api-side-1234', models: ['text-embedding-3-large'] });
    expect(viaApi.statusCode).toBe(201);
    const listed = (await api('GET', '/tenants/prov/providers')).json().data;
    expect(listed).toEqual([JSON.parse(added.stdout), viaApi.json()]);
    expect((await cli('providers', 'list', '--tenant', 'prov')).stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(listed);
    expect((await cli('providers', 'remove', '--tenant', 'prov', '--name', 'api-p')).code).toBe(0);
    expect((await api('DELETE', '/tenants/prov/providers/cli-p')).json()).toEqual({ deleted: true, name: 'cli-p' });
    const [again1, again2] = await Promise.all([cli('providers', 'remove', '--tenant', 'prov', '--name', 'cli-p'), api('DELETE', '/tenants/prov/providers/cli-p')]);
    expect(again1.code).toBe(1);
    expect(again1.stderr).toMatch(/has no provider cli-p/);
    expect(again2.statusCode).toBe(404);

    // Tokens minted on either side work on the other.
    const cliTenantToken = lastLine((await cli('tokens', 'tenant', '--tenant', 'prov', '--ttl', '60')).stdout);
    expect((await verifyTenantToken(ADMIN, cliTenantToken)).tenant).toBe('prov');
    const cliAdminToken = lastLine((await cli('tokens', 'admin', '--ttl', '60')).stdout);
    expect((await api('GET', '/tenants/prov', undefined, cliAdminToken)).statusCode).toBe(200);
    expect((await api('POST', '/tokens/admin', { ttl_seconds: 60 })).statusCode).toBe(201);

    const key = await t.key('prov-rows');
    for (const input of ['r1', 'r2', 'r3']) {
      const res = await t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model: 'text-embedding-3-small', input } });
      expect(res.statusCode).toBe(200);
    }
    const usage = (await api('GET', '/tenants/prov-rows/usage')).json(); // flushes the server's pending rows
    expect(usage.stored_rows).toBe(3);
    expect(JSON.parse((await cli('stats', '--tenant', 'prov-rows', '--json')).stdout)).toEqual(usage);
    expect((await api('DELETE', '/tenants/prov-rows/cache?model=other-model')).json()).toEqual({ deleted: 0, tenant: 'prov-rows', model: 'other-model' });
    expect((await cli('clear', '--tenant', 'prov-rows', '--model', 'text-embedding-3-small')).stdout).toMatch(/Deleted 3 cached vectors of prov-rows/);
    expect((await api('DELETE', '/tenants/prov-rows/cache')).json()).toEqual({ deleted: 0, tenant: 'prov-rows', model: null });
  }, 240_000);

  it('200 concurrent requests from a fresh `keys create` key on the defaults: no 429', async () => {
    const key = lastLine((await cli('keys', 'create', '--tenant', 'burst-me')).stdout);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model: 'text-embedding-3-small', input: `burst ${i % 50}` } }),
      ),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array(200).fill(200));
  }, 240_000);
});
