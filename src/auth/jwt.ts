import { hkdfSync } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';

/**
 * Short-lived JWTs: tenant-scoped ones that clients may send instead of an API key, and admin
 * ones for the admin API. HS256 under a key derived from a configured secret (the caller picks
 * which, e.g. JWT_SECRET or ADMIN_TOKEN). The audience keeps the two kinds apart.
 */

export const ISSUER = 'embedding-cache';
export const TENANT_AUDIENCE = 'embedding-cache:tenant';
export const ADMIN_AUDIENCE = 'embedding-cache:admin';
/** "Short-lived": longer TTLs are refused when minting, and older tokens when verifying. */
export const MAX_TTL_SECONDS = 7 * 24 * 3600;
const MIN_SECRET_LENGTH = 16;
/** Tolerated clock skew between the processes that mint and verify. */
const CLOCK_TOLERANCE_SECONDS = 5;
const ALG = 'HS256';
/** Far above any token we mint; stops pathological input before it is parsed. */
const MAX_TOKEN_LENGTH = 8192;
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export type TokenErrorCode =
  | 'expired'
  | 'bad_signature'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'unsupported_algorithm'
  | 'invalid_claims'
  | 'malformed';

export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly code: TokenErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface TenantTokenClaims {
  tenant: string;
  tier: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Issue time, seconds since the epoch (required by verify). */
  iat: number;
  /** The tenant id the token was minted for, when it names one. */
  tenantId?: number;
}

export interface MintTenantTokenOptions {
  tenant: string;
  tier: string;
  ttlSeconds: number;
  /** The tenant's id (claim `tid`): a tenant deleted and re-created under the same name does not inherit the token. */
  tenantId?: number;
}

/** Three base64url segments: enough to tell a JWT from an API key (`ec_...`) in a Bearer header. */
export function looksLikeJwt(s: string): boolean {
  return s.length <= MAX_TOKEN_LENGTH && JWT_RE.test(s);
}

/** A separate 32-byte key (not the raw secret), so a token never signs with e.g. the admin token itself. */
function signingKey(secret: string): Uint8Array {
  if (secret.length < MIN_SECRET_LENGTH) {
    // A configuration mistake, not a bad token: a plain Error so it is not reported as a 401.
    throw new Error(`The JWT signing secret must be at least ${MIN_SECRET_LENGTH} characters.`);
  }
  return new Uint8Array(hkdfSync('sha256', secret, 'embedding-cache/jwt', 'HS256 signing key v1', 32));
}

function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
    throw new RangeError(`ttlSeconds must be a whole number from 1 to ${MAX_TTL_SECONDS} (7 days); got ${ttlSeconds}.`);
  }
}

async function mint(secret: string, audience: string, subject: string, ttlSeconds: number, extra: JWTPayload): Promise<string> {
  checkTtl(ttlSeconds);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(extra)
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setSubject(subject)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(signingKey(secret));
}

const KIND: Record<string, string> = { [TENANT_AUDIENCE]: 'tenant', [ADMIN_AUDIENCE]: 'admin' };

async function verify(secret: string, token: string, audience: string): Promise<JWTPayload & { exp: number; sub: string }> {
  const kind = KIND[audience];
  const key = signingKey(secret);
  if (!looksLikeJwt(token)) {
    throw new TokenError('malformed', `The ${kind} token is malformed: a JWT is three base64url segments separated by dots.`);
  }
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [ALG],
      issuer: ISSUER,
      audience,
      requiredClaims: ['exp', 'iat', 'sub'],
      maxTokenAge: MAX_TTL_SECONDS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    });
    if (typeof payload.sub !== 'string' || payload.sub === '' || typeof payload.exp !== 'number') {
      throw new TokenError('invalid_claims', `The ${kind} token lacks a subject or expiry.`);
    }
    return { ...payload, sub: payload.sub, exp: payload.exp };
  } catch (err) {
    throw toTokenError(err, kind);
  }
}

function toTokenError(err: unknown, kind: string): TokenError {
  if (err instanceof TokenError) return err;
  const next = kind === 'admin' ? 'Mint a new admin token.' : 'Ask for a new token, or use an API key.';
  if (err instanceof errors.JWTExpired) {
    // jose reports maxTokenAge through JWTExpired too, with claim "iat".
    const why = err.claim === 'iat' ? `is older than the ${MAX_TTL_SECONDS}-second maximum` : 'has expired';
    return new TokenError('expired', `The ${kind} token ${why}. ${next}`, { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenError('bad_signature', `The ${kind} token's signature is invalid (altered, or signed with another secret). ${next}`, { cause: err });
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new TokenError('unsupported_algorithm', `The ${kind} token is not signed with ${ALG}, the only algorithm accepted.`, { cause: err });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') {
      return new TokenError('wrong_audience', `This is not ${kind === 'admin' ? 'an' : 'a'} ${kind} token (its audience is wrong). ${next}`, { cause: err });
    }
    if (err.claim === 'iss') {
      return new TokenError('wrong_issuer', `The ${kind} token was not issued by ${ISSUER}.`, { cause: err });
    }
    if (err.claim === 'iat') {
      return new TokenError('invalid_claims', `The ${kind} token's issue time is in the future or invalid. ${next}`, { cause: err });
    }
    return new TokenError('invalid_claims', `The ${kind} token's "${err.claim}" claim is invalid (${err.reason}).`, { cause: err });
  }
  return new TokenError('malformed', `The ${kind} token is malformed.`, { cause: err });
}

/** A tenant-scoped token: sub = tenant, plus its tier. */
export async function mintTenantToken(secret: string, opts: MintTenantTokenOptions): Promise<string> {
  if (opts.tenant === '') throw new RangeError('tenant must not be empty.');
  if (opts.tier === '') throw new RangeError('tier must not be empty.');
  return mint(secret, TENANT_AUDIENCE, opts.tenant, opts.ttlSeconds, { tier: opts.tier, ...(opts.tenantId !== undefined ? { tid: opts.tenantId } : {}) });
}

/** Verifies a tenant token; throws TokenError (with a `code`) when it must be refused. */
export async function verifyTenantToken(secret: string, token: string): Promise<TenantTokenClaims> {
  const payload = await verify(secret, token, TENANT_AUDIENCE);
  if (typeof payload.tier !== 'string' || payload.tier === '') {
    throw new TokenError('invalid_claims', 'The tenant token has no tier claim.');
  }
  if (payload.tid !== undefined && !Number.isSafeInteger(payload.tid)) throw new TokenError('invalid_claims', 'The tenant token\'s "tid" claim is not a tenant id.');
  return { tenant: payload.sub, tier: payload.tier, exp: payload.exp, iat: payload.iat ?? 0, ...(typeof payload.tid === 'number' ? { tenantId: payload.tid } : {}) };
}

export async function mintAdminToken(secret: string, ttlSeconds: number): Promise<string> {
  return mint(secret, ADMIN_AUDIENCE, 'admin', ttlSeconds, {});
}

/** Verifies an admin token; throws TokenError (with a `code`) when it must be refused. */
export async function verifyAdminToken(secret: string, token: string): Promise<{ exp: number }> {
  const payload = await verify(secret, token, ADMIN_AUDIENCE);
  return { exp: payload.exp };
}
