#!/usr/bin/env node
/**
 * The raw-store reference of the `store-hit` scenario: postgres.js against the same
 * PostgreSQL, looking up the same rows the server serves, `concurrency` lookups in flight over
 * a pool the size of the server's, for a fixed time. No HTTP, no JSON: what the store alone can do.
 *
 *   node bench/lib/pg-lookups.mjs <config.json> <result.json>
 *   config: { url, poolSize, concurrency, warmupS, duration, tenantId, model, modelVersion,
 *             hashes: [hex...], perLookup: 1 | n }
 * perLookup 1: a point lookup (`input_hash = $4`) of one row per query, cycling through the
 * hashes; n: one `input_hash = ANY($4)` query for n hashes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import postgres from 'postgres';

const [, , configPath, resultPath] = process.argv;
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
const sql = postgres(cfg.url, { max: cfg.poolSize, onnotice: () => {} });
const hashes = cfg.hashes.map((h) => Buffer.from(h, 'hex'));
const many = hashes.slice(0, cfg.perLookup);
// The hashes as one bytea[] literal (sent as text, cast once by the server).
const manyLiteral = `{${cfg.hashes.slice(0, cfg.perLookup).map((h) => `"\\\\x${h}"`).join(',')}}`;

let next = 0;
const once = async () => {
  if (cfg.perLookup === 1) {
    const h = hashes[next++ % hashes.length];
    const rows = await sql`SELECT vector, tokens FROM embeddings WHERE tenant_id = ${cfg.tenantId} AND model = ${cfg.model} AND model_version = ${cfg.modelVersion} AND input_hash = ${h}`;
    if (rows.length !== 1) throw new Error(`point lookup found ${rows.length} rows`);
    return 1;
  }
  const rows = await sql`SELECT input_hash, vector, tokens FROM embeddings WHERE tenant_id = ${cfg.tenantId} AND model = ${cfg.model} AND model_version = ${cfg.modelVersion} AND input_hash = ANY(${manyLiteral}::bytea[])`;
  if (rows.length !== many.length) throw new Error(`ANY lookup found ${rows.length} of ${many.length} rows`);
  return rows.length;
};

async function run(seconds) {
  const end = performance.now() + seconds * 1000;
  const times = [];
  let lookups = 0;
  let vectors = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const found = await once(); // not `vectors += await`: that reads vectors before the await
      vectors += found;
      times.push(performance.now() - t0);
      lookups++;
    }
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  times.sort((a, b) => a - b);
  const pct = (p) => Math.round(times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] * 1000) / 1000;
  return {
    lookupsPerSec: lookups / wall,
    vectorsPerSec: vectors / wall,
    latencyMs: { p50: pct(50), p99: pct(99) },
    clientCpuUsPerLookup: Math.round((c.user + c.system) / lookups),
    clientCpuPct: Math.round((c.user + c.system) / 1e4 / wall),
  };
}

try {
  await run(cfg.warmupS);
  writeFileSync(resultPath, JSON.stringify(await run(cfg.duration)));
} finally {
  await sql.end({ timeout: 5 });
}
