import { describe, expect, it } from 'vitest';
import { checkVectors, InvalidVectorsError } from './vector-check.js';

const v = (...xs: number[]) => Float32Array.from(xs);

describe('checkVectors', () => {
  it('accepts one finite, non-zero vector per input and returns the dimension', () => {
    expect(checkVectors([v(1, 0), v(0, -2)], 2, null, 'p')).toBe(2);
    expect(checkVectors([v(0.5, 0.5, 0.5)], 1, 3, 'p')).toBe(3);
  });

  it.each([
    ['count', [v(1)], 2, null, /1 vectors for 2 inputs/],
    ['type', [[1, 2]], 1, null, /not a list of numbers/],
    ['dimension', [v()], 1, null, /empty/],
    ['dimension', [v(1, 2), v(1)], 2, null, /vector 1 has 1 dimensions, expected 2/],
    ['dimension', [v(1, 2)], 1, 3, /expected 3/],
    ['non_finite', [v(1, NaN)], 1, null, /non-finite value \(NaN\) at 1/],
    ['non_finite', [v(Infinity, 1)], 1, null, /non-finite/],
    ['too_large', [v(1, 1e30)], 1, null, /implausibly large/],
    ['zero_norm', [v(0, 0, 0)], 1, null, /all zeros/],
  ] as const)('refuses %s: %j', (fault, vectors, expected, dims, message) => {
    let caught: unknown;
    try {
      checkVectors(vectors as readonly unknown[], expected, dims, 'acme-upstream');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidVectorsError);
    const e = caught as InvalidVectorsError;
    expect(e.fault).toBe(fault);
    expect(e.kind).toBe('upstream_invalid_response');
    expect(e.details.provider).toBe('acme-upstream');
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/^acme-upstream returned invalid embeddings/);
  });
});
