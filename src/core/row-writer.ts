import type { Logger } from '../log.js';
import type { NewRow } from './domain.js';
import type { VectorStore } from './ports.js';

/**
 * Write-behind for computed vectors. A miss is answered as soon as the backend returns (the
 * vector is already in the in-process cache); its row reaches Postgres within ~10 ms, in
 * one multi-row INSERT shared with every other miss of that moment. A failed write is retried
 * with backoff; `close()` writes what is pending, so a clean shutdown loses nothing. Only a
 * crash can lose the last few ms of rows, which the next request simply recomputes.
 * Rows leave `pending` in the order they came (written, or dropped past the bound), so "every
 * row up to number N has left" is one counter: callers learn when their rows are in the store.
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

  constructor(
    private readonly store: Pick<VectorStore, 'insert'>,
    private readonly logger: Logger,
    private readonly opts: { delayMs: number; maxBatch: number; maxPending: number; onDrop?: (rows: number) => void } = {
      delayMs: 2,
      maxBatch: 2000,
      maxPending: 200_000,
    },
  ) {}

  /** Queues rows; `onSettled` runs once they are written (or dropped past the bound). */
  add(rows: NewRow[], onSettled?: () => void): void {
    for (const r of rows) this.pending.push(r);
    this.added += rows.length;
    if (onSettled) this.waiters.push({ seq: this.added, fn: onSettled });
    if (this.pending.length > this.opts.maxPending) {
      // Postgres has been failing for long: keep memory bounded. These rows are recomputed on demand.
      const dropped = this.pending.splice(0, this.pending.length - this.opts.maxPending);
      this.logger.error({ dropped: dropped.length }, 'cache writes backed up; dropping the oldest pending rows');
      this.opts.onDrop?.(dropped.length);
      this.settle(dropped.length);
    }
    this.schedule(this.opts.delayMs);
  }

  private settle(rows: number): void {
    this.settled += rows;
    while (this.waiters.length > 0 && this.waiters[0].seq <= this.settled) this.waiters.shift()!.fn();
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
    const batch = this.pending.splice(0, this.opts.maxBatch);
    this.inflight = this.store
      .insert(batch)
      .then(() => {
        this.failures = 0;
        this.settle(batch.length);
      })
      .catch((err: unknown) => {
        this.failures++;
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
    if (this.timer) clearTimeout(this.timer);
  }
}
