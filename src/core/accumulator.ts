import type { Logger } from '../log.js';

/**
 * Counters gathered in memory and written in batches off the hot path. A failed write puts
 * its batch back so nothing is lost; `close()` flushes what is left.
 */
export class Accumulator<V> {
  private pending = new Map<string, V>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly opts: {
      name: string;
      intervalMs: number;
      merge: (into: V, from: V) => void;
      write: (batch: V[]) => Promise<void>;
      logger: Logger;
      /** Entries kept while writes fail; past it new keys are dropped (and counted). */
      maxEntries?: number;
      onDrop?: (entries: number) => void;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), opts.intervalMs);
    this.timer.unref();
  }

  private dropped = 0;

  add(key: string, value: V): void {
    const cur = this.pending.get(key);
    if (cur) this.opts.merge(cur, value);
    else if (this.pending.size < (this.opts.maxEntries ?? Infinity)) this.pending.set(key, value);
    else this.drop(1);
  }

  /** Memory stays bounded while the store is away; what is dropped is counted and logged once per batch of drops. */
  private drop(n: number): void {
    if (this.dropped === 0) this.opts.logger.error({ accumulator: this.opts.name, max: this.opts.maxEntries }, 'store away too long: dropping new counter entries past the bound');
    this.dropped += n;
    this.opts.onDrop?.(n);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Writes what is pending now (after any write already running). */
  flush(): Promise<void> {
    // A write already running took only what was pending when it started: wait for it, then
    // write what came since, so a caller's flush covers everything added before it was called.
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.size === 0) return Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.opts
      .write([...batch.values()])
      .then(() => {
        if (this.dropped === 0) return;
        this.opts.logger.warn({ accumulator: this.opts.name, dropped: this.dropped }, 'store back: counter entries were dropped while it was away');
        this.dropped = 0;
      })
      .catch((err: unknown) => {
        this.opts.logger.warn({ err, accumulator: this.opts.name, entries: batch.size }, 'batched write failed; will retry');
        for (const [k, v] of batch) this.add(k, v);
      })
      .finally(() => {
        this.flushing = null;
      });

    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    // A batch that failed was put back: one last try.
    if (this.pending.size > 0) await this.flush();
  }
}
