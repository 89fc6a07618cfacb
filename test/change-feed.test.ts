/**
 * The change feed against a real PostgreSQL: notifications, the log as the backstop (no LISTEN,
 * sequence numbers committed out of order, a killed LISTEN connection), publishers waiting for
 * live servers only, and the cache epoch that keeps rows computed before a clear out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeFeed, publishAndWait } from '../src/admin/broadcast.js';
import type { AdminChange } from '../src/admin/changes.js';
import { createLogger } from '../src/log.js';
import { ackChanges, listenersBehind, publishChange } from '../src/store/change-feed.js';
import { openDatabase, type Database } from '../src/store/db.js';
import { clearRows, insertVectors } from '../src/store/embeddings.js';
import { migrate } from '../src/store/migrate.js';
import { ensureTenant, findTenantById } from '../src/store/tenants.js';
import { freshDatabaseUrl } from './support/db.js';
import { waitFor } from './support/services.js';

const logger = createLogger('silent');
let db: Database;
const feeds: ChangeFeed[] = [];

beforeAll(async () => {
  db = await openDatabase({ databaseUrl: await freshDatabaseUrl(), dataDir: '/nonexistent', poolSize: 4, logger });
  await migrate(db.sql);
});
afterAll(async () => {
  for (const f of feeds) await f.stop();
  await db?.close();
});

async function feed(opts: { listen: boolean; reconcileMs: number }) {
  const applied: AdminChange[] = [];
  const f = new ChangeFeed({ sql: db.sql, ...opts, apply: (c) => void applied.push(c), resetAll: () => {}, logger, publishWaitMs: 5000 });
  await f.start();
  feeds.push(f);
  return { f, applied };
}

const revoked = (tenantId: number): AdminChange => ({ type: 'tokens_revoked', tenantId });

describe('change feed', () => {
  it("applies another process's change before its publisher returns, and its own at once", async () => {
    const a = await feed({ listen: true, reconcileMs: 60_000 });
    const b = await feed({ listen: true, reconcileMs: 60_000 });
    await a.f.publish(revoked(1));
    expect(a.applied).toEqual([revoked(1)]);
    expect(b.applied).toEqual([revoked(1)]);
    // A CLI-like publisher (no feed of its own) waits for both.
    const r = await publishAndWait(db.sql, revoked(2), { waitMs: 5000 });
    expect(r.behind).toEqual([]);
    expect(a.applied.at(-1)).toEqual(revoked(2));
    expect(b.applied.at(-1)).toEqual(revoked(2));
    await a.f.stop();
    await b.f.stop();
  });

  it('reconciles from the log without LISTEN, in order, including a change committed after a later one', async () => {
    const p = await feed({ listen: false, reconcileMs: 20 });
    const [{ next }] = await db.sql<{ next: string }[]>`SELECT nextval('admin_changes_seq_seq') AS next`;
    const reserved = Number(next); // taken now, committed after the next one: a gap, then filled
    await publishChange(db.sql, revoked(10));
    await waitFor(async () => p.applied.length === 1, 'the later change', 10_000);
    await db.sql`INSERT INTO admin_changes (seq, change) VALUES (${reserved}, ${db.sql.json(revoked(11))})`;
    await waitFor(async () => p.applied.length === 2, 'the change committed late', 10_000);
    expect(p.applied).toEqual([revoked(10), revoked(11)]);
    await waitFor(async () => p.f.appliedUpTo >= reserved + 1, 'the floor past the gap', 10_000);
    await p.f.stop();
  });

  it('catches up after its LISTEN connection is killed', async () => {
    const p = await feed({ listen: true, reconcileMs: 60_000 });
    await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'listen%' AND pid <> pg_backend_pid()`;
    await publishChange(db.sql, revoked(20));
    // Delivered by the notification if the listener was back in time, else by the reconnect's reconciliation.
    await waitFor(async () => p.applied.some((c) => c.type === 'tokens_revoked' && c.tenantId === 20), 'the change after a reconnect', 20_000);
    await p.f.stop();
  });

  it('waits only for live listeners', async () => {
    await db.sql`DELETE FROM change_listeners`;
    await ackChanges(db.sql, 'gone', 0);
    await db.sql`UPDATE change_listeners SET seen_at = now() - interval '1 minute' WHERE id = 'gone'`;
    await ackChanges(db.sql, 'slow', 0);
    const seq = await publishChange(db.sql, revoked(30));
    expect(await listenersBehind(db.sql, seq, 15)).toEqual(['slow']);
    const r = await publishAndWait(db.sql, revoked(31), { waitMs: 50 });
    expect(r.behind).toEqual(['slow']);
    await db.sql`DELETE FROM change_listeners`;
  });
});

describe('cache epoch', () => {
  it('drops rows computed before a clear when they are written after it', async () => {
    const t = await ensureTenant(db.sql, 'epoch-co', 'unlimited');
    const row = (epoch: number, n: number) => ({
      tenantId: t.id,
      scope: { model: 'm', modelVersion: '1' },
      inputHash: Buffer.alloc(32, n),
      vector: Buffer.alloc(12, 1),
      tokens: 1,
      cacheEpoch: epoch,
    });
    await insertVectors(db.sql, [row(0, 1)]);
    expect(await clearRows(db.sql, t.id)).toBe(1);
    expect((await findTenantById(db.sql, t.id))!.cacheEpoch).toBe(1);
    // Computed under epoch 0, written after the clear: dropped. Under epoch 1: kept. Unchecked: kept.
    await insertVectors(db.sql, [row(0, 2), row(1, 3), { ...row(0, 4), cacheEpoch: undefined }]);
    const hashes = (await db.sql<{ h: Buffer }[]>`SELECT input_hash AS h FROM embeddings WHERE tenant_id = ${t.id} ORDER BY input_hash`).map((r) => r.h[0]);
    expect(hashes).toEqual([3, 4]);
  });
});
