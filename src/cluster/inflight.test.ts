/**
 * The machine-wide in-flight registry, hub and workers wired in one process (the messages are
 * the ones node:cluster carries; delivery is asynchronous here as there): identical misses in
 * two EmbedServices compute once, values are handed over, failures and gone workers release
 * their keys.
 */
import { describe, expect, it } from 'vitest';
import type { CacheScope, NewRow, StoredVector } from '../core/domain.js';
import { EmbedService } from '../core/embed-service.js';
import { DomainError } from '../core/errors.js';
import { HotCache } from '../core/hot-cache.js';
import { InProcessInFlight } from '../core/inflight.js';
import type { InFlightRegistry, InFlightWaitResult, VectorStore } from '../core/ports.js';
import type { TenantContext } from '../core/tenant.js';
import type { EmbedInput, Embedder, ModelSpec } from '../core/types.js';
import { createLogger } from '../log.js';
import { InFlightHub } from './inflight-hub.js';
import { ClusterInFlight } from './inflight-worker.js';
import type { ToPrimary, ToWorker } from './messages.js';

/**
 * The hub and `workers` registries wired as node:cluster wires them. `batched`: as node's IPC
 * delivers them, every message a read brings is emitted back to back (nextTick after nextTick,
 * before any promise continuation runs), here everything the hub sends a worker in one turn;
 * otherwise each message in a turn of its own.
 */
function machine(workers: number, batched = false) {
  const listeners = new Map<number, (msg: unknown) => void>();
  const inbox = new Map<number, ToWorker[]>();
  const deliver = (id: number, msgs: ToWorker[]) => {
    for (const m of msgs) listeners.get(id)?.(structuredClone(m));
  };
  const hub = new InFlightHub((id, msg: ToWorker) => {
    if (!batched) return void setImmediate(() => deliver(id, [msg]));
    const q = inbox.get(id) ?? [];
    if (q.length === 0)
      setImmediate(() => {
        inbox.delete(id);
        deliver(id, q);
      });
    q.push(msg);
    inbox.set(id, q);
  });
  const regs = Array.from({ length: workers }, (_, i) => {
    const id = i + 1;
    return new ClusterInFlight({
      send: (msg: ToPrimary) => setImmediate(() => hub.receive(id, structuredClone(msg))),
      onMessage: (fn) => void listeners.set(id, fn),
    });
  });
  return { hub, regs };
}

const value = (s: string) => ({ bytes: Buffer.from(s), tokens: s.length });

/** A wait's vector as text ('own' is not expected where this is used). */
function bytesOf(r: InFlightWaitResult): string {
  if (r === 'own') throw new Error('expected a result, got the key handed over');
  return r.value.bytes.toString();
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('cluster in-flight registry', () => {
  it('lets one worker own a key and hands its computed value to the other', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    const [ca] = await a.claim(['1\u0000k']);
    expect(ca.kind).toBe('own');
    const [cb] = await b.claim(['1\u0000k']);
    expect(cb.kind).toBe('wait');
    // A second request in worker b shares b's wait, without asking the primary again.
    const [cb2] = b.claim(['1\u0000k']) as Awaited<ReturnType<typeof b.claim>>;
    expect(cb2.kind).toBe('wait');
    const computed = value('vec');
    a.settle('1\u0000k', { value: computed, cached: false });
    if (cb.kind !== 'wait' || cb2.kind !== 'wait') throw new Error('unreachable');
    const [r, r2] = await Promise.all([cb.result, cb2.result]);
    expect(bytesOf(r)).toBe('vec');
    expect(bytesOf(r2)).toBe('vec');
    expect(b.counts.waited).toBe(1);
    // Computed, row not stored yet: a later claim gets the value itself.
    const [again] = await b.claim(['1\u0000k']);
    expect(again.kind).toBe('done');
    // Once a's row is stored, the key is free: the next claim looks it up in the store.
    a.stored('1\u0000k', computed);
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
  });

  it('keeps an owner\'s result that arrives in the same read as the claim\'s "wait"', async () => {
    const { regs } = machine(2, true);
    const [a, b] = regs;
    expect((await a.claim(['k']))[0].kind).toBe('own');
    // b's claim and a's settle reach the primary in one turn: "wait", then the result, in one read.
    const waiting = b.claim(['k']);
    a.settle('k', { value: value('vec'), cached: false });
    const [cb] = await waiting;
    if (cb.kind !== 'wait') throw new Error(`expected wait, got ${cb.kind}`);
    let got: string | null = null;
    void cb.result.then((r) => void (got = bytesOf(r)));
    await turns(5);
    expect(got).toBe('vec');
  });

  it('keeps an owner\'s failure that arrives in the same read as the claim\'s "wait"', async () => {
    const { regs } = machine(2, true);
    const [a, b] = regs;
    await a.claim(['k']);
    const waiting = b.claim(['k']);
    a.settle('k', { error: new DomainError('upstream_timeout', 'slow upstream') });
    const [cb] = await waiting;
    if (cb.kind !== 'wait') throw new Error(`expected wait, got ${cb.kind}`);
    let failed: unknown = null;
    cb.result.catch((e: unknown) => void (failed = e));
    await turns(5);
    expect(failed).toMatchObject({ kind: 'upstream_timeout' });
  });

  it('passes an owner failure to its waiters and frees the key', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['k']);
    const [cb] = await b.claim(['k']);
    a.settle('k', { error: new DomainError('upstream_timeout', 'slow upstream') });
    if (cb.kind !== 'wait') throw new Error('expected wait');
    await expect(cb.result).rejects.toMatchObject({ kind: 'upstream_timeout', message: 'slow upstream' });
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
    expect((await b.claim(['k']))[0].kind).toBe('own');
  });

  it('hands the keys of a worker that died to one worker waiting for them; the others wait on it', async () => {
    const { hub, regs } = machine(3);
    const [a, b, c] = regs;
    await a.claim(['k']);
    const [cb] = await b.claim(['k']);
    const [cc] = await c.claim(['k']);
    hub.workerGone(1);
    if (cb.kind !== 'wait' || cc.kind !== 'wait') throw new Error('expected waits');
    await expect(cb.result).resolves.toBe('own');
    // b resolves it now; c hears b's result.
    b.settle('k', { value: value('from b'), cached: false });
    expect(bytesOf(await cc.result)).toBe('from b');
    b.stored('k', value('from b'));
    await turns(3);
    expect(hub.size).toBe(0);
  });

  it('frees the keys of a worker that died when nobody waits for them', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['k']);
    hub.workerGone(1);
    expect(hub.size).toBe(0);
    expect((await b.claim(['k']))[0].kind).toBe('own');
  });

  it('forgets computed values of a dropped tenant', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['7\u0000k']);
    a.settle('7\u0000k', { value: value('v'), cached: false });
    await new Promise((res) => setImmediate(res));
    b.dropTenant(7);
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
    expect((await b.claim(['7\u0000k']))[0].kind).toBe('own');
  });
});

/** One store for the "machine" (as PostgreSQL is for every worker). */
class SharedStore implements VectorStore {
  readonly rows = new Map<string, NewRow>();
  private k(t: number, s: CacheScope, h: Buffer) {
    return `${t}|${s.model}|${s.modelVersion}|${h.toString('hex')}`;
  }
  async lookup(tenantIds: number[], scope: CacheScope, hashes: Buffer[]): Promise<StoredVector[]> {
    const out: StoredVector[] = [];
    for (const t of tenantIds) for (const h of hashes) {
      const r = this.rows.get(this.k(t, scope, h));
      if (r) out.push({ tenantId: t, inputHash: h, vector: r.vector, tokens: r.tokens });
    }
    return out;
  }
  async insert(rows: NewRow[]): Promise<void> {
    for (const r of rows) this.rows.set(this.k(r.tenantId, r.scope, r.inputHash), r);
  }
  async recordHits(): Promise<void> {}
}

/** A backend that holds every call until release(). */
class GatedBackend implements Embedder {
  readonly name = 'gated';
  calls = 0;
  private waiting: (() => void)[] = [];
  constructor(private readonly spec: ModelSpec) {}
  models() {
    return [this.spec];
  }
  async embed(_model: string, inputs: EmbedInput[]) {
    this.calls++;
    await new Promise<void>((r) => this.waiting.push(r));
    return { vectors: inputs.map(() => Float32Array.from([1, 2, 3])), tokens: inputs.map(() => 1) };
  }
  release() {
    for (const r of this.waiting.splice(0)) r();
  }
  async ready() {
    return true;
  }
  async close() {}
}

const spec: ModelSpec = { id: 'm', cacheModel: 'm', version: '1', dimensions: 3, maxInputTokens: 512, dimensionsMethod: 'none', defaultTaskType: null, ownedBy: 'test', created: 0 };
const tenant: TenantContext = { id: 1, name: 'acme', tier: 'unlimited', sharePublic: false };
const logger = createLogger('silent');

function service(store: VectorStore, inflight: InFlightRegistry, hotBytes = 0) {
  return new EmbedService({ store, usage: { write: async () => {} }, hot: new HotCache(hotBytes), logger, flushIntervalMs: 60_000, inflight });
}

describe('EmbedService on the cluster registry', () => {
  it('computes an identical miss in two workers once', async () => {
    const { regs } = machine(2);
    const store = new SharedStore();
    const backend = new GatedBackend(spec);
    const [a, b] = regs.map((r) => service(store, r));
    const model = { spec, backend, kind: 'upstream' as const };
    const req = { model, inputs: [{ kind: 'text' as const, text: 'same' }] };
    const first = a.embed(tenant, req);
    for (let i = 0; i < 100 && backend.calls === 0; i++) await new Promise((r) => setImmediate(r));
    const second = b.embed(tenant, req);
    for (let i = 0; i < 100 && regs[1].counts.waited === 0; i++) await new Promise((r) => setImmediate(r));
    expect(regs[1].counts.waited).toBe(1);
    backend.release();
    const [ra, rb] = await Promise.all([first, second]);
    expect(backend.calls).toBe(1);
    expect(rb.items[0].bytes.equals(ra.items[0].bytes)).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it('computes a key itself when the worker computing it stops, and answers its request', async () => {
    const { hub, regs } = machine(2);
    const store = new SharedStore();
    const stuck = new GatedBackend(spec); // worker a's call never returns: a is SIGKILLed meanwhile
    const backend = new GatedBackend(spec);
    const a = service(store, regs[0]);
    const b = service(store, regs[1]);
    const input = [{ kind: 'text' as const, text: 'orphaned' }];
    void a.embed(tenant, { model: { spec, backend: stuck, kind: 'upstream' as const }, inputs: input }).catch(() => {});
    for (let i = 0; i < 100 && stuck.calls === 0; i++) await new Promise((r) => setImmediate(r));
    const second = b.embed(tenant, { model: { spec, backend, kind: 'upstream' as const }, inputs: input });
    for (let i = 0; i < 100 && regs[1].counts.waited === 0; i++) await new Promise((r) => setImmediate(r));
    expect(regs[1].counts.waited).toBe(1);
    hub.workerGone(1);
    for (let i = 0; i < 100 && backend.calls === 0; i++) await new Promise((r) => setImmediate(r));
    expect(backend.calls).toBe(1);
    backend.release();
    const r = await second;
    expect(r.hits).toBe(0);
    expect(Array.from(new Float32Array(r.items[0].bytes.buffer, r.items[0].bytes.byteOffset, 3))).toEqual([1, 2, 3]);
    await b.close();
    expect(store.rows.size).toBe(1);
  });

  it('never asks the registry about a hot-cache hit', async () => {
    const inner = new InProcessInFlight();
    let claims = 0;
    const counting: InFlightRegistry = {
      claim: (keys) => {
        claims++;
        return inner.claim(keys);
      },
      settle: (k, o) => inner.settle(k, o),
      stored: (k, v) => inner.stored(k, v),
      dropTenant: (t) => inner.dropTenant(t),
    };
    const backend = new GatedBackend(spec);
    const svc = service(new SharedStore(), counting, 1 << 20);
    const req = { model: { spec, backend, kind: 'upstream' as const }, inputs: [{ kind: 'text' as const, text: 'hot' }] };
    const miss = svc.embed(tenant, req);
    for (let i = 0; i < 100 && backend.calls === 0; i++) await new Promise((r) => setImmediate(r));
    backend.release();
    await miss;
    expect(claims).toBe(1);
    const hit = await svc.embed(tenant, req);
    expect(hit.hits).toBe(1);
    expect(claims).toBe(1);
    await svc.close();
  });
});
