import os from 'node:os';
import { z } from 'zod';
import { parseMasterKeys, type MasterKeys } from './security/secret-box.js';
import { parseSsrfPolicy, type SsrfPolicy } from './security/ssrf.js';
import { configFilePath, readOperatorFile, type OperatorFile } from './config/file.js';

/**
 * Configuration is read from the environment once, at start-up, validated here, and passed
 * down. Nothing below this file reads process.env.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const EnvSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8080),
  DATA_DIR: z.string().min(1).default('./.embedding-cache'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  /** Connections per process; default 10 per machine, shared by the workers (see connectionsPerProcess). */
  DATABASE_POOL_SIZE: positiveInt.optional(),
  /** HTTP worker processes of `serve` (node:cluster); default the machine's cores on PostgreSQL, 1 on the embedded store. */
  WORKERS: positiveInt.max(256).optional(),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  /** Prefix of every Redis key, for a Redis shared with other deployments. */
  REDIS_PREFIX: z.string().min(1).default('ec'),
  /** A Redis command not answered within this is given up (limits count in-process meanwhile). */
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(100),
  /** Without Redis: how often usage counters are written to the database (what a crash can lose). */
  USAGE_FLUSH_MS: positiveInt.default(50),
  /** With Redis: how often usage counted there is moved to the database. */
  USAGE_DRAIN_MS: positiveInt.default(1000),
  UPSTREAM_BASE_URL: z.url({ message: 'must be a URL such as https://api.example.com/v1' }).optional(),
  UPSTREAM_API_KEY: z.string().min(1).optional(),
  /** Models forwarded to the default upstream. */
  UPSTREAM_MODELS: list.default(['text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002']),
  /** Most inputs per upstream call; bigger requests are split. */
  UPSTREAM_MAX_BATCH: positiveInt.max(2048).default(2048),
  UPSTREAM_TIMEOUT_MS: positiveInt.default(60_000),
  UPSTREAM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  MODEL_DIR: list.optional(),
  /** ONNX file variant in each MODEL_DIR: `quantized` reads onnx/model_quantized.onnx. */
  EMBED_MODEL_VARIANT: z.string().min(1).optional(),
  EMBED_DEVICE: z.enum(['cpu', 'cuda'], { message: "must be 'cpu' or 'cuda'" }).default('cpu'),
  EMBED_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  EMBED_THREADS: z.coerce.number().int().min(0).default(0),
  /** Padded tokens per batch; default 4096 on CPU, 131072 on CUDA. */
  EMBED_MAX_BATCH_TOKENS: positiveInt.optional(),
  /** Sessions per local model fed by one queue; default 1 on CPU, 2 on CUDA. */
  EMBED_SESSIONS: positiveInt.max(8).optional(),
  /** Tokenizer worker threads; default 1 on CPU, all cores but three on CUDA. */
  EMBED_TOKENIZER_THREADS: positiveInt.max(64).optional(),
  EMBED_MAX_WAIT_MS: z.coerce.number().min(0).default(2),
  EMBED_MAX_QUEUE: positiveInt.default(10_000),
  /** A local-model request fails after this long without progress (its batch computing, or the engine finishing batches while it is queued). */
  EMBED_TIMEOUT_MS: positiveInt.default(60_000),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Signs tenant and admin JWTs; defaults to ADMIN_TOKEN. */
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  MASTER_KEY: z.string().optional(),
  /** Hosts, IPs or CIDRs a tenant's provider URL may point at despite the SSRF rules. */
  PROVIDER_ALLOWLIST: z.string().optional(),
  /** Allow http:// provider URLs (private deployments, tests). */
  PROVIDER_ALLOW_HTTP: bool.default(false),
  /** `pretty` on a terminal and `json` otherwise unless set. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty'], { message: "must be 'auto', 'json' or 'pretty'" }).default('auto'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** OpenAI's limit; configurable. */
  MAX_INPUTS: positiveInt.default(2048),
  /** Response compression: auto (never base64 embeddings; other bodies from COMPRESSION_MIN_BYTES, brotli-1 or gzip-1), gzip, br, off. */
  COMPRESSION: z.enum(['auto', 'off', 'gzip', 'br'], { message: "must be 'auto', 'off', 'gzip' or 'br'" }).default('auto'),
  /** Smallest response body compressed; default 65536 for auto, 4096 for gzip and br. */
  COMPRESSION_MIN_BYTES: z.coerce.number().int().min(0).optional(),
  /** Request body limit in bytes. */
  BODY_LIMIT: positiveInt.default(32 * 1024 * 1024),
  /** In-process hot cache in front of Postgres, in megabytes (0 disables it). */
  HOT_CACHE_MB: z.coerce.number().min(0).default(256),
  /** A cache lookup slower than this is served as a miss (the store is an optimisation, not a dependency). */
  STORE_LOOKUP_TIMEOUT_MS: positiveInt.default(500),
  /** Merge concurrent requests' cache lookups into one query per free connection (store/lookup-batcher.ts). */
  STORE_LOOKUP_BATCH: bool.default(true),
  /** Seconds a verified API key stays cached in-process (a backstop: changes reach every process at once). */
  AUTH_CACHE_TTL_S: z.coerce.number().min(0).default(30),
  /** How long an admin change (API or CLI) waits for every running server to apply it before returning. */
  CHANGE_WAIT_MS: z.coerce.number().int().min(0).default(2000),
  /** Days an unused cache row lives (0 = forever). */
  CACHE_TTL_DAYS: z.coerce.number().min(0).default(0),
  /** Tier given to tenants created without one (CLI `keys create`, AUTH_DISABLED's tenant). */
  DEFAULT_TIER: z.string().min(1).default('unlimited'),
  /** Seconds between eviction sweeps (TTL and per-tier row caps). */
  EVICTION_INTERVAL_S: z.coerce.number().min(1).default(60),
  /** USD per million tokens by model, for the money-saved estimate: JSON object, merged over the defaults. */
  PRICES: z
    .string()
    .transform((v, ctx) => {
      try {
        return z.record(z.string(), z.number().min(0)).parse(JSON.parse(v));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object of model -> USD per million tokens, e.g. {"text-embedding-3-small":0.02}' });
        return z.NEVER;
      }
    })
    .optional(),
  /** Serve /v1/* without API keys, as tenant `default` (single-user local use). */
  AUTH_DISABLED: bool.default(false),
  /** The operator's config file (upstreams, models, aliases, tiers); default ./embedding-cache.yaml when present. */
  CONFIG_FILE: z.string().min(1).optional(),
  /** Serve the public stats page (/stats, /stats.json): installation-wide figures, no tenant names. */
  PUBLIC_STATS_ENABLED: bool.default(false),
  /** Self-service accounts: /v1/auth/signup, login, refresh, logout (hosted use; closed by default). */
  SIGNUP_ENABLED: bool.default(false),
  /** Lifetime of the tenant JWT that /v1/auth/login and refresh hand out. */
  ACCESS_TOKEN_TTL_S: positiveInt.max(86_400).default(900),
  REFRESH_TOKEN_TTL_DAYS: positiveInt.max(365).default(30),
  /** Failed logins and signups per client address, and per email, within AUTH_LIMIT_WINDOW_S. */
  AUTH_LIMIT_PER_ADDRESS: positiveInt.default(20),
  AUTH_LIMIT_PER_EMAIL: positiveInt.default(5),
  AUTH_LIMIT_WINDOW_S: positiveInt.default(900),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  /** DATABASE_POOL_SIZE as set; unset, the pool follows the worker count (connectionsPerProcess). */
  databasePoolSize: number | undefined;
  /** HTTP worker processes `serve` runs (1 = a single process, no cluster). */
  workers: number;
  /** WORKERS was set (else `serve` keeps 1 where a local model would be loaded once per worker). */
  workersSet: boolean;
  redisUrl: string | undefined;
  redisPrefix: string;
  redisCommandTimeoutMs: number;
  usageFlushMs: number;
  usageDrainMs: number;
  upstream: {
    baseUrl: string | undefined;
    apiKey: string | undefined;
    models: string[];
    maxBatch: number;
    timeoutMs: number;
    maxRetries: number;
  };
  local: {
    modelDirs: string[];
    variant: string | undefined;
    device: 'cpu' | 'cuda';
    deviceId: number;
    threads: number;
    maxBatchTokens: number | undefined;
    sessions: number | undefined;
    tokenizerThreads: number | undefined;
    maxWaitMs: number;
    maxQueue: number;
    timeoutMs: number;
  };
  adminToken: string | undefined;
  jwtSecret: string | undefined;
  masterKeys: MasterKeys | undefined;
  ssrf: SsrfPolicy;
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  maxInputs: number;
  bodyLimit: number;
  compression: { mode: 'auto' | 'off' | 'gzip' | 'br'; minBytes: number };
  hotCacheBytes: number;
  storeLookupTimeoutMs: number;
  storeLookupBatch: boolean;
  authCacheTtlMs: number;
  changeWaitMs: number;
  cacheTtlDays: number;
  authDisabled: boolean;
  defaultTier: string;
  evictionIntervalMs: number;
  /** USD per million tokens, by model id. */
  prices: Record<string, number>;
  /** The operator's config file, validated (see config/file.ts); environment variables win over it. */
  file: OperatorFile | undefined;
  /** /stats and /stats.json are served. */
  publicStatsEnabled: boolean;
  accounts: {
    signupEnabled: boolean;
    accessTokenTtlSeconds: number;
    refreshTokenTtlDays: number;
    limitPerAddress: number;
    limitPerEmail: number;
    limitWindowSeconds: number;
  };
}

/** Public list prices (USD per 1M tokens) of well-known embedding models. */
export const DEFAULT_PRICES: Record<string, number> = {
  'text-embedding-3-small': 0.02,
  'text-embedding-3-large': 0.13,
  'text-embedding-ada-002': 0.1,
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validates an environment (process.env by default) into a Config, or throws ConfigError naming every bad value. */
/**
 * Connections per process when DATABASE_POOL_SIZE is not set: 10 per machine shared by its
 * workers, at least 2 each (one lookup while another is in flight). 10 per worker would put a
 * 16-core server at 160 connections, past PostgreSQL's default max_connections of 100.
 */
export function connectionsPerProcess(config: Pick<Config, 'databasePoolSize' | 'workers'>): number {
  return config.databasePoolSize ?? Math.max(2, Math.ceil(10 / config.workers));
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most shells' `FOO= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(cleaned[String(i.path[0])] ?? null)})`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const workers = e.WORKERS ?? (e.DATABASE_URL ? os.availableParallelism() : 1);
  if (e.UPSTREAM_API_KEY && !e.UPSTREAM_BASE_URL) problems.push('UPSTREAM_API_KEY is set but UPSTREAM_BASE_URL is not: set both, or neither');
  // One process owns the embedded store's files (PGlite): several workers need PostgreSQL.
  if (!e.DATABASE_URL && (e.WORKERS ?? 1) > 1) problems.push(`WORKERS: the embedded store is opened by one process only; set DATABASE_URL to run ${e.WORKERS} workers, or WORKERS=1`);
  if (e.SIGNUP_ENABLED && !(e.JWT_SECRET ?? e.ADMIN_TOKEN)) problems.push('SIGNUP_ENABLED: logins are signed tokens; set JWT_SECRET (16+ characters) too');
  const attempt = <T>(name: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const masterKeys = e.MASTER_KEY ? attempt('MASTER_KEY', () => parseMasterKeys(e.MASTER_KEY!)) : undefined;
  const ssrf = attempt('PROVIDER_ALLOWLIST', () => parseSsrfPolicy(e.PROVIDER_ALLOWLIST, e.PROVIDER_ALLOW_HTTP)) ?? { allowHttp: false, allowlist: [] };
  const filePath = configFilePath(cleaned);
  const read = filePath ? readOperatorFile(filePath, cleaned) : undefined;
  for (const p of read?.problems ?? []) problems.push(`${filePath}: ${p}`);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    workers,
    workersSet: e.WORKERS !== undefined,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    usageFlushMs: e.USAGE_FLUSH_MS,
    usageDrainMs: e.USAGE_DRAIN_MS,
    upstream: {
      baseUrl: e.UPSTREAM_BASE_URL,
      apiKey: e.UPSTREAM_API_KEY,
      models: e.UPSTREAM_MODELS,
      maxBatch: e.UPSTREAM_MAX_BATCH,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      maxRetries: e.UPSTREAM_MAX_RETRIES,
    },
    local: {
      modelDirs: e.MODEL_DIR ?? [],
      variant: e.EMBED_MODEL_VARIANT,
      device: e.EMBED_DEVICE,
      deviceId: e.EMBED_DEVICE_ID,
      threads: e.EMBED_THREADS,
      maxBatchTokens: e.EMBED_MAX_BATCH_TOKENS,
      sessions: e.EMBED_SESSIONS,
      tokenizerThreads: e.EMBED_TOKENIZER_THREADS,
      maxWaitMs: e.EMBED_MAX_WAIT_MS,
      maxQueue: e.EMBED_MAX_QUEUE,
      timeoutMs: e.EMBED_TIMEOUT_MS,
    },
    adminToken: e.ADMIN_TOKEN,
    jwtSecret: e.JWT_SECRET ?? e.ADMIN_TOKEN,
    masterKeys,
    ssrf,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    maxInputs: e.MAX_INPUTS,
    bodyLimit: e.BODY_LIMIT,
    compression: { mode: e.COMPRESSION, minBytes: e.COMPRESSION_MIN_BYTES ?? (e.COMPRESSION === 'auto' ? 65536 : 4096) },
    hotCacheBytes: Math.floor(e.HOT_CACHE_MB * 1024 * 1024),
    storeLookupTimeoutMs: e.STORE_LOOKUP_TIMEOUT_MS,
    storeLookupBatch: e.STORE_LOOKUP_BATCH,
    authCacheTtlMs: e.AUTH_CACHE_TTL_S * 1000,
    changeWaitMs: e.CHANGE_WAIT_MS,
    cacheTtlDays: e.CACHE_TTL_DAYS,
    authDisabled: e.AUTH_DISABLED,
    defaultTier: e.DEFAULT_TIER,
    evictionIntervalMs: e.EVICTION_INTERVAL_S * 1000,
    prices: { ...DEFAULT_PRICES, ...e.PRICES },
    file: read?.file,
    publicStatsEnabled: e.PUBLIC_STATS_ENABLED,
    accounts: {
      signupEnabled: e.SIGNUP_ENABLED,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_S,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
      limitPerAddress: e.AUTH_LIMIT_PER_ADDRESS,
      limitPerEmail: e.AUTH_LIMIT_PER_EMAIL,
      limitWindowSeconds: e.AUTH_LIMIT_WINDOW_S,
    },
  };
}
