import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { StoredVector } from '../src/core/domain.js';
import { openDatabase, type Database } from '../src/store/db.js';
import { insertVectors, lookupVectors } from '../src/store/embeddings.js';
import { LookupBatcher } from '../src/store/lookup-batcher.js';
import { migrate } from '../src/store/migrate.js';
import { freshDatabaseUrl } from './support/db.js';

// The lookup batcher over the real lookup on PostgreSQL: merged queries hand every request
// exactly what its own query would have found.

let db: Database;
const scope = { model: 'text-embedding-3-small', modelVersion: '1' };
const hash = (s: string) => createHash('sha256').update(s).digest();
const show = (rows: StoredVector[]) => rows.map((r) => `${r.tenantId}:${r.inputHash.toString('hex')}:${r.vector.toString('hex')}`).sort();

beforeAll(async () => {
  db = await openDatabase({ databaseUrl: await freshDatabaseUrl(), dataDir: 'unused', poolSize: 4, logger: pino({ level: 'silent' }) });
  await migrate(db.sql);
  await db.sql`INSERT INTO tenants (id, name) VALUES (1, 'batch-a'), (2, 'batch-b'), (0, 'public') ON CONFLICT DO NOTHING`;
  const rows = [];
  for (const tenantId of [0, 1, 2]) {
    // Each tenant holds a different subset, with its own vector bytes: a row given to the wrong request shows.
    for (let i = tenantId; i < 60; i += tenantId + 1) {
      rows.push({ tenantId, scope, inputHash: hash(`text ${i}`), vector: Buffer.from([tenantId, i, 1, 2]), tokens: i + 1 });
    }
  }
  await insertVectors(db.sql, rows);
});
afterAll(async () => db?.close());

describe('LookupBatcher on PostgreSQL', () => {
  it('gives each concurrent request the rows its own lookup finds, in fewer queries', async () => {
    const batcher = new LookupBatcher((t, s, h) => lookupVectors(db.sql, t, s, h), { maxInFlight: 2, maxHashes: 32 });
    const requests = Array.from({ length: 24 }, (_, k) => ({
      tenants: k % 3 === 0 ? [1, 0] : k % 3 === 1 ? [2, 0] : [1],
      hashes: Array.from({ length: 1 + (k % 7) }, (_, j) => hash(`text ${(k * 5 + j * 11) % 70}`)),
    }));
    const merged = await Promise.all(requests.map((r) => batcher.lookup(r.tenants, scope, r.hashes)));
    for (let k = 0; k < requests.length; k++) {
      const alone = await lookupVectors(db.sql, requests[k].tenants, scope, requests[k].hashes);
      expect(show(merged[k])).toEqual(show(alone));
    }
    expect(merged.some((rows) => rows.length > 0)).toBe(true);
    expect(batcher.queries).toBeLessThan(requests.length);
  });

  it('fails every request of a query the store refuses, and each can be served as a miss', async () => {
    const url = await freshDatabaseUrl();
    const gone = await openDatabase({ databaseUrl: url, dataDir: 'unused', poolSize: 1, logger: pino({ level: 'silent' }) });
    // No migrations: the table does not exist, so the merged query fails.
    const batcher = new LookupBatcher((t, s, h) => lookupVectors(gone.sql, t, s, h), { maxInFlight: 1, maxHashes: 32 });
    try {
      // The first finds the store idle and goes at once; the two behind it share one query.
      const results = await Promise.allSettled([batcher.lookup([1], scope, [hash('a')]), batcher.lookup([1], scope, [hash('b')]), batcher.lookup([1], scope, [hash('c')])]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(batcher.queries).toBe(2);
    } finally {
      await gone.close();
    }
  });
});
