/**
 * The embedded store (PGlite) as the server opens it: in a worker thread, behind its unix socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { INSERT_BATCH_ROWS, openDatabase, type Database } from '../src/store/db.js';
import { countRows, insertVectors, lookupVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { ensureTenant } from '../src/store/tenants.js';

const logger = createLogger('silent');
let dir: string;
let db: Database;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ec-embedded-'));
  db = await openDatabase({ dataDir: dir, poolSize: 4, logger });
  await migrate(db.sql);
}, 120_000);

afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded store', () => {
  it('runs PGlite off the main thread: the event loop keeps turning during a long statement', async () => {
    // On the main thread, PGlite's wasm runs a statement from start to end without yielding:
    // not one turn of the loop would happen while it counts millions of rows.
    let turns = 0;
    let done = false;
    const spin = async () => {
      while (!done) {
        turns++;
        await new Promise((r) => setImmediate(r));
      }
    };
    const spinning = spin();
    const [r] = await db.sql<{ n: string }[]>`SELECT count(*) AS n FROM generate_series(1, 3000000)`;
    done = true;
    await spinning;
    expect(Number(r.n)).toBe(3_000_000);
    expect(turns).toBeGreaterThan(100);
  }, 120_000);

  it('asks for small inserts, writes each vector of a batch bit for bit, keeps them across a close, and a second opener shares them through the socket', async () => {
    expect(db.insertBatchRows).toBe(INSERT_BATCH_ROWS.embedded);
    const tenant = await ensureTenant(db.sql, 'embedded-test');
    const scope = { model: 'm', modelVersion: '1' };
    const rows = Array.from({ length: 300 }, (_, i) => ({
      tenantId: tenant.id,
      scope,
      inputHash: Buffer.from(`hash-${i}`.padEnd(32, '.')),
      // Lengths vary within the batch: the insert cuts one bytea of all vectors by offset.
      vector: Buffer.from(Array.from({ length: 4 * (1 + (i % 7)) }, (_, k) => (i * 31 + k) & 255)),
      tokens: 1,
      cacheEpoch: tenant.cacheEpoch,
    }));
    await insertVectors(db.sql, rows);
    const back = await lookupVectors(db.sql, [tenant.id], scope, rows.map((r) => r.inputHash));
    const byHash = new Map(back.map((b) => [b.inputHash.toString('hex'), b.vector]));
    expect(rows.every((r) => byHash.get(r.inputHash.toString('hex'))?.equals(r.vector))).toBe(true);
    const dims = await db.sql<{ ok: boolean }[]>`SELECT bool_and(dims * 4 = octet_length(vector)) AS ok FROM embeddings WHERE tenant_id = ${tenant.id}`;
    expect(dims[0].ok).toBe(true);
    const second = await openDatabase({ dataDir: dir, poolSize: 1, logger, mustExist: true });
    expect((await countRows(second.sql, tenant.id)).rows).toBe(300);
    await second.close();
    await db.close();
    db = await openDatabase({ dataDir: dir, poolSize: 1, logger, mustExist: true });
    expect((await countRows(db.sql, tenant.id)).rows).toBe(300);
  }, 120_000);
});
