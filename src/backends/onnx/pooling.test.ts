import { describe, expect, it } from 'vitest';
import { meanPool, padBatch, poolAndNormalise, splitPooled } from './pooling.js';

describe('padBatch', () => {
  it('right-pads to the longest sequence and masks the padding', () => {
    const p = padBatch([[2, 10, 3], [2, 3]]);
    expect(p).toMatchObject({ batch: 2, seq: 3 });
    expect([...p.inputIds]).toEqual([2n, 10n, 3n, 2n, 3n, 0n]);
    expect([...p.attentionMask]).toEqual([1n, 1n, 1n, 1n, 1n, 0n]);
    expect([...p.tokenTypeIds]).toEqual([0n, 0n, 0n, 0n, 0n, 0n]);
  });
});

describe('meanPool', () => {
  it('averages only the tokens the mask keeps, so padding values do not leak in', () => {
    // batch 2, seq 3, dim 2; row 1's last token is padding holding garbage.
    const hidden = Float32Array.from([1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 999, -999]);
    const mask = BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 0n]);
    const [a, b] = meanPool(hidden, mask, 2, 3, 2);
    expect([...a]).toEqual([3, 4]);
    expect([...b]).toEqual([20, 30]);
  });

  it('rejects shapes that disagree', () => {
    expect(() => meanPool(new Float32Array(5), new BigInt64Array(2), 1, 2, 2)).toThrow(/shapes disagree/);
  });
});

describe('poolAndNormalise / splitPooled', () => {
  it('returns unit vectors', () => {
    const [v] = poolAndNormalise(Float32Array.from([3, 0, 0, 4]), BigInt64Array.from([1n, 1n]), 1, 2, 2);
    expect(v[0]).toBeCloseTo(0.6, 6);
    expect(v[1]).toBeCloseTo(0.8, 6);
  });

  it('normalises the rows of an output the graph already pooled', () => {
    const rows = splitPooled(Float32Array.from([3, 4, 0, 2]), 2, 2);
    expect(rows.map((r) => [...r])).toEqual([
      [Math.fround(0.6), Math.fround(0.8)],
      [0, 1],
    ]);
  });
});
