import { describe, expect, it } from 'vitest';
import { deriveDimensions, l2Normalise, layerNorm } from './dimensions.js';

describe('dimensions', () => {
  const full = l2Normalise(Float32Array.from([3, 4, 0, 12, -5, 1]));

  it('truncates and re-normalises (OpenAI text-embedding-3)', () => {
    const d = deriveDimensions(full, 2, 'truncate');
    expect(d).toHaveLength(2);
    expect(d[0]).toBeCloseTo(0.6, 6);
    expect(d[1]).toBeCloseTo(0.8, 6);
  });

  it('layer-norms, truncates and normalises (nomic Matryoshka); scale does not matter', () => {
    const a = deriveDimensions(full, 3, 'layernorm-truncate');
    const b = deriveDimensions(Float32Array.from(full, (x) => x * 7), 3, 'layernorm-truncate');
    expect(Array.from(a)).toEqual(Array.from(b).map((x, i) => (Math.abs(x - a[i]) < 1e-6 ? a[i] : x)));
    expect(Math.hypot(...a)).toBeCloseTo(1, 6);
  });

  it('returns the full vector itself at full dimension', () => {
    expect(deriveDimensions(full, 6, 'truncate')).toBe(full);
  });

  it('layer norm has zero mean and unit variance (eps aside)', () => {
    const n = layerNorm([1, 2, 3, 4]);
    expect(n.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 10);
    expect(n.reduce((a, b) => a + b * b, 0) / 4).toBeCloseTo(1, 4);
  });

  it('leaves a zero vector zero instead of dividing by zero', () => {
    expect(Array.from(l2Normalise([0, 0, 0]))).toEqual([0, 0, 0]);
  });
});
