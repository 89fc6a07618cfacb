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
  private readonly byId = new Map<string, ResolvedModel>();
  readonly backends: Embedder[] = [];

  add(backend: Embedder, kind: BackendKind): void {
    this.backends.push(backend);
    for (const spec of backend.models()) {
      if (!this.byId.has(spec.id)) this.byId.set(spec.id, { spec, backend, kind });
    }
  }

  resolve(id: string): ResolvedModel | undefined {
    return this.byId.get(id);
  }

  list(): ResolvedModel[] {
    return [...this.byId.values()];
  }
}
