import { createHash, hash } from 'node:crypto';
import type { EmbedInput, ModelSpec, TaskType } from './types.js';
import type { CacheScope } from './domain.js';

// Domain tags (a first byte of 0 for text, 1 for token ids) keep a text from colliding with a
// token array whose bytes happen to match.
const TOKENS_TAG = Buffer.from([1]);

/**
 * sha256 of the exact input (no case or whitespace folding: the cache must be transparent), in
 * base64: the form memory keys use. A hot hit needs no other; the store's bytes are made from it
 * only for what goes to the store (`hashBytes`). Node's one-shot hash is ~3× slower asked for a
 * Buffer than for base64 (2.2 against 0.7 µs per input, bench/README.md).
 */
export function inputHash(input: EmbedInput): string {
  // "\u0000" is the byte 0x00 in UTF-8.
  if (input.kind === 'text') return hash('sha256', '\u0000' + input.text, 'base64');
  const ids = Int32Array.from(input.ids);
  return createHash('sha256').update(TOKENS_TAG).update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength)).digest('base64');
}

/** The 32 bytes of an inputHash() (the store's input_hash). */
export function hashBytes(hash: string): Buffer {
  return Buffer.from(hash, 'base64');
}

/**
 * The model part of the key. A task prefix changes the vector, so each task type of a model
 * is its own scope; aliases of one model and task share rows.
 */
export function cacheScope(spec: ModelSpec, taskType: TaskType | null, nativeDimensions?: number): CacheScope {
  const model = taskType ? `${spec.cacheModel}#${taskType}` : spec.cacheModel;
  // A provider-reduced vector is not derivable from the full one: each size is its own scope.
  return { model: nativeDimensions === undefined ? model : `${model}@${nativeDimensions}`, modelVersion: spec.version };
}

/** One string per (tenant, scope, input) for in-process maps (hot cache, singleflight). */
export function memoryKey(tenantId: number, scope: CacheScope, hash: string): string {
  return `${memoryKeyPrefix(tenantId)}${scope.model}\u0000${scope.modelVersion}\u0000${hash}`;
}

/** What every memory key of a tenant starts with. */
export function memoryKeyPrefix(tenantId: number): string {
  return `${tenantId}\u0000`;
}
