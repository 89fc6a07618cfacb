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
    },
  ) {
    this.timer = setInterval(() => void this.flush(), opts.intervalMs);
    this.timer.unref();
  }

  add(key: string, value: V): void {
    const cur = this.pending.get(key);
    if (cur) this.opts.merge(cur, value);
    else this.pending.set(key, value);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Writes what is pending now; concurrent calls share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.opts
      .write([...batch.values()])
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
