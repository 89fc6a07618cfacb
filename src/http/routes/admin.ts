import { createHash, timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { jsonSchemaTransform, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import * as S from '../../admin/schemas.js';
import type { AdminService } from '../../admin/service.js';
import { AccountRef, type AccountService } from '../../admin/accounts.js';
import { DomainError } from '../../core/errors.js';
import { looksLikeJwt, TokenError, verifyAdminToken } from '../../auth/jwt.js';
import { adminUsageRoutes, type AdminUsageRoutesOptions } from './usage.js';

export interface AdminRoutesOptions {
  admin: AdminService;
  /** Unset: the admin API answers 403. */
  adminToken: string | undefined;
  /** Verifies admin JWTs; unset: only the admin token itself is accepted. */
  jwtSecret: string | undefined;
  /** Self-service accounts: the operator's list and revoke. */
  accounts?: Pick<AccountService, 'list' | 'revoke'>;
  /** Cross-tenant usage and this process's live figures (the dashboard's), behind the same admin hook. */
  usage?: AdminUsageRoutesOptions;
}

/**
 * The server's admin service: its changes reach this process's caches at once.
 * (The lead's wiring replaces app.services; this keeps app.ts to one line until then.)
 */

/** Route schemas are zod; a refusal is the same invalid_input DomainError the admin service throws. */
const zodValidator: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    // An empty body for a verb whose fields are all optional (POST .../keys) is an empty object.
    const input = httpPart === 'body' && data === undefined ? {} : data;
    const r = schema.safeParse(input);
    return r.success ? { value: r.data } : { error: S.toInvalidInput(r.error, input) };
  };

const NameParam = z.object({ name: S.Name });

/**
 * The admin API under /admin/v1, authenticated by `Authorization: Bearer <ADMIN_TOKEN>` (or an
 * admin JWT). Disabled (403) while ADMIN_TOKEN is unset. GET /admin/v1/openapi.json describes
 * it, generated from the route schemas. A thin adapter: every verb is the admin service's.
 */
export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { admin, jwtSecret } = opts;
  const adminHash = opts.adminToken ? createHash('sha256').update(opts.adminToken).digest() : null;

  app.setValidatorCompiler(zodValidator);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'embedding-cache admin API', version: '1' },
      servers: [{ url: app.prefix || '/' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.addHook('onRequest', async (request) => {
    if (!adminHash) throw new DomainError('forbidden', 'The admin API is disabled: set ADMIN_TOKEN (16+ characters) to enable it.', { code: 'admin_disabled' });
    const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!m) throw new DomainError('unauthenticated', 'Admin requests need `Authorization: Bearer <ADMIN_TOKEN>` or an admin JWT.', { code: 'invalid_api_key' });
    const given = createHash('sha256').update(m[1]).digest();
    if (timingSafeEqual(given, adminHash)) return;
    if (jwtSecret && looksLikeJwt(m[1])) {
      try {
        await verifyAdminToken(jwtSecret, m[1]);
        return;
      } catch (err) {
        if (err instanceof TokenError) throw new DomainError('unauthenticated', `Invalid admin token: ${err.message}`, { code: 'invalid_api_key' });
        throw err;
      }
    }
    throw new DomainError('unauthenticated', 'Invalid admin token.', { code: 'invalid_api_key' });
  });

  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = (t: string) => [t];

  r.get('/tenants', { schema: { summary: 'List tenants', tags: tags('tenants') } }, async () => ({ data: await admin.listTenants() }));
  r.post('/tenants', { schema: { summary: 'Create a tenant (tier: DEFAULT_TIER unless given)', tags: tags('tenants'), body: S.CreateTenant } }, async (req, reply) => {
    void reply.code(201);
    return admin.createTenant(req.body);
  });
  r.get('/tenants/:name', { schema: { summary: 'Show a tenant', tags: tags('tenants'), params: NameParam } }, async (req) => admin.showTenant(req.params));
  r.patch(
    '/tenants/:name',
    { schema: { summary: "Change a tenant's tier or its opt-in to the shared public pool", tags: tags('tenants'), params: NameParam, body: S.UpdateTenant.omit({ name: true }) } },
    async (req) => admin.updateTenant({ ...req.body, name: req.params.name }),
  );
  r.delete('/tenants/:name', { schema: { summary: 'Delete a tenant with its keys, providers, usage and cached vectors', tags: tags('tenants'), params: NameParam } }, async (req) =>
    admin.deleteTenant(req.params),
  );
  r.get('/tenants/:name/usage', { schema: { summary: "A tenant's usage, savings and stored rows", tags: tags('tenants'), params: NameParam } }, async (req) =>
    admin.stats({ tenant: req.params.name }),
  );
  r.delete(
    '/tenants/:name/cache',
    { schema: { summary: "Delete a tenant's cached vectors (all, or ?model=ID's)", tags: tags('tenants'), params: NameParam, querystring: S.ClearCache.pick({ model: true }) } },
    async (req) => admin.clearCache({ tenant: req.params.name, model: req.query.model }),
  );

  r.post(
    '/tenants/:name/keys',
    { schema: { summary: 'Create an API key (shown once)', tags: tags('keys'), params: NameParam, body: S.CreateKey.pick({ name: true }) } },
    async (req, reply) => {
      const k = await admin.createKey({ tenant: req.params.name, name: req.body.name });
      void reply.code(201);
      return { key: k.key, prefix: k.prefix, tenant: k.tenant };
    },
  );
  r.get('/keys', { schema: { summary: 'List API keys (?tenant=NAME, ?prefix=PREFIX)', tags: tags('keys'), querystring: S.ListKeys } }, async (req) => ({ data: await admin.listKeys(req.query) }));
  r.delete('/keys/:prefix', { schema: { summary: 'Revoke the API key with this prefix', tags: tags('keys'), params: S.RevokeKey } }, async (req) => admin.revokeKey(req.params));

  r.get('/tiers', { schema: { summary: 'List tiers and their limits', tags: tags('tiers') } }, async () => ({ data: await admin.listTiers() }));
  r.put(
    '/tiers/:name',
    { schema: { summary: 'Create or replace a tier (null = unlimited)', tags: tags('tiers'), params: NameParam, body: S.ReplaceTierBody } },
    async (req) => withoutCreated(await admin.setTier({ ...req.body, name: req.params.name })),
  );
  r.patch(
    '/tiers/:name',
    { schema: { summary: 'Change some limits of a tier, or create one (needs backends; missing limits are unlimited)', tags: tags('tiers'), params: NameParam, body: S.SetTierBody } },
    async (req) => withoutCreated(await admin.setTier({ ...req.body, name: req.params.name })),
  );

  r.post(
    '/tenants/:name/tokens',
    { schema: { summary: 'Mint a short-lived tenant JWT (usable as a Bearer key)', tags: tags('tokens'), params: NameParam, body: S.MintTenantToken.omit({ tenant: true }) } },
    async (req, reply) => {
      const t = await admin.mintTenantToken({ ...req.body, tenant: req.params.name });
      void reply.code(201);
      return { token: t.token, tenant: t.tenant, expires_at: t.expires_at };
    },
  );
  r.post('/tokens/admin', { schema: { summary: 'Mint a short-lived admin JWT', tags: tags('tokens'), body: S.MintAdminToken } }, async (req, reply) => {
    void reply.code(201);
    return admin.mintAdminToken(req.body);
  });

  r.get('/tenants/:name/providers', { schema: { summary: "List a tenant's providers (keys shown by their last four characters only)", tags: tags('providers'), params: NameParam } }, async (req) => ({
    data: await admin.listProviders({ tenant: req.params.name }),
  }));
  r.post(
    '/tenants/:name/providers',
    {
      schema: {
        summary: 'Add or replace (by name) a BYOK provider: an OpenAI-compatible base URL, its key and the models routed to it',
        tags: tags('providers'),
        params: NameParam,
        body: S.AddProvider.omit({ tenant: true }),
      },
    },
    async (req, reply) => {
      const p = await admin.addProvider({ ...req.body, tenant: req.params.name });
      void reply.code(201);
      return p;
    },
  );
  r.delete(
    '/tenants/:name/providers/:provider',
    { schema: { summary: 'Remove a provider', tags: tags('providers'), params: z.object({ name: S.Name, provider: S.Name }) } },
    async (req) => admin.removeProvider({ tenant: req.params.name, name: req.params.provider }),
  );

  if (opts.accounts) {
    const accounts = opts.accounts;
    r.get('/accounts', { schema: { summary: 'List self-service accounts (email, tenant, tier, last login, live sessions)', tags: tags('accounts') } }, async () => ({
      data: await accounts.list(),
    }));
    r.post(
      '/accounts/revoke',
      { schema: { summary: "End every session of an account: its refresh tokens are revoked and its tenant JWTs issued until now refused", tags: tags('accounts'), body: AccountRef } },
      async (req) => accounts.revoke(req.body),
    );
  }

  if (opts.usage) await app.register(adminUsageRoutes, opts.usage);

  r.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

const withoutCreated = <T extends { created: boolean }>({ created: _created, ...rest }: T) => rest;
