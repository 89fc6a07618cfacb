/**
 * Domain types every layer shares. They live in core: the store persists them and imports
 * them from here, never the reverse.
 */

/** What may serve a tenant's misses: its own providers, the server's upstream, server-side models. */
export const BACKEND_KINDS = ['byok', 'upstream', 'local'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/** What a tenant may do. null = unlimited. */
export interface Tier {
  name: string;
  requestsPerDay: number | null;
  burstPerSecond: number | null;
  tokensPerMinute: number | null;
  maxCachedRows: number | null;
  backends: BackendKind[];
}

export interface Tenant {
  id: number;
  name: string;
  tier: string;
  sharePublic: boolean;
  createdAt: Date;
  /** Bumped by `tokens revoke`: tenant JWTs carry the generation they were minted under. */
  tokenGeneration: number;
  /** Bumped by every clear (see NewRow.cacheEpoch). */
  cacheEpoch: number;
}

/** The shared pool's tenant id (see migrations/001_init.sql). */
export const PUBLIC_TENANT_ID = 0;

/** Identifies one model variant's rows: vectors of different variants never mix. */
export interface CacheScope {
  model: string;
  modelVersion: string;
}

/** A cached vector as the store returns it. */
export interface StoredVector {
  tenantId: number;
  inputHash: Buffer;
  /** Full-dimension little-endian float32 bytes. */
  vector: Buffer;
  tokens: number;
}

/** A computed vector on its way to the store. */
export interface NewRow {
  tenantId: number;
  scope: CacheScope;
  inputHash: Buffer;
  vector: Buffer;
  tokens: number;
  /** The tenant's cache epoch the row was computed under; the insert drops it if a clear moved on. Unset: not checked. */
  cacheEpoch?: number;
}

/** Hits of one row since the last flush. */
export interface HitCount {
  tenantId: number;
  scope: CacheScope;
  inputHash: Buffer;
  hits: number;
}

/** Usage of one tenant, day and model since the last flush. */
export interface UsageDelta {
  tenantId: number;
  day: string; // YYYY-MM-DD (UTC)
  /**
   * The UTC hour of the usage, `YYYY-MM-DDTHH` (within `day`), for usage_hourly. Without it,
   * the store uses the hour of the write (clamped into `day`): right to within the flush interval.
   */
  hour?: string;
  model: string;
  requests: number;
  inputs: number;
  hits: number;
  misses: number;
  promptTokens: number;
  /** Tokens served from the cache: what the hits would have cost. */
  hitTokens: number;
  backendMs: number;
}

/** The counters of a usage delta, without its key (tenant, day, hour, model). */
export type UsageCounters = Pick<UsageDelta, 'requests' | 'inputs' | 'hits' | 'misses' | 'promptTokens' | 'hitTokens' | 'backendMs'>;

/** Adds `from`'s counters into `into` (merging deltas in memory, summing report rows). */
export function addCounters(into: UsageCounters, from: UsageCounters): void {
  into.requests += from.requests;
  into.inputs += from.inputs;
  into.hits += from.hits;
  into.misses += from.misses;
  into.promptTokens += from.promptTokens;
  into.hitTokens += from.hitTokens;
  into.backendMs += from.backendMs;
}
