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

/** What a key in flight resolved to: its vector, and whether it came from the cache (store). */
export interface InFlightResult {
  value: { bytes: Buffer; tokens: number };
  cached: boolean;
}

/**
 * One answer of InFlightRegistry.claim per key: this request resolves it (`own`: look it up,
 * compute it if missing, settle it); it was computed and its row is not stored yet (`done`: a
 * hit all the same); or another request resolves it (`wait`).
 */
export type InFlightClaim =
  | { kind: 'own' }
  | { kind: 'done'; value: { bytes: Buffer; tokens: number } }
  | { kind: 'wait'; result: Promise<InFlightWaitResult> };

/**
 * What a wait ends with: the owner's result, or `own` when the owner (another worker process)
 * stopped before settling and the key was handed to this waiter, which now resolves it itself.
 */
export type InFlightWaitResult = InFlightResult | 'own';

/**
 * Keys being resolved (store lookup, then compute) and by whom, so identical misses compute
 * once: a key is claimed *before* its lookup and stays claimed until its row is stored. The
 * in-process registry (core/inflight.ts) answers at once; a registry shared by the workers of
 * one machine (cluster/) answers after a round trip to the primary.
 */
export interface InFlightRegistry {
  /** Claims every key not already in flight for the caller, before anything is awaited. */
  claim(keys: string[]): InFlightClaim[] | Promise<InFlightClaim[]>;
  /** An owned key's outcome, for its waiters. Found rows leave at once; computed ones stay until stored(). */
  settle(key: string, outcome: InFlightResult | { error: unknown }): void;
  /** The computed row of an owned key is in the store (or dropped): later requests read it there. */
  stored(key: string, value: { bytes: Buffer; tokens: number }): void;
  /** Forgets computed, unstored values of a tenant (after its clear or deletion). */
  dropTenant(tenantId: number): void;
}
