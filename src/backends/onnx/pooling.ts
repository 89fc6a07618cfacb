/**
 * Pure tensor helpers around the model call: right-padding a batch of id sequences into the
 * int64 tensors BERT takes, and masked mean pooling + L2 normalisation of what it returns.
 */
import { l2Normalise } from '../../core/dimensions.js';
import type { TokenIds } from './packed-ids.js';

/** A right-padded batch, row-major [batch, seq]. */
export interface PaddedBatch {
  batch: number;
  seq: number;
  inputIds: BigInt64Array;
  /** 1 for real tokens, 0 for padding: what the model attends to and what pooling averages. */
  attentionMask: BigInt64Array;
  /** All zeros: one segment. */
  tokenTypeIds: BigInt64Array;
}

/** Pads every sequence to the longest with `padId` (the mask, not the pad id, hides it). */
export function padBatch(sequences: readonly TokenIds[], padId = 0): PaddedBatch {
  const batch = sequences.length;
  const seq = sequences.reduce((max, s) => Math.max(max, s.length), 0);
  const inputIds = new BigInt64Array(batch * seq).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seq);
  sequences.forEach((ids, b) => {
    const row = b * seq;
    for (let t = 0; t < ids.length; t++) {
      inputIds[row + t] = BigInt(ids[t]);
      attentionMask[row + t] = 1n;
    }
  });
  return { batch, seq, inputIds, attentionMask, tokenTypeIds: new BigInt64Array(batch * seq) };
}

/**
 * Mean of the token vectors of each row over its real tokens only, so a padded batched run
 * equals single runs. `hidden` is [batch, seq, dim] row-major. Sums in float64.
 */
export function meanPool(
  hidden: Float32Array,
  mask: BigInt64Array,
  batch: number,
  seq: number,
  dim: number,
): Float64Array[] {
  if (hidden.length !== batch * seq * dim || mask.length !== batch * seq) {
    throw new Error(`meanPool: shapes disagree (hidden ${hidden.length}, mask ${mask.length}, ${batch}x${seq}x${dim})`);
  }
  const out: Float64Array[] = [];
  for (let b = 0; b < batch; b++) {
    const sum = new Float64Array(dim);
    let count = 0;
    for (let t = 0; t < seq; t++) {
      if (mask[b * seq + t] === 0n) continue;
      count++;
      const base = (b * seq + t) * dim;
      for (let d = 0; d < dim; d++) sum[d] += hidden[base + d];
    }
    // An all-padding row cannot come from our tokenizer (the frame is always there); keep it finite.
    const inv = 1 / Math.max(count, 1);
    for (let d = 0; d < dim; d++) sum[d] *= inv;
    out.push(sum);
  }
  return out;
}

/** Masked mean pooling, then unit L2 norm: the full-dimension embedding of every row. */
export function poolAndNormalise(
  hidden: Float32Array,
  mask: BigInt64Array,
  batch: number,
  seq: number,
  dim: number,
): Float32Array[] {
  return meanPool(hidden, mask, batch, seq, dim).map((v) => l2Normalise(v));
}

/** Rows of an already-pooled [batch, dim] output (a graph that pools itself), L2-normalised. */
export function splitPooled(pooled: Float32Array, batch: number, dim: number): Float32Array[] {
  if (pooled.length !== batch * dim) throw new Error(`splitPooled: ${pooled.length} values for ${batch}x${dim}`);
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) out.push(l2Normalise(pooled.subarray(b * dim, (b + 1) * dim)));
  return out;
}
