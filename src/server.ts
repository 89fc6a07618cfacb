import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { TenantProviders } from './providers/tenant-providers.js';
import { leanFetch } from './backends/lean-fetch.js';
import { buildOperatorUpstreams } from './providers/operator.js';
import { upsertTier } from './store/tiers.js';
import { connectionsPerProcess, type Config } from './config.js';
import { EmbedService } from './core/embed-service.js';
import { Evictor } from './core/eviction.js';
import { HotCache } from './core/hot-cache.js';
import { Metrics } from './core/metrics.js';
import { ModelAccess } from './core/model-access.js';
import { ModelRegistry } from './core/models.js';
import type { TenantContext } from './core/tenant.js';
import type { Embedder } from './core/types.js';
import { ChangeFeed } from './admin/broadcast.js';
import { forgetEverything, reactInProcess, type AdminChange } from './admin/changes.js';
import { createAdminService } from './admin/service.js';
import { buildApp } from './http/app.js';
import { DASHBOARD_ASSETS_DIR } from './http/routes/dashboard.js';
import { liveFigures } from './core/live.js';
import { publicStats } from './core/usage-report.js';
import { VectorTextCache } from './http/openai-response.js';
import { EmbedRequests } from './core/embed-request.js';
import { tenantStats } from './core/stats.js';
import { lookupVectors, insertVectors, recordHits } from './store/embeddings.js';
import { LookupBatcher } from './store/lookup-batcher.js';
import { addUsage } from './store/usage.js';
import { ApiKeyAuth } from './auth/authenticator.js';
import { KeyUsage } from './auth/key-usage.js';
import { createAccountService } from './admin/accounts.js';
import { AuthLimits } from './limits/auth-limits.js';
import { RateLimits } from './limits/rate-limit.js';
import { connectRedis } from './limits/redis.js';
import { RedisUsage } from './limits/redis-usage.js';
import { TierCatalog } from './limits/tier-catalog.js';
import type { Logger } from './log.js';
import { openDatabase, type Database } from './store/db.js';
import { migrate } from './store/migrate.js';
import { ensureTenant } from './store/tenants.js';
import type { BackendKind, UsageDelta } from './core/domain.js';
import type { InFlightRegistry } from './core/ports.js';

export interface Server {
  app: FastifyInstance;
  db: Database;
  redis: Redis | null;
  config: Config;
  embeddings: EmbedService;
  /** This process's Prometheus registry and counters (/metrics). */
  metrics: Metrics;
  /** The embeddings use-case (model resolution, dimensions, token charging): seed uses it too. */
  requests: EmbedRequests;
  registry: ModelRegistry;
  models: ModelAccess;
  tiers: TierCatalog;
  auth: ApiKeyAuth;
  /** Batched api_keys.last_used_at (tests flush it). */
  keyUsage: KeyUsage;
  evictor: Evictor;
  /** Admin changes to and from every other process. */
  changes: ChangeFeed;
  /**
   * Applies a re-read configuration's upstreams, models, aliases and tiers (SIGHUP) without
   * dropping a request: the model registry is swapped at once, in-flight requests finish on the
   * old backends, which are closed after them. Returns the model ids now served.
   */
  reload(config: Config): Promise<string[]>;
  close(): Promise<void>;
}

/** What a `serve` worker (one of WORKERS > 1 processes, see cluster/) shares with the others through its primary. */
export interface WorkerRole {
  /** Keys in flight on the whole machine: an identical miss at two workers computes once. */
  inflight: InFlightRegistry;
}

export interface BackendEntry {
  backend: Embedder;
  kind: BackendKind;
}

/**
 * Distinct hashes per merged store lookup. At 512 the planner already preferred filtering a
 * tenant's 6k rows over probing the primary key (test/store-plan.test.ts checks 128).
 */
const LOOKUP_BATCH_HASHES = 128;

/** Model directories pulled into DATA_DIR/models (served when MODEL_DIR is not set). */
export async function pulledModelDirs(dataDir: string): Promise<string[]> {
  const root = path.resolve(dataDir, 'models');
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => path.join(root, e.name));
  return dirs.filter((d) => existsSync(path.join(d, 'tokenizer.json'))).sort();
}

/** Builds the backends a config asks for: local model directories first, then the upstreams (environment's, then the config file's). */
export async function createBackends(config: Config, logger: Logger, upstreamFetch: typeof fetch = leanFetch()): Promise<BackendEntry[]> {
  const backends: BackendEntry[] = [];
  const modelDirs = config.local.modelDirs.length > 0 ? config.local.modelDirs : await pulledModelDirs(config.dataDir);
  if (modelDirs.length > 0) {
    const { createOnnxEmbedder } = await import('./backends/onnx/embedder.js');
    backends.push({ backend: await createOnnxEmbedder({ ...config.local, modelDirs, logger }), kind: 'local' });
  }
  for (const backend of buildOperatorUpstreams(config, upstreamFetch)) backends.push({ kind: 'upstream', backend });
  return backends;
}

/** Wires database, migrations, limits, backends, cache and HTTP app. Does not listen. */
export async function createServer(
  config: Config,
  logger: Logger,
  opts: { backends?: BackendEntry[]; worker?: WorkerRole } = {},
): Promise<Server> {
  // A server owns its embedded store (config refuses WORKERS > 1 there); only CLI commands attach to it.
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: connectionsPerProcess(config), logger, exclusive: true });
  const redis = config.redisUrl ? connectRedis(config.redisUrl, logger, { commandTimeoutMs: config.redisCommandTimeoutMs }) : null;
  const cleanup: (() => Promise<unknown>)[] = [() => db.close()];
  if (redis) cleanup.unshift(async () => redis.disconnect());
  try {
    // A worker's primary migrated once before forking: N workers do not race for the lock.
    const applied = opts.worker ? [] : await migrate(db.sql);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    const clustered = opts.worker !== undefined;
    const metrics = new Metrics();
    const registry = new ModelRegistry();
    // One connection pool for every operator upstream, kept across reloads.
    const upstreamFetch = leanFetch();
    for (const b of opts.backends ?? (await createBackends(config, logger, upstreamFetch))) registry.add(b.backend, b.kind);
    cleanup.unshift(() => Promise.all(registry.backends.map((b) => b.close())));
    for (const t of config.file?.tiers ?? []) await upsertTier(db.sql, t);
    if (registry.list().length === 0) {
      logger.warn('no model is configured: set MODEL_DIR for a local model or UPSTREAM_BASE_URL for an upstream');
    }
    const tiers = new TierCatalog(db.sql, logger);
    await tiers.start();
    cleanup.unshift(async () => tiers.stop());
    const hot = new HotCache(config.hotCacheBytes);
    const sql = db.sql;
    const limits = new RateLimits(redis, config.redisPrefix, (decision, window) => metrics.limiterDecisions.inc({ decision, window }), clustered);
    cleanup.unshift(async () => limits.close());
    // With Redis, usage is counted there per request (a crash loses none) and drained to the database.
    const health = limits.redisHealth;
    const redisUsage = redis && health ? new RedisUsage(redis, config.redisPrefix, logger, () => health.usable) : null;
    const writeUsage = (deltas: UsageDelta[]) => addUsage(sql, deltas);
    const drainUsage = async () => {
      await redisUsage?.drain(writeUsage).catch((err: unknown) => logger.warn({ err }, 'usage drain from Redis failed; will retry'));
    };
    // Concurrent requests' lookups merged into one query per connection (the embedded store has one).
    const lookups = new LookupBatcher((tenants, scope, hashes) => lookupVectors(sql, tenants, scope, hashes), {
      maxInFlight: db.kind === 'postgres' ? connectionsPerProcess(config) : 1,
      maxHashes: LOOKUP_BATCH_HASHES,
    });
    const embeddings = new EmbedService({
      store: {
        lookup: config.storeLookupBatch ? (tenants, scope, hashes) => lookups.lookup(tenants, scope, hashes) : (tenants, scope, hashes) => lookupVectors(sql, tenants, scope, hashes),
        insert: (rows) => insertVectors(sql, rows),
        insertBatchRows: db.insertBatchRows,
        recordHits: (counts) => recordHits(sql, counts),
      },
      usage: redisUsage ? { write: writeUsage, add: (d) => redisUsage.add(d) } : { write: writeUsage },
      hot,
      metrics,
      logger,
      lookupTimeoutMs: config.storeLookupTimeoutMs,
      usageFlushIntervalMs: config.usageFlushMs,
      inflight: opts.worker?.inflight,
    });
    let drainTimer: NodeJS.Timeout | null = null;
    if (redisUsage) {
      drainTimer = setInterval(() => void drainUsage(), config.usageDrainMs);
      drainTimer.unref();
      cleanup.unshift(async () => {
        if (drainTimer) clearInterval(drainTimer);
        await drainUsage();
      });
    }
    const evictor = new Evictor(db.sql, { ttlDays: config.cacheTtlDays, intervalMs: config.evictionIntervalMs, logger });
    evictor.start();
    let openTenant: TenantContext | null = null;
    if (config.authDisabled) {
      const t = await ensureTenant(db.sql, 'default', config.defaultTier);
      openTenant = { id: t.id, name: t.name, tier: t.tier, sharePublic: t.sharePublic };
    }
    const providers = new TenantProviders(db.sql, {
      masterKeys: config.masterKeys,
      ssrf: config.ssrf,
      timeoutMs: config.upstream.timeoutMs,
      maxRetries: config.upstream.maxRetries,
      maxBatch: config.upstream.maxBatch,
      cacheTtlMs: config.authCacheTtlMs,
      logger,
    });
    const models = new ModelAccess(registry, providers);
    const keyUsage = new KeyUsage(db.sql, logger);
    keyUsage.start();
    cleanup.unshift(() => keyUsage.close());
    const auth = new ApiKeyAuth(db.sql, config.authCacheTtlMs, config.jwtSecret, keyUsage);
    const requests = new EmbedRequests({ models, embeddings, tokens: limits });
    // Every change, made here or by any other process (server or CLI), reaches these caches.
    const caches = { auth, embeddings, tiers, providers };
    const changes = new ChangeFeed({
      sql: db.sql,
      // NOTIFY does not cross connections on the embedded store: poll its log often instead.
      listen: db.kind === 'postgres',
      reconcileMs: db.kind === 'postgres' ? 5000 : 200,
      apply: reactInProcess(caches),
      resetAll: () => forgetEverything(caches),
      logger,
      publishWaitMs: config.changeWaitMs,
    });
    await changes.start();
    cleanup.unshift(() => changes.stop());
    const onChange = (change: AdminChange) => changes.publish(change);
    const admin = createAdminService({
      sql: db.sql,
      config,
      flushPending: () => embeddings.flush(),
      onChange,
    });
    if (config.accounts.signupEnabled && (await tiers.resolve(config.defaultTier)).requestsPerDay === null) {
      logger.warn({ tier: config.defaultTier }, 'SIGNUP_ENABLED with a DEFAULT_TIER without limits: anyone who signs up gets it; set DEFAULT_TIER=free for a hosted service');
    }
    const authLimitOpts = { perAddress: config.accounts.limitPerAddress, perEmail: config.accounts.limitPerEmail, windowSeconds: config.accounts.limitWindowSeconds, clustered };
    const accounts = createAccountService({
      sql: db.sql,
      config,
      limits: { signup: new AuthLimits(redis, `${config.redisPrefix}:signup`, authLimitOpts), login: new AuthLimits(redis, `${config.redisPrefix}:login`, authLimitOpts) },
      onChange,
    });
    const usage = { sql: db.sql, prices: config.prices, flush: () => embeddings.flush() };
    metrics.hotCacheSource = () => hot.stats.bytes;
    metrics.queueSource = () =>
      Object.fromEntries(registry.backends.flatMap((b) => Object.entries(b.stats?.() ?? {}).map(([model, s]) => [model, s.queueDepth])));
    const app = await buildApp(
      {
        bodyLimit: config.bodyLimit,
        compression: config.compression,
        maxInputs: config.maxInputs,
        auth: { authenticate: (h) => auth.authenticate(h), resolveTier: (name) => tiers.resolve(name), openTenant },
        limits: { limits },
        openai: {
          requests,
          models,
          // A quarter of the hot cache's budget again: JSON text is ~5x the float32 bytes.
          vectorTexts: new VectorTextCache(Math.floor(config.hotCacheBytes / 4)),
        },
        native: {
          requests,
          stats: async (request) => {
            await embeddings.flush();
            await drainUsage();
            return tenantStats(db.sql, request.tenant, config.prices);
          },
        },
        health: {
          pingStore: () => db.sql`SELECT 1`,
          pingRedis: redis ? () => redis.ping() : null,
          backends: () => registry.backends,
        },
        metrics: { metrics },
        selfService: { admin },
        me: { accounts, flushUsage: () => embeddings.flush() },
        accounts: { accounts, signupEnabled: config.accounts.signupEnabled },
        admin: { admin, adminToken: config.adminToken, jwtSecret: config.jwtSecret, accounts },
        usage: {
          admin: { ...usage, live: () => liveFigures({ hot, metrics, store: { kind: db.kind, probe: () => db.sql`SELECT 1` }, redis: redis ? () => redis.ping() : null }) },
          tenant: usage,
        },
        dashboard: { assetsDir: DASHBOARD_ASSETS_DIR, publicStats: config.publicStatsEnabled, stats: () => publicStats(db.sql) },
      },
      logger,
    );
    return {
      app,
      db,
      redis,
      config,
      embeddings,
      metrics,
      requests,
      registry,
      models,
      tiers,
      auth,
      keyUsage,
      evictor,
      changes,
      async reload(next: Config) {
        const fresh = buildOperatorUpstreams(next, upstreamFetch);
        for (const t of next.file?.tiers ?? []) await upsertTier(db.sql, t);
        await tiers.refresh();
        const old = registry.replace('upstream', fresh);
        void Promise.all(old.map((b) => b.close())).catch((err: unknown) => logger.warn({ err }, 'closing replaced upstreams failed'));
        return registry.list().map((m) => m.spec.id);
      },
      async close() {
        await app.close();
        await evictor.stop();
        // Counters gathered in memory reach the database before it closes: nothing is lost.
        await embeddings.close();
        for (const c of cleanup) await c();
      },
    };
  } catch (err) {
    for (const c of cleanup) await c().catch(() => {});
    throw err;
  }
}
