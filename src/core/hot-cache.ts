import { LRUCache } from 'lru-cache';

/** A cached vector: full-dimension float32 bytes and the tokens its input cost. */
export interface CachedVector {
  bytes: Buffer;
  tokens: number;
}

// Map entry, key string and object headers: a rough per-entry cost on top of the bytes.
const ENTRY_OVERHEAD = 160;

/**
 * In-process LRU in front of Postgres, bounded in bytes. Hits that land here cost no round
 * trip. Rows are immutable for a (tenant, model, version, hash) key, so there is nothing to
 * invalidate except a tenant's clear, which drops everything.
 */
export class HotCache {
  private readonly lru: LRUCache<string, CachedVector> | null;
  /** Lookups and hits since start, for the live hit ratio (two increments per lookup). */
  private lookups = 0;
  private hits = 0;

  constructor(readonly maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, CachedVector>({
            maxSize: maxBytes,
            sizeCalculation: (v, k) => v.bytes.length + k.length * 2 + ENTRY_OVERHEAD,
          })
        : null;
  }

  get(key: string): CachedVector | undefined {
    const v = this.lru?.get(key);
    this.lookups++;
    if (v) this.hits++;
    return v;
  }

  set(key: string, value: CachedVector): void {
    this.lru?.set(key, value);
  }

  clear(): void {
    this.lru?.clear();
  }

  get stats(): { entries: number; bytes: number; maxBytes: number; lookups: number; hits: number } {
    return { entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0, maxBytes: this.maxBytes, lookups: this.lookups, hits: this.hits };
  }
}
