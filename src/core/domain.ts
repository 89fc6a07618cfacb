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
