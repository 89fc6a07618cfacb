import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError } from '../../core/errors.js';
import { tenantStats } from '../../core/stats.js';
import { generateApiKey, PREFIX_LENGTH } from '../../auth/api-key.js';
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRecord } from '../../store/api-keys.js';
import { BACKEND_KINDS, type Tenant, type Tier } from '../../core/domain.js';
import { deleteTenant, ensureTenant, findTenantByName, listTenants, updateTenant } from '../../store/tenants.js';
import { listTiers, upsertTier } from '../../store/tiers.js';
import { looksLikeJwt, MAX_TTL_SECONDS, mintAdminToken, mintTenantToken, TokenError, verifyAdminToken } from '../../auth/jwt.js';
import { addProvider, jwtSecretOf, providerView, testProvider } from '../../admin/providers.js';
import { PROVIDER_KINDS } from '../../backends/providers/errors.js';
import { deleteProvider, listProviders } from '../../store/providers.js';
import { parseBody } from '../schemas.js';

/** One admin verb: its OpenAPI description and its handler, side by side. */
interface AdminRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  summary: string;
  body?: z.ZodType;
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

const TenantName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'tenant names are 1-63 letters, digits, ".", "_" or "-"');
const CreateTenant = z.object({ name: TenantName, tier: z.string().min(1).optional(), share_public: z.boolean().optional() });
const PatchTenant = z.object({ tier: z.string().min(1).optional(), share_public: z.boolean().optional() });
const CreateKey = z.object({ name: z.string().max(200).optional() });
const nullableCount = z.number().int().min(0).nullable();
const PutTier = z.object({
  requests_per_day: nullableCount,
  burst_per_second: nullableCount,
  tokens_per_minute: nullableCount,
  max_cached_rows: nullableCount,
  backends: z.array(z.enum(BACKEND_KINDS)),
});

const MintToken = z.object({ ttl_seconds: z.number().int().min(1).max(MAX_TTL_SECONDS).default(3600) });
const CreateProvider = z.object({
  name: TenantName,
  kind: z.enum(PROVIDER_KINDS, { error: `kind must be one of ${PROVIDER_KINDS.join(', ')}` }).optional(),
  base_url: z.string().url('base_url must be a URL such as https://api.example.com/v1').optional(),
  api_key: z.string().min(1, 'api_key is required'),
  models: z.array(z.string().min(1)).min(1, 'models must list at least one model id'),
  options: z.record(z.string(), z.unknown()).optional(),
});

const TestProvider = z.object({ model: z.string().min(1).optional() });

const tenantView = (t: Tenant) => ({ name: t.name, tier: t.tier, share_public: t.sharePublic, created_at: t.createdAt.toISOString() });
const keyView = (k: ApiKeyRecord) => ({
  prefix: k.prefix,
  tenant: k.tenantName,
  name: k.name,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt?.toISOString() ?? null,
});
const tierView = (t: Tier) => ({
  name: t.name,
  requests_per_day: t.requestsPerDay,
  burst_per_second: t.burstPerSecond,
  tokens_per_minute: t.tokensPerMinute,
  max_cached_rows: t.maxCachedRows,
  backends: t.backends,
});

/**
 * The admin API under /admin/v1, authenticated by `Authorization: Bearer <ADMIN_TOKEN>`.
 * Disabled (403) while ADMIN_TOKEN is unset. GET /admin/v1/openapi.json describes it.
 */
export async function adminRoutes(app: FastifyInstance): Promise<void> {
  const { db, config, auth, tiers, embeddings, providers } = app.services;
  const sql = db.sql;
  const adminHash = config.adminToken ? createHash('sha256').update(config.adminToken).digest() : null;

  app.addHook('onRequest', async (request) => {
    if (!adminHash) throw new ApiError(403, 'permission_error', 'The admin API is disabled: set ADMIN_TOKEN (16+ characters) to enable it.', null, 'admin_disabled');
    const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!m) throw ApiError.unauthorized('Admin requests need `Authorization: Bearer <ADMIN_TOKEN>` or an admin JWT.');
    const given = createHash('sha256').update(m[1]).digest();
    if (timingSafeEqual(given, adminHash)) return;
    if (config.jwtSecret && looksLikeJwt(m[1])) {
      try {
        await verifyAdminToken(config.jwtSecret, m[1]);
        return;
      } catch (err) {
        if (err instanceof TokenError) throw ApiError.unauthorized(`Invalid admin token: ${err.message}`);
        throw err;
      }
    }
    throw ApiError.unauthorized('Invalid admin token.');
  });

  const jwtSecret = () => jwtSecretOf(config);
  const tenantOr404 = async (name: string) => {
    const t = await findTenantByName(sql, name);
    if (!t) throw new ApiError(404, 'invalid_request_error', `No tenant named ${name}.`, 'name', 'tenant_not_found');
    return t;
  };
  const param = (r: FastifyRequest, k: string) => (r.params as Record<string, string>)[k];

  const routes: AdminRoute[] = [
    { method: 'GET', path: '/tenants', summary: 'List tenants', handler: async () => ({ data: (await listTenants(sql)).map(tenantView) }) },
    {
      method: 'POST',
      path: '/tenants',
      summary: 'Create a tenant',
      body: CreateTenant,
      handler: async (r, reply) => {
        const b = parseBody(CreateTenant, r.body);
        if (await findTenantByName(sql, b.name)) throw new ApiError(409, 'invalid_request_error', `Tenant ${b.name} exists.`, 'name', 'tenant_exists');
        await ensureTenant(sql, b.name, b.tier ?? config.defaultTier);
        const t = b.share_public === undefined ? await tenantOr404(b.name) : await updateTenant(sql, b.name, { sharePublic: b.share_public });
        void reply.code(201);
        return tenantView(t!);
      },
    },
    { method: 'GET', path: '/tenants/:name', summary: 'Show a tenant', handler: async (r) => tenantView(await tenantOr404(param(r, 'name'))) },
    {
      method: 'PATCH',
      path: '/tenants/:name',
      summary: "Change a tenant's tier or its opt-in to the shared public pool",
      body: PatchTenant,
      handler: async (r) => {
        const b = parseBody(PatchTenant, r.body);
        const t = (await updateTenant(sql, param(r, 'name'), { tier: b.tier, sharePublic: b.share_public })) ?? (await tenantOr404(param(r, 'name')));
        auth.forgetAll();
        return tenantView(t);
      },
    },
    {
      method: 'DELETE',
      path: '/tenants/:name',
      summary: 'Delete a tenant with its keys, providers, usage and cached vectors',
      handler: async (r) => {
        // Rows this process still holds for the tenant are written first, then deleted with it.
        await embeddings.flush();
        if (!(await deleteTenant(sql, param(r, 'name')))) await tenantOr404(param(r, 'name'));
        auth.forgetAll();
        embeddings.dropHotCache();
        return { deleted: true, name: param(r, 'name') };
      },
    },
    {
      method: 'GET',
      path: '/tenants/:name/usage',
      summary: "A tenant's usage, savings and stored rows",
      handler: async (r) => {
        await embeddings.flush();
        return tenantStats(sql, await tenantOr404(param(r, 'name')), config.prices);
      },
    },
    {
      method: 'POST',
      path: '/tenants/:name/keys',
      summary: 'Create an API key (shown once)',
      body: CreateKey,
      handler: async (r, reply) => {
        const b = parseBody(CreateKey, r.body ?? {});
        const t = await tenantOr404(param(r, 'name'));
        const k = generateApiKey();
        await insertApiKey(sql, { tenantId: t.id, prefix: k.prefix, keyHash: k.hash, name: b.name ?? null });
        void reply.code(201);
        return { key: k.key, prefix: k.prefix, tenant: t.name };
      },
    },
    {
      method: 'GET',
      path: '/keys',
      summary: 'List API keys (?tenant=NAME, ?prefix=PREFIX)',
      handler: async (r) => {
        const q = r.query as { tenant?: string; prefix?: string };
        return { data: (await listApiKeys(sql, { tenant: q.tenant, prefix: q.prefix })).map(keyView) };
      },
    },
    {
      method: 'DELETE',
      path: '/keys/:prefix',
      summary: 'Revoke the API key with this prefix',
      handler: async (r) => {
        const prefix = param(r, 'prefix').slice(0, PREFIX_LENGTH);
        if (!(await revokeApiKey(sql, prefix))) throw new ApiError(404, 'invalid_request_error', `No live key with prefix ${prefix}.`, 'prefix', 'key_not_found');
        auth.forgetAll();
        return { revoked: true, prefix };
      },
    },
    { method: 'GET', path: '/tiers', summary: 'List tiers and their limits', handler: async () => ({ data: (await listTiers(sql)).map(tierView) }) },
    {
      method: 'PUT',
      path: '/tiers/:name',
      summary: 'Create or replace a tier (null = unlimited)',
      body: PutTier,
      handler: async (r) => {
        const b = parseBody(PutTier, r.body);
        const t = await upsertTier(sql, {
          name: param(r, 'name'),
          requestsPerDay: b.requests_per_day,
          burstPerSecond: b.burst_per_second,
          tokensPerMinute: b.tokens_per_minute,
          maxCachedRows: b.max_cached_rows,
          backends: b.backends,
        });
        await tiers.refresh();
        return tierView(t);
      },
    },
    {
      method: 'POST',
      path: '/tenants/:name/tokens',
      summary: 'Mint a short-lived tenant JWT (usable as a Bearer key)',
      body: MintToken,
      handler: async (r, reply) => {
        const b = parseBody(MintToken, r.body ?? {});
        const t = await tenantOr404(param(r, 'name'));
        const token = await mintTenantToken(jwtSecret(), { tenant: t.name, tier: t.tier, ttlSeconds: b.ttl_seconds });
        void reply.code(201);
        return { token, tenant: t.name, expires_at: new Date(Date.now() + b.ttl_seconds * 1000).toISOString() };
      },
    },
    {
      method: 'POST',
      path: '/tokens/admin',
      summary: 'Mint a short-lived admin JWT',
      body: MintToken,
      handler: async (r, reply) => {
        const b = parseBody(MintToken, r.body ?? {});
        void reply.code(201);
        return { token: await mintAdminToken(jwtSecret(), b.ttl_seconds), expires_at: new Date(Date.now() + b.ttl_seconds * 1000).toISOString() };
      },
    },
    {
      method: 'GET',
      path: '/tenants/:name/providers',
      summary: "List a tenant's providers (keys shown by their last four characters only)",
      handler: async (r) => ({ data: (await listProviders(sql, (await tenantOr404(param(r, 'name'))).id)).map(providerView) }),
    },
    {
      method: 'POST',
      path: '/tenants/:name/providers',
      summary: 'Add or replace (by name) a BYOK provider: its kind (openai, azure-openai, cohere, voyage, gemini, template), base URL, key, models and kind-specific options',
      body: CreateProvider,
      handler: async (r, reply) => {
        const b = parseBody(CreateProvider, r.body);
        const t = await tenantOr404(param(r, 'name'));
        const p = await addProvider(sql, config, t, b);
        providers.forget(t.id);
        void reply.code(201);
        return providerView(p);
      },
    },
    {
      method: 'POST',
      path: '/tenants/:name/providers/:provider/test',
      summary: "Make one real call through a tenant's provider: the dimension, tokens and latency it gave, or the error it maps to",
      body: TestProvider,
      handler: async (r) => {
        const b = parseBody(TestProvider, r.body ?? {});
        const t = await tenantOr404(param(r, 'name'));
        return testProvider(sql, config, t, param(r, 'provider'), b.model);
      },
    },
    {
      method: 'DELETE',
      path: '/tenants/:name/providers/:provider',
      summary: 'Remove a provider',
      handler: async (r) => {
        const t = await tenantOr404(param(r, 'name'));
        if (!(await deleteProvider(sql, t.id, param(r, 'provider')))) {
          throw new ApiError(404, 'invalid_request_error', `Tenant ${t.name} has no provider ${param(r, 'provider')}.`, 'provider', 'provider_not_found');
        }
        providers.forget(t.id);
        return { deleted: true, name: param(r, 'provider') };
      },
    },
  ];

  for (const route of routes) app.route({ method: route.method, url: route.path, handler: route.handler });
  app.get('/openapi.json', async () => openApi(routes));
}

function openApi(routes: AdminRoute[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = r.path.replace(/:(\w+)/g, '{$1}');
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = {
      summary: r.summary,
      parameters: params,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body) } } } } : {}),
      responses: { '200': { description: 'OK' }, '4XX': { description: 'OpenAI-style error body' } },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'embedding-cache admin API', version: '1' },
    servers: [{ url: '/admin/v1' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}

export type { AdminRoute };
