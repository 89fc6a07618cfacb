#!/usr/bin/env node
/**
 * embedding-cache: serve, migrate, keys, tenants, stats, clear, models, fake-upstream.
 * Every command reads the same environment as the server (DATABASE_URL or DATA_DIR, ...).
 */
import { Command, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { openDatabase, type Database } from './store/db.js';
import { migrate } from './store/migrate.js';
import { ensureTenant, findTenantByName, listTenants, updateTenant, deleteTenant } from './store/tenants.js';
import { insertApiKey, listApiKeys, revokeApiKey } from './store/api-keys.js';
import { clearRows } from './store/embeddings.js';
import { tenantStats } from './core/stats.js';
import { generateApiKey } from './limits/api-key.js';

const program = new Command('embedding-cache')
  .description('OpenAI-compatible embeddings proxy with a tenant-namespaced Postgres cache.\nConfiguration comes from the environment: see README.md (HOST, PORT, DATA_DIR, DATABASE_URL, UPSTREAM_BASE_URL, MODEL_DIR, ...).')
  .showHelpAfterError();

function config(): Config {
  return loadConfig(process.env);
}

/** Opens the database (migrated) for one CLI command and always closes it. */
async function withDb<T>(fn: (db: Database, logger: Logger) => Promise<T>): Promise<T> {
  const cfg = config();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, logger });
  try {
    await migrate(db.sql);
    return await fn(db, logger);
  } finally {
    await db.close();
  }
}

program
  .command('serve')
  .description('start the HTTP server (the default `npm start`)')
  .action(async () => {
    const cfg = config();
    const logger = createLogger(cfg.logLevel);
    const { createServer } = await import('./server.js');
    const server = await createServer(cfg, logger);
    let closing = false;
    const shutdown = async (signal: string) => {
      if (closing) return;
      closing = true;
      logger.info({ signal }, 'shutting down: finishing requests, flushing counters');
      try {
        await server.close();
        process.exit(0);
      } catch (err) {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      }
    };
    process.once('SIGINT', () => void shutdown('SIGINT'));
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    await server.app.listen({ host: cfg.host, port: cfg.port });
  });

program
  .command('migrate')
  .description('apply pending database migrations (the server also does this at start)')
  .action(() =>
    withDb(async (db) => {
      // withDb has migrated already; report what is recorded.
      const rows = await db.sql<{ name: string }[]>`SELECT name FROM schema_migrations ORDER BY name`;
      console.log(`migrations applied: ${rows.map((r) => r.name).join(', ')}`);
    }),
  );

const keys = program.command('keys').description('API keys: create, list, revoke');
keys
  .command('create')
  .description('create an API key for a tenant (the tenant is created if needed); prints the key alone on the last line')
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--tier <tier>', 'tier for a new tenant (default: DEFAULT_TIER)')
  .option('--name <label>', 'a label for the key')
  .action((o: { tenant: string; tier?: string; name?: string }) =>
    withDb(async (db) => {
      const tenant = await ensureTenant(db.sql, o.tenant, o.tier ?? config().defaultTier);
      const k = generateApiKey();
      await insertApiKey(db.sql, { tenantId: tenant.id, prefix: k.prefix, keyHash: k.hash, name: o.name ?? null });
      console.log(`Created key ${k.prefix}… for tenant ${tenant.name} (tier ${tenant.tier}). It is shown once: store it now.`);
      console.log(k.key);
    }),
  );
keys
  .command('list')
  .description('list keys (prefixes only)')
  .option('--tenant <name>', 'only this tenant')
  .option('--prefix <prefix>', 'only keys starting with this')
  .action((o: { tenant?: string; prefix?: string }) =>
    withDb(async (db) => {
      const rows = await listApiKeys(db.sql, o);
      console.log(['prefix', 'tenant', 'name', 'created', 'revoked'].join('\t'));
      for (const r of rows) {
        console.log([r.prefix, r.tenantName, r.name ?? '', r.createdAt.toISOString(), r.revokedAt?.toISOString() ?? ''].join('\t'));
      }
    }),
  );
keys
  .command('revoke <prefix>')
  .description('revoke the key with this prefix (as `keys list` shows it)')
  .action((prefix: string) =>
    withDb(async (db) => {
      if (!(await revokeApiKey(db.sql, prefix.slice(0, 11)))) {
        console.error(`No live key with prefix ${prefix}. See \`embedding-cache keys list\`.`);
        process.exitCode = 1;
        return;
      }
      console.log(`Revoked ${prefix.slice(0, 11)}. Servers forget cached verifications within AUTH_CACHE_TTL_S.`);
    }),
  );

const tenants = program.command('tenants').description('tenants: create, list, update, delete');
tenants
  .command('create <name>')
  .option('--tier <tier>', 'tier', 'free')
  .action((name: string, o: { tier: string }) =>
    withDb(async (db) => {
      const t = await ensureTenant(db.sql, name, o.tier);
      console.log(`tenant ${t.name} (id ${t.id}, tier ${t.tier})`);
    }),
  );
tenants.command('list').action(() =>
  withDb(async (db) => {
    console.log(['id', 'name', 'tier', 'share_public', 'created'].join('\t'));
    for (const t of await listTenants(db.sql)) console.log([t.id, t.name, t.tier, t.sharePublic, t.createdAt.toISOString()].join('\t'));
  }),
);
tenants
  .command('update <name>')
  .option('--tier <tier>', 'new tier')
  .addOption(new Option('--share-public <bool>', 'opt in or out of the shared public pool').choices(['true', 'false']))
  .action((name: string, o: { tier?: string; sharePublic?: 'true' | 'false' }) =>
    withDb(async (db) => {
      const t = await updateTenant(db.sql, name, { tier: o.tier, sharePublic: o.sharePublic === undefined ? undefined : o.sharePublic === 'true' });
      if (!t) {
        console.error(`No tenant ${name}.`);
        process.exitCode = 1;
        return;
      }
      console.log(`tenant ${t.name}: tier ${t.tier}, share_public ${t.sharePublic}`);
    }),
  );
tenants
  .command('delete <name>')
  .description('delete a tenant with its keys, usage and cached vectors')
  .action((name: string) =>
    withDb(async (db) => {
      if (!(await deleteTenant(db.sql, name))) {
        console.error(`No tenant ${name}.`);
        process.exitCode = 1;
        return;
      }
      console.log(`Deleted tenant ${name} and its cache.`);
    }),
  );

program
  .command('stats')
  .description("a tenant's usage and stored rows")
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--json', 'print JSON')
  .action((o: { tenant: string; json?: boolean }) =>
    withDb(async (db) => {
      const t = await findTenantByName(db.sql, o.tenant);
      if (!t) {
        console.error(`No tenant ${o.tenant}.`);
        process.exitCode = 1;
        return;
      }
      const stats = await tenantStats(db.sql, t, config().prices);
      if (o.json) {
        console.log(JSON.stringify(stats, null, 2));
        return;
      }
      console.log(`tenant ${t.name}: ${stats.stored_rows} cached vectors, ${(stats.stored_bytes / 1e6).toFixed(1)} MB`);
      console.log(`${stats.requests} requests, ${stats.inputs} inputs, hit ratio ${(100 * stats.hit_ratio).toFixed(1)}%, ${stats.saved_tokens} tokens saved (~$${stats.estimated_savings_usd.toFixed(4)})`);
      console.log(['day', 'model', 'requests', 'inputs', 'hits', 'misses', 'tokens', 'saved_usd'].join('\t'));
      for (const u of stats.by_day) {
        console.log([u.day, u.model, u.requests, u.inputs, u.hits, u.misses, u.prompt_tokens, u.estimated_savings_usd.toFixed(4)].join('\t'));
      }
    }),
  );

program
  .command('clear')
  .description("delete a tenant's cached vectors (all, or one model's)")
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--model <id>', 'only this model (cache model id, e.g. text-embedding-3-small)')
  .action((o: { tenant: string; model?: string }) =>
    withDb(async (db) => {
      const t = await findTenantByName(db.sql, o.tenant);
      if (!t) {
        console.error(`No tenant ${o.tenant}.`);
        process.exitCode = 1;
        return;
      }
      const n = await clearRows(db.sql, t.id, o.model);
      console.log(`Deleted ${n} cached vectors of ${t.name}. Running servers drop them from memory on restart.`);
    }),
  );

program
  .command('fake-upstream')
  .description('run the fake OpenAI-compatible upstream used by tests and benchmarks (loopback)')
  .option('--port <n>', 'port', '8090')
  .option('--latency <ms>', 'added latency per call', '0')
  .option('--api-key <key>', 'require this bearer key')
  .action(async (o: { port: string; latency: string; apiKey?: string }) => {
    const { startFakeUpstream } = await import('./testing/fake-upstream.js');
    const fake = await startFakeUpstream({ port: Number(o.port), latencyMs: Number(o.latency), apiKey: o.apiKey });
    console.log(`fake upstream on ${fake.url}`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(`embedding-cache: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
