import type { Logger } from '../log.js';
import type { NewRow } from './domain.js';
import type { VectorStore } from './ports.js';

/** Unwritten vector bytes past which room() holds callers back while the store keeps up (about 5k 1536-d rows). */
const BACKPRESSURE_BYTES = 32 * 1024 * 1024;

/**
 * Write-behind for computed vectors. A miss is answered as soon as the backend returns (the
 * vector is already in the in-process cache); its row reaches Postgres within ~10 ms, in
 * one multi-row INSERT shared with every other miss of that moment. A failed write is retried
 * with backoff; `close()` writes what is pending, so a clean shutdown loses nothing. Only a
 * crash can lose the last few ms of rows, which the next request simply recomputes.
 * Rows leave `pending` in the order they came (written, or dropped past the bound), so "every
 * row up to number N has left" is one counter: callers learn when their rows are in the store.
 *
 * Two bounds. While the store is writing but slower than rows come (a bulk ingest into the
 * embedded store), room() holds callers back once `backpressureBytes` of vectors wait: the
 * buffer stays small and ingest runs at store speed instead of piling up rows until the
 * `maxPending` bound drops them. While writes fail (the store away), room() never waits: misses
 * are still served and rows wait in the bounded buffer.
 */
export class RowWriter {
  private pending: NewRow[] = [];
  private inflight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;
  /** Rows ever added, and rows that have left pending (written or dropped): FIFO sequence numbers. */
  private added = 0;
  private settled = 0;
  private readonly waiters: { seq: number; fn: () => void }[] = [];
  /** Vector bytes added and not yet written or dropped, and callers of room() waiting on them. */
  private unwrittenBytes = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly backpressureBytes: number;

  constructor(
    private readonly store: Pick<VectorStore, 'insert' | 'insertBatchRows'>,
    private readonly logger: Logger,
    private readonly opts: { delayMs: number; maxBatch: number; maxPending: number; backpressureBytes?: number; onDrop?: (rows: number) => void } = {
      delayMs: 2,
      maxBatch: 2000,
      maxPending: 200_000,
    },
  ) {
    // The store may want smaller statements than the caller's batch (see insertBatchRows).
    this.maxBatch = Math.min(opts.maxBatch, store.insertBatchRows ?? Infinity);
    this.backpressureBytes = opts.backpressureBytes ?? BACKPRESSURE_BYTES;
  }

  /** Queues rows; `onSettled` runs once they are written (or dropped past the bound). */
  add(rows: NewRow[], onSettled?: () => void): void {
    for (const r of rows) {
      this.pending.push(r);
      this.unwrittenBytes += r.vector.length;
    }
    this.added += rows.length;
    if (onSettled) this.waiters.push({ seq: this.added, fn: onSettled });
    if (this.pending.length > this.opts.maxPending) {
      // Postgres has been failing for long: keep memory bounded. These rows are recomputed on demand.
      const dropped = this.pending.splice(0, this.pending.length - this.opts.maxPending);
      this.logger.error({ dropped: dropped.length }, 'cache writes backed up; dropping the oldest pending rows');
      this.opts.onDrop?.(dropped.length);
      this.settle(dropped);
    }
    this.schedule(this.opts.delayMs);
  }

  private settle(rows: NewRow[]): void {
    this.settled += rows.length;
    for (const r of rows) this.unwrittenBytes -= r.vector.length;
    while (this.waiters.length > 0 && this.waiters[0].seq <= this.settled) this.waiters.shift()!.fn();
    this.releaseRoom();
  }

  private get full(): boolean {
    return this.unwrittenBytes > this.backpressureBytes && this.failures === 0 && !this.closed;
  }

  private releaseRoom(): void {
    while (this.roomWaiters.length > 0 && !this.full) this.roomWaiters.shift()!();
  }

  /**
   * Resolves at once unless the store is keeping up too slowly (writes succeed, but more than
   * `backpressureBytes` of vectors wait); then once enough of them are written. Never waits on
   * a failing store. Callers that produce rows await it before taking more work.
   */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.inflight || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.writeSome();
    }, delayMs);
  }

  private writeSome(): Promise<void> {
    if (this.inflight) return this.inflight;
    if (this.pending.length === 0) return Promise.resolve();
    const batch = this.pending.splice(0, this.maxBatch);
    this.inflight = this.store
      .insert(batch)
      .then(() => {
        this.failures = 0;
        this.settle(batch);
      })
      .catch((err: unknown) => {
        this.failures++;
        // The store is failing, not slow: nobody is held back while it is away.
        this.releaseRoom();
        this.pending.unshift(...batch);
        this.logger.warn({ err, rows: batch.length, failures: this.failures }, 'writing cached vectors failed; will retry');
      })
      .finally(() => {
        this.inflight = null;
        if (this.pending.length > 0) this.schedule(this.failures > 0 ? Math.min(5000, 50 * 2 ** this.failures) : 0);
      });
    return this.inflight;
  }

  /** Writes everything pending now (stats readers, tests, shutdown). Gives up after `attempts` failed writes. */
  async flush(attempts = 3): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let failed = 0;
    while (this.inflight || this.pending.length > 0) {
      const before = this.failures;
      await (this.inflight ?? this.writeSome());
      if (this.failures > before && ++failed >= attempts) {
        this.logger.error({ rows: this.pending.length }, 'could not write pending cache rows');
        return;
      }
    }
  }

  get size(): number {
    return this.pending.length;
  }

  async close(): Promise<void> {
    await this.flush(5);
    this.closed = true;
    this.releaseRoom();
    if (this.timer) clearTimeout(this.timer);
  }
}
