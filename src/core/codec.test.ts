import { describe, expect, it } from 'vitest';
import { base64ToVector, bytesToVector, vectorToBytes, vectorToJson } from './codec.js';

describe('codec', () => {
  const v = Float32Array.from([0.1, -2.5, 3.4028234663852886e38, 1e-45, 0, -0]);

  it('round-trips float32 bytes exactly, little-endian', () => {
    const bytes = vectorToBytes(v);
    expect(bytes.length).toBe(24);
    expect(bytes.readFloatLE(4)).toBe(-2.5);
    expect(Array.from(bytesToVector(bytes))).toEqual(Array.from(v));
  });

  it('reads unaligned stored bytes by copying them', () => {
    const backing = Buffer.alloc(25);
    vectorToBytes(v).copy(backing, 1);
    const unaligned = backing.subarray(1);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(Array.from(bytesToVector(unaligned))).toEqual(Array.from(v));
  });

  it('refuses a byte length that is not a multiple of 4', () => {
    expect(() => bytesToVector(Buffer.alloc(7))).toThrow(/multiple of 4/);
  });

  it('decodes OpenAI base64 to the same float32 values', () => {
    expect(Array.from(base64ToVector(vectorToBytes(v).toString('base64')))).toEqual(Array.from(v));
  });

  it('writes JSON whose numbers parse back to exactly the float32 values widened', () => {
    const parsed = JSON.parse(vectorToJson(v)) as number[];
    expect(parsed).toEqual(Array.from(v));
    expect(parsed.every((x, i) => Math.fround(x) === v[i])).toBe(true);
    expect(vectorToJson(new Float32Array(0))).toBe('[]');
  });
});
