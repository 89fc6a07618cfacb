import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { openDatabase, SESSION_SETTINGS, type Database } from '../src/store/db.js';
import { insertVectors, lookupVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { importRows } from '../src/store/transfer.js';
import { freshDatabaseUrl } from './support/db.js';

// The cache lookup must probe the primary key with the hash in its index condition whatever the
// statistics say: on a fresh database never analysed, after a bulk import, on a table loaded by
// other means, and for a tenant or a model version the last ANALYZE never saw (its rows grow
// unseen until autovacuum's next analyse, after 10 % of the table: a plan that filters the
// tenant's rows then costs 25-140 ms a lookup at 20k rows). The plans checked are those of the
// server's own prepared statement, as PostgreSQL runs it (auto_explain, sent back as notices),
// past the custom-plan phase (5 executions) and with the generic plan forced.

let db: Database;
let sql: postgres.Sql;
let url: string;
const scope = { model: 'text-embedding-3-small', modelVersion: '1' };
const hash = (s: string) => createHash('sha256').update(s).digest();
const vector = Buffer.alloc(8 * 4, 1);

/** A 1536-d vector as stored (6 KB, inline): what makes a scan of the table cost what it does. */
const fullVector = Buffer.alloc(1536 * 4, 1);

/** Rows `from`..`to` of a tenant through insertVectors, in the write-behind's batch size. */
async function write(tenantId: number, from: number, to: number, v = vector) {
  for (let i = from; i <= to; i += 2000) {
    const rows = [];
    for (let k = i; k <= Math.min(to, i + 1999); k++) rows.push({ tenantId, scope, inputHash: hash(`row ${k}`), vector: v, tokens: 3 });
    await insertVectors(sql, rows);
  }
}

/** Rows `row 1`..`row n` written in plain SQL, as another process or tool would (no ANALYZE steps of this one). */
async function writeElsewhere(client: postgres.Sql, tenantId: number, modelVersion: string, n: number, v = vector) {
  await client`INSERT INTO embeddings (tenant_id, model, model_version, input_hash, dims, vector, tokens)
    SELECT ${tenantId}, ${scope.model}, ${modelVersion}, sha256(('row ' || g)::bytea), ${v.length / 4}, ${v}, 3 FROM generate_series(1::int, ${n}::int) g`;
}

const reltuples = async () => Number((await sql`SELECT reltuples FROM pg_class WHERE oid = 'embeddings'::regclass`)[0].reltuples);

/** A client with the server's session settings that collects the plans of what it runs. */
async function explaining(dbUrl: string, settings: Record<string, string>, notices: string[]): Promise<postgres.Sql> {
  const client = postgres(dbUrl, { max: 1, prepare: true, connection: settings, onnotice: (n) => void notices.push(String(n.message)) });
  await client`LOAD 'auto_explain'`;
  await client`SET auto_explain.log_min_duration = 0`;
  await client`SET auto_explain.log_analyze = on`;
  await client`SET auto_explain.log_level = notice`;
  return client;
}

const lookupPlan = (notices: string[]) => notices.filter((n) => n.includes('embeddings e')).pop();

/**
 * The plans PostgreSQL used for lookupVectors' statement, the 7th execution of it (past the
 * custom-plan phase of a prepared statement): with the server's settings, then with the generic
 * plan forced (the query's shape alone, whatever a session's plan cache does).
 */
async function plansOf(tenants: number[], hashes: Buffer[], s: typeof scope = scope): Promise<string[]> {
  const plans: string[] = [];
  for (const mode of [SESSION_SETTINGS.plan_cache_mode, 'force_generic_plan']) {
    const notices: string[] = [];
    const client = await explaining(url, { ...SESSION_SETTINGS, plan_cache_mode: mode }, notices);
    try {
      for (let k = 0; k < 7; k++) await lookupVectors(client, tenants, s, hashes);
      const plan = lookupPlan(notices);
      expect(plan, `no auto_explain notice (${mode})`).toBeDefined();
      plans.push(`[${mode}]\n${plan}`);
    } finally {
      await client.end();
    }
  }
  return plans;
}

function expectPrimaryKeyProbes(plans: string[]) {
  for (const plan of plans) {
    if (process.env.SHOW_PLANS) console.log(plan);
    // One probe of the primary key per key asked for (a bitmap of one key is a probe too)...
    expect(plan).toMatch(/(Index Scan using|Bitmap Index Scan on) embeddings_pkey/);
    // ...the hash part of the index condition, not a filter over a tenant's or a scope's rows.
    expect(plan).toMatch(/Index Cond: \(.*input_hash = /);
    expect(plan).not.toMatch(/Filter: .*input_hash|Rows Removed by (Join )?Filter|Seq Scan on embeddings|Hash Join|embeddings_evict/);
  }
}

beforeAll(async () => {
  url = await freshDatabaseUrl();
  // The server's own connection settings (db.ts), not a bare client's.
  db = await openDatabase({ databaseUrl: url, dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
  sql = db.sql;
  await migrate(sql);
  await sql`INSERT INTO tenants (id, name) VALUES (1, 'plan-own'), (2, 'plan-shared'), (3, 'plan-new') ON CONFLICT DO NOTHING`;
});
afterAll(async () => db?.close());

describe('lookupVectors plan', () => {
  const hashes = (n: number) => Array.from({ length: n }, (_, i) => hash(`row ${i * 37 + 5}`));

  it('probes the primary key on a fresh database filled through insertVectors, for one and 64 hashes, one tenant or two', async () => {
    expect(await reltuples()).toBeLessThan(0); // never analysed
    // The first write analyses a table that never was: below 1k rows, with one tenant's rows.
    await write(1, 1, 600, fullVector);
    expect(await reltuples()).toBeGreaterThan(0);
    for (const n of [1, 64]) expectPrimaryKeyProbes(await plansOf([1], hashes(n)));
    await write(1, 601, 6000);
    await write(2, 1, 6000);
    for (const tenants of [[1], [1, 2]]) {
      for (const n of [1, 64]) {
        expectPrimaryKeyProbes(await plansOf(tenants, hashes(n)));
        expect((await lookupVectors(sql, tenants, scope, hashes(n))).length).toBe(n * tenants.length);
      }
    }
    // The lookup batcher's merged query (server.ts: up to 128 distinct hashes), misses among them.
    const merged = Array.from({ length: 128 }, (_, i) => hash(`row ${i * 13 + 1}`));
    expectPrimaryKeyProbes(await plansOf([1, 2], merged));
    expect((await lookupVectors(sql, [1, 2], scope, merged)).length).toBe(2 * merged.filter((_, i) => i * 13 + 1 <= 6000).length);
  });

  it('still probes the primary key after a bulk import grows the table fivefold past its statistics', async () => {
    const before = await reltuples();
    const rows = Array.from({ length: 48_000 }, (_, i) => ({ model: scope.model, model_version: scope.modelVersion, input_hash: hash(`imported ${i}`).toString('hex'), dims: 8, tokens: 3, vector: vector.toString('base64') }));
    for (let i = 0; i < rows.length; i += 1000) await importRows(sql, 1, rows.slice(i, i + 1000));
    expect(before).toBeGreaterThan(0);
    expectPrimaryKeyProbes(await plansOf([1, 2], hashes(64)));
    expectPrimaryKeyProbes(await plansOf([1], hashes(1)));
    // The eviction walk keeps its index (partial: only queries that state `hits >= 0` can use it).
    await sql`ANALYZE embeddings`;
    const evict = await sql<{ 'QUERY PLAN': string }[]>`EXPLAIN SELECT model, model_version, input_hash FROM embeddings
      WHERE tenant_id = 1 AND hits >= 0 ORDER BY last_hit_at ASC, input_hash ASC LIMIT 100`;
    expect(evict.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/embeddings_evict/);
  });

  it('still probes the primary key for a tenant and a model version the last ANALYZE never saw', async () => {
    await sql`ANALYZE embeddings`; // tenants 1 and 2 only, one model version
    await writeElsewhere(sql, 3, scope.modelVersion, 20_000);
    expectPrimaryKeyProbes(await plansOf([3], hashes(1)));
    expectPrimaryKeyProbes(await plansOf([3, 2], hashes(64)));
    await writeElsewhere(sql, 1, 'v2', 20_000);
    const v2 = { ...scope, modelVersion: 'v2' };
    expectPrimaryKeyProbes(await plansOf([1], hashes(1), v2));
    expect((await lookupVectors(sql, [1], v2, hashes(3))).length).toBe(3);
  });

  it('keeps probing the primary key in a session that looked up while the table held a few rows', async () => {
    // A plan cached then (a scan of every row) would be kept until the next ANALYZE, at 1k rows.
    const fresh = await freshDatabaseUrl();
    const notices: string[] = [];
    const server = await openDatabase({ databaseUrl: fresh, dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
    const client = await explaining(fresh, SESSION_SETTINGS, notices);
    try {
      await migrate(server.sql);
      await server.sql`INSERT INTO tenants (id, name) VALUES (1, 'grows')`;
      const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ tenantId: 1, scope, inputHash: hash(`row ${from + i}`), vector: fullVector, tokens: 3 }));
      await insertVectors(server.sql, rows(1, 3));
      for (let k = 0; k < 7; k++) await lookupVectors(client, [1], scope, [hash('row 2'), hash('never')]);
      for (let i = 4; i <= 900; i += 100) await insertVectors(server.sql, rows(i, Math.min(900, i + 99)));
      notices.length = 0;
      expect(await lookupVectors(client, [1], scope, [hash('row 800'), hash('never')])).toHaveLength(1);
      expectPrimaryKeyProbes([lookupPlan(notices) ?? 'no plan']);
    } finally {
      await client.end();
      await server.close();
    }
  });

  it('probes the primary key on a table analysed while empty, and for an unseen version of a small table', async () => {
    // Statistics of an empty table (a cache cleared, then analysed) say nothing is there.
    const fresh = await freshDatabaseUrl();
    const server = await openDatabase({ databaseUrl: fresh, dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
    const saved = url;
    try {
      url = fresh;
      await migrate(server.sql);
      await server.sql`INSERT INTO tenants (id, name) VALUES (1, 'small')`;
      await server.sql`ANALYZE embeddings`;
      await writeElsewhere(server.sql, 1, scope.modelVersion, 300, fullVector);
      expectPrimaryKeyProbes(await plansOf([1], hashes(6)));
      // The server's first write analyses a table with rows and no statistics.
      const stats = () => server.sql`SELECT 1 FROM pg_stats WHERE tablename = 'embeddings' AND attname = 'tenant_id'`;
      expect(await stats()).toHaveLength(0);
      await insertVectors(server.sql, [{ tenantId: 1, scope, inputHash: hash('first write'), vector: fullVector, tokens: 3 }]);
      expect(await stats()).toHaveLength(1);
      await server.sql`ANALYZE embeddings`;
      await writeElsewhere(server.sql, 1, 'v3', 300, fullVector);
      expectPrimaryKeyProbes(await plansOf([1], hashes(128), { ...scope, modelVersion: 'v3' }));
    } finally {
      url = saved;
      await server.close();
    }
  });

  it('analyses a table loaded by other means (never analysed) when migrations run', async () => {
    const url = await freshDatabaseUrl();
    const other = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(other);
      await other`INSERT INTO tenants (id, name) VALUES (1, 'plan-own')`;
      await writeElsewhere(other, 1, scope.modelVersion, 20_000);
      await migrate(other);
      const [{ reltuples: n }] = await other`SELECT reltuples FROM pg_class WHERE oid = 'embeddings'::regclass`;
      expect(Number(n)).toBeGreaterThan(10_000);
      // On a sample of 3k rows (statistics target 10), not 30k: the sample holds whole 6 KB rows.
      const [{ bounds }] = await other<{ bounds: number }[]>`
        SELECT array_length(histogram_bounds::text::text[], 1) AS bounds FROM pg_stats WHERE tablename = 'embeddings' AND attname = 'input_hash'`;
      expect(bounds).toBeGreaterThan(1);
      expect(bounds).toBeLessThanOrEqual(11);
    } finally {
      await other.end();
    }
  });

  it('finds what it should: own and public rows, missing hashes left out, other models not', async () => {
    const found = await lookupVectors(sql, [1, 2], scope, [hash('row 5'), hash('never stored'), hash('row 9')]);
    expect(found.map((r) => `${r.tenantId}:${r.inputHash.toString('hex')}`).sort()).toEqual(
      [`1:${hash('row 5').toString('hex')}`, `1:${hash('row 9').toString('hex')}`, `2:${hash('row 5').toString('hex')}`, `2:${hash('row 9').toString('hex')}`].sort(),
    );
    expect(found.every((r) => r.vector.equals(r.tenantId === 1 ? fullVector : vector) && r.tokens === 3)).toBe(true);
    expect(await lookupVectors(sql, [1], { ...scope, model: 'other' }, [hash('row 5')])).toEqual([]);
  });
});
