import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Keys look like `ec_` + 32 base64url characters (192 random bits). */
const KEY_RE = /^ec_[A-Za-z0-9_-]{32}$/;
/** The first 11 characters identify a key in listings and in the database. */
export const PREFIX_LENGTH = 11;

export interface NewApiKey {
  key: string;
  prefix: string;
  hash: Buffer;
}

export function generateApiKey(): NewApiKey {
  const key = 'ec_' + randomBytes(24).toString('base64url');
  return { key, prefix: key.slice(0, PREFIX_LENGTH), hash: hashApiKey(key) };
}

/** Keys carry 192 random bits, so a plain sha256 is enough (no slow KDF needed). */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

export function looksLikeApiKey(key: string): boolean {
  return KEY_RE.test(key);
}

export function keyPrefix(key: string): string {
  return key.slice(0, PREFIX_LENGTH);
}

export function hashesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A key as an error message may echo it, OpenAI-style: its head and tail around stars. A key
 * too short for both shows its first two characters only (head and tail would overlap and
 * repeat it).
 */
export function maskKey(key: string): string {
  if (key.length < 20) return `${key.slice(0, 2)}${'*'.repeat(Math.max(1, key.length - 2))}`;
  return `${key.slice(0, 6)}${'*'.repeat(Math.min(key.length, 20) - 10)}${key.slice(-4)}`;
}
