import type { Logger } from '../log.js';
import { Accumulator } from './accumulator.js';
import { cacheScope, hashBytes, inputHash, memoryKey } from './cache-key.js';
import { vectorToBytes } from './codec.js';
import { addCounters, PUBLIC_TENANT_ID, type CacheScope, type HitCount, type NewRow, type StoredVector, type UsageDelta } from './domain.js';
import { DomainError } from './errors.js';
import type { CachedVector, HotCache } from './hot-cache.js';
import type { Metrics } from './metrics.js';
import type { ResolvedModel } from './models.js';
import { InProcessInFlight } from './inflight.js';
import type { InFlightClaim, InFlightRegistry, UsageSink, VectorStore } from './ports.js';
import { RowWriter } from './row-writer.js';
import type { TenantContext } from './tenant.js';
import { checkVectors, InvalidVectorsError } from './vector-check.js';
import type { EmbedInput, Embedder, ModelSpec, TaskType } from './types.js';

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
  /** False when the store lookup failed or timed out and every input not in memory was computed. */
  storeAvailable: boolean;
  /** Time spent waiting for the backend (0 when nothing was computed). */
  backendMs: number;
}

export interface EmbedServiceDeps {
  store: VectorStore;
  usage: UsageSink;
  hot: HotCache;
  metrics?: Metrics;
  logger: Logger;
  /** How often batched hit counters are written. */
  flushIntervalMs?: number;
  /** How often usage is written: what a crash can lose when usage is counted only here (default: flushIntervalMs). */
  usageFlushIntervalMs?: number;
  /** A store lookup slower than this counts as a miss: the cache is an optimisation, not a dependency. */
  lookupTimeoutMs?: number;
  /** After a failed or timed-out lookup, skip lookups for this long (one probe at a time) instead of piling up queries. */
  storeRetryMs?: number;
  /** Entries kept per counter buffer while the store is away. */
  maxBufferedCounters?: number;
  /** Unwritten vector bytes past which misses wait for the write-behind while the store keeps up (RowWriter's default: 32 MB). */
  rowBackpressureBytes?: number;
  /** Keys being resolved; default this process's own map (cluster/ shares one across workers). */
  inflight?: InFlightRegistry;
}

/** One distinct input of a request. */
interface Slot {
  /** Own tenant's memory key: in-process maps (hot cache, in-flight) use it. */
  key: string;
  /** inputHash(): base64 of the input's sha256 (the store's bytes only when it is asked). */
  hash: string;
  input: EmbedInput;
  value: CachedVector | null;
  cached: boolean;
}

/** Hits on one row since the last flush, its hash as the slot has it (see countHit). */
interface PendingHits {
  tenantId: number;
  scope: CacheScope;
  hash: string;
  hits: number;
}

/** What one request's pipeline works within, resolved once. */
interface EmbedContext {
  tenant: TenantContext;
  spec: ModelSpec;
  backend: Embedder;
  scope: CacheScope;
  taskType: TaskType | null;
  /** Set for `native` models asked for fewer dimensions: the provider reduces, each size its own scope. */
  nativeDimensions: number | undefined;
  /** Own rows, then the shared pool's when the tenant opted in. */
  readTenants: number[];
  writeTenants: number[];
  /** The tenant's drop count when the request began: a clear or deletion since then keeps its results out of memory. */
  drops: number;
}

/**
 * The request pipeline, in one place: key -> in-process cache -> one store lookup for the
 * rest -> coalesced compute of what is still missing -> write-behind insert -> usage accounting.
 *
 * Coalescing covers the store lookup too: a key is registered as in flight *before* its lookup
 * and stays registered until its row is in the store, so a concurrent identical request never
 * falls between "not computed yet" and "not stored yet", whatever the timing of lookups.
 */
export class EmbedService {
  private readonly inflight: InFlightRegistry;
  private readonly hitCounts: Accumulator<PendingHits>;
  private readonly usage: Accumulator<UsageDelta>;
  private readonly rows: RowWriter;
  /** Dimension fixed by the first valid answer, for models that do not declare one. */
  private readonly dimsSeen = new Map<string, number>();
  private readonly lookupTimeoutMs: number;
  private readonly storeRetryMs: number;
  private storeDownUntil = 0;
  private probing = false;

  constructor(private readonly deps: EmbedServiceDeps) {
    const intervalMs = deps.flushIntervalMs ?? 2000;
    this.lookupTimeoutMs = deps.lookupTimeoutMs ?? 500;
    this.storeRetryMs = deps.storeRetryMs ?? 1000;
    const maxEntries = deps.maxBufferedCounters ?? 100_000;
    this.inflight = deps.inflight ?? new InProcessInFlight();
    const dropped = (what: string) => (n: number) => deps.metrics?.droppedWrites.inc({ what }, n);
    // 10 ms of write-behind: at a few hundred misses a second that is one INSERT for several
    // rows instead of one each (bench miss: 1.48 PostgreSQL transactions per miss at 8
    // connections with 2 ms); this process serves those rows from memory meanwhile.
    this.rows = new RowWriter(deps.store, deps.logger, { delayMs: 10, maxBatch: 2000, maxPending: 200_000, backpressureBytes: deps.rowBackpressureBytes, onDrop: dropped('rows') });
    this.hitCounts = new Accumulator<PendingHits>({
      name: 'hits',
      intervalMs,
      merge: (a, b) => void (a.hits += b.hits),
      // The hash's bytes once per row and flush, not once per hit.
      write: (batch) => deps.store.recordHits(batch.map((h): HitCount => ({ tenantId: h.tenantId, scope: h.scope, inputHash: hashBytes(h.hash), hits: h.hits }))),
      logger: deps.logger,
      maxEntries,
      onDrop: dropped('hit_counts'),
    });
    this.usage = new Accumulator<UsageDelta>({
      name: 'usage',
      intervalMs: deps.usageFlushIntervalMs ?? intervalMs,
      merge: addCounters,
      write: (batch) => deps.usage.write(batch),
      logger: deps.logger,
      maxEntries,
      onDrop: dropped('usage'),
    });
  }

  async embed(tenant: TenantContext, req: EmbedRequest): Promise<EmbedOutcome> {
    const ctx = this.context(tenant, req);
    const { slots, order } = this.slotsOf(ctx, req.inputs);
    // A registry shared across processes answers after a round trip; a hot hit never asks it.
    const claimed = this.fromMemory(ctx, slots);
    const { mine, waits } = claimed instanceof Promise ? await claimed : claimed;
    // Every input in memory (the hot hit): no store, no backend, nothing more to wait for.
    if (mine.length === 0 && waits.length === 0) return this.assemble(ctx, order, true, 0);
    const storeAvailable = await this.fromStore(ctx, mine);
    const started = performance.now();
    await this.computeMissing(ctx, mine, waits);
    const backendMs = mine.some((s) => !s.cached) || waits.length > 0 ? performance.now() - started : 0;
    return this.assemble(ctx, order, storeAvailable, backendMs);
  }

  private context(tenant: TenantContext, req: EmbedRequest): EmbedContext {
    const { spec, backend } = req.model;
    const taskType = spec.defaultTaskType || spec.acceptsTaskType ? (req.taskType ?? spec.defaultTaskType) : null;
    const dims = spec.dimensionsMethod === 'native' && req.dimensions !== undefined && req.dimensions !== spec.dimensions ? req.dimensions : undefined;
    const tenants = tenant.sharePublic ? [tenant.id, PUBLIC_TENANT_ID] : [tenant.id];
    return { tenant, spec, backend, scope: cacheScope(spec, taskType, dims), taskType, nativeDimensions: dims, readTenants: tenants, writeTenants: tenants, drops: this.drops.get(tenant.id) ?? 0 };
  }

  /** Distinct inputs by hash, and each input's slot in request order. */
  private slotsOf(ctx: EmbedContext, inputs: EmbedInput[]): { slots: Map<string, Slot>; order: Slot[] } {
    const slots = new Map<string, Slot>();
    const order: Slot[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const hash = inputHash(inputs[i]);
      const key = memoryKey(ctx.tenant.id, ctx.scope, hash);
      let slot = slots.get(key);
      if (!slot) {
        slot = { key, hash, input: inputs[i], value: null, cached: false };
        slots.set(key, slot);
      }
      order[i] = slot;
    }
    return { slots, order };
  }

  /**
   * 1. The in-process hot cache, then keys other requests are resolving. What is left becomes
   * this request's own (`mine`), claimed as in flight before anything is awaited.
   */
  private fromMemory(ctx: EmbedContext, slots: Map<string, Slot>): Claimed | Promise<Claimed> {
    const rest: Slot[] = [];
    for (const slot of slots.values()) {
      const own = this.deps.hot.get(slot.key);
      const hit = own ? { value: own, tenantId: ctx.tenant.id, key: slot.key } : ctx.tenant.sharePublic ? this.hotGetPublic(ctx.scope, slot.hash) : undefined;
      if (hit) {
        slot.value = hit.value;
        slot.cached = true;
        this.countHit(hit.key, hit.tenantId, ctx.scope, slot.hash);
        continue;
      }
      rest.push(slot);
    }
    if (rest.length === 0) return { mine: [], waits: [] };
    const claims = this.inflight.claim(rest.map((s) => s.key));
    return claims instanceof Promise ? claims.then((c) => sortClaims(rest, c)) : sortClaims(rest, claims);
  }

  /** Settles a key for its waiters; found rows leave the in-flight registry at once, computed ones once stored. */
  private settle(slot: Slot, outcome: { value: CachedVector; cached: boolean } | { error: unknown }): void {
    this.inflight.settle(slot.key, outcome);
  }

  /** 2. One store round trip for this request's own keys; a slow or failing store counts as all misses. */
  private async fromStore(ctx: EmbedContext, mine: Slot[]): Promise<boolean> {
    if (mine.length === 0) return true;
    const found = await this.lookup(ctx, mine);
    if (found === null) return false;
    // Own rows win over the public pool's.
    found.sort((a, b) => (a.tenantId === ctx.tenant.id ? 1 : 0) - (b.tenantId === ctx.tenant.id ? 1 : 0));
    const byHash = new Map<string, StoredVector>();
    for (const row of found) byHash.set(row.inputHash.toString('base64'), row);
    for (const slot of mine) {
      const row = byHash.get(slot.hash);
      if (!row) continue;
      slot.value = { bytes: row.vector, tokens: row.tokens };
      slot.cached = true;
      const rowKey = row.tenantId === ctx.tenant.id ? slot.key : memoryKey(row.tenantId, ctx.scope, slot.hash);
      if (this.undropped(ctx, row.tenantId)) this.deps.hot.set(rowKey, slot.value, row.tenantId);
      this.countHit(rowKey, row.tenantId, ctx.scope, slot.hash);
      this.settle(slot, { value: slot.value, cached: true });
    }
    return true;
  }

  /** The lookup, bounded in time. null = the store is unavailable (timed out, failed, or known down). */
  private async lookup(ctx: EmbedContext, mine: Slot[]): Promise<StoredVector[] | null> {
    const now = Date.now();
    if (now < this.storeDownUntil && this.probing) return null;
    const probe = now < this.storeDownUntil;
    if (probe) this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.lookupTimeoutMs);
    });
    try {
      const call = this.deps.store.lookup(ctx.readTenants, ctx.scope, mine.map((s) => hashBytes(s.hash)));
      call.catch(() => {}); // it may settle after the deadline
      const r = await Promise.race([call, deadline]);
      if (r === 'timeout') return this.storeFailed('timeout');
      this.storeDownUntil = 0;
      return r;
    } catch (err) {
      return this.storeFailed('error', err);
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }

  private storeFailed(reason: 'timeout' | 'error', err?: unknown): null {
    if (this.storeDownUntil < Date.now()) this.deps.logger.warn({ err, reason }, 'cache lookup failed: serving misses until the store answers again');
    this.storeDownUntil = Date.now() + this.storeRetryMs;
    this.deps.metrics?.storeLookupFailures.inc({ reason });
    return null;
  }

  /** 3. Compute this request's keys still missing; wait for the ones other requests resolve. */
  private async computeMissing(ctx: EmbedContext, mine: Slot[], waits: Promise<Slot | null>[]): Promise<void> {
    const missing = mine.filter((s) => !s.cached);
    if (missing.length > 0) {
      try {
        const values = await this.compute(ctx, missing);
        this.store(ctx, missing, values);
      } catch (err) {
        for (const slot of missing) this.settle(slot, { error: err });
        throw err;
      }
      // A store slower than the backend (bulk ingest into the embedded store) sets the pace.
      await this.rows.room();
    }
    if (waits.length === 0) return;
    const handed = (await Promise.all(waits)).filter((s): s is Slot => s !== null);
    if (handed.length > 0) {
      // Their owner (another worker) stopped before settling them: looked up, then computed, here.
      await this.fromStore(ctx, handed);
      await this.computeMissing(ctx, handed, []);
    }
  }

  /** Runs the backend and checks what it returned before anything is kept. */
  private async compute(ctx: EmbedContext, missing: Slot[]): Promise<CachedVector[]> {
    const { backend, spec } = ctx;
    const metrics = this.deps.metrics;
    const stopTimer = metrics?.backendDuration.startTimer({ backend: backend.name });
    metrics?.backendBatchSize.observe({ backend: backend.name }, missing.length);
    let res;
    try {
      res = await backend.embed(spec.id, missing.map((m) => m.input), { taskType: ctx.taskType, dimensions: ctx.nativeDimensions });
      stopTimer?.();
    } catch (err) {
      metrics?.backendErrors.inc({ backend: backend.name, kind: err instanceof DomainError ? err.kind : 'internal' });
      // A backend that could not even read its provider's answer refused it: counted like the checks below.
      if (err instanceof InvalidVectorsError) metrics?.invalidVectors.inc({ backend: backend.name, fault: err.fault });
      throw err;
    }
    const dimsKey = `${ctx.scope.model}\u0000${ctx.scope.modelVersion}`;
    try {
      const dims = checkVectors(res.vectors, missing.length, ctx.nativeDimensions ?? spec.dimensions ?? this.dimsSeen.get(dimsKey) ?? null, backend.provider ?? backend.name);
      if (spec.dimensions === null && !this.dimsSeen.has(dimsKey)) this.dimsSeen.set(dimsKey, dims);
    } catch (err) {
      if (err instanceof InvalidVectorsError) metrics?.invalidVectors.inc({ backend: backend.name, fault: err.fault });
      throw err;
    }
    return res.vectors.map((v, i): CachedVector => ({ bytes: vectorToBytes(v), tokens: res.tokens[i] ?? 0 }));
  }

  /** Shares computed values with waiters and the hot cache; rows go to the store behind the response. */
  private store(ctx: EmbedContext, missing: Slot[], values: CachedVector[]): void {
    const rows: NewRow[] = [];
    missing.forEach((slot, i) => {
      slot.value = values[i];
      const inputHash = hashBytes(slot.hash);
      for (const t of ctx.writeTenants) {
        // The epoch the tenant had when authenticated: a clear since then drops the row at insert.
        const cacheEpoch = t === ctx.tenant.id ? ctx.tenant.cacheEpoch : undefined;
        rows.push({ tenantId: t, scope: ctx.scope, inputHash, vector: values[i].bytes, tokens: values[i].tokens, cacheEpoch });
        if (this.undropped(ctx, t)) this.deps.hot.set(memoryKey(t, ctx.scope, slot.hash), values[i], t);
      }
      this.settle(slot, { value: values[i], cached: false });
    });
    // Written behind the response, batched with other misses; the keys stay in flight until then.
    this.rows.add(rows, () => {
      for (const slot of missing) if (slot.value) this.inflight.stored(slot.key, slot.value);
    });
  }

  /** 4. Reassemble in request order and account. */
  private assemble(ctx: EmbedContext, order: Slot[], storeAvailable: boolean, backendMs: number): EmbedOutcome {
    let hits = 0;
    let promptTokens = 0;
    let hitTokens = 0;
    const items: EmbeddedItem[] = new Array(order.length);
    for (let i = 0; i < order.length; i++) {
      const slot = order[i];
      const value = slot.value;
      if (!value) throw new DomainError('internal', `input ${i} was neither found nor computed`);
      items[i] = { bytes: value.bytes, tokens: value.tokens, cached: slot.cached };
      if (slot.cached) {
        hits++;
        hitTokens += value.tokens;
      }
      promptTokens += value.tokens;
    }
    this.deps.metrics?.countInputs(ctx.spec.id, hits, items.length - hits);
    this.recordUsage(ctx.tenant.id, ctx.scope.model, {
      requests: 1,
      inputs: items.length,
      hits,
      misses: items.length - hits,
      promptTokens,
      hitTokens,
      backendMs,
    });
    return { spec: ctx.spec, items, hits, promptTokens, missTokens: promptTokens - hitTokens, storeAvailable, backendMs };
  }

  private hotGetPublic(scope: CacheScope, hash: string): { value: CachedVector; tenantId: number; key: string } | undefined {
    const key = memoryKey(PUBLIC_TENANT_ID, scope, hash);
    const value = this.deps.hot.get(key);
    return value ? { value, tenantId: PUBLIC_TENANT_ID, key } : undefined;
  }

  /** `key` is the row's memory key (tenant, scope, hash): one counter per row. */
  private countHit(key: string, tenantId: number, scope: CacheScope, hash: string): void {
    this.hitCounts.add(key, { tenantId, scope, hash, hits: 1 });
  }

  private recordUsage(tenantId: number, model: string, d: Omit<UsageDelta, 'tenantId' | 'day' | 'model'>): void {
    const day = utcDay();
    const delta: UsageDelta = { tenantId, day, model, ...d };
    const key = `${tenantId}|${day}|${model}`;
    // Counted durably per request where the sink can (Redis), else batched here.
    if (this.deps.usage.add) this.deps.usage.add(delta).catch(() => this.usage.add(key, delta));
    else this.usage.add(key, delta);
  }

  /** Writes pending rows and counters now (stats readers want fresh numbers). */
  async flush(): Promise<void> {
    await this.rows.flush();
    await Promise.all([this.hitCounts.flush(), this.usage.flush()]);
  }

  /** Drops every in-process cached row. */
  dropHotCache(): void {
    this.deps.hot.clear();
  }

  /** Clears or deletions seen per tenant (see dropTenant). */
  private readonly drops = new Map<number, number>();

  private undropped(ctx: EmbedContext, tenantId: number): boolean {
    return tenantId !== ctx.tenant.id || (this.drops.get(tenantId) ?? 0) === ctx.drops;
  }

  /**
   * Forgets what this process holds of a tenant (after its clear or deletion, here or in another
   * process): hot entries, computed rows waiting to be stored (no longer served as hits; the
   * store drops them at insert), and results of requests still running (kept out of memory).
   */
  dropTenant(tenantId: number): void {
    this.drops.set(tenantId, (this.drops.get(tenantId) ?? 0) + 1);
    this.deps.hot.dropTenant(tenantId);
    this.inflight.dropTenant(tenantId);
  }

  /** Rows, hit counters and usage entries waiting for the store (for health and tests). */
  get pendingWrites(): { rows: number; hitCounts: number; usage: number } {
    return { rows: this.rows.size, hitCounts: this.hitCounts.size, usage: this.usage.size };
  }

  async close(): Promise<void> {
    await this.rows.close();
    await Promise.all([this.hitCounts.close(), this.usage.close()]);
  }
}

interface Claimed {
  mine: Slot[];
  /** Each settles with null once its key is resolved, or with its slot when handed to this request. */
  waits: Promise<Slot | null>[];
}

/** Keys computed meanwhile are hits; keys others resolve are awaited; the rest are this request's own. */
function sortClaims(rest: Slot[], claims: InFlightClaim[]): Claimed {
  const mine: Slot[] = [];
  const waits: Promise<Slot | null>[] = [];
  rest.forEach((slot, i) => {
    const c = claims[i];
    if (c.kind === 'done') {
      // Computed before this request came, its row not written yet: a hit all the same.
      slot.value = c.value;
      slot.cached = true;
    } else if (c.kind === 'wait') {
      const wait = c.result.then((r) => {
        if (r === 'own') return slot; // its owner stopped: this request resolves it after all
        slot.value = r.value;
        slot.cached = r.cached;
        return null;
      });
      // Awaited after this request's own compute; if that throws first, this one is moot.
      wait.catch(() => {});
      waits.push(wait);
    } else mine.push(slot);
  });
  return { mine, waits };
}

let dayCache = { day: '', until: 0 };
/** Today's UTC date (YYYY-MM-DD), formatted once per second at most rather than per request. */
function utcDay(): string {
  const now = Date.now();
  if (now >= dayCache.until) dayCache = { day: new Date(now).toISOString().slice(0, 10), until: now + 1000 };
  return dayCache.day;
}
