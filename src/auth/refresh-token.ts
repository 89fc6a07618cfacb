import { createHash, randomBytes } from 'node:crypto';

/** Refresh tokens look like `rt_` + 43 base64url characters (256 random bits). */
const REFRESH_RE = /^rt_[A-Za-z0-9_-]{43}$/;

export function generateRefreshToken(): { token: string; hash: Buffer } {
  const token = 'rt_' + randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

/** 256 random bits: a plain sha256 is enough to store it (a slow KDF buys nothing). */
export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function looksLikeRefreshToken(s: string): boolean {
  return REFRESH_RE.test(s);
}
