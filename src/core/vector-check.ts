import { DomainError } from './errors.js';

/**
 * No embedding model emits components this large (normalised models stay within ±1, raw ones
 * within a few hundred): a bigger value is a provider fault, and caching it would serve it forever.
 */
export const MAX_ABS_COMPONENT = 1e6;

/** Why a backend's answer was refused, for the 502 message and the metric label. */
export type VectorFault = 'count' | 'type' | 'dimension' | 'non_finite' | 'too_large' | 'zero_norm';

export class InvalidVectorsError extends DomainError {
  constructor(
    readonly fault: VectorFault,
    detail: string,
    provider: string,
  ) {
    super('upstream_invalid_response', `${provider} returned invalid embeddings: ${detail}. Nothing of this response was cached.`, {
      provider,
      code: 'upstream_invalid_response',
    });
  }
}

/**
 * Checks a backend's vectors before anything is stored or sent: one per input, the model's
 * dimension (declared, else the one the first valid answer fixed), every value finite and
 * bounded, norm > 0. Returns the dimension. Throws InvalidVectorsError naming what was wrong.
 */
export function checkVectors(vectors: readonly unknown[], expected: number, dims: number | null, provider: string): number {
  if (!Array.isArray(vectors) || vectors.length !== expected) {
    throw new InvalidVectorsError('count', `${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${expected} inputs`, provider);
  }
  let want = dims;
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i];
    if (!(v instanceof Float32Array)) throw new InvalidVectorsError('type', `vector ${i} is not a list of numbers`, provider);
    if (v.length === 0) throw new InvalidVectorsError('dimension', `vector ${i} is empty`, provider);
    if (want === null) want = v.length;
    if (v.length !== want) throw new InvalidVectorsError('dimension', `vector ${i} has ${v.length} dimensions, expected ${want}`, provider);
    let norm = 0;
    for (let j = 0; j < v.length; j++) {
      const x = v[j];
      if (!Number.isFinite(x)) throw new InvalidVectorsError('non_finite', `vector ${i} has a non-finite value (${x}) at ${j}`, provider);
      if (x > MAX_ABS_COMPONENT || x < -MAX_ABS_COMPONENT) throw new InvalidVectorsError('too_large', `vector ${i} has an implausibly large value (${x}) at ${j}`, provider);
      norm += x * x;
    }
    if (!(norm > 0)) throw new InvalidVectorsError('zero_norm', `vector ${i} is all zeros`, provider);
  }
  return want ?? 0;
}
