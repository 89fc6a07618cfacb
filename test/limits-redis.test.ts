import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { generateApiKey } from '../src/auth/api-key.js';
import { insertApiKey } from '../src/store/api-keys.js';
import { openDatabase } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { ensureTenant } from '../src/store/tenants.js';
import { upsertTier } from '../src/store/tiers.js';
import { createLogger } from '../src/log.js';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './support/db.js';
import { startTestServer } from './support/server.js';
import { freePort, startRedis } from './support/services.js';

const children: ChildProcess[] = [];
let fake: FakeUpstream | undefined;
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  // A child ended by a signal has signalCode set and exitCode null: waiting for 'exit' then would never end.
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))));
  await fake?.close();
});

/** A real `embedding-cache serve` process: one process (WORKERS=1), as the two servers are what is shared here. */
async function serveProcess(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: { ...process.env, WORKERS: '1', ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  // Starting tsx + the server takes seconds, more on a loaded 2-core machine: up to 60 s.
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return url;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server process did not start');
}

describe('rate limits shared through Redis', () => {
  it('holds one global budget across two server processes', async () => {
    const databaseUrl = await freshDatabaseUrl();
    const db = await openDatabase({ databaseUrl, dataDir: '/nonexistent', poolSize: 1, logger: createLogger('silent') });
    await migrate(db.sql);
    await upsertTier(db.sql, { name: 'ten', requestsPerDay: 10, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    const tenant = await ensureTenant(db.sql, 'shared', 'ten');
    const k = generateApiKey();
    await insertApiKey(db.sql, { tenantId: tenant.id, prefix: k.prefix, keyHash: k.hash, name: null });
    await db.close();
    fake = await startFakeUpstream({ apiKey: 'up' });
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: inject('redisUrl'), REDIS_PREFIX: `t${randomBytes(4).toString('hex')}`, UPSTREAM_BASE_URL: fake.url, UPSTREAM_API_KEY: 'up' };
    const [a, b] = await Promise.all([serveProcess(env), serveProcess(env)]);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      for (const url of [a, b]) {
        const res = await fetch(`${url}/v1/embeddings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'text-embedding-3-small', input: `global ${i}` }),
        });
        statuses.push(res.status);
      }
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(6);
  }, 180_000);

  it('keeps serving and limiting in-process when Redis dies mid-run', async () => {
    const redis = await startRedis();
    const t = await startTestServer({ env: { REDIS_URL: redis.url } });
    try {
      await upsertTier(t.server.db.sql, { name: 'five', requestsPerDay: 5, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
      await t.server.tiers.refresh();
      const key = await t.key('survivor', { tier: 'five' });
      const call = (i: number) =>
        t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model: 'text-embedding-3-small', input: `r${i}` } });
      expect((await call(0)).statusCode).toBe(200);
      expect((await call(1)).statusCode).toBe(200);
      expect(Number(await t.server.redis!.exists(`ec:rpd:five:${(await t.server.db.sql`SELECT id FROM tenants WHERE name='survivor'`)[0].id}`))).toBe(1);
      await redis.stop();
      const after: number[] = [];
      for (let i = 2; i < 12; i++) after.push((await call(i)).statusCode);
      // No errors: in-process counts serve, then limit. They counted the first two as well, so the
      // day's budget of 5 is not handed out afresh when Redis goes away.
      expect(after.every((s) => s === 200 || s === 429)).toBe(true);
      expect(after.filter((s) => s === 200).length).toBe(3);
      expect(after.slice(3).every((s) => s === 429)).toBe(true);
      const ready = await t.server.app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'degraded', checks: { postgres: true, redis: false } });
    } finally {
      await t.close();
    }
  }, 60_000);
});
