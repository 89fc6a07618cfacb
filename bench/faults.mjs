/**
 * Fault figures (issue 9), each bounded and on loopback, stopping by itself (~1.5 minutes):
 *   postgres  max request latency while PostgreSQL is stopped for 5 s under 50 req/s (a real `serve`
 *             process), /readyz time meanwhile, rows and usage present after recovery;
 *   redis     added latency per limiter decision with Redis stalled (SIGSTOP), and the most
 *             requests admitted in any 1 s around the stall vs the per-second limit;
 *   crash     usage lost after SIGKILL of a `serve` process under load, with and without Redis.
 * Usage: node bench/faults.mjs [postgres] [redis] [crash]   (all three by default)
 * Runs from source through tsx: no build needed.
 */
import os from 'node:os';
import { tsImport } from 'tsx/esm/api';

const imp = (p) => tsImport(p, import.meta.url);
const { startPostgres, startRedis, sleep, killAllTracked } = await imp('../test/support/services.ts');
const { pacedLoad, maxInWindow, percentile } = await imp('../test/support/paced.ts');
const { seedTenant, startServeProcess, loadUntilStopped } = await imp('../test/support/serve-process.ts');
const { startFakeUpstream } = await imp('../src/testing/fake-upstream.ts');
const { RateLimits } = await imp('../src/limits/rate-limit.ts');
const { connectRedis } = await imp('../src/limits/redis.ts');
const { RedisUsage } = await imp('../src/limits/redis-usage.ts');
const { openDatabase } = await imp('../src/store/db.ts');
const { addUsage } = await imp('../src/store/usage.ts');
const { createLogger } = await imp('../src/log.ts');

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const run = (name) => wanted.length === 0 || wanted.includes(name);
const silent = createLogger('silent');
const ms = (x) => `${Math.round(x)} ms`;
const lines = [];
const out = (s) => {
  lines.push(s);
  console.log(s);
};
process.on('exit', killAllTracked);
process.on('SIGINT', () => process.exit(130));

const fake = await startFakeUpstream({ apiKey: 'up' });
const upstreamEnv = { UPSTREAM_BASE_URL: fake.url, UPSTREAM_API_KEY: 'up', UPSTREAM_MAX_RETRIES: '0' };

async function dbCount(url, tenantId) {
  const db = await openDatabase({ databaseUrl: url, dataDir: '/nonexistent', poolSize: 1, logger: silent });
  try {
    const [{ rows }] = await db.sql`SELECT count(*)::int AS rows FROM embeddings WHERE tenant_id = ${tenantId}`;
    const [{ requests }] = await db.sql`SELECT coalesce(sum(requests), 0)::int AS requests FROM usage_daily WHERE tenant_id = ${tenantId}`;
    return { rows, requests };
  } finally {
    await db.close();
  }
}

async function postgresOutage() {
  const pg = await startPostgres();
  let server;
  try {
    const { key, tenantId } = await seedTenant(pg.url, 'bench');
    server = await startServeProcess({ DATABASE_URL: pg.url, ...upstreamEnv });
    const embed = (input) =>
      fetch(`${server.url}/v1/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'text-embedding-3-small', input }),
      });
    const HOT = 20;
    let ok = 0;
    for (let i = 0; i < HOT; i++) if ((await (await embed(`hot ${i}`)).arrayBuffer(), true)) ok++;
    let readyz = null;
    const outage = { from: 2000, to: 7000 };
    // 50 requests a second, half hits and half new inputs, for 10 s; PostgreSQL stopped 2 s -> 7 s
    const samples = await pacedLoad({
      durationMs: 10_000,
      intervalMs: 20,
      send: (i) => embed(i % 2 === 0 ? `hot ${(i / 2) % HOT}` : `new ${i}`),
      at: [
        [outage.from, () => pg.pause()],
        [
          outage.from + 2500,
          async () => {
            const t0 = performance.now();
            const r = await fetch(`${server.url}/readyz`);
            readyz = { ms: performance.now() - t0, status: (await r.json()).status };
          },
        ],
        [outage.to, () => pg.resume()],
      ],
    });
    ok += samples.filter((s) => s.status === 200).length;
    const during = samples.filter((s) => s.sentAt > outage.from && s.sentAt < outage.to);
    const distinct = HOT + samples.filter((_, i) => i % 2 === 1).length;
    const t0 = performance.now();
    let got = { rows: 0, requests: 0 };
    while (performance.now() - t0 < 30_000) {
      got = await dbCount(pg.url, tenantId).catch(() => got);
      if (got.rows >= distinct && got.requests >= ok) break;
      await sleep(250);
    }
    const worst = (xs) => Math.max(0, ...xs.map((s) => s.ms));
    const before = samples.filter((s) => s.sentAt < outage.from);
    const after = samples.filter((s) => s.sentAt >= outage.to);
    out(`| postgres | 5 s outage, 50 req/s (half hits) | max latency during ${ms(worst(during))} (p50 ${ms(percentile(during.map((s) => s.ms), 50))}, p99 ${ms(percentile(during.map((s) => s.ms), 99))}); before ${ms(worst(before))}, after ${ms(worst(after))}; non-200: ${samples.length - samples.filter((s) => s.status === 200).length} of ${samples.length}; misses marked x-cache-store: unavailable: ${during.filter((s) => s.headers?.get('x-cache-store') === 'unavailable').length}; /readyz ${readyz ? `${ms(readyz.ms)} ${readyz.status}` : 'n/a'} |`);
    out(`| postgres | after recovery | rows ${got.rows}/${distinct}, usage requests ${got.requests}/${ok}, all present ${ms(performance.now() - t0)} after the load ended |`);
  } finally {
    await server?.kill();
    await pg.stop();
  }
}

async function redisStall() {
  const redis = await startRedis();
  const LIMIT = 20;
  const tier = { name: 'burst', requestsPerDay: null, burstPerSecond: LIMIT, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] };
  const client = connectRedis(redis.url, silent);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const limits = new RateLimits(client, `bench${Date.now()}`);
  try {
    // 50 decisions a second against 20/s for 8 s; Redis stalled 2.5 s -> 5.5 s
    const stall = { from: 2500, to: 5500 };
    const asResponse = () =>
      limits.admit(1, tier).then(
        () => new Response(null, { status: 200 }),
        (e) => new Response(null, { status: e?.kind === 'rate_limited' ? 429 : 500 }),
      );
    const samples = await pacedLoad({ durationMs: 8000, intervalMs: 20, send: asResponse, at: [[stall.from, () => redis.pause()], [stall.to, () => redis.resume()]] });
    const before = samples.filter((s) => s.sentAt < stall.from);
    const during = samples.filter((s) => s.sentAt > stall.from && s.sentAt < stall.to);
    const after = samples.filter((s) => s.sentAt > stall.to);
    const mean = (xs) => xs.reduce((a, s) => a + s.ms, 0) / Math.max(1, xs.length);
    const { failed, skipped } = limits.redisCounts;
    out(`| redis | stalled 3 s (SIGSTOP), 50 decisions/s | per decision: ${mean(before).toFixed(2)} ms before, ${mean(during).toFixed(2)} ms during (+${(mean(during) - mean(before)).toFixed(2)} ms; max ${ms(Math.max(...during.map((s) => s.ms)))}, ${failed} waited for the 100 ms timeout, ${skipped} decided in-process) |`);
    out(`| redis | admitted in any 1 s (limit ${LIMIT}/s) | before ${maxInWindow(before, (s) => s.status === 200)}, during ${maxInWindow(during, (s) => s.status === 200)}, after return ${maxInWindow(after, (s) => s.status === 200)}, whole run ${maxInWindow(samples, (s) => s.status === 200)} (bound ${LIMIT * 1.25}); errors: ${samples.filter((s) => s.status === 500).length} |`);
  } finally {
    limits.close();
    client.disconnect();
    redis.resume();
    await redis.stop();
  }
}

async function crash() {
  const pg = await startPostgres();
  const redis = await startRedis();
  try {
    for (const withRedis of [true, false]) {
      const db = `crash_${withRedis ? 'redis' : 'plain'}`;
      const admin = await openDatabase({ databaseUrl: pg.url, dataDir: '/nonexistent', poolSize: 1, logger: silent });
      await admin.sql.unsafe(`CREATE DATABASE ${db}`);
      await admin.close();
      const url = pg.url.replace(/\/postgres$/, `/${db}`);
      const { key, tenantId } = await seedTenant(url, 'bench');
      const prefix = `crash${Date.now()}`;
      const server = await startServeProcess({ DATABASE_URL: url, ...upstreamEnv, ...(withRedis ? { REDIS_URL: redis.url, REDIS_PREFIX: prefix } : {}) });
      const send = (i) =>
        fetch(`${server.url}/v1/embeddings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'text-embedding-3-small', input: i % 10 === 0 ? `crash new ${i}` : `crash hot ${i % 50}` }),
        });
      const load = loadUntilStopped(send, 16);
      await sleep(5000);
      await server.kill();
      const { ok } = await load.stop();
      if (withRedis) {
        const c = connectRedis(redis.url, silent);
        if (c.status !== 'ready') await new Promise((r) => c.once('ready', r));
        const d = await openDatabase({ databaseUrl: url, dataDir: '/nonexistent', poolSize: 1, logger: silent });
        await new RedisUsage(c, prefix, silent).drain((x) => addUsage(d.sql, x));
        c.disconnect();
        await d.close();
      }
      const { requests } = await dbCount(url, tenantId);
      const lost = Math.max(0, ok - requests);
      out(`| crash | SIGKILL after 5 s at 16 in flight, ${withRedis ? 'Redis (drained after)' : 'no Redis (USAGE_FLUSH_MS 50)'} | ${ok} answered 200, ${requests} in usage: lost ${lost} (${((100 * lost) / ok).toFixed(2)} %)${requests > ok ? `, ${requests - ok} counted but cut before the answer arrived` : ''} |`);
    }
  } finally {
    await redis.stop();
    await pg.stop();
  }
}

out(`### Fault figures (node bench/faults.mjs), ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg()[0].toFixed(1)} at start`);
out('');
out('| fault | setting | figure |');
out('|---|---|---|');
try {
  if (run('postgres')) await postgresOutage();
  if (run('redis')) await redisStall();
  if (run('crash')) await crash();
} finally {
  await fake.close();
}
process.exit(0);
