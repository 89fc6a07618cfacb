import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { evictLeastRecentlyHit, expireRows } from '../store/embeddings.js';
import { tenantsOverCapacity } from '../store/tiers.js';

/**
 * Periodic eviction off the request path: rows unused for `ttlDays` go, then tenants over
 * their tier's row cap lose their least recently hit rows. Evicted rows may linger in a
 * server's in-process cache until pushed out; they are immutable, so that is harmless.
 */
export class Evictor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly opts: { ttlDays: number; intervalMs: number; logger: Logger },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** One sweep; concurrent calls share it. Returns when done. */
  sweep(): Promise<void> {
    this.running ??= this.run()
      .catch((err: unknown) => this.opts.logger.warn({ err }, 'eviction sweep failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async run(): Promise<void> {
    let expired = 0;
    if (this.opts.ttlDays > 0) expired = await expireRows(this.sql, this.opts.ttlDays);
    let evicted = 0;
    for (const { tenantId, excess } of await tenantsOverCapacity(this.sql)) {
      evicted += await evictLeastRecentlyHit(this.sql, tenantId, excess);
    }
    if (expired + evicted > 0) this.opts.logger.info({ expired, evicted }, 'eviction sweep');
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
