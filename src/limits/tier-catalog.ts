import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import type { Tier } from '../core/domain.js';
import { listTiers } from '../store/tiers.js';

/**
 * Tiers from the database, kept in memory and refreshed periodically, so a request needs no
 * round trip to learn its limits. An unknown tier name gets the most restrictive known tier.
 */
export class TierCatalog {
  private tiers = new Map<string, Tier>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
    private readonly refreshMs = 30_000,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch((err: unknown) => this.logger.warn({ err }, 'tier refresh failed')), this.refreshMs);
    this.timer.unref();
  }

  async refresh(): Promise<void> {
    this.tiers = new Map((await listTiers(this.sql)).map((t) => [t.name, t]));
  }

  private lastMissRefresh = 0;

  get(name: string): Tier {
    return this.tiers.get(name) ?? this.tiers.get('free') ?? { name, requestsPerDay: 0, burstPerSecond: 0, tokensPerMinute: 0, maxCachedRows: 0, backends: [] };
  }

  /**
   * Like get(), but a tier name not seen yet (created by another process a moment ago) causes
   * one reload first, at most once a second, instead of the tenant getting the fallback. The
   * reload is waited for `missWaitMs` at most: a database that does not answer never holds a
   * request (the reload goes on in the background). A known tier is answered without a promise.
   */
  resolve(name: string): Tier | Promise<Tier> {
    if (this.tiers.has(name) || Date.now() - this.lastMissRefresh <= 1000) return this.get(name);
    return this.reloadFor(name);
  }

  private async reloadFor(name: string): Promise<Tier> {
    this.lastMissRefresh = Date.now();
    const reload = this.refresh().catch((err: unknown) => this.logger.warn({ err }, 'tier refresh failed'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([reload, new Promise((r) => (timer = setTimeout(r, this.missWaitMs)))]);
    clearTimeout(timer);
    return this.get(name);
  }

  missWaitMs = 250;

  list(): Tier[] {
    return [...this.tiers.values()];
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
