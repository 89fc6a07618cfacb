import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/store/db.js';
import { insertVectors, lookupVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { freshDatabaseUrl } from './support/db.js';

// Vectors up to a page (768- and 1536-d float32) live in the row: no TOAST chunks to write at
// insert or to fetch at lookup (migration 008). Larger ones still go out of line, uncompressed.

let db: Database;
const scope = { model: 'text-embedding-3-small', modelVersion: 'layout' };
const hash = (s: string) => createHash('sha256').update(s).digest();

const toastBytes = async () =>
  Number((await db.sql<{ n: string }[]>`SELECT pg_relation_size(reltoastrelid) AS n FROM pg_class WHERE oid = 'embeddings'::regclass`)[0].n);

beforeAll(async () => {
  db = await openDatabase({ databaseUrl: await freshDatabaseUrl(), dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
  await migrate(db.sql);
  await db.sql`INSERT INTO tenants (id, name) VALUES (1, 'layout') ON CONFLICT DO NOTHING`;
});
afterAll(async () => db?.close());

describe('embeddings row layout', () => {
  it('keeps 768- and 1536-d vectors in the row, and returns them byte for byte', async () => {
    const rows = [768, 1536].flatMap((dims) => Array.from({ length: 20 }, (_, i) => ({ tenantId: 1, scope, inputHash: hash(`${dims} ${i}`), vector: randomBytes(dims * 4), tokens: 1 })));
    await insertVectors(db.sql, rows);
    expect(await toastBytes()).toBe(0);
    const found = await lookupVectors(db.sql, [1], scope, rows.map((r) => r.inputHash));
    expect(found).toHaveLength(rows.length);
    const byHash = new Map(found.map((f) => [f.inputHash.toString('hex'), f.vector]));
    for (const r of rows) expect(byHash.get(r.inputHash.toString('hex'))?.equals(r.vector)).toBe(true);
  });

  it('moves a vector larger than a page out of line, uncompressed, and still returns it exactly', async () => {
    const big = { tenantId: 1, scope, inputHash: hash('3072'), vector: Buffer.alloc(3072 * 4, 7), tokens: 1 };
    const before = await toastBytes();
    await insertVectors(db.sql, [big]);
    // A constant vector would compress into the row; stored EXTERNAL it goes out of line as it is.
    expect((await toastBytes()) - before).toBeGreaterThanOrEqual(3072 * 4);
    const [found] = await lookupVectors(db.sql, [1], scope, [big.inputHash]);
    expect(found.vector.equals(big.vector)).toBe(true);
  });
});
