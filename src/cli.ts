#!/usr/bin/env node
/**
 * embedding-cache: serve, migrate, keys, tenants, stats, clear, models, fake-upstream.
 * Every command reads the same environment as the server (DATABASE_URL or DATA_DIR, ...) and
 * resolves the database the same way (resolveDatabase); commands other than serve and migrate
 * refuse where there is no database instead of creating an empty one.
 */
import cluster from 'node:cluster';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { seedBatches, seedCache, type SeedProgress } from './core/seed.js';
import type { TaskType } from './core/types.js';
import { countRows, exportRows, importRows, type ExportedRow } from './store/transfer.js';
import { loadConfig, ConfigError, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { databaseExists, DatabaseMissingError, openDatabase, resolveDatabase, type Database } from './store/db.js';
import { migrate } from './store/migrate.js';
import { ensureTenant, findTenantByName } from './store/tenants.js';
import { numberFromText } from './admin/schemas.js';
import { publishAndWait } from './admin/broadcast.js';
import { createAdminService, type AdminService, type TenantView } from './admin/service.js';
import type { BackendKind } from './core/domain.js';
import { PROVIDER_KINDS, type ProviderKind } from './providers/factory.js';
import { countLines, startProgress } from './cli/progress.js';
import { findRunningServer, removeServerFile, writeServerFile } from './cli/server-file.js';
import { serverBatchRunner } from './cli/seed-remote.js';
import { createAccountService } from './admin/accounts.js';
import { AuthLimits } from './limits/auth-limits.js';

const program = new Command('embedding-cache')
  .description('OpenAI-compatible embeddings proxy with a tenant-namespaced Postgres cache.\nConfiguration comes from the environment: see README.md (HOST, PORT, DATA_DIR, DATABASE_URL, UPSTREAM_BASE_URL, MODEL_DIR, ...).')
  .showHelpAfterError();

function config(): Config {
  return loadConfig(process.env);
}

/** Set by --verbose on any command: say which database is used even for reading commands. */
let verbose = false;
/** Commands that change the database or hand out a credential for it: they always say which database. */
const MUTATING_COMMANDS = new Set([
  'keys create',
  'keys revoke',
  'tenants create',
  'tenants update',
  'tenants delete',
  'providers add',
  'providers remove',
  'tokens tenant',
  'tokens admin',
  'tiers set',
  'accounts revoke',
  'clear',
  'seed',
  'import',
]);
let mutatingCommand = false;

/** Says on stderr which database a command acts on (mutating commands always, others with --verbose). */
let announced = false;
function announceDatabase(cfg: Config, mutating: boolean): void {
  if (announced || !(mutating || mutatingCommand || verbose)) return;
  announced = true; // once per command, however often it opens the database
  console.error(`database: ${resolveDatabase(cfg).display}`);
}

/**
 * Opens the database (migrated) for one CLI command and always closes it. An embedded database
 * that does not exist is refused (DatabaseMissingError names the path and what to set), unless
 * `create` (migrate): a CLI run from the wrong directory must not make a second, empty one.
 */
async function withDb<T>(fn: (db: Database, logger: Logger) => Promise<T>, opts: { mutating?: boolean; create?: boolean } = {}): Promise<T> {
  const cfg = config();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  announceDatabase(cfg, opts.mutating ?? false);
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, logger, mustExist: !opts.create });
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
  .option('--workers <n>', "HTTP worker processes (WORKERS); default the machine's cores on PostgreSQL, 1 on the embedded store")
  .action(async (o: { workers?: string }) => {
    // Validated with the rest of the environment, and inherited by the workers.
    if (o.workers !== undefined) process.env.WORKERS = o.workers;
    let cfg = config();
    const logger = createLogger(cfg.logLevel, cfg.logFormat);
    if (cfg.workers > 1 && !cfg.workersSet && cluster.isPrimary) {
      // Each worker loads its own copy of a local model (memory and threads x WORKERS): only when asked.
      const { pulledModelDirs } = await import('./server.js');
      if (cfg.local.modelDirs.length > 0 || (await pulledModelDirs(cfg.dataDir)).length > 0) {
        logger.info({ cores: cfg.workers }, 'a local model is served: one process (set WORKERS to run several, each loading the model)');
        cfg = { ...cfg, workers: 1 };
      }
    }
    if (cfg.workers > 1 && cluster.isPrimary) await servePrimary(cfg, logger);
    else await serveOne(cfg, logger, cluster.isWorker);
  });

/** WORKERS > 1: migrate once, then fork the workers (src/cluster/primary.ts); this process serves no HTTP. */
async function servePrimary(cfg: Config, logger: Logger): Promise<void> {
  const { runPrimary } = await import('./cluster/primary.js');
  await runPrimary({
    workers: cfg.workers,
    logger,
    prepare: async () => {
      const db = await openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, logger });
      try {
        const applied = await migrate(db.sql);
        if (applied.length > 0) logger.info({ applied }, 'migrations applied');
      } finally {
        await db.close();
      }
    },
    onListening: (addr) => recordServer(cfg, logger, { address: addr.address, port: addr.port, family: addr.addressType === 6 ? 'IPv6' : 'IPv4' }),
    onStopped: () => removeServerFile(cfg.dataDir),
  });
}

/** One serving process: the whole server (WORKERS=1), or one of the primary's workers. */
async function serveOne(cfg: Config, logger: Logger, isWorker: boolean): Promise<void> {
  const { createServer } = await import('./server.js');
  let server: Awaited<ReturnType<typeof createServer>> | null = null;
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: finishing requests, flushing counters');
    try {
      if (!isWorker) await removeServerFile(cfg.dataDir);
      await server?.close();
      process.exit(server ? 0 : 1);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  // A worker whose primary is gone stops too: nothing would restart it or share its counts.
  const ties = isWorker ? (await import('./cluster/worker.js')).workerTies(() => void shutdown('primary gone')) : null;
  server = await createServer(cfg, logger, ties ? { worker: { inflight: ties.inflight } } : {});
  if (ties) {
    (await import('./cluster/worker.js')).tagResponses(server.app.server);
    ties.instrument(server.metrics.registry);
    server.metrics.text = () => ties.metricsText();
  }
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  // SIGHUP re-reads the config file (and the environment): upstreams, models, aliases, tiers.
  // A bad file is refused with every problem logged, and the running configuration stays.
  let reloading = Promise.resolve();
  const running = server;
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      try {
        const models = await running.reload(config());
        logger.info({ models, file: cfg.file?.path ?? null }, 'configuration reloaded');
      } catch (err) {
        logger.error({ problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }, 'configuration reload refused: the running configuration stays');
      }
    });
  });
  await server.app.listen({ host: cfg.host, port: cfg.port });
  // The primary records a cluster's address once its first worker listens.
  const addr = server.app.server.address();
  if (!isWorker && addr && typeof addr === 'object') await recordServer(cfg, logger, addr);
}

/** Where CLI commands on this DATA_DIR find this server (seed sends its batches here). */
async function recordServer(cfg: Config, logger: Logger, addr: { address: string; port: number; family: string }): Promise<void> {
  const host = addr.family === 'IPv6' ? `[${addr.address === '::' ? '::1' : addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
  const file = await writeServerFile(cfg.dataDir, { url: `http://${host}:${addr.port}`, pid: process.pid, database: resolveDatabase(cfg).display, auth_disabled: cfg.authDisabled });
  logger.info({ file }, 'CLI commands on this DATA_DIR find the server through this file');
}

program
  .command('config')
  .description('the operator config file (embedding-cache.yaml)')
  .command('check')
  .description('validate the config file and the environment without starting; exit 1 naming every bad value')
  .option('--file <path>', 'the file to check (default: CONFIG_FILE, else ./embedding-cache.yaml)')
  .action((o: { file?: string }) => {
    const env = o.file ? { ...process.env, CONFIG_FILE: o.file } : process.env;
    const cfg = loadConfig(env);
    if (!cfg.file) {
      console.log('No config file (CONFIG_FILE is unset and there is no ./embedding-cache.yaml); the environment is valid.');
      return;
    }
    const f = cfg.file;
    console.log(`${f.path} is valid:`);
    for (const u of f.upstreams) console.log(`  upstream ${u.name} (${u.kind}): ${u.models.map((m) => (m.model && m.model !== m.id ? `${m.id} -> ${m.model}` : m.id)).join(', ')}`);
    for (const t of f.tiers) console.log(`  tier ${t.name}: backends ${t.backends.join(', ')}`);
  });

program
  .command('migrate')
  .description('apply pending database migrations (the server also does this at start)')
  .action(async () => {
    const cfg = config();
    announceDatabase(cfg, true);
    const db = await openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, logger: createLogger(process.env.LOG_LEVEL ?? 'warn') });
    try {
      const applied = await migrate(db.sql);
      const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schema_migrations`;
      console.log(applied.length > 0 ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : `schema is up to date (${n} migrations applied earlier; nothing to do)`);
    } finally {
      await db.close();
    }
  });

/**
 * The admin verbs run through the same service as the admin API. Each change is announced to
 * the running servers, and the command returns once they applied it (or after a bounded wait).
 */
async function withAdmin(fn: (admin: AdminService) => Promise<void>): Promise<void> {
  const cfg = config();
  await withDb(async (db, logger) =>
    fn(createAdminService({ sql: db.sql, config: cfg, onChange: async (change) => void (await publishAndWait(db.sql, change, { waitMs: cfg.changeWaitMs, logger })) })),
  );
}

const keys = program.command('keys').description('API keys: create, list, revoke');
keys
  .command('create')
  .description('create an API key for a tenant (the tenant is created if needed); prints the key alone on the last line')
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--tier <tier>', 'tier for a new tenant (default: DEFAULT_TIER)')
  .option('--name <label>', 'a label for the key')
  .action((o: { tenant: string; tier?: string; name?: string }) =>
    withAdmin(async (admin) => {
      const k = await admin.createKey({ tenant: o.tenant, tier: o.tier, name: o.name, create_tenant: true });
      console.log(`Created key ${k.prefix}… for tenant ${k.tenant} (tier ${k.tier}). It is shown once: store it now.`);
      console.log(k.key);
    }),
  );
keys
  .command('list')
  .description('list keys (prefixes only)')
  .option('--tenant <name>', 'only this tenant')
  .option('--prefix <prefix>', 'only keys starting with this')
  .action((o: { tenant?: string; prefix?: string }) =>
    withAdmin(async (admin) => {
      const rows = await admin.listKeys(o);
      console.log(['prefix', 'tenant', 'name', 'created', 'revoked'].join('\t'));
      for (const r of rows) console.log([r.prefix, r.tenant, r.name ?? '', r.created_at, r.revoked_at ?? ''].join('\t'));
    }),
  );
keys
  .command('revoke <prefix>')
  .description('revoke the key with this prefix (as `keys list` shows it)')
  .action((prefix: string) =>
    withAdmin(async (admin) => {
      const r = await admin.revokeKey({ prefix });
      console.log(`Revoked ${r.prefix}. Running servers refuse it now.`);
    }),
  );

const shareOpt = () => new Option('--share-public <bool>', 'opt in or out of the shared public pool').choices(['true', 'false']);
const bool = (v: 'true' | 'false' | undefined) => (v === undefined ? undefined : v === 'true');
const printTenant = (t: TenantView) => console.log(`tenant ${t.name}: tier ${t.tier}, share_public ${t.share_public}`);

const tenants = program.command('tenants').description('tenants: create, list, show, update, delete');
tenants
  .command('create <name>')
  .option('--tier <tier>', 'tier (default: DEFAULT_TIER)')
  .addOption(shareOpt())
  .action((name: string, o: { tier?: string; sharePublic?: 'true' | 'false' }) => withAdmin(async (admin) => printTenant(await admin.createTenant({ name, tier: o.tier, share_public: bool(o.sharePublic) }))));
tenants.command('list').action(() =>
  withAdmin(async (admin) => {
    console.log(['name', 'tier', 'share_public', 'created'].join('\t'));
    for (const t of await admin.listTenants()) console.log([t.name, t.tier, t.share_public, t.created_at].join('\t'));
  }),
);
tenants.command('show <name>').action((name: string) => withAdmin(async (admin) => console.log(JSON.stringify(await admin.showTenant({ name })))));
tenants
  .command('update <name>')
  .option('--tier <tier>', 'new tier')
  .addOption(shareOpt())
  .action((name: string, o: { tier?: string; sharePublic?: 'true' | 'false' }) => withAdmin(async (admin) => printTenant(await admin.updateTenant({ name, tier: o.tier, share_public: bool(o.sharePublic) }))));
tenants
  .command('delete <name>')
  .description('delete a tenant with its keys, usage and cached vectors')
  .action((name: string) =>
    withAdmin(async (admin) => {
      await admin.deleteTenant({ name });
      console.log(`Deleted tenant ${name} and its cache.`);
    }),
  );

/** A CLI command's tenant; a missing one ends the command with a message (and exit code 1). */
async function tenantOrExit(db: Database, name: string) {
  const t = await findTenantByName(db.sql, name);
  if (!t) throw new Error(`No tenant named ${name}. See \`embedding-cache tenants list\`.`);
  return t;
}

const providers = program.command('providers').description("a tenant's own providers (BYOK): openai, azure-openai, cohere, voyage, gemini, template");
const collectOption = (v: string, acc: Record<string, string>) => {
  const i = v.indexOf('=');
  if (i <= 0) throw new Error(`--option takes key=value (got ${v}), e.g. --option api_version=2024-10-21`);
  return { ...acc, [v.slice(0, i)]: v.slice(i + 1) };
};
providers
  .command('add')
  .description('add or replace a provider; the key is encrypted under MASTER_KEY')
  .requiredOption('--tenant <name>', 'tenant name')
  .requiredOption('--name <name>', 'provider name')
  .addOption(new Option('--kind <kind>', 'wire format').choices([...PROVIDER_KINDS]).default('openai'))
  .option('--base-url <url>', "the provider's base URL (default: the kind's public endpoint; required for azure-openai and template)")
  .requiredOption('--models <ids>', 'comma-separated model ids routed to it')
  .option('--option <key=value>', 'a kind-specific option, repeatable (api_version, deployment, request, vectors_path, ...)', collectOption, {})
  .option('--api-key-env <var>', 'environment variable holding the key (keeps it out of shell history)', 'PROVIDER_API_KEY')
  .action((o: { tenant: string; name: string; kind: ProviderKind; baseUrl?: string; models: string; option: Record<string, string>; apiKeyEnv: string }) =>
    withAdmin(async (admin) => {
      const apiKey = process.env[o.apiKeyEnv];
      if (!apiKey) throw new Error(`Put the provider's key in $${o.apiKeyEnv} (or name another variable with --api-key-env).`);
      const p = await admin.addProvider({ tenant: o.tenant, name: o.name, kind: o.kind, base_url: o.baseUrl, api_key: apiKey, models: commaList(o.models), options: o.option });
      console.log(JSON.stringify(p));
    }),
  );
providers
  .command('test')
  .description("make one real call through a tenant's provider and report what came back (dimension, tokens, latency) or the error")
  .requiredOption('--tenant <name>', 'tenant name')
  .requiredOption('--name <name>', 'provider name')
  .option('--model <id>', "one of the provider's models (default: its first)")
  .action((o: { tenant: string; name: string; model?: string }) =>
    withAdmin(async (admin) => {
      const r = await admin.testProvider({ tenant: o.tenant, name: o.name, model: o.model });
      console.log(JSON.stringify(r));
      if (!r.ok) process.exitCode = 1;
    }),
  );
providers
  .command('list')
  .requiredOption('--tenant <name>', 'tenant name')
  .action((o: { tenant: string }) =>
    withAdmin(async (admin) => {
      for (const p of await admin.listProviders({ tenant: o.tenant })) console.log(JSON.stringify(p));
    }),
  );
providers
  .command('remove')
  .requiredOption('--tenant <name>', 'tenant name')
  .requiredOption('--name <name>', 'provider name')
  .action((o: { tenant: string; name: string }) =>
    withAdmin(async (admin) => {
      await admin.removeProvider({ tenant: o.tenant, name: o.name });
      console.log(`Removed provider ${o.name} of ${o.tenant}.`);
    }),
  );

const tokens = program.command('tokens').description('short-lived JWTs (signed with JWT_SECRET, else ADMIN_TOKEN)');
tokens
  .command('tenant')
  .description('mint a tenant-scoped token usable as a Bearer key; prints it alone on the last line')
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--ttl <seconds>', 'lifetime', '3600')
  .action((o: { tenant: string; ttl: string }) =>
    withAdmin(async (admin) => {
      const t = await admin.mintTenantToken({ tenant: o.tenant, ttl_seconds: numberFromText(o.ttl) as number });
      console.log(`Token for ${t.tenant} (tier ${t.tier}), valid until ${t.expires_at}:`);
      console.log(t.token);
    }),
  );
tokens
  .command('revoke')
  .description("revoke every tenant JWT minted so far for a tenant (its API keys stay valid)")
  .requiredOption('--tenant <name>', 'tenant name')
  .action((o: { tenant: string }) =>
    withAdmin(async (admin) => {
      const r = await admin.revokeTenantTokens({ tenant: o.tenant });
      console.log(`Revoked every token of ${r.tenant} (now at generation ${r.token_generation}); running servers refuse them now.`);
    }),
  );
tokens
  .command('admin')
  .description('mint an admin token for the admin API')
  .option('--ttl <seconds>', 'lifetime', '3600')
  .action((o: { ttl: string }) => withAdmin(async (admin) => console.log((await admin.mintAdminToken({ ttl_seconds: numberFromText(o.ttl) as number })).token)));

const accountsCmd = program.command('accounts').description('self-service accounts (SIGNUP_ENABLED): list them, end their sessions');
/** The account verbs over this database (the CLI never logs anyone in, so in-process limits suffice). */
const accountService = (db: Database) => {
  const cfg = config();
  const limits = new AuthLimits(null, cfg.redisPrefix, { perAddress: 1, perEmail: 1, windowSeconds: 1 });
  // Like the admin verbs' onChange here: where the broadcast to running servers will go.
  return createAccountService({ sql: db.sql, config: cfg, limits: { signup: limits, login: limits }, onChange: () => {} });
};
accountsCmd.command('list').action(() =>
  withDb(async (db) => {
    console.log(['email', 'tenant', 'tier', 'created', 'last login', 'live sessions'].join('\t'));
    for (const a of await accountService(db).list()) {
      console.log([a.email, a.tenant, a.tier, a.created_at, a.last_login_at ?? '', a.live_sessions].join('\t'));
    }
  }),
);
accountsCmd
  .command('revoke')
  .description("end every session of an account: its refresh tokens are revoked and its tenant JWTs issued until now refused (its API keys stay: `keys revoke`)")
  .requiredOption('--email <email>', 'the account')
  .action((o: { email: string }) =>
    withDb(async (db) => {
      const r = await accountService(db).revoke({ email: o.email });
      console.log(`Revoked ${r.sessions_revoked} session(s) of ${r.email} (tenant ${r.tenant}). Servers forget cached tokens within AUTH_CACHE_TTL_S.`);
    }),
  );

const tiersCmd = program.command('tiers').description('tiers and their limits');
tiersCmd.command('list').action(() =>
  withAdmin(async (admin) => {
    console.log(['name', 'requests/day', 'burst/s', 'tokens/min', 'max rows', 'backends'].join('\t'));
    for (const t of await admin.listTiers()) {
      console.log([t.name, t.requests_per_day ?? '∞', t.burst_per_second ?? '∞', t.tokens_per_minute ?? '∞', t.max_cached_rows ?? '∞', t.backends.join(',')].join('\t'));
    }
  }),
);
tiersCmd
  .command('set <name>')
  .description('create a tier, or change the limits given (numbers or "unlimited"); a new tier needs --backends, its other limits default to unlimited')
  .option('--requests-per-day <n>', 'requests per day')
  .option('--burst-per-second <n>', 'requests per second')
  .option('--tokens-per-minute <n>', 'computed tokens per minute')
  .option('--max-cached-rows <n>', 'cache rows kept per tenant')
  .option('--backends <list>', 'comma-separated: byok, upstream, local')
  .action((name: string, o: { requestsPerDay?: string; burstPerSecond?: string; tokensPerMinute?: string; maxCachedRows?: string; backends?: string }) =>
    withAdmin(async (admin) => {
      // Left as text when not a number, so the service refuses `abc` with the API's message.
      const t = await admin.setTier({
        name,
        requests_per_day: numberFromText(o.requestsPerDay) as number | null | undefined,
        burst_per_second: numberFromText(o.burstPerSecond) as number | null | undefined,
        tokens_per_minute: numberFromText(o.tokensPerMinute) as number | null | undefined,
        max_cached_rows: numberFromText(o.maxCachedRows) as number | null | undefined,
        backends: o.backends === undefined ? undefined : (commaList(o.backends) as BackendKind[]),
      });
      console.log(`tier ${t.name} ${t.created ? 'created' : 'saved'}; running servers use it now`);
    }),
  );

program
  .command('stats')
  .description("a tenant's usage and stored rows")
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--json', 'print JSON')
  .action((o: { tenant: string; json?: boolean }) =>
    withAdmin(async (admin) => {
      const stats = await admin.stats({ tenant: o.tenant });
      if (o.json) {
        console.log(JSON.stringify(stats, null, 2));
        return;
      }
      console.log(`tenant ${stats.tenant}: ${stats.stored_rows} cached vectors, ${(stats.stored_bytes / 1e6).toFixed(1)} MB`);
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
    withAdmin(async (admin) => {
      const r = await admin.clearCache({ tenant: o.tenant, model: o.model });
      console.log(`Deleted ${r.deleted} cached vectors of ${r.tenant}; running servers dropped their copies too.`);
    }),
  );

const commaList = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

program
  .command('seed')
  .description(
    "warm a tenant's cache: texts one per line from --file or stdin, through the same pipeline as requests. " +
      'Next to a running server (DATA_DIR/server.json) the batches go to that server\'s API, computed by its backends; ' +
      'with no server running they are computed in this process with this environment\'s backends',
  )
  .requiredOption('--tenant <name>', 'tenant name')
  .requiredOption('--model <id>', 'model id, as clients send it')
  .option('--file <path>', 'texts, one per line (default: stdin)')
  .option('--batch <n>', 'inputs per batch', '512')
  .option('--concurrency <n>', 'batches in flight', '4')
  .option('--task-type <type>', 'task type for local models that declare prompts')
  .option('--url <url>', "a running server's base URL (default: the one DATA_DIR/server.json names, if it answers)")
  .option('--key <key>', 'an API key of the tenant for --url (default: a temporary key, created in the database and revoked after)')
  .action(async (o: { tenant: string; model: string; file?: string; batch: string; concurrency: string; taskType?: string; url?: string; key?: string }) => {
    const cfg = config();
    const location = resolveDatabase(cfg);
    const taskType = o.taskType as TaskType | undefined;
    const batching = { batchSize: Number(o.batch), concurrency: Number(o.concurrency) };
    const lines = () => createInterface({ input: o.file ? createReadStream(o.file) : process.stdin, crlfDelay: Infinity });
    const total = o.file ? await countLines(o.file) : null;
    const seedWith = async (where: string, run: (onProgress: (p: SeedProgress) => void) => Promise<SeedProgress>) => {
      const seen: SeedProgress = { inputs: 0, hits: 0, misses: 0 };
      const progress = startProgress({ label: 'seed', unit: 'inputs', total, detail: () => `${seen.hits} hits` });
      const started = performance.now();
      try {
        const t = await run((p) => {
          Object.assign(seen, p);
          progress.update(p.inputs);
        });
        const secs = (performance.now() - started) / 1000;
        progress.finish(
          `seeded ${t.inputs} inputs (${t.hits} already cached, ${t.misses} computed) in ${secs.toFixed(1)} s: ${Math.round(t.inputs / Math.max(secs, 1e-3))} inputs/s, ${where}`,
          process.stdout,
        );
      } finally {
        progress.stop();
      }
    };
    const throughServer = (url: string, key: string | null) =>
      seedWith(`through ${url}`, (onProgress) => seedBatches(lines(), serverBatchRunner({ url, key, model: o.model, taskType }), { ...batching, onProgress }));

    if (o.url) {
      if (!o.key) throw new Error('--url needs --key (an API key of the tenant on that server)');
      console.error(`seed: through the server at ${o.url}`);
      return throughServer(o.url, o.key);
    }
    announceDatabase(cfg, true);
    const running = await findRunningServer(cfg.dataDir);
    if (running) {
      if (running.database !== location.display) {
        throw new Error(`The server at ${running.url} (pid ${running.pid}) uses ${running.database}, this command ${location.display}: give this command the server's DATABASE_URL, or seed through it with --url ${running.url} --key KEY.`);
      }
      console.error(`seed: through the running server at ${running.url} (pid ${running.pid}), with its backends`);
      if (running.auth_disabled) {
        if (o.tenant !== 'default') throw new Error(`The server at ${running.url} runs with AUTH_DISABLED: everything it computes goes to tenant \`default\`, not ${o.tenant}.`);
        return throughServer(running.url, null);
      }
      // A key of the tenant for this seed alone, revoked when it ends (the server forgets it within AUTH_CACHE_TTL_S).
      let key: { key: string; prefix: string } | null = null;
      await withAdmin(async (admin) => {
        key = await admin.createKey({ tenant: o.tenant, name: 'seed (temporary)' });
      });
      const k = key!;
      try {
        return await throughServer(running.url, k.key);
      } finally {
        await withAdmin(async (admin) => void (await admin.revokeKey({ prefix: k.prefix })));
      }
    }
    if (!(await databaseExists(location))) throw new DatabaseMissingError(location as Extract<typeof location, { kind: 'embedded' }>);
    const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const { createServer } = await import('./server.js');
    const server = await createServer(cfg, logger);
    try {
      const t = await tenantOrExit(server.db, o.tenant);
      const tenant = { id: t.id, name: t.name, tier: t.tier, sharePublic: t.sharePublic };
      const tier = await server.tiers.resolve(t.tier);
      if (server.registry.list().length === 0) {
        throw new Error('No server is running on this DATA_DIR and this environment configures no backend: start the server (npm start) and seed next to it, or give this command UPSTREAM_BASE_URL or MODEL_DIR.');
      }
      await seedWith('in this process', (onProgress) => seedCache(server.requests, tenant, tier, o.model, lines(), { ...batching, taskType, onProgress }));
    } finally {
      await server.close();
    }
  });

program
  .command('export')
  .description("write a tenant's cached vectors as JSON lines (hashes and vectors; never texts) to stdout")
  .requiredOption('--tenant <name>', 'tenant name')
  .option('--model <id>', 'only this cache model')
  .action((o: { tenant: string; model?: string }) =>
    withDb(async (db) => {
      const t = await tenantOrExit(db, o.tenant);
      const progress = startProgress({ label: 'export', unit: 'rows', total: await countRows(db.sql, t.id, o.model) });
      let n = 0;
      try {
        for await (const row of exportRows(db.sql, t.id, o.model)) {
          if (!process.stdout.write(JSON.stringify(row) + '\n')) await once(process.stdout, 'drain');
          progress.update(++n);
        }
        progress.finish(`exported ${n} rows of ${t.name}`);
      } finally {
        progress.stop();
      }
    }),
  );

program
  .command('import')
  .description("load JSON lines written by `export` into a tenant's cache (existing rows are kept)")
  .requiredOption('--tenant <name>', 'tenant name (created if needed)')
  .option('--file <path>', 'input (default: stdin)')
  .action((o: { tenant: string; file?: string }) =>
    withDb(async (db) => {
      const t = await ensureTenant(db.sql, o.tenant, config().defaultTier);
      // Counted before the reader opens: lines read while we awaited the count would be lost.
      const total = o.file ? await countLines(o.file) : null;
      const lines = createInterface({ input: o.file ? createReadStream(o.file) : process.stdin, crlfDelay: Infinity });
      const progress = startProgress({ label: 'import', unit: 'rows', total });
      let batch: ExportedRow[] = [];
      let read = 0;
      let inserted = 0;
      const flush = async () => {
        inserted += await importRows(db.sql, t.id, batch);
        batch = [];
        progress.update(read);
      };
      try {
        for await (const line of lines) {
          if (!line.trim()) continue;
          read++;
          try {
            batch.push(JSON.parse(line) as ExportedRow);
          } catch {
            throw new Error(`line ${read} is not JSON: was the file written by \`embedding-cache export\`?`);
          }
          if (batch.length === 1000) await flush();
        }
        await flush();
        progress.finish(`imported ${inserted} of ${read} rows into ${t.name} (${read - inserted} were already there)`, process.stdout);
      } finally {
        progress.stop();
      }
    }),
  );

const models = program.command('models').description('local models: pull from the Hugging Face hub');
models
  .command('pull <repo>')
  .description('download a model directory (e.g. nomic-ai/nomic-embed-text-v1.5) into DATA_DIR/models/<name>; resumable, sha256-checked')
  .option('--dir <path>', 'destination (default: DATA_DIR/models/<repo name>)')
  .option('--revision <rev>', 'branch, tag or commit', 'main')
  .option('--variant <name>', 'ONNX variant, e.g. quantized for onnx/model_quantized.onnx')
  .option('--endpoint <url>', 'hub base URL (or HF_ENDPOINT)')
  .action(async (repo: string, o: { dir?: string; revision: string; variant?: string; endpoint?: string }) => {
    const cfg = config();
    const { pullModel, MODEL_FILES } = await import('./backends/onnx/pull.js');
    const dest = o.dir ?? path.join(cfg.dataDir, 'models', repo.split('/').pop()!);
    const files = o.variant ? MODEL_FILES.map((f) => (f === 'onnx/model.onnx' ? `onnx/model_${o.variant}.onnx` : f)) : MODEL_FILES;
    // One bar per file: its total is the Content-Length (or the hub's LFS size).
    let current: { file: string; progress: ReturnType<typeof startProgress>; bytes: number } | null = null;
    const started = performance.now();
    const endFile = () => {
      if (current) current.progress.finish(`fetched ${current.file} (${current.bytes} bytes)`);
      current = null;
    };
    let pulled;
    try {
      pulled = await pullModel(repo, dest, {
        revision: o.revision,
        files,
        endpoint: o.endpoint ?? process.env.HF_ENDPOINT,
        token: process.env.HF_TOKEN,
        onProgress: (p) => {
          if (current?.file !== p.file) {
            endFile();
            current = { file: p.file, bytes: 0, progress: startProgress({ label: p.file, unit: 'B', total: p.total }) };
          }
          current.bytes = p.received;
          current.progress.update(p.received);
        },
      });
      endFile();
    } finally {
      (current as { progress: { stop(): void } } | null)?.progress.stop();
    }
    const fetched = pulled.filter((f) => !f.skipped);
    for (const f of pulled.filter((x) => x.skipped)) console.error(`unchanged ${f.file} (${f.bytes} bytes)`);
    const secs = (performance.now() - started) / 1000;
    console.error(`pulled ${repo}@${o.revision}: ${fetched.length} file(s) fetched (${fetched.reduce((a, f) => a + f.bytes, 0)} bytes), ${pulled.length - fetched.length} unchanged, in ${secs.toFixed(1)} s`);
    console.log(`Model in ${dest}. Serve it with MODEL_DIR=${dest}${o.variant ? ` (and the ${o.variant} variant)` : ''}.`);
  });

models
  .command('optimize <dir>')
  .description('make a model directory fast on a GPU: fuse attention and layer norms, pool on the GPU, fp16 (writes onnx/model_optimized[_fp16].onnx; needs python3 with onnx and onnxruntime)')
  .option('--fp16', 'half precision (vectors stay within 1e-6 cosine distance of fp32 on a nomic-sized BERT)')
  .option('--python <path>', 'python interpreter', 'python3')
  .action(async (dir: string, o: { fp16?: boolean; python: string }) => {
    const { readFile } = await import('node:fs/promises');
    const { spawnSync } = await import('node:child_process');
    const modelConfig = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { num_attention_heads?: number; hidden_size?: number };
    if (!modelConfig.num_attention_heads || !modelConfig.hidden_size) throw new Error(`${dir}/config.json has no num_attention_heads / hidden_size`);
    const variant = o.fp16 ? 'optimized_fp16' : 'optimized';
    const script = fileURLToPath(new URL('../scripts/model/optimize.py', import.meta.url));
    const args = [script, path.join(dir, 'onnx', 'model.onnx'), path.join(dir, 'onnx', `model_${variant}.onnx`), '--heads', String(modelConfig.num_attention_heads), '--hidden', String(modelConfig.hidden_size), '--use-gpu', ...(o.fp16 ? ['--fp16'] : [])];
    const r = spawnSync(o.python, args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      const why = r.error?.message ?? r.stderr;
      if (/No module named '?(onnx|onnxruntime)/.test(why)) throw new Error(`models optimize needs ONNX Runtime's Python tools: pip install onnx onnxruntime (then rerun). ${why.trim().split('\n').pop()}`);
      throw new Error(`models optimize failed: ${why.trim()}`);
    }
    console.log(`Serve it with EMBED_DEVICE=cuda EMBED_MODEL_VARIANT=${variant} MODEL_DIR=${dir}`);
  });

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

// Every command takes --verbose; the hook reads it and which command runs, before its action.
const leaves = (c: Command): Command[] => (c.commands.length === 0 ? [c] : c.commands.flatMap(leaves));
for (const c of leaves(program)) c.option('--verbose', 'say which database (and server) this command uses');
program.hook('preAction', (_program, action) => {
  verbose = action.opts().verbose === true;
  const name = [action.parent && action.parent !== program ? action.parent.name() : '', action.name()].filter(Boolean).join(' ');
  mutatingCommand = MUTATING_COMMANDS.has(name);
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(`embedding-cache: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
