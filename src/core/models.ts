import type { BackendKind } from './domain.js';
import type { Embedder, ModelSpec } from './types.js';

export interface ResolvedModel {
  spec: ModelSpec;
  backend: Embedder;
  /** What serves it, for tier checks: server models (`local`, `upstream`) or the tenant's own (`byok`). */
  kind: BackendKind;
}

/** The server's own models: which backend serves which id. The first backend to claim an id keeps it. */
export class ModelRegistry {
  private byId = new Map<string, ResolvedModel>();
  private entries: { backend: Embedder; kind: BackendKind }[] = [];

  get backends(): Embedder[] {
    return this.entries.map((e) => e.backend);
  }

  add(backend: Embedder, kind: BackendKind): void {
    this.entries.push({ backend, kind });
    index(this.byId, backend, kind);
  }

  /**
   * Swaps every backend of `kind` for `next` in one step (a configuration reload): a request
   * resolves against the old set or the new one, never a mix, and one that resolved already
   * finishes on the backend it got. Returns the replaced backends, for the caller to close.
   */
  replace(kind: BackendKind, next: Embedder[]): Embedder[] {
    const old = this.entries.filter((e) => e.kind === kind).map((e) => e.backend);
    const entries = [...this.entries.filter((e) => e.kind !== kind), ...next.map((backend) => ({ backend, kind }))];
    const byId = new Map<string, ResolvedModel>();
    for (const e of entries) index(byId, e.backend, e.kind);
    this.entries = entries;
    this.byId = byId;
    return old;
  }

  resolve(id: string): ResolvedModel | undefined {
    return this.byId.get(id);
  }

  list(): ResolvedModel[] {
    return [...this.byId.values()];
  }
}

function index(byId: Map<string, ResolvedModel>, backend: Embedder, kind: BackendKind): void {
  for (const spec of backend.models()) {
    if (!byId.has(spec.id)) byId.set(spec.id, { spec, backend, kind });
  }
}
