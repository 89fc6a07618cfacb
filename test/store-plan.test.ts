import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { openDatabase, type Database } from '../src/store/db.js';
import { insertVectors, lookupQuery, lookupVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { importRows } from '../src/store/transfer.js';
import { freshDatabaseUrl } from './support/db.js';

// The cache lookup must probe the primary key with the hashes in its index condition on a fresh
// database filled through the server's own write path, after a bulk import, and on a table
// loaded by other means once migrations have run. Each case is run past the custom-plan phase of
// a prepared statement (5 executions), so that the plan postgres.js's statement keeps is checked.

let db: Database;
let sql: postgres.Sql;
const scope = { model: 'text-embedding-3-small', modelVersion: '1' };
const hash = (s: string) => createHash('sha256').update(s).digest();
const vector = Buffer.alloc(8 * 4, 1);

/** Rows `from`..`to` of a tenant through insertVectors, in the write-behind's batch size. */
async function write(tenantId: number, from: number, to: number) {
  for (let i = from; i <= to; i += 2000) {
    const rows = [];
    for (let k = i; k <= Math.min(to, i + 1999); k++) rows.push({ tenantId, scope, inputHash: hash(`row ${k}`), vector, tokens: 3 });
    await insertVectors(sql, rows);
  }
}

const reltuples = async () => Number((await sql`SELECT reltuples FROM pg_class WHERE oid = 'embeddings'::regclass`)[0].reltuples);

async function planOf(tenants: number[], hashes: Buffer[]): Promise<string> {
  for (let k = 0; k < 6; k++) await lookupVectors(sql, tenants, scope, hashes);
  const rows = await sql<{ 'QUERY PLAN': string }[]>`EXPLAIN ANALYZE ${lookupQuery(sql, tenants, scope, hashes)}`;
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

function expectPrimaryKeyProbes(plan: string) {
  if (process.env.SHOW_PLANS) console.log(plan);
  expect(plan).toMatch(/Index Scan using embeddings_pkey/);
  // The hash is part of the index condition, not a filter over the tenant's rows.
  expect(plan).toMatch(/Index Cond: \(.*input_hash = /);
  expect(plan).not.toMatch(/Seq Scan on embeddings|Rows Removed by Filter|Bitmap Heap Scan on embeddings/);
}

beforeAll(async () => {
  // The server's own connection settings (db.ts), not a bare client's.
  db = await openDatabase({ databaseUrl: await freshDatabaseUrl(), dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
  sql = db.sql;
  await migrate(sql);
  await sql`INSERT INTO tenants (id, name) VALUES (1, 'plan-own'), (2, 'plan-shared') ON CONFLICT DO NOTHING`;
});
afterAll(async () => db?.close());

describe('lookupVectors plan', () => {
  const hashes = (n: number) => Array.from({ length: n }, (_, i) => hash(`row ${i * 37 + 5}`));

  it('probes the primary key on a fresh database filled through insertVectors, for one and 64 hashes, one tenant or two', async () => {
    expect(await reltuples()).toBeLessThan(0); // never analysed
    await write(1, 1, 6000);
    await write(2, 1, 6000);
    for (const tenants of [[1], [1, 2]]) {
      for (const n of [1, 64]) {
        expectPrimaryKeyProbes(await planOf(tenants, hashes(n)));
        expect((await lookupVectors(sql, tenants, scope, hashes(n))).length).toBe(n * tenants.length);
      }
    }
    // The lookup batcher's merged query (server.ts: up to 128 distinct hashes), misses among them.
    const merged = Array.from({ length: 128 }, (_, i) => hash(`row ${i * 13 + 1}`));
    expectPrimaryKeyProbes(await planOf([1, 2], merged));
    expect((await lookupVectors(sql, [1, 2], scope, merged)).length).toBe(2 * merged.filter((_, i) => i * 13 + 1 <= 6000).length);
  });

  it('still probes the primary key after a bulk import grows the table fivefold past its statistics', async () => {
    const before = await reltuples();
    const rows = Array.from({ length: 48_000 }, (_, i) => ({ model: scope.model, model_version: scope.modelVersion, input_hash: hash(`imported ${i}`).toString('hex'), dims: 8, tokens: 3, vector: vector.toString('base64') }));
    for (let i = 0; i < rows.length; i += 1000) await importRows(sql, 1, rows.slice(i, i + 1000));
    expect(before).toBeGreaterThan(0);
    expectPrimaryKeyProbes(await planOf([1, 2], hashes(64)));
    expectPrimaryKeyProbes(await planOf([1], hashes(1)));
  });

  it('analyses a table loaded by other means (never analysed) when migrations run', async () => {
    const url = await freshDatabaseUrl();
    const other = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(other);
      await other`INSERT INTO tenants (id, name) VALUES (1, 'plan-own')`;
      await other`INSERT INTO embeddings (tenant_id, model, model_version, input_hash, dims, vector, tokens)
        SELECT 1, ${scope.model}, ${scope.modelVersion}, sha256(('row ' || g)::bytea), 8, ${vector}, 3 FROM generate_series(1::int, 20000::int) g`;
      await migrate(other);
      const [{ reltuples: n }] = await other`SELECT reltuples FROM pg_class WHERE oid = 'embeddings'::regclass`;
      expect(Number(n)).toBeGreaterThan(10_000);
    } finally {
      await other.end();
    }
  });

  it('finds what it should: own and public rows, missing hashes left out, other models not', async () => {
    const found = await lookupVectors(sql, [1, 2], scope, [hash('row 5'), hash('never stored'), hash('row 9')]);
    expect(found.map((r) => `${r.tenantId}:${r.inputHash.toString('hex')}`).sort()).toEqual(
      [`1:${hash('row 5').toString('hex')}`, `1:${hash('row 9').toString('hex')}`, `2:${hash('row 5').toString('hex')}`, `2:${hash('row 9').toString('hex')}`].sort(),
    );
    expect(found.every((r) => r.vector.equals(vector) && r.tokens === 3)).toBe(true);
    expect(await lookupVectors(sql, [1], { ...scope, model: 'other' }, [hash('row 5')])).toEqual([]);
  });
});
