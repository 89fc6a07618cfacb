/** Who a request is for: set by auth, carried through the pipeline. */
export interface TenantContext {
  id: number;
  name: string;
  tier: string;
  /** Opted in to the shared `public` pool (read-through, write-through). */
  sharePublic: boolean;
  /**
   * The tenant's cache epoch when authenticated (bumped by every clear): rows computed under an
   * older one are dropped at insert. Unset: not checked.
   */
  cacheEpoch?: number;
}
