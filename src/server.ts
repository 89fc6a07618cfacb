import type { FastifyInstance } from 'fastify';
import { UpstreamEmbedder } from './backends/upstream.js';
import type { Config } from './config.js';
import { EmbedService } from './core/embed-service.js';
import { HotCache } from './core/hot-cache.js';
import { ModelRegistry } from './core/models.js';
import type { TenantContext } from './core/tenant.js';
import type { Embedder } from './core/types.js';
import { buildApp } from './http/app.js';
import { ApiKeyAuth } from './limits/auth.js';
import type { Logger } from './log.js';
import { openDatabase, type Database } from './store/db.js';
import { migrate } from './store/migrate.js';
import { ensureTenant } from './store/tenants.js';

export interface Server {
  app: FastifyInstance;
  db: Database;
  embeddings: EmbedService;
  registry: ModelRegistry;
  close(): Promise<void>;
}

/** Builds the backends a config asks for: local model directories first, then the upstream. */
export async function createBackends(config: Config, logger: Logger): Promise<Embedder[]> {
  const backends: Embedder[] = [];
  if (config.local.modelDirs.length > 0) {
    const { createOnnxEmbedder } = await import('./backends/onnx/embedder.js');
    backends.push(await createOnnxEmbedder({ ...config.local, logger }));
  }
  if (config.upstream.baseUrl) {
    backends.push(
      new UpstreamEmbedder({
        baseUrl: config.upstream.baseUrl,
        apiKey: config.upstream.apiKey ?? '',
        models: config.upstream.models,
        maxBatch: config.upstream.maxBatch,
        timeoutMs: config.upstream.timeoutMs,
        maxRetries: config.upstream.maxRetries,
      }),
    );
  }
  return backends;
}

/** Wires database, migrations, backends, cache and HTTP app. Does not listen. */
export async function createServer(config: Config, logger: Logger, backends?: Embedder[]): Promise<Server> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize, logger });
  try {
    const applied = await migrate(db.sql);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    const registry = new ModelRegistry();
    for (const b of backends ?? (await createBackends(config, logger))) registry.add(b);
    if (registry.list().length === 0) {
      logger.warn('no model is configured: set MODEL_DIR for a local model or UPSTREAM_BASE_URL for an upstream; every embeddings request will get 404');
    }
    const embeddings = new EmbedService({ sql: db.sql, registry, hot: new HotCache(config.hotCacheBytes), logger });
    const auth = new ApiKeyAuth(db.sql, config.authCacheTtlMs);
    let openTenant: TenantContext | null = null;
    if (config.authDisabled) {
      const t = await ensureTenant(db.sql, 'default');
      openTenant = { id: t.id, name: t.name, tier: t.tier, sharePublic: t.sharePublic };
    }
    const app = await buildApp({ config, db, registry, embeddings, auth, openTenant }, logger);
    return {
      app,
      db,
      embeddings,
      registry,
      async close() {
        await app.close();
        await embeddings.close();
        await Promise.all(registry.backends.map((b) => b.close()));
        await db.close();
      },
    };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}
