/**
 * The rate limiter's cost per request: RateLimits.admit() (+ the fire-and-forget
 * chargeTokens()) as every /v1 request pays them, with no limiter, in-process counters, and Redis (with its in-process
 * insurance). Sequential calls (latency per request) and 64 in flight (throughput).
 * Usage: npm run build && node bench/limiter.mjs [--seconds 3]
 */
import os from 'node:os';
import { Redis } from 'ioredis';
import { RateLimits } from '../dist/limits/rate-limit.js';
import { startRedis, waitFor } from './lib/services.mjs';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const tier = { name: 'bench', requestsPerDay: 1e9, burstPerSecond: 1e9, tokensPerMinute: 1e9, maxCachedRows: null, backends: ['upstream'] };
const tenants = 100;

async function measure(name, limits, inFlight) {
  let calls = 0;
  const lat = [];
  const until = performance.now() + seconds * 1000;
  const worker = async (w) => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const tenant = (calls + w) % tenants;
      if (limits) {
        await limits.admit(tenant, tier);
        limits.chargeTokens(tenant, tier, 8);
      }
      lat.push(performance.now() - t0);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] * 1000;
  return { name, inFlight, perSecond: Math.round(calls / seconds), p50us: Math.round(q(0.5)), p99us: Math.round(q(0.99)) };
}

const redisServer = await startRedis();
const rows = [];
try {
  const redis = new Redis(redisServer.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await waitFor(async () => (await redis.ping()) === 'PONG', 'redis client', 10_000);
  for (const inFlight of [1, 64]) {
    rows.push(await measure('none', null, inFlight));
    rows.push(await measure('in-process', new RateLimits(null, 'bench'), inFlight));
    rows.push(await measure('redis', new RateLimits(redis, `bench${inFlight}`), inFlight));
  }
  redis.disconnect();
} finally {
  await redisServer.stop();
}

console.log(`## rate limiter cost per request (admit + chargeTokens), ${seconds} s each, ${os.cpus().length} × ${os.cpus()[0].model}\n`);
console.log('| limiter | in flight | requests/s | p50 µs | p99 µs |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.inFlight} | ${r.perSecond.toLocaleString('en')} | ${r.p50us} | ${r.p99us} |`);
