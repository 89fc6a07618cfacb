import { createHmac } from 'node:crypto';
import { CompactSign, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ADMIN_AUDIENCE,
  ISSUER,
  looksLikeJwt,
  MAX_TTL_SECONDS,
  mintAdminToken,
  mintTenantToken,
  TENANT_AUDIENCE,
  TokenError,
  verifyAdminToken,
  verifyTenantToken,
  type TokenErrorCode,
} from './jwt.js';

const SECRET = 'a-configured-secret-of-some-length';
const OTHER = 'another-configured-secret-entirely';

async function refusal(p: Promise<unknown>): Promise<TokenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  return err as TokenError;
}

async function expectCode(p: Promise<unknown>, code: TokenErrorCode, message?: RegExp): Promise<void> {
  const err = await refusal(p);
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

function withPayload(token: string, change: (p: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  change(payload);
  return `${h}.${b64url(payload)}.${s}`;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('tenant tokens', () => {
  it('round-trips', async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 600 });
    expect(looksLikeJwt(token)).toBe(true);
    const claims = await verifyTenantToken(SECRET, token);
    expect(claims.tenant).toBe('acme');
    expect(claims.tier).toBe('pro');
    expect(claims.exp).toBeGreaterThanOrEqual(before + 600);
    expect(claims.exp).toBeLessThanOrEqual(before + 601);
  });

  it('binds to a tenant id when given one (claim tid)', async () => {
    const bound = await mintTenantToken(SECRET, { tenant: 'acme', tenantId: 42, tier: 'pro', ttlSeconds: 60 });
    expect(decodeJwt(bound).tid).toBe(42);
    expect((await verifyTenantToken(SECRET, bound)).tenantId).toBe(42);
    const unbound = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    expect(decodeJwt(unbound).tid).toBeUndefined();
    expect((await verifyTenantToken(SECRET, unbound)).tenantId).toBeUndefined();
  });

  it('carries the documented claims and header', async () => {
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'free', ttlSeconds: 60 });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const p = decodeJwt(token);
    expect(p.sub).toBe('acme');
    expect(p.tier).toBe('free');
    expect(p.iss).toBe(ISSUER);
    expect(p.aud).toBe(TENANT_AUDIENCE);
    expect(p.exp! - p.iat!).toBe(60);
  });

  it('refuses an expired token', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    vi.setSystemTime(new Date('2030-01-01T00:00:30Z'));
    await expect(verifyTenantToken(SECRET, token)).resolves.toMatchObject({ tenant: 'acme' });
    vi.setSystemTime(new Date('2030-01-01T00:01:10Z'));
    await expectCode(verifyTenantToken(SECRET, token), 'expired', /has expired/);
  });

  it('tolerates a few seconds of clock skew', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    vi.setSystemTime(new Date('2030-01-01T00:01:03Z'));
    await expect(verifyTenantToken(SECRET, token)).resolves.toMatchObject({ tenant: 'acme' });
  });

  it('refuses a token signed with another secret', async () => {
    const token = await mintTenantToken(OTHER, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    await expectCode(verifyTenantToken(SECRET, token), 'bad_signature', /signature is invalid/);
  });

  it('refuses a tampered payload (tenant changed)', async () => {
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'free', ttlSeconds: 60 });
    await expectCode(verifyTenantToken(SECRET, withPayload(token, (p) => (p.sub = 'globex'))), 'bad_signature');
    await expectCode(verifyTenantToken(SECRET, withPayload(token, (p) => (p.tier = 'team'))), 'bad_signature');
    await expectCode(verifyTenantToken(SECRET, withPayload(token, (p) => (p.exp = 9_999_999_999))), 'bad_signature');
  });

  it('refuses a tampered signature', async () => {
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'free', ttlSeconds: 60 });
    const [h, p, s] = token.split('.');
    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    await expectCode(verifyTenantToken(SECRET, `${h}.${p}.${flipped}`), 'bad_signature');
  });

  it('refuses alg "none"', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { sub: 'acme', tier: 'team', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now, exp: now + 60 };
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
    await expectCode(verifyTenantToken(SECRET, unsigned), 'malformed');
    // Even with something in the signature slot, the algorithm is refused.
    await expectCode(verifyTenantToken(SECRET, `${unsigned}AAAA`), 'unsupported_algorithm', /only algorithm accepted/);
  });

  it('refuses other algorithms, even with the right key', async () => {
    const now = Math.floor(Date.now() / 1000);
    // HS512 keyed with the same derived bytes would verify if the algorithm were not pinned.
    const header = b64url({ alg: 'HS512', typ: 'JWT' });
    const body = b64url({ sub: 'acme', tier: 'team', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now, exp: now + 60 });
    const sig = createHmac('sha512', SECRET).update(`${header}.${body}`).digest('base64url');
    await expectCode(verifyTenantToken(SECRET, `${header}.${body}.${sig}`), 'unsupported_algorithm');
  });

  it('refuses a tampered issuer or audience (the signature catches it first)', async () => {
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    await expectCode(verifyTenantToken(SECRET, withPayload(token, (p) => (p.iss = 'someone-else'))), 'bad_signature');
    await expectCode(verifyAdminToken(SECRET, withPayload(token, (p) => (p.aud = ADMIN_AUDIENCE))), 'bad_signature');
  });

  it.each([
    ['', 'empty'],
    ['not-a-jwt', 'no dots'],
    ['a.b', 'two segments'],
    ['a.b.c.d', 'four segments'],
    ['a..c', 'an empty segment'],
    ['ey J.ey J.x', 'spaces'],
    ['ec_abcdefghijklmnopqrstuvwxyz012345', 'an API key'],
    ['aaaa.bbbb.cccc', 'base64url that is not JSON'],
  ])('refuses a malformed token (%s: %s)', async (token) => {
    await expectCode(verifyTenantToken(SECRET, token), 'malformed', /malformed/);
  });

  it('refuses ttls that are not short-lived whole seconds', async () => {
    for (const ttlSeconds of [0, -1, 1.5, Number.NaN, MAX_TTL_SECONDS + 1]) {
      await expect(mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds })).rejects.toThrow(RangeError);
    }
    await expect(mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: MAX_TTL_SECONDS })).resolves.toBeTypeOf('string');
  });

  it('refuses empty tenant or tier at mint time', async () => {
    await expect(mintTenantToken(SECRET, { tenant: '', tier: 'pro', ttlSeconds: 60 })).rejects.toThrow(/tenant/);
    await expect(mintTenantToken(SECRET, { tenant: 'acme', tier: '', ttlSeconds: 60 })).rejects.toThrow(/tier/);
  });

  it('insists on a secret of at least 16 characters (a configuration error, not a TokenError)', async () => {
    const err = await mintTenantToken('short', { tenant: 'acme', tier: 'pro', ttlSeconds: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(TokenError);
    expect(String(err)).toMatch(/at least 16 characters/);
    await expect(verifyTenantToken('short', 'a.b.c')).rejects.toThrow(/at least 16 characters/);
  });

  it('does not sign with the raw secret', async () => {
    // Someone holding a token can't use it to check guesses of the secret as a plain HMAC key.
    const token = await mintTenantToken(SECRET, { tenant: 'acme', tier: 'pro', ttlSeconds: 60 });
    const [h, p, s] = token.split('.');
    expect(createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')).not.toBe(s);
  });
});

describe('admin tokens', () => {
  it('round-trips', async () => {
    const token = await mintAdminToken(SECRET, 300);
    const { exp } = await verifyAdminToken(SECRET, token);
    expect(exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(295);
    expect(decodeJwt(token).aud).toBe(ADMIN_AUDIENCE);
  });

  it('a tenant token is refused as admin', async () => {
    const token = await mintTenantToken(SECRET, { tenant: 'admin', tier: 'team', ttlSeconds: 60 });
    await expectCode(verifyAdminToken(SECRET, token), 'wrong_audience', /not an admin token/);
  });

  it('an admin token is refused as a tenant token', async () => {
    const token = await mintAdminToken(SECRET, 60);
    await expectCode(verifyTenantToken(SECRET, token), 'wrong_audience', /not a tenant token/);
  });

  it('refuses an expired admin token', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const token = await mintAdminToken(SECRET, 10);
    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    await expectCode(verifyAdminToken(SECRET, token), 'expired', /Mint a new admin token/);
  });

  it('refuses an admin token signed with another secret', async () => {
    await expectCode(verifyAdminToken(SECRET, await mintAdminToken(OTHER, 60)), 'bad_signature');
  });
});

describe('claim checks behind the signature', () => {
  // Hand-signed tokens with the real derived key reach jose's claim validation.
  async function signed(claims: Record<string, unknown>): Promise<string> {
    const { hkdfSync } = await import('node:crypto');
    const key = new Uint8Array(hkdfSync('sha256', SECRET, 'embedding-cache/jwt', 'HS256 signing key v1', 32));
    return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
  }
  const now = (): number => Math.floor(Date.now() / 1000);

  it('refuses a wrong issuer', async () => {
    const t = await signed({ sub: 'acme', tier: 'pro', iss: 'elsewhere', aud: TENANT_AUDIENCE, iat: now(), exp: now() + 60 });
    await expectCode(verifyTenantToken(SECRET, t), 'wrong_issuer');
  });

  it('refuses a token without exp', async () => {
    const t = await signed({ sub: 'acme', tier: 'pro', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now() });
    await expectCode(verifyTenantToken(SECRET, t), 'invalid_claims', /"exp"/);
  });

  it('refuses a token without a tier', async () => {
    const t = await signed({ sub: 'acme', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now(), exp: now() + 60 });
    await expectCode(verifyTenantToken(SECRET, t), 'invalid_claims', /tier/);
  });

  it('refuses a token without a subject', async () => {
    const t = await signed({ tier: 'pro', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now(), exp: now() + 60 });
    await expectCode(verifyTenantToken(SECRET, t), 'invalid_claims');
  });

  it('refuses a long-lived token even if its exp is in the future', async () => {
    const t = await signed({ sub: 'acme', tier: 'pro', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now() - MAX_TTL_SECONDS - 100, exp: now() + 60 });
    await expectCode(verifyTenantToken(SECRET, t), 'expired', /older than/);
  });

  it('refuses an issue time in the future', async () => {
    const t = await signed({ sub: 'acme', tier: 'pro', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now() + 3600, exp: now() + 7200 });
    await expectCode(verifyTenantToken(SECRET, t), 'invalid_claims', /issue time/);
  });

  it('refuses a correctly signed payload that is not JSON', async () => {
    const { hkdfSync } = await import('node:crypto');
    const key = new Uint8Array(hkdfSync('sha256', SECRET, 'embedding-cache/jwt', 'HS256 signing key v1', 32));
    const t = await new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'HS256' }).sign(key);
    await expectCode(verifyTenantToken(SECRET, t), 'malformed');
  });

  it('refuses a non-JSON payload with a bogus signature as a bad signature (nothing is parsed before it)', async () => {
    const t = `${b64url({ alg: 'HS256' })}.${Buffer.from('not json').toString('base64url')}.abcd`;
    await expectCode(verifyTenantToken(SECRET, t), 'bad_signature');
  });

  it('accepts a well-formed hand-signed token (the helper is faithful)', async () => {
    const t = await signed({ sub: 'acme', tier: 'pro', iss: ISSUER, aud: TENANT_AUDIENCE, iat: now(), exp: now() + 60 });
    await expect(verifyTenantToken(SECRET, t)).resolves.toMatchObject({ tenant: 'acme', tier: 'pro' });
  });
});

describe('looksLikeJwt', () => {
  it.each([
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', true],
    ['a.b.c', true],
    ['a.b.', false],
    ['a.b', false],
    ['a.b.c.d', false],
    ['a+b.c.d', false],
    ['a=.b.c', false],
    ['ec_abcdefghijklmnopqrstuvwxyz012345', false],
    ['', false],
    [`${'a'.repeat(9000)}.b.c`, false],
  ])('%s -> %s', (s, expected) => {
    expect(looksLikeJwt(s)).toBe(expected);
  });
});
