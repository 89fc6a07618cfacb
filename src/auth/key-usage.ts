import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { recordKeysUsed } from '../store/api-keys.js';

/**
 * `api_keys.last_used_at`, kept off the hot path: a request only notes its key in memory (a Map
 * lookup); a timer writes what was noted, for all keys at once, in one UPDATE. A key is noted at
 * most once per `resolutionMs` (a minute), so a busy key costs one write a minute, not one per
 * request. A failed write is retried with the next batch; `close()` writes what is pending.
 */
export class KeyUsage {
  /** Key id -> when it was used, not yet written. */
  private pending = new Map<number, number>();
  /** Key id -> the last time it was noted (pending or written): the once-a-minute gate. */
  private readonly noted = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
    private readonly opts: { resolutionMs: number; flushIntervalMs: number } = { resolutionMs: 60_000, flushIntervalMs: 10_000 },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.opts.flushIntervalMs);
    this.timer.unref();
  }

  /** Called on every authenticated request: cheap, never waits. */
  used(keyId: number, now = Date.now()): void {
    const last = this.noted.get(keyId);
    if (last !== undefined && now - last < this.opts.resolutionMs) return;
    this.noted.set(keyId, now);
    this.pending.set(keyId, now);
  }

  /** Writes what was noted; resolves when written (or when the write failed and was put back). */
  async flush(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const cutoff = Date.now() - this.opts.resolutionMs;
    // Keys unused for a minute need no gate any more: the map stays as small as the active set.
    for (const [id, at] of this.noted) if (at < cutoff && !batch.has(id)) this.noted.delete(id);
    this.inflight = recordKeysUsed(
      this.sql,
      [...batch].map(([id, at]) => ({ id, at: new Date(at) })),
    )
      .catch((err: unknown) => {
        for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
        this.logger.warn({ err, keys: batch.size }, 'recording when keys were last used failed; will retry');
      })
      .finally(() => {
        this.inflight = null;
      });
    await this.inflight;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
