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
  /** Adds batched hit counts (eviction order). */
  recordHits(counts: HitCount[]): Promise<void>;
}

export interface UsageSink {
  write(deltas: UsageDelta[]): Promise<void>;
}

/** Charges computed tokens to a tenant's tokens-per-minute limit (after the fact). */
export interface TokenMeter {
  chargeTokens(tenantId: number, tier: Tier, tokens: number): void;
}
