import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { listTiers, type Tier } from '../store/tiers.js';

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

  get(name: string): Tier {
    return this.tiers.get(name) ?? this.tiers.get('free') ?? { name, requestsPerDay: 0, burstPerSecond: 0, tokensPerMinute: 0, maxCachedRows: 0, backends: [] };
  }

  list(): Tier[] {
    return [...this.tiers.values()];
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
