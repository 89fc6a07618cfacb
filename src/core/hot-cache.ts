import { LRUCache } from 'lru-cache';

/** A cached vector: full-dimension float32 bytes and the tokens its input cost. */
export interface CachedVector {
  bytes: Buffer;
  tokens: number;
}

interface Entry {
  value: CachedVector;
  tenantId: number;
}

// Map entry, key string, index entry and object headers: a rough per-entry cost on top of the bytes.
const ENTRY_OVERHEAD = 200;

/**
 * In-process LRU in front of Postgres, bounded in bytes. Hits that land here cost no round
 * trip. Rows are immutable for a (tenant, model, version, hash) key, so there is nothing to
 * invalidate except a tenant's clear or deletion, which drops that tenant's entries (found
 * through a per-tenant index, so other tenants keep theirs).
 */
export class HotCache {
  private readonly lru: LRUCache<string, Entry> | null;
  private readonly byTenant = new Map<number, Set<string>>();
  /** Lookups and hits since start, for the live hit ratio (two increments per lookup). */
  private lookups = 0;
  private hits = 0;

  constructor(readonly maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, Entry>({
            maxSize: maxBytes,
            sizeCalculation: (e, k) => e.value.bytes.length + k.length * 2 + ENTRY_OVERHEAD,
            // Evicted, replaced or deleted: the index forgets the key (a replacement re-adds it in set()).
            dispose: (e, k) => {
              const keys = this.byTenant.get(e.tenantId);
              if (!keys) return;
              keys.delete(k);
              if (keys.size === 0) this.byTenant.delete(e.tenantId);
            },
          })
        : null;
  }

  get(key: string): CachedVector | undefined {
    const v = this.lru?.get(key)?.value;
    this.lookups++;
    if (v) this.hits++;
    return v;
  }

  /** `key` is the row's memory key; `tenantId` the tenant it belongs to (what dropTenant drops). */
  set(key: string, value: CachedVector, tenantId: number): void {
    if (!this.lru) return;
    this.lru.set(key, { value, tenantId });
    if (!this.lru.has(key)) return; // too large to keep
    let keys = this.byTenant.get(tenantId);
    if (!keys) this.byTenant.set(tenantId, (keys = new Set()));
    keys.add(key);
  }

  /** Drops one tenant's entries. */
  dropTenant(tenantId: number): void {
    const keys = this.byTenant.get(tenantId);
    if (!keys || !this.lru) return;
    for (const k of [...keys]) this.lru.delete(k);
    this.byTenant.delete(tenantId);
  }

  clear(): void {
    this.lru?.clear();
    this.byTenant.clear();
  }

  get stats(): { entries: number; bytes: number; maxBytes: number; lookups: number; hits: number } {
    return { entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0, maxBytes: this.maxBytes, lookups: this.lookups, hits: this.hits };
  }
}
