/** The admin service's verbs against a real, freshly migrated PostgreSQL database. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREFIX_LENGTH } from '../src/auth/api-key.js';
import { reactInProcess, type AdminChange } from '../src/admin/changes.js';
import { createAdminService, type AdminService } from '../src/admin/service.js';
import { loadConfig } from '../src/config.js';
import { DomainError } from '../src/core/errors.js';
import { createLogger } from '../src/log.js';
import { openDatabase, type Database } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { freshDatabaseUrl } from './support/db.js';

let db: Database;
let admin: AdminService;
const changes: AdminChange[] = [];
let flushes = 0;

beforeAll(async () => {
  const config = loadConfig({ DATABASE_URL: await freshDatabaseUrl(), ADMIN_TOKEN: 'service-admin-token-0123', MASTER_KEY: 'd'.repeat(64) });
  db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, logger: createLogger('silent') });
  await migrate(db.sql);
  admin = createAdminService({
    sql: db.sql,
    config,
    onChange: (c) => void changes.push(c),
    flushPending: async () => void flushes++,
  });
});
afterAll(async () => db?.close());

/** The DomainError a call refuses with. */
async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}
const since = (n: number) => changes.slice(n);

describe('admin service', () => {
  it('ships the unlimited tier and gives it to new tenants by default', async () => {
    expect((await admin.listTiers()).find((t) => t.name === 'unlimited')).toEqual({
      name: 'unlimited', requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: null, backends: ['byok', 'upstream', 'local'],
    });
    expect((await admin.createTenant({ name: 'svc-a' })).tier).toBe('unlimited');
    expect((await admin.createKey({ tenant: 'svc-new', create_tenant: true })).tier).toBe('unlimited');
  });

  it('refuses with the kind, param and code each adapter maps', async () => {
    const cases: [() => Promise<unknown>, DomainError['kind'], string | null, RegExp][] = [
      [() => admin.createTenant({ name: 'bad name' }), 'invalid_input', 'name', /names are/],
      [() => admin.createTenant({ name: '' }), 'invalid_input', 'name', /names are/],
      [() => admin.createTenant({ name: 'x'.repeat(64) }), 'invalid_input', 'name', /names are/],
      [() => admin.createTenant({ name: 'svc-b', tier: 'gold' }), 'invalid_input', 'tier', /Unknown tier gold: use one of free, pro, team, unlimited/],
      [() => admin.createTenant({ name: 'svc-a' }), 'conflict', 'name', /exists already/],
      [() => admin.showTenant({ name: 'nobody' }), 'not_found', 'name', /No tenant named nobody/],
      [() => admin.updateTenant({ name: 'nobody', tier: 'pro' }), 'not_found', 'name', /No tenant/],
      [() => admin.createKey({ tenant: 'nobody' }), 'not_found', 'tenant', /No tenant/],
      [() => admin.createKey({ tenant: 'svc-a', name: 'a\u0000b' }), 'invalid_input', 'name', /NUL/],
      [() => admin.revokeKey({ prefix: 'ec_missing00' }), 'not_found', 'prefix', /ec_missing0\./],
      [() => admin.setTier({ name: 't1', burst_per_second: 2 ** 31, backends: ['byok'] }), 'invalid_input', 'burst_per_second', /0 to 2147483647/],
      [() => admin.setTier({ name: 't1', burst_per_second: -5, backends: ['byok'] }), 'invalid_input', 'burst_per_second', /0 to 2147483647/],
      [() => admin.setTier({ name: 't1', burst_per_second: 1.5, backends: ['byok'] }), 'invalid_input', 'burst_per_second', /whole number/],
      [() => admin.setTier({ name: 't1', burst_per_second: 'abc' as unknown as number, backends: ['byok'] }), 'invalid_input', 'burst_per_second', /whole number/],
      [() => admin.setTier({ name: 't1', max_cached_rows: 2 ** 53, backends: ['byok'] }), 'invalid_input', 'max_cached_rows', /whole number/],
      [() => admin.setTier({ name: 't1' }), 'invalid_input', 'backends', /needs its backends/],
      [() => admin.clearCache({ tenant: 'svc-a', model: 'm\u0000' }), 'invalid_input', 'model', /NUL/],
      [() => admin.mintAdminToken({ ttl_seconds: 0 }), 'invalid_input', 'ttl_seconds', /from 1 to/],
      [() => admin.addProvider({ tenant: 'svc-a', name: 'p', base_url: 'http://10.0.0.1/v1', api_key: 'k', models: ['m'] }), 'invalid_input', 'base_url', /./],
      [() => admin.removeProvider({ tenant: 'svc-a', name: 'none' }), 'not_found', 'provider', /has no provider none/],
    ];
    for (const [call, kind, param, message] of cases) {
      const e = await refusal(call());
      expect({ kind: e.kind, param: e.param, message: e.message }).toEqual({ kind, param, message: expect.stringMatching(message) });
    }
    expect((await admin.listTenants()).map((t) => t.name)).not.toContain('svc-b');
  });

  it('refuses to mint tokens without a signing secret (forbidden)', async () => {
    const noJwt = createAdminService({ sql: db.sql, config: loadConfig({}), onChange: () => {} });
    expect((await refusal(noJwt.mintAdminToken())).kind).toBe('forbidden');
  });

  it('sets tiers partially; a bigint row cap round-trips', async () => {
    const n = changes.length;
    expect(await admin.setTier({ name: 'part', backends: ['byok'], requests_per_day: 10 })).toMatchObject({ created: true, burst_per_second: null, requests_per_day: 10 });
    expect(await admin.setTier({ name: 'part', burst_per_second: 10 })).toMatchObject({ created: false, requests_per_day: 10, burst_per_second: 10, backends: ['byok'] });
    expect(await admin.setTier({ name: 'part', max_cached_rows: 2 ** 40, requests_per_day: null })).toMatchObject({ requests_per_day: null, burst_per_second: 10, max_cached_rows: 2 ** 40 });
    expect(since(n)).toEqual(Array(3).fill({ type: 'tier_changed', name: 'part' }));
    expect((await admin.updateTenant({ name: 'svc-a', tier: 'part' })).tier).toBe('part');
  });

  it('reports every change, and reads or deletes only after flushing what the process holds', async () => {
    const n = changes.length;
    const t = await admin.createTenant({ name: 'svc-ev', share_public: true });
    expect(t.share_public).toBe(true);
    const k = await admin.createKey({ tenant: 'svc-ev' });
    expect(k.prefix).toHaveLength(PREFIX_LENGTH);
    await admin.updateTenant({ name: 'svc-ev', share_public: false });
    await admin.revokeKey({ prefix: k.key }); // the whole key names its prefix
    await admin.addProvider({ tenant: 'svc-ev', name: 'p', base_url: 'https://api.example.com/v1', api_key: 'sk-service-test-key-1234', models: ['m'] });
    expect((await admin.listProviders({ tenant: 'svc-ev' }))[0]).toMatchObject({ name: 'p', api_key_last4: '1234' });
    await admin.removeProvider({ tenant: 'svc-ev', name: 'p' });
    const f = flushes;
    expect(await admin.clearCache({ tenant: 'svc-ev', model: 'm' })).toEqual({ deleted: 0, tenant: 'svc-ev', model: 'm' });
    expect((await admin.stats({ tenant: 'svc-ev' })).stored_rows).toBe(0);
    await admin.deleteTenant({ name: 'svc-ev' });
    expect(flushes - f).toBe(3);
    const id = (since(n)[0] as { tenantId: number }).tenantId;
    expect(since(n)).toEqual([
      { type: 'tenant_created', tenantId: id },
      { type: 'key_created', prefix: k.prefix, tenantId: id },
      { type: 'tenant_updated', tenantId: id },
      { type: 'key_revoked', prefix: k.prefix, tenantId: id },
      { type: 'providers_changed', tenantId: id },
      { type: 'providers_changed', tenantId: id },
      { type: 'cache_cleared', tenantId: id, model: 'm' },
      { type: 'tenant_deleted', tenantId: id },
    ]);
    // Reads change nothing.
    const m = changes.length;
    await admin.listTenants();
    await admin.listKeys();
    await admin.listTiers();
    await admin.mintTenantToken({ tenant: 'svc-a' });
    expect(changes.length).toBe(m);
  });

  it('maps each change to the in-process caches it makes stale', async () => {
    const calls: string[] = [];
    const react = reactInProcess({
      auth: { forgetAll: () => void calls.push('auth') },
      embeddings: { dropHotCache: () => void calls.push('hot') },
      tiers: { refresh: async () => void calls.push('tiers') },
      providers: { forget: (id) => void calls.push(`providers:${id}`) },
    });
    const seen: Record<string, string[]> = {};
    for (const c of [
      { type: 'tenant_created', tenantId: 1 },
      { type: 'key_created', prefix: 'ec_x', tenantId: 1 },
      { type: 'tenant_updated', tenantId: 1 },
      { type: 'key_revoked', prefix: 'ec_x', tenantId: 1 },
      { type: 'tenant_deleted', tenantId: 1 },
      { type: 'tier_changed', name: 'pro' },
      { type: 'providers_changed', tenantId: 2 },
      { type: 'cache_cleared', tenantId: 1 },
    ] as AdminChange[]) {
      calls.length = 0;
      await react(c);
      seen[c.type] = [...calls];
    }
    expect(seen).toEqual({
      tenant_created: [],
      key_created: [],
      tenant_updated: ['auth'],
      key_revoked: ['auth'],
      tenant_deleted: ['auth', 'providers:1', 'hot'],
      tier_changed: ['tiers'],
      providers_changed: ['providers:2'],
      cache_cleared: ['hot'],
    });
  });
});
