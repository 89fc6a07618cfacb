import type { CacheScope, StoredVector } from '../core/domain.js';

export type LookupFn = (tenantIds: number[], scope: CacheScope, hashes: Buffer[]) => Promise<StoredVector[]>;

export interface LookupBatcherOptions {
  /**
   * Merged queries in flight at once (the connection pool's size): lookups arriving while all
   * are busy join the next query of their tenants and scope instead of queueing for a connection.
   */
  maxInFlight: number;
  /** Distinct hashes per merged query, at most: a larger query is a slower one for every waiter. */
  maxHashes: number;
}

interface Waiter {
  hashes: Buffer[];
  resolve: (rows: StoredVector[]) => void;
  reject: (err: unknown) => void;
}

/** Concurrent lookups of one read-tenant set and scope, sent as one `= ANY` query. */
interface Batch {
  group: string;
  tenantIds: number[];
  scope: CacheScope;
  /** Distinct hashes (by their bytes as latin1 text), in arrival order. */
  hashes: Map<string, Buffer>;
  waiters: Waiter[];
}

/**
 * Merges the store lookups of concurrent requests: those that arrive in the same turn of the
 * event loop while a query is in flight, or while every connection is busy, for the same read
 * tenants and scope, go out as one query (a lookup that finds the store idle goes at once), and
 * each request gets back the rows of its own hashes. A request's lookup is still in exactly
 * one query (one round trip), and a busy server sends fewer, larger queries, which cost
 * PostgreSQL and the driver less per row than one query per request.
 * A failed query fails every lookup in it (each request then serves misses, as for any store
 * failure); the caller bounds the wait (EmbedService's lookup timeout).
 */
export class LookupBatcher {
  /** Batches still accepting lookups, by group. */
  private readonly open = new Map<string, Batch>();
  /** Batches waiting for a free slot, oldest first. */
  private readonly queue: Batch[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Queries sent since start (tests and the bench read it). */
  queries = 0;

  constructor(
    private readonly run: LookupFn,
    private readonly opts: LookupBatcherOptions,
  ) {
    if (opts.maxInFlight < 1 || opts.maxHashes < 1) throw new Error('LookupBatcher: maxInFlight and maxHashes must be at least 1');
  }

  lookup(tenantIds: number[], scope: CacheScope, hashes: Buffer[]): Promise<StoredVector[]> {
    if (hashes.length === 0) return Promise.resolve([]);
    // A request larger than a batch goes alone, unmerged: splitting it would be more round trips.
    if (hashes.length >= this.opts.maxHashes) return this.alone(tenantIds, scope, hashes);
    const group = `${tenantIds.join(',')}\u0000${scope.model}\u0000${scope.modelVersion}`;
    let batch = this.open.get(group);
    if (batch && batch.hashes.size + hashes.length > this.opts.maxHashes) {
      this.open.delete(group); // full: it goes as it is, a new one gathers the rest
      batch = undefined;
    }
    if (!batch) {
      batch = { group, tenantIds, scope, hashes: new Map(), waiters: [] };
      this.open.set(group, batch);
      this.queue.push(batch);
    }
    for (const h of hashes) batch.hashes.set(h.toString('latin1'), h);
    const b = batch;
    const promise = new Promise<StoredVector[]>((resolve, reject) => b.waiters.push({ hashes, resolve, reject }));
    // Nothing in flight: there is no traffic to merge with, so the lookup goes out now. Held for
    // the next turn it went out a whole loop iteration later (postgres.js defers a small query's
    // write by a turn of its own), which cost a miss 3 ms at p50 at 8 connections (bench miss:
    // 27-28 ms against 30-32, 20 ms upstream) and a fifth of the throughput at 32.
    if (this.inFlight === 0 && !this.scheduled) {
      this.drain();
      return promise;
    }
    // Queries in flight: sent on the next turn, so that the requests read in this one join it.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.drain();
      });
    }
    return promise;
  }

  /** Queries in flight and batches waiting (for health and tests). */
  get pending(): { inFlight: number; queued: number } {
    return { inFlight: this.inFlight, queued: this.queue.length };
  }

  private drain(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.shift()!;
      if (this.open.get(batch.group) === batch) this.open.delete(batch.group);
      this.send(batch);
    }
  }

  private send(batch: Batch): void {
    this.inFlight++;
    this.queries++;
    let call: Promise<StoredVector[]>;
    try {
      call = this.run(batch.tenantIds, batch.scope, [...batch.hashes.values()]);
    } catch (err) {
      call = Promise.reject(err);
    }
    call.then(
      (rows) => {
        this.done();
        deliver(batch.waiters, rows);
      },
      (err: unknown) => {
        this.done();
        for (const w of batch.waiters) w.reject(err);
      },
    );
  }

  private async alone(tenantIds: number[], scope: CacheScope, hashes: Buffer[]): Promise<StoredVector[]> {
    this.queries++;
    return this.run(tenantIds, scope, hashes);
  }

  private done(): void {
    this.inFlight--;
    this.drain();
  }
}

/** Hands each waiter the rows of its own hashes (every tenant's row of each). */
function deliver(waiters: Waiter[], rows: StoredVector[]): void {
  if (waiters.length === 1) {
    waiters[0].resolve(rows);
    return;
  }
  const byHash = new Map<string, StoredVector[]>();
  for (const row of rows) {
    const k = row.inputHash.toString('latin1');
    const list = byHash.get(k);
    if (list) list.push(row);
    else byHash.set(k, [row]);
  }
  for (const w of waiters) {
    const mine: StoredVector[] = [];
    for (const h of w.hashes) {
      const list = byHash.get(h.toString('latin1'));
      if (list) for (const row of list) mine.push(row);
    }
    w.resolve(mine);
  }
}
