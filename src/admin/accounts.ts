import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Tier } from '../core/domain.js';
import { DomainError } from '../core/errors.js';
import { generateApiKey } from '../auth/api-key.js';
import { mintTenantToken } from '../auth/jwt.js';
import { MAX_PASSWORD_LENGTH, hashPassword, passwordProblem, prepareDummy, verifyAgainstDummy, verifyPassword } from '../auth/passwords.js';
import { generateRefreshToken, hashRefreshToken, looksLikeRefreshToken } from '../auth/refresh-token.js';
import type { AuthLimits } from '../limits/auth-limits.js';
import type { OnChange } from './changes.js';
import {
  findAccountByEmail,
  findAccountById,
  findAccountByTenant,
  insertRefreshToken,
  insertTenantWithAccount,
  isDuplicateEmail,
  isDuplicateTenantName,
  listAccounts,
  lockRefreshToken,
  markReplaced,
  revokeAccountTokens,
  revokeFamily,
  touchLogin,
  type AccountRecord,
} from '../store/accounts.js';
import { insertApiKey } from '../store/api-keys.js';
import type { Sql } from '../store/db.js';
import { usageForTenant } from '../store/usage.js';

/**
 * Self-service accounts: signup creates a tenant (on DEFAULT_TIER, never a tier the client
 * names) with its account and first API key in one transaction; login hands out a short-lived
 * tenant JWT and a refresh token; refresh rotates it (a rotated token used again revokes its
 * whole family); the operator lists accounts and revokes their sessions. Refusals are
 * DomainErrors; the HTTP layer picks the status.
 */

/** Trimmed, NFC, lowercased: the form stored and compared, so `A@x.com ` and `a@x.com` are one account. */
export function normaliseEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

const Email = z
  .string({ error: 'email must be a string' })
  .max(320, 'email is too long')
  .transform(normaliseEmail)
  .pipe(z.email({ error: 'email must be an email address such as you@example.com' }).max(254, 'email is too long'));

export const SignupInput = z.object({ email: Email, password: z.string({ error: 'password must be a string' }) }).strict();
export const LoginInput = z
  .object({ email: Email, password: z.string({ error: 'password must be a string' }).min(1).max(MAX_PASSWORD_LENGTH * 4) })
  .strict();
export const RefreshInput = z.object({ refresh_token: z.string({ error: 'refresh_token must be a string' }).min(1) }).strict();
export const AccountRef = z.object({ email: Email });

export interface Session {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export interface AccountDeps {
  sql: Sql;
  config: Pick<Config, 'accounts' | 'defaultTier' | 'jwtSecret'>;
  /** Brute-force budgets (per address and per email) for signups and for logins. */
  limits: { signup: AuthLimits; login: AuthLimits };
  /** What changed (a tenant and its first key created, sessions revoked), as the admin verbs report it. */
  onChange: OnChange;
}

/** Names no signup may take: the shared pool, AUTH_DISABLED's tenant and the like. */
const RESERVED = new Set(['public', 'default', 'admin', 'system', 'root']);

/** A tenant name from the email's local part (`Jane.Doe+x@...` -> `jane.doe-x`), within the admin API's name rules. */
export function tenantNameFor(email: string): string {
  const local = email.split('@')[0].normalize('NFKD');
  const base = local
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40)
    .replace(/[^a-z0-9]+$/, '');
  return base || 'user';
}

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new DomainError('invalid_input', 'The request body must be a JSON object.', { code: 'invalid_value' });
  }
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const missing = issue.code === 'invalid_type' && param !== null && (input as Record<string, unknown>)[param] === undefined;
  const message = missing ? `Missing required parameter: '${param}'.` : issue.code === 'unrecognized_keys' ? `Unknown parameter: '${param}'.` : issue.message;
  throw new DomainError('invalid_input', message, { param, code: 'invalid_value' });
}

const invalidCredentials = () =>
  new DomainError('unauthenticated', 'Incorrect email or password.', { code: 'invalid_credentials' });
const invalidRefresh = (why: string, code = 'invalid_refresh_token') =>
  new DomainError('unauthenticated', `${why} Log in again with POST /v1/auth/login.`, { code });

export function createAccountService(deps: AccountDeps) {
  const { sql, config, limits } = deps;
  const { accessTokenTtlSeconds: accessTtl, refreshTokenTtlDays: refreshDays } = config.accounts;
  if (config.accounts.signupEnabled) prepareDummy().catch(() => {});
  const secret = (): string => {
    // loadConfig refuses SIGNUP_ENABLED without a secret; this guards other callers.
    if (!config.jwtSecret) throw new DomainError('forbidden', 'Set JWT_SECRET (16+ characters) to sign logins.', { code: 'jwt_disabled' });
    return config.jwtSecret;
  };

  const session = async (account: Pick<AccountRecord, 'tenantId' | 'tenantName' | 'tier'>, refreshToken: string): Promise<Session> => ({
    access_token: await mintTenantToken(secret(), { tenant: account.tenantName, tenantId: account.tenantId, tier: account.tier, ttlSeconds: accessTtl }),
    refresh_token: refreshToken,
    token_type: 'bearer',
    expires_in: accessTtl,
  });

  /** Tenant, account and first key together, or none of them; a taken name gets a random suffix. */
  const createTenantAccount = async (email: string, passwordHash: string) => {
    const base = tenantNameFor(email);
    for (let attempt = 0; attempt < 6; attempt++) {
      const name = attempt === 0 && !RESERVED.has(base) ? base : `${base}-${randomBytes(3).toString('hex')}`;
      try {
        return await sql.begin(async (tx) => {
          const { tenant } = await insertTenantWithAccount(tx, { tenantName: name, tier: config.defaultTier, email, passwordHash });
          const k = generateApiKey();
          await insertApiKey(tx, { tenantId: tenant.id, prefix: k.prefix, keyHash: k.hash, name: 'first key' });
          return { tenant, key: k };
        });
      } catch (err) {
        if (isDuplicateEmail(err)) {
          throw new DomainError('conflict', 'An account with this email exists already. Log in with POST /v1/auth/login.', { param: 'email', code: 'email_taken' });
        }
        if (!isDuplicateTenantName(err)) throw err;
      }
    }
    throw new DomainError('conflict', 'Could not find a free tenant name for this email; try again.', { code: 'tenant_name_taken' });
  };

  return {
    async signup(input: z.input<typeof SignupInput>, address: string): Promise<{ key: string; prefix: string; tenant: string; tier: string; email: string }> {
      const b = parse(SignupInput, input);
      await limits.signup.attempt(address, b.email);
      const problem = passwordProblem(b.password);
      if (problem) throw new DomainError('invalid_input', problem, { param: 'password', code: 'weak_password' });
      const { tenant, key } = await createTenantAccount(b.email, await hashPassword(b.password));
      await deps.onChange({ type: 'tenant_created', tenantId: tenant.id });
      await deps.onChange({ type: 'key_created', prefix: key.prefix, tenantId: tenant.id });
      return { key: key.key, prefix: key.prefix, tenant: tenant.name, tier: tenant.tier, email: b.email };
    },

    async login(input: z.input<typeof LoginInput>, address: string): Promise<Session> {
      const b = parse(LoginInput, input);
      await limits.login.attempt(address, b.email);
      const account = await findAccountByEmail(sql, b.email);
      // An unknown email costs the same hash as a wrong password and gets the same answer.
      const ok = account ? await verifyPassword(account.passwordHash, b.password) : await verifyAgainstDummy(b.password);
      if (!account || !ok) throw invalidCredentials();
      await limits.login.succeeded(address, b.email);
      await touchLogin(sql, account.id);
      const rt = generateRefreshToken();
      await insertRefreshToken(sql, { accountId: account.id, hash: rt.hash, ttlDays: refreshDays });
      return session(account, rt.token);
    },

    /** A new access token and a new refresh token; the old one is spent. */
    async refresh(input: z.input<typeof RefreshInput>): Promise<Session> {
      const { refresh_token: token } = parse(RefreshInput, input);
      if (!looksLikeRefreshToken(token)) throw invalidRefresh('The refresh token is malformed.');
      const next = generateRefreshToken();
      const outcome = await sql.begin(async (tx) => {
        const row = await lockRefreshToken(tx, hashRefreshToken(token));
        if (!row) return { refused: invalidRefresh('The refresh token is not known.') } as const;
        if (row.revokedAt) return { refused: invalidRefresh('The refresh token has been revoked.') } as const;
        if (row.replacedAt) {
          // Spent already: either a replay of a stolen token or the thief's copy. Nobody keeps the family.
          await revokeFamily(tx, row.family);
          return { refused: invalidRefresh('The refresh token was used already, so every session of this login has been revoked.', 'refresh_token_reused') } as const;
        }
        if (row.expiresAt.getTime() <= Date.now()) return { refused: invalidRefresh('The refresh token has expired.') } as const;
        await markReplaced(tx, row.id);
        await insertRefreshToken(tx, { accountId: row.accountId, hash: next.hash, family: row.family, ttlDays: refreshDays });
        return { accountId: row.accountId } as const;
      });
      if ('refused' in outcome) throw outcome.refused;
      const account = await findAccountById(sql, outcome.accountId);
      if (!account) throw invalidRefresh('The account no longer exists.');
      return session(account, next.token);
    },

    /** Ends the login the refresh token belongs to (its whole family). */
    async logout(input: z.input<typeof RefreshInput>): Promise<{ logged_out: true }> {
      const { refresh_token: token } = parse(RefreshInput, input);
      if (!looksLikeRefreshToken(token)) throw invalidRefresh('The refresh token is malformed.');
      const row = await sql.begin((tx) => lockRefreshToken(tx, hashRefreshToken(token)));
      if (!row) throw invalidRefresh('The refresh token is not known.');
      await revokeFamily(sql, row.family);
      return { logged_out: true };
    },

    /** The operator's verb: every session of the account ends (its refresh tokens are revoked). */
    async revoke(input: z.input<typeof AccountRef>): Promise<{ email: string; tenant: string; sessions_revoked: number }> {
      const { email } = parse(AccountRef, input);
      const account = await findAccountByEmail(sql, email);
      if (!account) throw new DomainError('not_found', `No account with email ${email}. List them with \`accounts list\`.`, { param: 'email', code: 'account_not_found' });
      const sessions = await revokeAccountTokens(sql, account.id);
      await deps.onChange({ type: 'sessions_revoked', tenantId: account.tenantId });
      return { email, tenant: account.tenantName, sessions_revoked: sessions };
    },

    /** Who the caller is, what its tier allows (from the database) and what it used today (UTC). */
    async me(tenant: { id: number; name: string; sharePublic: boolean }, tier: Tier) {
      const today = new Date().toISOString().slice(0, 10);
      const [account, usage] = await Promise.all([findAccountByTenant(sql, tenant.id), usageForTenant(sql, tenant.id, today)]);
      const sum = (k: 'requests' | 'inputs' | 'hits' | 'misses' | 'promptTokens' | 'hitTokens') => usage.reduce((a, u) => a + u[k], 0);
      return {
        tenant: { name: tenant.name, tier: tier.name, share_public: tenant.sharePublic },
        account: account ? { email: account.email, created_at: account.createdAt.toISOString(), last_login_at: account.lastLoginAt?.toISOString() ?? null } : null,
        limits: {
          requests_per_day: tier.requestsPerDay,
          burst_per_second: tier.burstPerSecond,
          tokens_per_minute: tier.tokensPerMinute,
          max_cached_rows: tier.maxCachedRows,
          backends: tier.backends,
        },
        usage_today: {
          day: today,
          requests: sum('requests'),
          inputs: sum('inputs'),
          hits: sum('hits'),
          misses: sum('misses'),
          prompt_tokens: sum('promptTokens'),
          saved_tokens: sum('hitTokens'),
        },
      };
    },

    async list(): Promise<{ email: string; tenant: string; tier: string; created_at: string; last_login_at: string | null; live_sessions: number }[]> {
      return (await listAccounts(sql)).map((a) => ({
        email: a.email,
        tenant: a.tenantName,
        tier: a.tier,
        created_at: a.createdAt.toISOString(),
        last_login_at: a.lastLoginAt?.toISOString() ?? null,
        live_sessions: a.liveSessions,
      }));
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
