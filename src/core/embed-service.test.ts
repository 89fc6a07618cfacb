/**
 * The pipeline without PostgreSQL: an in-memory VectorStore and UsageSink behind the ports,
 * a scripted backend. Coalescing, partial hits, the public pool, a slow or failing store, and
 * refused vectors, each checked on what the backend and the store actually saw.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { vectorToBytes } from './codec.js';
import { PUBLIC_TENANT_ID, type CacheScope, type HitCount, type NewRow, type StoredVector, type UsageDelta } from './domain.js';
import { EmbedService } from './embed-service.js';
import { HotCache } from './hot-cache.js';
import type { ResolvedModel } from './models.js';
import type { VectorStore } from './ports.js';
import type { TenantContext } from './tenant.js';
import type { EmbedInput, Embedder, EmbedResult, ModelSpec } from './types.js';

const logger = createLogger('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class MemoryStore implements VectorStore {
  readonly rows = new Map<string, NewRow>();
  lookups = 0;
  /** Delay of each lookup: a function so a test can make some slow and some fast. */
  lookupDelay: () => number = () => 0;
  fail = false;
  hang = false;
  hits: HitCount[] = [];
  /** While set, each insert waits for it (a store that writes, slowly). */
  gate: Promise<void> | null = null;

  private k(t: number, s: CacheScope, h: Buffer) {
    return `${t}|${s.model}|${s.modelVersion}|${h.toString('hex')}`;
  }

  async lookup(tenantIds: number[], scope: CacheScope, hashes: Buffer[]): Promise<StoredVector[]> {
    this.lookups++;
    if (this.hang) return new Promise(() => {});
    if (this.fail) throw new Error('connection refused');
    // Like a database, the answer is what was there when the query started; it arrives later.
    const delay = this.lookupDelay();
    const out: StoredVector[] = [];
    for (const t of tenantIds) {
      for (const h of hashes) {
        const r = this.rows.get(this.k(t, scope, h));
        if (r) out.push({ tenantId: t, inputHash: h, vector: r.vector, tokens: r.tokens });
      }
    }
    await sleep(delay);
    return out;
  }

  async insert(rows: NewRow[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.fail) throw new Error('connection refused');
    for (const r of rows) if (!this.rows.has(this.k(r.tenantId, r.scope, r.inputHash))) this.rows.set(this.k(r.tenantId, r.scope, r.inputHash), r);
  }

  async recordHits(counts: HitCount[]): Promise<void> {
    this.hits.push(...counts);
  }
}

/** A backend whose answers are scripted: deterministic vectors by default, or what `answer` returns. */
class ScriptedBackend implements Embedder {
  readonly name = 'scripted';
  calls: string[][] = [];
  delayMs = 0;
  answer: ((texts: string[]) => Float32Array[]) | null = null;
  constructor(private readonly spec: ModelSpec) {}
  models() {
    return [this.spec];
  }
  async embed(_model: string, inputs: EmbedInput[]): Promise<EmbedResult> {
    const texts = inputs.map((i) => (i.kind === 'text' ? i.text : i.ids.join(',')));
    this.calls.push(texts);
    await sleep(this.delayMs);
    const vectors = this.answer ? this.answer(texts) : texts.map((t) => Float32Array.from([t.length, 1, t.charCodeAt(0) || 1]));
    return { vectors, tokens: texts.map((t) => t.length) };
  }
  async ready() {
    return true;
  }
  async close() {}
}

const spec: ModelSpec = {
  id: 'm',
  cacheModel: 'm',
  version: '1',
  dimensions: 3,
  maxInputTokens: 512,
  dimensionsMethod: 'none',
  defaultTaskType: null,
  ownedBy: 'test',
  created: 0,
};

const services: EmbedService[] = [];
function setup(opts: { hotBytes?: number; lookupTimeoutMs?: number; rowBackpressureBytes?: number } = {}) {
  const store = new MemoryStore();
  const usage: UsageDelta[] = [];
  const backend = new ScriptedBackend(spec);
  const service = new EmbedService({
    store,
    usage: { write: async (d) => void usage.push(...d) },
    hot: new HotCache(opts.hotBytes ?? 0),
    logger,
    flushIntervalMs: 60_000,
    lookupTimeoutMs: opts.lookupTimeoutMs ?? 200,
    storeRetryMs: 50,
    rowBackpressureBytes: opts.rowBackpressureBytes,
  });
  services.push(service);
  const model: ResolvedModel = { spec, backend, kind: 'upstream' };
  const embed = (tenant: TenantContext, texts: string[]) => service.embed(tenant, { model, inputs: texts.map((text) => ({ kind: 'text', text })) });
  return { store, usage, backend, service, embed };
}

const acme: TenantContext = { id: 1, name: 'acme', tier: 'unlimited', sharePublic: false };
const pooled: TenantContext = { id: 2, name: 'pooled', tier: 'unlimited', sharePublic: true };

afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
});

describe('EmbedService', () => {
  it("forgets a dropped tenant's hot entries and the results of requests running during the drop, and only that tenant's", async () => {
    const { backend, service, store, embed } = setup({ hotBytes: 1 << 20 });
    const other: TenantContext = { id: 3, name: 'other', tier: 'unlimited', sharePublic: false };
    await embed(acme, ['a']);
    await embed(other, ['a']);
    await service.flush();
    const lookups = store.lookups;
    service.dropTenant(acme.id);
    expect((await embed(other, ['a'])).hits).toBe(1);
    expect(store.lookups).toBe(lookups); // still in memory
    expect((await embed(acme, ['a'])).hits).toBe(1);
    expect(store.lookups).toBe(lookups + 1); // from the store again
    // A miss computing while the tenant is dropped (its clear in another process) is not kept in memory.
    backend.delayMs = 50;
    const running = embed(acme, ['b']);
    await sleep(10);
    service.dropTenant(acme.id);
    await running;
    await service.flush();
    store.rows.clear(); // what the clear deleted
    backend.calls = [];
    expect((await embed(acme, ['b'])).hits).toBe(0);
    expect(backend.calls).toEqual([['b']]);
  });

  it('computes 50 concurrent identical misses once, whatever the timing of the store lookups', async () => {
    const { store, backend, embed } = setup();
    // Lookups finish in a scattered order, some well after the first compute is done.
    let n = 0;
    store.lookupDelay = () => [0, 30, 5, 60, 15][n++ % 5];
    backend.delayMs = 10;
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => sleep(i % 7).then(() => embed(acme, ['same text']))));
    expect(backend.calls).toEqual([['same text']]);
    const bytes = outcomes.map((o) => o.items[0].bytes.toString('hex'));
    expect(new Set(bytes).size).toBe(1);
  });

  it('sends only the missing inputs of a partial hit, once each, and reassembles in order', async () => {
    const { backend, service, embed } = setup();
    await embed(acme, ['a', 'bb']);
    await service.flush();
    backend.calls = [];
    const o = await embed(acme, ['bb', 'ccc', 'a', 'ccc', 'dddd']);
    expect(backend.calls).toEqual([['ccc', 'dddd']]);
    expect(o.items.map((i) => i.cached)).toEqual([true, false, true, false, false]);
    expect(o.hits).toBe(2);
    expect(o.items.map((i) => i.tokens)).toEqual([2, 3, 1, 3, 4]);
    expect(o.missTokens).toBe(3 + 3 + 4);
  });

  it('reads and writes the public pool for an opted-in tenant, and never another tenant’s rows', async () => {
    const { backend, service, store, embed } = setup();
    await embed(pooled, ['shared']);
    await service.flush();
    expect([...store.rows.values()].map((r) => r.tenantId).sort()).toEqual([PUBLIC_TENANT_ID, pooled.id]);
    const other: TenantContext = { id: 3, name: 'other', tier: 'unlimited', sharePublic: true };
    backend.calls = [];
    expect((await embed(other, ['shared'])).hits).toBe(1);
    expect(backend.calls).toEqual([]);
    // A private tenant sees neither the pool nor the others.
    expect((await embed(acme, ['shared'])).hits).toBe(0);
    expect(backend.calls).toEqual([['shared']]);
  });

  it('serves misses when the store hangs, within the lookup bound, and says the store was unavailable', async () => {
    const { store, backend, embed } = setup({ lookupTimeoutMs: 50 });
    store.hang = true;
    const started = performance.now();
    const o = await embed(acme, ['x', 'y']);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(o.storeAvailable).toBe(false);
    expect(o.hits).toBe(0);
    expect(backend.calls).toEqual([['x', 'y']]);
    // While it is known down, a second request does not even wait for the bound (one probe at a time).
    const lookupsBefore = store.lookups;
    const p = embed(acme, ['z1']);
    const q = embed(acme, ['z2']);
    await Promise.all([p, q]);
    expect(store.lookups - lookupsBefore).toBeLessThanOrEqual(1);
  });

  it('answers misses at the pace of a store that writes slowly, once enough rows wait for it', async () => {
    const { store, embed } = setup({ rowBackpressureBytes: 12 }); // one 3-d vector fits, two do not
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    expect((await embed(acme, ['a'])).hits).toBe(0); // 12 bytes wait: under the bound
    let answered = false;
    const second = embed(acme, ['b', 'c']).then(() => (answered = true));
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false); // 36 bytes wait on a store that is writing
    store.gate = null;
    open();
    await second;
    expect(store.rows.size).toBe(3);
  });

  it('keeps rows and usage while the store fails, and writes all of them once it is back', async () => {
    const { store, usage, service, embed } = setup();
    store.fail = true;
    for (let i = 0; i < 20; i++) await embed(acme, [`t${i}`]);
    await service.flush().catch(() => {});
    expect(store.rows.size).toBe(0);
    store.fail = false;
    await service.flush();
    await service.flush();
    expect(store.rows.size).toBe(20);
    expect(usage.reduce((n, u) => n + u.requests, 0)).toBe(20);
  });

  it.each([
    ['NaN', () => [Float32Array.from([NaN, 1, 1])]],
    ['zeros', () => [Float32Array.from([0, 0, 0])]],
    ['wrong dimension', () => [Float32Array.from([1, 1])]],
    ['too few vectors', () => []],
  ])('refuses %s from the backend: every waiter gets the error, nothing is stored, the next request recomputes', async (_name, bad) => {
    const { store, backend, service, embed } = setup();
    backend.answer = bad as (texts: string[]) => Float32Array[];
    backend.delayMs = 10;
    const results = await Promise.allSettled([embed(acme, ['p']), embed(acme, ['p']), embed(acme, ['p'])]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ kind: 'upstream_invalid_response' });
    expect(backend.calls.length).toBe(1);
    await service.flush();
    expect(store.rows.size).toBe(0);
    backend.answer = null;
    const ok = await embed(acme, ['p']);
    expect(ok.hits).toBe(0);
    expect(backend.calls.length).toBe(2);
    expect(ok.items[0].bytes).toEqual(vectorToBytes(Float32Array.from([1, 1, 'p'.charCodeAt(0)])));
  });

  it('fixes an undeclared dimension by the first valid answer and refuses a different one later', async () => {
    const { backend, embed } = setup();
    const open: ModelSpec = { ...spec, dimensions: null };
    const model: ResolvedModel = { spec: open, backend, kind: 'upstream' };
    const svc = services[services.length - 1];
    await svc.embed(acme, { model, inputs: [{ kind: 'text', text: 'first' }] });
    backend.answer = () => [Float32Array.from([1, 2, 3, 4])];
    await expect(svc.embed(acme, { model, inputs: [{ kind: 'text', text: 'second' }] })).rejects.toMatchObject({ kind: 'upstream_invalid_response' });
    void embed;
  });
});

describe('EmbedService hot hits', () => {
  it('touch no port on a hot hit: lookups, rows, hit counts and usage wait for the batched flush', async () => {
    const { store, usage, backend, service, embed } = setup({ hotBytes: 1 << 20 });
    await embed(acme, ['warm', 'twice']);
    await service.flush();
    const before = { lookups: store.lookups, rows: store.rows.size, hitWrites: store.hits.length, usageWrites: usage.length };
    for (let k = 0; k < 200; k++) {
      const out = await embed(acme, k % 2 ? ['warm'] : ['twice', 'warm']);
      expect(out.hits).toBe(out.items.length);
    }
    // Nothing reached the store or the usage sink while serving them.
    expect({ lookups: store.lookups, rows: store.rows.size, hitWrites: store.hits.length, usageWrites: usage.length }).toEqual(before);
    expect(backend.calls).toHaveLength(1);
    await service.flush();
    // Then one batch: a counter per row and one usage entry carrying all 200 requests.
    expect(store.hits.slice(before.hitWrites).map((h) => h.hits).sort()).toEqual([200, 100].sort());
    expect(usage.slice(before.usageWrites).reduce((n, d) => n + d.requests, 0)).toBe(200);
  });
});
