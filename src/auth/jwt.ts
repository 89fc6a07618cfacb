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
  /** The tenant's id (the subject): a tenant recreated under the same name has another. */
  tenantId: number;
  /** The tenant's name when minted (informational: the id and generation are what is checked). */
  tenant: string;
  /** The tenant's token generation when minted: `tokens revoke` moves it on. */
  generation: number;
  tier: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Issue time, seconds since the epoch (required by verify). */
  iat: number;
}

export interface MintTenantTokenOptions {
  tenantId: number;
  tenant: string;
  generation: number;
  tier: string;
  ttlSeconds: number;
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

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** A tenant-scoped token: sub = the tenant's id, `gen` = its token generation, plus its name and tier. */
export async function mintTenantToken(secret: string, opts: MintTenantTokenOptions): Promise<string> {
  if (!isCount(opts.tenantId)) throw new RangeError('tenantId must be a whole number.');
  if (!isCount(opts.generation)) throw new RangeError('generation must be a whole number.');
  if (opts.tenant === '') throw new RangeError('tenant must not be empty.');
  if (opts.tier === '') throw new RangeError('tier must not be empty.');
  return mint(secret, TENANT_AUDIENCE, String(opts.tenantId), opts.ttlSeconds, { tenant: opts.tenant, gen: opts.generation, tier: opts.tier });
}

/**
 * Verifies a tenant token's signature and claims; throws TokenError (with a `code`) when it must
 * be refused. The caller still checks the id and generation against the database.
 */
export async function verifyTenantToken(secret: string, token: string): Promise<TenantTokenClaims> {
  const payload = await verify(secret, token, TENANT_AUDIENCE);
  if (typeof payload.tier !== 'string' || payload.tier === '') {
    throw new TokenError('invalid_claims', 'The tenant token has no tier claim.');
  }
  // Tokens minted before tokens were bound to tenant ids (sub = name, no generation) are refused.
  if (!/^\d{1,15}$/.test(payload.sub) || !isCount(payload.gen) || typeof payload.tenant !== 'string') {
    throw new TokenError('invalid_claims', 'The tenant token does not name a tenant id and token generation (it was minted by an older version). Ask for a new token.');
  }
  return { tenantId: Number(payload.sub), tenant: payload.tenant, generation: payload.gen, tier: payload.tier, exp: payload.exp, iat: payload.iat ?? 0 };
}

export async function mintAdminToken(secret: string, ttlSeconds: number): Promise<string> {
  return mint(secret, ADMIN_AUDIENCE, 'admin', ttlSeconds, {});
}

/** Verifies an admin token; throws TokenError (with a `code`) when it must be refused. */
export async function verifyAdminToken(secret: string, token: string): Promise<{ exp: number }> {
  const payload = await verify(secret, token, ADMIN_AUDIENCE);
  return { exp: payload.exp };
}
