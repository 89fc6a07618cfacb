/**
 * Usage survives a crash: a real `serve` process under load is SIGKILLed; after a drain, the
 * usage in the database accounts for at least 99 % of the requests that got a 200.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { RedisUsage } from '../src/limits/redis-usage.js';
import { openDatabase, type Database } from '../src/store/db.js';
import { addUsage } from '../src/store/usage.js';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './support/db.js';
import { loadUntilStopped, seedTenant, startServeProcess } from './support/serve-process.js';
import { sleep } from './support/services.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream({ apiKey: 'up' });
});
afterAll(async () => fake?.close());

async function usageRequests(db: Database, tenantId: number): Promise<number> {
  const [{ n }] = await db.sql<{ n: number }[]>`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_daily WHERE tenant_id = ${tenantId}`;
  return n;
}

/** Starts serve with `env`, loads it for `loadMs`, SIGKILLs it mid-load; the 200s it gave. */
async function crashUnderLoad(env: Record<string, string>, key: string, loadMs: number): Promise<number> {
  const server = await startServeProcess({ UPSTREAM_BASE_URL: fake.url, UPSTREAM_API_KEY: 'up', ...env });
  const send = (i: number) =>
    fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      // hits and misses both: a tenth of the inputs are new
      body: JSON.stringify({ model: 'text-embedding-3-small', input: i % 10 === 0 ? `crash new ${i}` : `crash hot ${i % 50}` }),
    });
  const load = loadUntilStopped(send, 8);
  // At least loadMs, and on a busy machine until 300 requests were answered (30 s at most).
  const started = Date.now();
  while (Date.now() - started < loadMs || (load.counts.ok < 300 && Date.now() - started < 30_000)) await sleep(50);
  await server.kill();
  const { ok } = await load.stop();
  return ok;
}

describe('usage after SIGKILL under load', () => {
  it('with Redis: counted there per request, drained afterwards, at most 1 % lost', async () => {
    const databaseUrl = await freshDatabaseUrl();
    const { key, tenantId } = await seedTenant(databaseUrl, 'crashy');
    const prefix = `crash${randomBytes(4).toString('hex')}`;
    const ok = await crashUnderLoad({ DATABASE_URL: databaseUrl, REDIS_URL: inject('redisUrl'), REDIS_PREFIX: prefix }, key, 3000);
    expect(ok).toBeGreaterThan(100);
    // What the killed process left in Redis, moved by another process (here: this one).
    const redis = new Redis(inject('redisUrl'));
    const db = await openDatabase({ databaseUrl, dataDir: '/nonexistent', poolSize: 1, logger: createLogger('silent') });
    try {
      await new RedisUsage(redis, prefix, createLogger('silent')).drain((d) => addUsage(db.sql, d));
      const stored = await usageRequests(db, tenantId);
      expect(stored).toBeGreaterThanOrEqual(Math.floor(ok * 0.99));
      // Never more than what was answered plus what was in flight when it died (8 loops).
      expect(stored).toBeLessThanOrEqual(ok + 8);
    } finally {
      redis.disconnect();
      await db.close();
    }
  }, 90_000);

  it('without Redis: written every USAGE_FLUSH_MS, so a crash loses at most about that long of usage', async () => {
    const databaseUrl = await freshDatabaseUrl();
    const { key, tenantId } = await seedTenant(databaseUrl, 'crashy');
    const started = Date.now();
    const ok = await crashUnderLoad({ DATABASE_URL: databaseUrl, USAGE_FLUSH_MS: '50' }, key, 3000);
    const loadMs = Date.now() - started;
    expect(ok).toBeGreaterThan(100);
    const db = await openDatabase({ databaseUrl, dataDir: '/nonexistent', poolSize: 1, logger: createLogger('silent') });
    try {
      const stored = await usageRequests(db, tenantId);
      // The requests of a few flush intervals at this run's rate (the write in flight, the interval, scheduling slack).
      const perMs = ok / loadMs;
      expect(ok - stored).toBeLessThanOrEqual(Math.ceil(perMs * 250));
      expect(stored).toBeLessThanOrEqual(ok + 8);
    } finally {
      await db.close();
    }
  }, 90_000);
});
