import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LoginInput, RefreshInput, SignupInput, type AccountService } from '../../admin/accounts.js';
import { DomainError } from '../../core/errors.js';
import { registerRoutes, type DocumentedRoute } from '../route-table.js';

const SignedUp = z.object({
  key: z.string().describe('The first API key, shown once: store it now'),
  prefix: z.string(),
  tenant: z.string(),
  tier: z.string(),
  email: z.string(),
});
const Session = z.object({
  access_token: z.string().describe('A tenant JWT: send it as `Authorization: Bearer <token>` like an API key'),
  refresh_token: z.string().describe('Single use: POST it to /v1/auth/refresh for a new pair'),
  token_type: z.literal('bearer'),
  expires_in: z.number().int().describe('Seconds until access_token expires'),
});
const LoggedOut = z.object({ logged_out: z.literal(true) });
const Me = z.object({
  tenant: z.object({ name: z.string(), tier: z.string(), share_public: z.boolean() }),
  account: z.object({ email: z.string(), created_at: z.string(), last_login_at: z.string().nullable() }).nullable(),
  limits: z.object({
    requests_per_day: z.number().nullable(),
    burst_per_second: z.number().nullable(),
    tokens_per_minute: z.number().nullable(),
    max_cached_rows: z.number().nullable(),
    backends: z.array(z.string()),
  }),
  usage_today: z.object({
    day: z.string(),
    requests: z.number(),
    inputs: z.number(),
    hits: z.number(),
    misses: z.number(),
    prompt_tokens: z.number(),
    saved_tokens: z.number(),
  }),
});

/** An email, a password and a refresh token fit in far less. */
const PUBLIC_BODY_LIMIT = 16 * 1024;

/** signup, login, refresh and logout: public routes (no API key), under /v1/auth. */
export interface AuthRoutesOptions {
  accounts: Pick<AccountService, 'signup' | 'login' | 'refresh' | 'logout'>;
  /** SIGNUP_ENABLED: while false these routes answer 404 saying so. */
  signupEnabled: boolean;
}

export function authRouteTable(opts: AuthRoutesOptions): DocumentedRoute[] {
  const { accounts } = opts;
  const enabled = (): void => {
    if (!opts.signupEnabled) {
      throw new DomainError('not_found', 'Self-service accounts are disabled on this server. The operator enables them with SIGNUP_ENABLED=true (and JWT_SECRET).', {
        code: 'signup_disabled',
      });
    }
  };
  /** A public POST route that exists only while signup is enabled. */
  const route = <B extends z.ZodType>(
    path: string,
    summary: string,
    body: B,
    response: z.ZodType,
    run: (input: z.input<B>, address: string) => Promise<unknown>,
    status?: 201,
  ): DocumentedRoute => ({
    method: 'POST',
    path,
    tag: 'auth',
    summary,
    security: 'none',
    body,
    response,
    status,
    bodyLimit: PUBLIC_BODY_LIMIT,
    handler: async (r) => {
      enabled();
      return run(r.body as z.input<B>, r.ip);
    },
  });
  return [
    route('/auth/signup', "Create an account, its tenant (on the server's default tier) and its first API key, shown once", SignupInput, SignedUp, accounts.signup, 201),
    route('/auth/login', 'Log in with email and password: a short-lived tenant JWT and a refresh token', LoginInput, Session, accounts.login),
    route(
      '/auth/refresh',
      'Trade a refresh token for a new access token and refresh token (the old one stops working; using it again ends the login)',
      RefreshInput,
      Session,
      (b) => accounts.refresh(b),
    ),
    route('/auth/logout', 'End the login a refresh token belongs to (access tokens already issued expire on their own)', RefreshInput, LoggedOut, (b) => accounts.logout(b)),
  ];
}

/** GET /auth/me: for the /v1 scope behind the auth plugin (an API key or a tenant JWT). */
export interface MeRoutesOptions {
  accounts: Pick<AccountService, 'me'>;
  /** Writes usage counters this process still holds, so today's figures include them. */
  flushUsage: () => Promise<void>;
}

export function meRouteTable(opts: MeRoutesOptions): DocumentedRoute[] {
  return [
    {
      method: 'GET',
      path: '/auth/me',
      tag: 'auth',
      summary: 'Your tenant, its tier and limits (from the database) and its usage today (UTC)',
      security: 'bearer',
      response: Me,
      handler: async (r) => {
        await opts.flushUsage();
        return opts.accounts.me(r.tenant, r.tier);
      },
    },
  ];
}

/** The public part of /v1/auth: signup, login, refresh, logout (no API key to present yet). */
export async function authRoutes(app: FastifyInstance, opts: AuthRoutesOptions): Promise<void> {
  registerRoutes(app, authRouteTable(opts));
}

export async function meRoutes(app: FastifyInstance, opts: MeRoutesOptions): Promise<void> {
  registerRoutes(app, meRouteTable(opts));
}
