/**
 * Every admin change, by API on one server or by the CLI, reaches the other running server:
 * two real `serve` processes on one PostgreSQL database, and one on the embedded store with
 * the CLI beside it. Each change is asserted to take effect on the other server by the time
 * the verb returns (publishers wait for every live server to apply it); the time it took is
 * printed (p50/p99), not asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './support/db.js';
import { cli, client, runScenario, serveProcess, summarize, type Client, type Measured, type ScenarioKind, type ScenarioSetup, type ServeProcess } from './support/propagation.js';

const ADMIN = 'propagation-admin-token-0123';
let fake: FakeUpstream;
const procs: ServeProcess[] = [];
const sqls: postgres.Sql[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  fake = await startFakeUpstream({ apiKey: 'up' });
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(sqls.map((s) => s.end({ timeout: 5 })));
  await fake?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const baseEnv = () => ({
  UPSTREAM_BASE_URL: fake.url,
  UPSTREAM_API_KEY: 'up',
  UPSTREAM_MAX_RETRIES: '0',
  ADMIN_TOKEN: ADMIN,
  MASTER_KEY: 'e'.repeat(64),
  PROVIDER_ALLOWLIST: '127.0.0.1',
  PROVIDER_ALLOW_HTTP: 'true',
  // Generous: the assertion is that the verb returns once the other server applied the change.
  CHANGE_WAIT_MS: '20000',
});

function report(store: string, measured: Measured[]): void {
  const rows = summarize(measured).map((r) => `  ${r.kind.padEnd(22)} n=${r.n}  p50 ${r.p50.toFixed(0)} ms  p99 ${r.p99.toFixed(0)} ms  (verb p50 ${r.verbP50.toFixed(0)} ms)`);
  console.log(`time to effect on the other server (${store}):\n${rows.join('\n')}`);
}

async function setTier(a: Client, name: string, backends: string[]) {
  await a.admin('PUT', `/tiers/${name}`, { requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: null, backends });
}

describe('change propagation across processes (PostgreSQL)', () => {
  let setup: ScenarioSetup;
  let a: Client;
  let b: Client;
  let sql: postgres.Sql;
  let env: Record<string, string>;

  beforeAll(async () => {
    env = { ...baseEnv(), DATABASE_URL: await freshDatabaseUrl() };
    const [pa, pb] = await Promise.all([serveProcess(env), serveProcess(env)]);
    procs.push(pa, pb);
    a = client(pa.url, ADMIN);
    b = client(pb.url, ADMIN);
    sql = postgres(env.DATABASE_URL, { max: 2, onnotice: () => {} });
    sqls.push(sql);
    await setTier(a, 'byok-only', ['byok']);
    setup = { a, b, sql, cliEnv: env, byokOnlyTier: 'byok-only', providerUrl: `${fake.url}/v1` };
  }, 120_000);

  it('applies every kind of change on the other server by the time the verb returns', async () => {
    const kinds: [ScenarioKind, number][] = [
      ['key_revoked_api', 5],
      ['key_revoked_cli', 2],
      ['tenant_deleted_api', 5],
      ['tenant_updated_api', 5],
      ['tier_set_api', 5],
      ['provider_added_api', 3],
      ['provider_removed_api', 3],
      ['cache_cleared_api', 5],
      ['cache_cleared_cli', 2],
      ['tokens_revoked_cli', 2],
    ];
    const measured: Measured[] = [];
    for (const [kind, rounds] of kinds) for (let i = 0; i < rounds; i++) measured.push(await runScenario(setup, kind));
    report('PostgreSQL, LISTEN/NOTIFY', measured);
    expect(measured.filter((m) => !m.byReturn).map((m) => m.kind)).toEqual([]);
  }, 600_000);

  it("never serves a deleted tenant's vectors, and pending rows of it do not come back", async () => {
    await a.admin('POST', '/tenants', { name: 'doomed', tier: 'unlimited' });
    const { key } = (await a.admin('POST', '/tenants/doomed/keys', {})) as { key: string };
    const [{ id }] = await sql<{ id: string }[]>`SELECT id FROM tenants WHERE name = 'doomed'`;
    for (let i = 0; i < 5; i++) expect((await b.embed(key, `kept ${i}`)).status).toBe(200);
    // Misses on b while the deletion runs on a: their rows are still waiting in b's write-behind.
    const during = Array.from({ length: 20 }, (_, i) => b.embed(key, `during ${i}`));
    await a.admin('DELETE', '/tenants/doomed');
    await Promise.all(during);
    for (let i = 0; i < 5; i++) expect((await b.embed(key, `kept ${i}`)).status).toBe(401);
    // Everything b holds is written (stats flush the write-behind) before the rows are counted.
    await a.admin('POST', '/tenants', { name: 'bystander', tier: 'unlimited' });
    const other = (await a.admin('POST', '/tenants/bystander/keys', {})) as { key: string };
    expect((await b.stats(other.key)).status).toBe(200);
    expect((await sql`SELECT 1 FROM embeddings WHERE tenant_id = ${id}`).length).toBe(0);
    // The same name again is another tenant: nothing of the old one is served to it.
    await a.admin('POST', '/tenants', { name: 'doomed', tier: 'unlimited' });
    const again = (await a.admin('POST', '/tenants/doomed/keys', {})) as { key: string };
    const r = await b.embed(again.key, 'kept 0');
    expect(r.status).toBe(200);
    expect(r.headers.get('x-cache')).toBe('miss');
  }, 120_000);

  it('binds tenant JWTs to the tenant id and its token generation', async () => {
    await a.admin('POST', '/tenants', { name: 'jwt-co', tier: 'unlimited' });
    const mint = async () => ((await a.admin('POST', '/tenants/jwt-co/tokens', { ttl_seconds: 600 })) as { token: string }).token;
    const first = await mint();
    expect((await b.embed(first, 'jwt text')).status).toBe(200);
    // Deleted, then recreated under the same name: the old token names the old tenant id.
    await a.admin('DELETE', '/tenants/jwt-co');
    await a.admin('POST', '/tenants', { name: 'jwt-co', tier: 'unlimited' });
    const refused = await b.embed(first, 'jwt text');
    expect(refused.status).toBe(401);
    expect(JSON.stringify(refused.json)).toMatch(/no longer exists/);
    const second = await mint();
    const third = await mint();
    expect((await b.embed(second, 'jwt text')).status).toBe(200);
    // Revoked by the CLI: every token minted before is refused on both servers, new ones work.
    const r = await cli(env, 'tokens', 'revoke', '--tenant', 'jwt-co');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Revoked every token of jwt-co/);
    for (const server of [a, b]) {
      for (const t of [second, third]) {
        const res = await server.embed(t, 'jwt text');
        expect(res.status).toBe(401);
        expect(JSON.stringify(res.json)).toMatch(/were revoked/);
      }
    }
    const fresh = await mint();
    expect((await b.embed(fresh, 'jwt text')).status).toBe(200);
    // The admin API's revoke does the same.
    const res = await a.admin('POST', '/tenants/jwt-co/tokens/revoke');
    expect(res).toMatchObject({ revoked: true, tenant: 'jwt-co', token_generation: 2 });
    expect((await b.embed(fresh, 'jwt text')).status).toBe(401);
  }, 120_000);
});

describe('change propagation on the embedded store (one server, the CLI beside it)', () => {
  it('applies revocations and clears made by the CLI to the running server', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-prop-'));
    dirs.push(dir);
    const env = { ...baseEnv(), DATA_DIR: dir };
    const server = await serveProcess(env);
    procs.push(server);
    const s = client(server.url, ADMIN);
    // The test reads the change log through the server's own socket, as the CLI does.
    const sql = postgres({ path: path.join(dir, '.s.PGSQL.5432'), user: 'postgres', database: 'postgres', max: 1, onnotice: () => {} });
    sqls.push(sql);
    await setTier(s, 'byok-only', ['byok']);
    // The server is both sides: changes come from the CLI (a separate process on the socket).
    const setup: ScenarioSetup = { a: s, b: s, sql, cliEnv: env, byokOnlyTier: 'byok-only', providerUrl: `${fake.url}/v1` };
    const measured: Measured[] = [];
    for (const kind of ['key_revoked_cli', 'cache_cleared_cli', 'tokens_revoked_cli'] as ScenarioKind[]) {
      for (let i = 0; i < 2; i++) measured.push(await runScenario(setup, kind));
    }
    report('embedded PGlite, polled log', measured);
    expect(measured.filter((m) => !m.byReturn).map((m) => m.kind)).toEqual([]);
  }, 600_000);
});
