import { createHash } from 'node:crypto';
import type { EmbedInput, ModelSpec, TaskType } from './types.js';
import type { CacheScope } from '../store/embeddings.js';

// Domain tags keep a text from colliding with a token array whose bytes happen to match.
const TEXT_TAG = Buffer.from([0]);
const TOKENS_TAG = Buffer.from([1]);

/** sha256 of the exact input: no case or whitespace folding (the cache must be transparent). */
export function inputHash(input: EmbedInput): Buffer {
  const h = createHash('sha256');
  if (input.kind === 'text') {
    h.update(TEXT_TAG).update(input.text, 'utf8');
  } else {
    const ids = Int32Array.from(input.ids);
    h.update(TOKENS_TAG).update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  }
  return h.digest();
}

/**
 * The model part of the key. A task prefix changes the vector, so each task type of a model
 * is its own scope; aliases of one model and task share rows.
 */
export function cacheScope(spec: ModelSpec, taskType: TaskType | null): CacheScope {
  return { model: taskType ? `${spec.cacheModel}#${taskType}` : spec.cacheModel, modelVersion: spec.version };
}

/** One string per (tenant, scope, input) for in-process maps (hot cache, singleflight). */
export function memoryKey(tenantId: number, scope: CacheScope, hash: Buffer): string {
  return `${tenantId}\u0000${scope.model}\u0000${scope.modelVersion}\u0000${hash.toString('base64')}`;
}
