import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { lookupVectors, recordHits, type HitCount, type NewRow } from '../store/embeddings.js';
import { PUBLIC_TENANT_ID, type CacheScope } from './domain.js';
import { addUsage, type UsageDelta } from '../store/usage.js';
import { Accumulator } from './accumulator.js';
import { RowWriter } from './row-writer.js';
import { cacheScope, inputHash, memoryKey } from './cache-key.js';
import { vectorToBytes } from './codec.js';
import { ApiError } from './errors.js';
import type { CachedVector, HotCache } from './hot-cache.js';
import type { Metrics } from './metrics.js';
import type { ResolvedModel } from './models.js';
import type { TenantContext } from './tenant.js';
import type { EmbedInput, EmbedOptions, Embedder, ModelSpec, TaskType } from './types.js';

export interface EmbedRequest {
  /** The model and the backend serving it, as resolved for this tenant (see ModelAccess). */
  model: ResolvedModel;
  inputs: EmbedInput[];
  taskType?: TaskType | null;
  /** The asked-for `dimensions`: computed by the provider (and scoped) only for `native` models. */
  dimensions?: number;
}

export interface EmbeddedItem extends CachedVector {
  /** Served from the cache (in-process or Postgres) rather than computed for this request. */
  cached: boolean;
}

export interface EmbedOutcome {
  spec: ModelSpec;
  items: EmbeddedItem[];
  hits: number;
  promptTokens: number;
  /** Tokens of the inputs computed for this request (what rate limits charge). */
  missTokens: number;
}

export interface EmbedServiceDeps {
  sql: Sql;
  hot: HotCache;
  metrics?: Metrics;
  logger: Logger;
  /** How often batched hit counters and usage are written. */
  flushIntervalMs?: number;
}

/**
 * The request pipeline, in one place: key -> in-process cache -> one Postgres lookup for the
 * rest -> coalesced compute of what is still missing -> write-behind insert -> usage accounting.
 */
export class EmbedService {
  /** Misses being computed now, by memory key: identical concurrent misses compute once. */
  private readonly inflight = new Map<string, Promise<CachedVector>>();
  private readonly hitCounts: Accumulator<HitCount>;
  private readonly usage: Accumulator<UsageDelta>;
  private readonly rows: RowWriter;

  constructor(private readonly deps: EmbedServiceDeps) {
    const intervalMs = deps.flushIntervalMs ?? 2000;
    this.rows = new RowWriter(deps.sql, deps.logger);
    this.hitCounts = new Accumulator<HitCount>({
      name: 'hits',
      intervalMs,
      merge: (a, b) => void (a.hits += b.hits),
      write: (batch) => recordHits(deps.sql, batch),
      logger: deps.logger,
    });
    this.usage = new Accumulator<UsageDelta>({
      name: 'usage',
      intervalMs,
      merge: (a, b) => {
        a.requests += b.requests;
        a.inputs += b.inputs;
        a.hits += b.hits;
        a.misses += b.misses;
        a.promptTokens += b.promptTokens;
        a.hitTokens += b.hitTokens;
        a.backendMs += b.backendMs;
      },
      write: (batch) => addUsage(deps.sql, batch),
      logger: deps.logger,
    });
  }

  async embed(tenant: TenantContext, req: EmbedRequest): Promise<EmbedOutcome> {
    const { spec, backend } = req.model;
    const taskType = spec.defaultTaskType || spec.acceptsTaskType ? (req.taskType ?? spec.defaultTaskType) : null;
    const dims = spec.dimensionsMethod === 'native' && req.dimensions !== undefined && req.dimensions !== spec.dimensions ? req.dimensions : undefined;
    const scope = cacheScope(spec, taskType, dims);
    const readTenants = tenant.sharePublic ? [tenant.id, PUBLIC_TENANT_ID] : [tenant.id];

    // Unique inputs of this request, by hash; `slots` maps each input to its unique entry.
    const unique = new Map<string, { hash: Buffer; input: EmbedInput; value?: CachedVector; cached: boolean }>();
    const slots: string[] = new Array(req.inputs.length);
    for (let i = 0; i < req.inputs.length; i++) {
      const hash = inputHash(req.inputs[i]);
      const k = memoryKey(tenant.id, scope, hash);
      slots[i] = k;
      if (!unique.has(k)) unique.set(k, { hash, input: req.inputs[i], cached: false });
    }

    // 1. In-process hot cache.
    const toLookup: { key: string; hash: Buffer }[] = [];
    for (const [key, u] of unique) {
      // `key` is the own tenant's memory key; the public pool's is built only when needed.
      const own = this.deps.hot.get(key);
      const hit = own ? { value: own, tenantId: tenant.id, key } : tenant.sharePublic ? this.hotGetPublic(scope, u.hash) : undefined;
      if (hit) {
        u.value = hit.value;
        u.cached = true;
        this.countHit(hit.key, hit.tenantId, scope, u.hash);
      } else {
        toLookup.push({ key, hash: u.hash });
      }
    }

    // 2. One Postgres round trip for everything the hot cache did not have.
    if (toLookup.length > 0) {
      const found = await lookupVectors(this.deps.sql, readTenants, scope, toLookup.map((m) => m.hash));
      // Own rows win over the public pool's.
      found.sort((a, b) => (a.tenantId === tenant.id ? 1 : 0) - (b.tenantId === tenant.id ? 1 : 0));
      const byHash = new Map<string, (typeof found)[number]>();
      for (const row of found) byHash.set(row.inputHash.toString('base64'), row);
      for (const m of toLookup) {
        const row = byHash.get(m.hash.toString('base64'));
        if (!row) continue;
        const u = unique.get(m.key)!;
        u.value = { bytes: row.vector, tokens: row.tokens };
        u.cached = true;
        const rowKey = row.tenantId === tenant.id ? m.key : memoryKey(row.tenantId, scope, m.hash);
        this.deps.hot.set(rowKey, u.value);
        this.countHit(rowKey, row.tenantId, scope, m.hash);
      }
    }

    // 3. Compute what is still missing, once per key across concurrent requests.
    const started = performance.now();
    const waits: Promise<void>[] = [];
    const mine: { key: string; hash: Buffer; input: EmbedInput }[] = [];
    for (const [key, u] of unique) {
      if (u.value) continue;
      const running = this.inflight.get(key);
      if (running) {
        waits.push(running.then((v) => void (u.value = v)));
      } else {
        mine.push({ key, hash: u.hash, input: u.input });
      }
    }
    if (mine.length > 0) waits.push(this.compute(tenant, spec, backend, scope, { taskType, dimensions: dims }, mine, unique));
    let backendMs = 0;
    if (waits.length > 0) {
      await Promise.all(waits);
      backendMs = performance.now() - started;
    }

    // 4. Reassemble in request order and account.
    let hits = 0;
    let promptTokens = 0;
    let hitTokens = 0;
    const items: EmbeddedItem[] = new Array(req.inputs.length);
    for (let i = 0; i < slots.length; i++) {
      const u = unique.get(slots[i])!;
      items[i] = { bytes: u.value!.bytes, tokens: u.value!.tokens, cached: u.cached };
      if (u.cached) {
        hits++;
        hitTokens += u.value!.tokens;
      }
      promptTokens += u.value!.tokens;
    }
    this.deps.metrics?.countInputs(spec.id, hits, items.length - hits);
    this.recordUsage(tenant.id, scope.model, {
      requests: 1,
      inputs: items.length,
      hits,
      misses: items.length - hits,
      promptTokens,
      hitTokens,
      backendMs,
    });
    return { spec, items, hits, promptTokens, missTokens: promptTokens - hitTokens };
  }

  /** Runs the backend for `mine`, shares the result with concurrent waiters, and stores it. */
  private async compute(
    tenant: TenantContext,
    spec: ModelSpec,
    backend: Embedder,
    scope: CacheScope,
    options: EmbedOptions,
    mine: { key: string; hash: Buffer; input: EmbedInput }[],
    unique: Map<string, { value?: CachedVector }>,
  ): Promise<void> {
    const metrics = this.deps.metrics;
    const stopTimer = metrics?.backendDuration.startTimer({ backend: backend.name });
    metrics?.backendBatchSize.observe({ backend: backend.name }, mine.length);
    const call = backend.embed(spec.id, mine.map((m) => m.input), options);
    call.then(
      () => stopTimer?.(),
      (err: unknown) => metrics?.backendErrors.inc({ backend: backend.name, status: String((err as { status?: number }).status ?? 'error') }),
    );
    const batch = call.then((res) => {
      if (res.vectors.length !== mine.length) {
        throw ApiError.internal(`backend returned ${res.vectors.length} vectors for ${mine.length} inputs`);
      }
      return res.vectors.map((v, i): CachedVector => ({ bytes: vectorToBytes(v), tokens: res.tokens[i] ?? 0 }));
    });
    mine.forEach((m, i) => {
      const p = batch.then((r) => r[i]);
      p.catch(() => {}); // a waiter-less key must not raise an unhandled rejection
      this.inflight.set(m.key, p);
    });
    try {
      const values = await batch;
      const writeTenants = tenant.sharePublic ? [tenant.id, PUBLIC_TENANT_ID] : [tenant.id];
      const rows: NewRow[] = [];
      mine.forEach((m, i) => {
        unique.get(m.key)!.value = values[i];
        for (const t of writeTenants) {
          rows.push({ tenantId: t, scope, inputHash: m.hash, vector: values[i].bytes, tokens: values[i].tokens });
          this.deps.hot.set(memoryKey(t, scope, m.hash), values[i]);
        }
      });
      // Written behind the response, batched with other misses (see RowWriter).
      this.rows.add(rows);
    } finally {
      for (const m of mine) this.inflight.delete(m.key);
    }
  }

  private hotGetPublic(scope: CacheScope, hash: Buffer): { value: CachedVector; tenantId: number; key: string } | undefined {
    const key = memoryKey(PUBLIC_TENANT_ID, scope, hash);
    const value = this.deps.hot.get(key);
    return value ? { value, tenantId: PUBLIC_TENANT_ID, key } : undefined;
  }

  /** `key` is the row's memory key (tenant, scope, hash): one counter per row. */
  private countHit(key: string, tenantId: number, scope: CacheScope, inputHash: Buffer): void {
    this.hitCounts.add(key, { tenantId, scope, inputHash, hits: 1 });
  }

  private recordUsage(tenantId: number, model: string, d: Omit<UsageDelta, 'tenantId' | 'day' | 'model'>): void {
    const day = utcDay();
    this.usage.add(`${tenantId}|${day}|${model}`, { tenantId, day, model, ...d });
  }

  /** Writes pending rows and counters now (stats readers want fresh numbers). */
  async flush(): Promise<void> {
    await this.rows.flush();
    await Promise.all([this.hitCounts.flush(), this.usage.flush()]);
  }

  /** Drops in-process cached rows (after a clear). */
  dropHotCache(): void {
    this.deps.hot.clear();
  }

  async close(): Promise<void> {
    await this.rows.close();
    await Promise.all([this.hitCounts.close(), this.usage.close()]);
  }
}

let dayCache = { day: '', until: 0 };
/** Today's UTC date (YYYY-MM-DD), formatted once per second at most rather than per request. */
function utcDay(): string {
  const now = Date.now();
  if (now >= dayCache.until) dayCache = { day: new Date(now).toISOString().slice(0, 10), until: now + 1000 };
  return dayCache.day;
}
