/**
 * Shared pieces for the client-compatibility tests: a live server on loopback (real PostgreSQL,
 * fake OpenAI-compatible upstream behind it) and exact, bit-level vector expectations.
 */
import { expect } from 'vitest';
import { fakeVector } from '../src/testing/fake-upstream.js';
import { startTestServer, type TestServer } from '../test/support/server.js';

export const MODEL = 'text-embedding-3-small';
export const FULL_DIMS = 1536;

export interface LiveServer extends TestServer {
  /** What a client's `baseURL` should be: `http://127.0.0.1:PORT/v1`. */
  baseURL: string;
}

/** A listening server; `maxBatch` caps both the server's upstream batches and the fake's limit. */
export async function startLiveServer(opts: { maxBatch?: number } = {}): Promise<LiveServer> {
  const t = await startTestServer({
    listen: true,
    ...(opts.maxBatch ? { env: { UPSTREAM_MAX_BATCH: String(opts.maxBatch) }, fakeMaxBatch: opts.maxBatch } : {}),
  });
  if (!t.url) throw new Error('test server is not listening');
  return Object.assign(t, { baseURL: `${t.url}/v1` });
}

/**
 * What OpenAI (here: the fake upstream) returns for `input`, at full size or at `dims`
 * (text-embedding-3: truncate, then re-normalise; float64 arithmetic, float32 result).
 */
export function expectedVector(input: string | number[], dims?: number, model = MODEL, full = FULL_DIMS): Float32Array {
  const v = fakeVector(model, input, full);
  if (dims === undefined || dims === full) return v;
  let sum = 0;
  for (let i = 0; i < dims; i++) sum += v[i] * v[i];
  const inv = 1 / Math.sqrt(sum);
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = v[i] * inv;
  return out;
}

/** The float32 bit patterns of a vector as a client returned it (number[] or typed array). */
export function bits(v: ArrayLike<number>): Uint32Array {
  const f = Float32Array.from(v);
  return new Uint32Array(f.buffer);
}

/**
 * Exact equality, bit for bit, after rounding each element to float32 (what every client
 * hands back: decoded float32 widened to double, or the shortest JSON decimal of it). Also
 * checks that the client value *is* a float32 value, i.e. nothing was lost or added in transit.
 */
export function expectBitIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, label = 'vector'): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const a = bits(actual);
  const e = bits(expected);
  for (let i = 0; i < e.length; i++) {
    if (a[i] !== e[i]) {
      throw new Error(`${label}: element ${i} differs: got ${actual[i]} (0x${a[i].toString(16)}), want ${expected[i]} (0x${e[i].toString(16)})`);
    }
    if (Math.fround(actual[i]) !== actual[i]) {
      throw new Error(`${label}: element ${i} (${actual[i]}) is not a float32 value`);
    }
  }
}

export function l2(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** Distinct inputs for one test, so tests in a file never share cache rows by accident. */
export function texts(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${tag} #${i}: ${'lorem ipsum '.repeat(i % 5)}${i * 7919}`);
}

/** Runs `fn` and returns what it threw (fails if it did not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}
