/**
 * Vectors travel as little-endian float32 bytes: stored so in Postgres, and sent so as
 * `encoding_format: "base64"` (what OpenAI and its SDK use).
 */
import { endianness } from 'node:os';

if (endianness() !== 'LE') {
  // Float32Array views use the platform's byte order; the wire format is little-endian.
  throw new Error('embedding-cache needs a little-endian CPU');
}

/** The float32 bytes of a vector, copied into a fresh Buffer. */
export function vectorToBytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

/** A Float32Array over stored bytes (copied only when the bytes are not 4-byte aligned). */
export function bytesToVector(b: Buffer): Float32Array {
  if (b.length % 4 !== 0) throw new Error(`stored vector has ${b.length} bytes, not a multiple of 4`);
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return new Float32Array(copy.buffer);
}

export function base64ToVector(s: string): Float32Array {
  return bytesToVector(Buffer.from(s, 'base64'));
}

/**
 * JSON array text of a float32 vector. Each element is written as the shortest decimal that
 * parses back to the same float64 that the float32 widens to: exactly what decoding the base64
 * form yields, so `float` and `base64` clients see the very same numbers.
 */
export function vectorToJson(v: Float32Array): string {
  if (v.length === 0) return '[]';
  let s = '[' + fmt(v[0]);
  for (let i = 1; i < v.length; i++) s += ',' + fmt(v[i]);
  return s + ']';
}

function fmt(x: number): string {
  // String(-0) is "0": keep the sign, as the base64 form does.
  if (x === 0) return 1 / x < 0 ? '-0' : '0';
  // JSON has no NaN/Infinity; a model never yields them after normalisation, but be safe.
  return Number.isFinite(x) ? String(x) : '0';
}
