import type { Embedder, ModelSpec } from './types.js';

export interface ResolvedModel {
  spec: ModelSpec;
  backend: Embedder;
}

/** Which backend serves which model id. The first backend to claim an id keeps it. */
export class ModelRegistry {
  private readonly byId = new Map<string, ResolvedModel>();
  readonly backends: Embedder[] = [];

  add(backend: Embedder): void {
    this.backends.push(backend);
    for (const spec of backend.models()) {
      if (!this.byId.has(spec.id)) this.byId.set(spec.id, { spec, backend });
    }
  }

  resolve(id: string): ResolvedModel | undefined {
    return this.byId.get(id);
  }

  list(): ModelSpec[] {
    return [...this.byId.values()].map((m) => m.spec);
  }

  /** The model used when a native request names none: the first local one, else the first. */
  defaultModel(): string | undefined {
    return this.list()[0]?.id;
  }
}
