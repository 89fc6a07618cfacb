/**
 * Change propagation, measured: how long after an admin change commits (its entry in the
 * change log) the *other* running server reflects it (key refused, tenant gone, tier applied,
 * provider listed or not, cache dropped), for each kind of change, polled every 5 ms.
 * PostgreSQL: two `serve` processes, changes by the admin API of one (and by the CLI).
 * Embedded (PGlite under DATA_DIR): one server, changes by the CLI beside it.
 * Usage: node bench/propagation.mjs [--rounds 20] [--cli-rounds 5]
 * Writes bench/results/latest-propagation.md and a JSON file next to it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { tsImport } from 'tsx/esm/api';
import { killAllTracked, startPostgres } from './lib/services.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const rounds = arg('--rounds', 20);
const cliRounds = arg('--cli-rounds', 5);

const { serveProcess, client, runScenario, summarize } = await tsImport('../test/support/propagation.ts', import.meta.url);
const { startFakeUpstream } = await tsImport('../src/testing/fake-upstream.ts', import.meta.url);

const ADMIN = 'bench-propagation-admin-token';
process.on('exit', killAllTracked);

const fake = await startFakeUpstream({ apiKey: 'up' });
const base = {
  UPSTREAM_BASE_URL: fake.url,
  UPSTREAM_API_KEY: 'up',
  ADMIN_TOKEN: ADMIN,
  MASTER_KEY: 'f'.repeat(64),
  PROVIDER_ALLOWLIST: '127.0.0.1',
  PROVIDER_ALLOW_HTTP: 'true',
};
const tierBody = (backends) => ({ requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: null, backends });

async function measureAll(setup, plan) {
  const out = [];
  for (const [kind, n] of plan) {
    for (let i = 0; i < n; i++) out.push(await runScenario(setup, kind));
    process.stderr.write(`  ${kind}: ${n} done\n`);
  }
  return summarize(out);
}

const results = {};
const pg = await startPostgres();
const cleanups = [];
try {
  {
    console.error('PostgreSQL: two servers, LISTEN/NOTIFY');
    const env = { ...base, DATABASE_URL: pg.url };
    const [pa, pb] = [await serveProcess(env), await serveProcess(env)];
    cleanups.push(() => pa.stop(), () => pb.stop());
    const sql = postgres(pg.url, { max: 2, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 5 }));
    const a = client(pa.url, ADMIN);
    await a.admin('PUT', '/tiers/byok-only', tierBody(['byok']));
    const setup = { a, b: client(pb.url, ADMIN), sql, cliEnv: env, byokOnlyTier: 'byok-only', providerUrl: `${fake.url}/v1`, pollMs: 5 };
    results.postgres = await measureAll(setup, [
      ['key_revoked_api', rounds],
      ['key_revoked_cli', cliRounds],
      ['tenant_deleted_api', rounds],
      ['tenant_updated_api', rounds],
      ['tier_set_api', rounds],
      ['provider_added_api', rounds],
      ['provider_removed_api', rounds],
      ['cache_cleared_api', rounds],
      ['cache_cleared_cli', cliRounds],
      ['tokens_revoked_cli', cliRounds],
    ]);
  }
  {
    console.error('embedded: one server, the CLI beside it (polled log)');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-bench-prop-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const env = { ...base, DATA_DIR: dir };
    const server = await serveProcess(env);
    cleanups.push(() => server.stop());
    const sql = postgres({ path: path.join(dir, '.s.PGSQL.5432'), user: 'postgres', database: 'postgres', max: 1, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 5 }));
    const s = client(server.url, ADMIN);
    await s.admin('PUT', '/tiers/byok-only', tierBody(['byok']));
    const setup = { a: s, b: s, sql, cliEnv: env, byokOnlyTier: 'byok-only', providerUrl: `${fake.url}/v1`, pollMs: 5 };
    results.embedded = await measureAll(setup, [
      ['key_revoked_cli', cliRounds],
      ['cache_cleared_cli', cliRounds],
      ['tokens_revoked_cli', cliRounds],
    ]);
  }
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await pg.stop();
  await fake.close();
}

const lines = [
  `# Change propagation (${new Date().toISOString()})`,
  '',
  `${os.cpus().length} cores (load average ${os.loadavg()[0].toFixed(1)} at the end), ${pg.version}. Time from a change's commit (its change-log entry) to the first 5 ms poll of the other server that reflected it; verb = how long the API call or CLI process took (it returns once every live server applied the change).`,
  '',
  '| store | change | n | p50 ms | p99 ms | max ms | verb p50 ms | applied by return |',
  '|---|---|---|---|---|---|---|---|',
];
for (const [store, rows] of Object.entries(results)) {
  for (const r of rows) lines.push(`| ${store} | ${r.kind} | ${r.n} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.max.toFixed(0)} | ${r.verbP50.toFixed(0)} | ${r.allByReturn ? 'yes' : 'NO'} |`);
}
const md = lines.join('\n') + '\n';
console.log(md);
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('latest-propagation.md', dir), md);
writeFileSync(new URL(`propagation-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, dir), JSON.stringify(results, null, 2));
