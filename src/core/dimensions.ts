import type { DimensionsMethod } from './types.js';

/**
 * Derives a `dimensions`-long vector from a stored full vector. Pure and deterministic, so a
 * hit derives exactly what the miss derived. Arithmetic in float64, result rounded to float32.
 */
export function deriveDimensions(full: Float32Array, dims: number, method: DimensionsMethod): Float32Array {
  if (dims === full.length) return full;
  if (method === 'layernorm-truncate') return l2Normalise(layerNorm(full), dims);
  return l2Normalise(full, dims);
}

/** Layer norm without affine parameters (eps 1e-5, as nomic's model card does it). */
export function layerNorm(v: ArrayLike<number>, eps = 1e-5): Float64Array {
  const n = v.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (v[i] - mean) ** 2;
  variance /= n;
  const inv = 1 / Math.sqrt(variance + eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (v[i] - mean) * inv;
  return out;
}

/** The first `dims` components of `v`, scaled to unit L2 norm. */
export function l2Normalise(v: ArrayLike<number>, dims = v.length): Float32Array {
  let sum = 0;
  for (let i = 0; i < dims; i++) sum += v[i] * v[i];
  const inv = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = v[i] * inv;
  return out;
}
