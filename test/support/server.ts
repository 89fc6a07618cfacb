import { loadConfig } from '../../src/config.js';
import { pino } from 'pino';
import { createLogger, loggerOptions } from '../../src/log.js';
import { createServer, type Server } from '../../src/server.js';
import type { BackendEntry } from '../../src/server.js';
import { generateApiKey } from '../../src/auth/api-key.js';
import { insertApiKey } from '../../src/store/api-keys.js';
import { ensureTenant } from '../../src/store/tenants.js';
import { upsertTier } from '../../src/store/tiers.js';
import { startFakeUpstream, type FakeUpstream } from '../../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './db.js';

export interface TestServer {
  server: Server;
  fake: FakeUpstream;
  /** Base URL when listening (`http://127.0.0.1:PORT`), else undefined. */
  url: string | undefined;
  /** Creates an API key for `tenant` (created if needed; tier `unlimited`, every backend and no limits, unless given). */
  key(tenant: string, opts?: { tier?: string }): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real server (real PostgreSQL database of its own) in front of a fresh fake upstream.
 * `env` overrides the environment the server would read.
 */
export async function startTestServer(
  opts: {
    env?: Record<string, string>;
    listen?: boolean;
    backends?: BackendEntry[];
    fakeLatencyMs?: number;
    fakeMaxBatch?: number;
    /** Full dimension per model id the fake serves. */
    fakeModels?: Record<string, number>;
    databaseUrl?: string;
    /** Where log lines go (tests that read the logs); silent by default. */
    logStream?: NodeJS.WritableStream;
  } = {},
): Promise<TestServer> {
  const fake = await startFakeUpstream({ apiKey: 'upstream-secret', latencyMs: opts.fakeLatencyMs, maxBatch: opts.fakeMaxBatch, models: opts.fakeModels });
  const config = loadConfig({
    DATABASE_URL: opts.databaseUrl ?? (await freshDatabaseUrl()),
    UPSTREAM_BASE_URL: fake.url,
    UPSTREAM_API_KEY: 'upstream-secret',
    UPSTREAM_MAX_RETRIES: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    ...opts.env,
  });
  const logger = opts.logStream ? pino({ ...loggerOptions('trace') }, opts.logStream) : createLogger(config.logLevel);
  const server = await createServer(config, logger, { backends: opts.backends });
  await upsertTier(server.db.sql, { name: 'unlimited', requestsPerDay: null, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['byok', 'upstream', 'local'] });
  await server.tiers.refresh();
  let url: string | undefined;
  if (opts.listen) {
    await server.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = server.app.server.address();
    if (addr && typeof addr === 'object') url = `http://127.0.0.1:${addr.port}`;
  }
  return {
    server,
    fake,
    url,
    async key(tenant, o = {}) {
      const t = await ensureTenant(server.db.sql, tenant, o.tier ?? 'unlimited');
      const k = generateApiKey();
      await insertApiKey(server.db.sql, { tenantId: t.id, prefix: k.prefix, keyHash: k.hash, name: null });
      return k.key;
    },
    async close() {
      await server.close();
      await fake.close();
    },
  };
}
