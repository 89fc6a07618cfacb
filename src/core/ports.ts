/**
 * What the pipeline needs from the outside, as interfaces: the server wires PostgreSQL (or the
 * embedded store) behind them, unit tests wire memory. Core never imports the store's functions.
 */
import type { CacheScope, HitCount, NewRow, StoredVector, Tier, UsageDelta } from './domain.js';

export interface VectorStore {
  /** All requested hashes of one scope in one round trip, across the given tenants (own + public). */
  lookup(tenantIds: number[], scope: CacheScope, hashes: Buffer[]): Promise<StoredVector[]>;
  /** Writes rows; a row already there is kept; rows of a deleted tenant are dropped. */
  insert(rows: NewRow[]): Promise<void>;
  /** The most rows one insert should carry, where the store is faster with smaller statements (unset: the caller's batch). */
  insertBatchRows?: number;
  /** Adds batched hit counts (eviction order). */
  recordHits(counts: HitCount[]): Promise<void>;
}

export interface UsageSink {
  /** Writes batched deltas to the database. */
  write(deltas: UsageDelta[]): Promise<void>;
  /**
   * Counts one request's usage durably at once (Redis), when configured. A rejection hands the
   * delta back: it is then batched in memory and written with write().
   */
  add?(delta: UsageDelta): Promise<void>;
}

/** Charges computed tokens to a tenant's tokens-per-minute limit (after the fact). */
export interface TokenMeter {
  chargeTokens(tenantId: number, tier: Tier, tokens: number): void;
}
