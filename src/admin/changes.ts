/**
 * What an admin verb changed, reported to an injected `onChange`. The server reacts in-process
 * (below); a later step broadcasts the same events to other processes (PostgreSQL NOTIFY), whose
 * listeners apply the same reactions. Events say what changed, never secrets.
 */
export type AdminChange =
  | { type: 'tenant_created'; tenantId: number }
  | { type: 'tenant_updated'; tenantId: number }
  | { type: 'tenant_deleted'; tenantId: number }
  | { type: 'key_created'; prefix: string; tenantId: number }
  | { type: 'key_revoked'; prefix: string; tenantId: number }
  | { type: 'tier_changed'; name: string }
  | { type: 'providers_changed'; tenantId: number }
  | { type: 'cache_cleared'; tenantId: number; model?: string }
  /** An account's refresh tokens revoked and its JWTs cut off (accounts revoke). */
  | { type: 'sessions_revoked'; tenantId: number };

export type OnChange = (change: AdminChange) => void | Promise<void>;

/** The in-process caches a change can make stale (structural, so admin needs none of their modules). */
export interface ProcessCaches {
  /** Verified keys and tokens, with their tenant's tier and pool opt-in. */
  auth: { forgetAll(): void };
  /** Hot vectors. */
  embeddings: { dropHotCache(): void };
  tiers: { refresh(): Promise<void> };
  /** A tenant's wired BYOK providers. */
  providers: { forget(tenantId: number): void };
}

/** One place that knows which cache each change makes stale. */
export function reactInProcess(caches: ProcessCaches): OnChange {
  return async (change) => {
    switch (change.type) {
      case 'tenant_created':
      case 'key_created':
        return; // nothing cached yet
      case 'tenant_updated':
      case 'key_revoked':
      case 'sessions_revoked':
        caches.auth.forgetAll();
        return;
      case 'tenant_deleted':
        caches.auth.forgetAll();
        caches.providers.forget(change.tenantId);
        caches.embeddings.dropHotCache();
        return;
      case 'tier_changed':
        await caches.tiers.refresh();
        return;
      case 'providers_changed':
        caches.providers.forget(change.tenantId);
        return;
      case 'cache_cleared':
        caches.embeddings.dropHotCache();
        return;
      default: {
        const never: never = change;
        throw new Error(`unhandled admin change ${JSON.stringify(never)}`);
      }
    }
  };
}
