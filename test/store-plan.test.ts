import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupQuery, lookupVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { freshDatabaseUrl } from './support/db.js';

// The cache lookup must probe the primary key whatever the planner knows about the table: on a
// fresh database, before autovacuum has analysed `embeddings`, after a bulk load and after an
// ANALYZE. Each case is run past the custom-plan phase of a prepared statement (5 executions),
// so that the generic plan postgres.js's statement gets later is the one checked.

let sql: postgres.Sql;
const scope = { model: 'text-embedding-3-small', modelVersion: '1' };
const hash = (s: string) => createHash('sha256').update(s).digest();
const ROWS = 6000;

async function load(tenant: number, from: number, to: number) {
  const vec = Buffer.alloc(8 * 4, 1);
  await sql`INSERT INTO embeddings (tenant_id, model, model_version, input_hash, dims, vector, tokens)
    SELECT ${tenant}, ${scope.model}, ${scope.modelVersion}, sha256(('row ' || g)::bytea), 8, ${vec}, 3 FROM generate_series(${from}::int, ${to}::int) g`;
}

async function planOf(tenants: number[], hashes: Buffer[]): Promise<string> {
  for (let k = 0; k < 6; k++) await lookupVectors(sql, tenants, scope, hashes);
  const rows = await sql<{ 'QUERY PLAN': string }[]>`EXPLAIN ANALYZE ${lookupQuery(sql, tenants, scope, hashes)}`;
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

function expectPrimaryKeyProbes(plan: string) {
  expect(plan).toMatch(/Index Scan using embeddings_pkey/);
  // The hash is part of the index condition, not a filter over the tenant's rows.
  expect(plan).toMatch(/Index Cond: \(.*input_hash = /);
  expect(plan).not.toMatch(/Seq Scan on embeddings|Rows Removed by Filter|Bitmap Heap Scan on embeddings/);
}

beforeAll(async () => {
  sql = postgres(await freshDatabaseUrl(), { max: 1, onnotice: () => {} });
  await migrate(sql);
  await sql`INSERT INTO tenants (id, name) VALUES (1, 'own'), (2, 'public') ON CONFLICT DO NOTHING`;
  await load(1, 1, ROWS);
  await load(2, 1, ROWS);
});
afterAll(async () => sql?.end());

describe('lookupVectors plan', () => {
  const hashes = (n: number) => Array.from({ length: n }, (_, i) => hash(`row ${i * 37 + 5}`));

  it('probes the primary key on a never-analysed table of thousands of rows, for one and 64 hashes, one tenant or two', async () => {
    const [{ analysed }] = await sql`SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analysed FROM pg_stat_user_tables WHERE relname = 'embeddings'`;
    expect(analysed).toBe(false);
    for (const tenants of [[1], [1, 2]]) {
      for (const n of [1, 64]) {
        const plan = await planOf(tenants, hashes(n));
        expectPrimaryKeyProbes(plan);
        expect((await lookupVectors(sql, tenants, scope, hashes(n))).length).toBe(n * tenants.length);
      }
    }
  });

  it('still probes the primary key after a bulk load grows the table tenfold, and after ANALYZE', async () => {
    await load(1, ROWS + 1, ROWS * 10);
    expectPrimaryKeyProbes(await planOf([1, 2], hashes(64)));
    await sql`ANALYZE embeddings`;
    expectPrimaryKeyProbes(await planOf([1], hashes(1)));
    expectPrimaryKeyProbes(await planOf([1, 2], hashes(64)));
  });

  it('finds the rows the old ANY/ANY shape found: own and public, missing hashes left out, duplicates once per tenant', async () => {
    const found = await lookupVectors(sql, [1, 2], scope, [hash('row 5'), hash('never stored'), hash('row 9')]);
    expect(found.map((r) => `${r.tenantId}:${r.inputHash.toString('hex')}`).sort()).toEqual(
      [`1:${hash('row 5').toString('hex')}`, `1:${hash('row 9').toString('hex')}`, `2:${hash('row 5').toString('hex')}`, `2:${hash('row 9').toString('hex')}`].sort(),
    );
    expect(found.every((r) => r.vector.length === 8 * 4 && r.tokens === 3)).toBe(true);
    expect(await lookupVectors(sql, [1], { ...scope, model: 'other' }, [hash('row 5')])).toEqual([]);
  });
});
