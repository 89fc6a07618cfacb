import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { addProvider, providerView } from '../../admin/providers.js';
import { generateApiKey, PREFIX_LENGTH } from '../../auth/api-key.js';
import { DomainError } from '../../core/errors.js';
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRecord } from '../../store/api-keys.js';
import type { Sql } from '../../store/db.js';
import { deleteProvider, listProviders } from '../../store/providers.js';
import { registerRoutes, type DocumentedRoute } from '../route-table.js';
import { parseBody } from '../schemas.js';

/*
 * The tenant's own keys and providers, for whoever holds one of its API keys or a tenant JWT
 * (the auth plugin of the /v1 scope has set request.tenant from the database). Every query is
 * scoped by request.tenant.id: a prefix or provider name of another tenant is simply not found.
 */

const CreateKeyBody = z.object({ name: z.string().trim().min(1).max(200).optional() }).strict();
const KeyView = z.object({
  prefix: z.string(),
  name: z.string().nullable(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
const KeyList = z.object({ data: z.array(KeyView) });
const NewKey = z.object({ key: z.string().describe('Shown once: store it now'), prefix: z.string(), name: z.string().nullable(), created_at: z.string() });
const Revoked = z.object({ revoked: z.literal(true), prefix: z.string() });

const ProviderName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'provider names are 1-63 letters, digits, ".", "_" or "-"');
const CreateProviderBody = z.object({
  name: ProviderName,
  base_url: z.string().url('base_url must be a URL such as https://api.example.com/v1'),
  api_key: z.string().min(1, 'api_key is required'),
  models: z.array(z.string().min(1)).min(1, 'models must list at least one model id'),
});
const ProviderView = z.object({
  name: z.string(),
  base_url: z.string(),
  models: z.array(z.string()),
  api_key_last4: z.string(),
  key_id: z.string(),
  created_at: z.string(),
});
const ProviderList = z.object({ data: z.array(ProviderView) });
const Deleted = z.object({ deleted: z.literal(true), name: z.string() });

const keyView = (k: ApiKeyRecord): z.infer<typeof KeyView> => ({
  prefix: k.prefix,
  name: k.name,
  created_at: k.createdAt.toISOString(),
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

const param = (r: FastifyRequest, k: string): string => (r.params as Record<string, string>)[k];

export interface SelfServiceOptions {
  sql: Sql;
  config: Pick<Config, 'masterKeys' | 'ssrf'>;
  /** After a revoke: verified keys remembered in this process are forgotten. */
  forgetKeys: () => void;
  /** After a provider change: the tenant's wired providers are rebuilt. */
  forgetProviders: (tenantId: number) => void;
}

export function selfServiceRouteTable(opts: SelfServiceOptions): DocumentedRoute[] {
  const { sql, config } = opts;
  return [
    {
      method: 'GET',
      path: '/keys',
      tag: 'keys',
      summary: "List your tenant's API keys (prefix, name, created, last used to the minute, revoked)",
      security: 'bearer',
      response: KeyList,
      handler: async (r) => ({ data: (await listApiKeys(sql, { tenantId: r.tenant.id })).map(keyView) }),
    },
    {
      method: 'POST',
      path: '/keys',
      tag: 'keys',
      summary: 'Create an API key for your tenant (the key is shown once)',
      security: 'bearer',
      body: CreateKeyBody,
      response: NewKey,
      status: 201,
      handler: async (r) => {
        const b = parseBody(CreateKeyBody, r.body ?? {});
        const k = generateApiKey();
        const row = await insertApiKey(sql, { tenantId: r.tenant.id, prefix: k.prefix, keyHash: k.hash, name: b.name ?? null });
        return { key: k.key, prefix: k.prefix, name: b.name ?? null, created_at: row.createdAt.toISOString() };
      },
    },
    {
      method: 'DELETE',
      path: '/keys/:prefix',
      tag: 'keys',
      summary: 'Revoke one of your API keys by its prefix (refused at once in this process, elsewhere within AUTH_CACHE_TTL_S)',
      security: 'bearer',
      response: Revoked,
      handler: async (r) => {
        const prefix = param(r, 'prefix').slice(0, PREFIX_LENGTH);
        if (!(await revokeApiKey(sql, prefix, r.tenant.id))) {
          throw new DomainError('not_found', `You have no live key with prefix ${prefix}. List yours with GET /v1/keys.`, { param: 'prefix', code: 'key_not_found' });
        }
        opts.forgetKeys();
        return { revoked: true, prefix };
      },
    },
    {
      method: 'GET',
      path: '/providers',
      tag: 'providers',
      summary: 'List your BYOK providers (keys shown by their last four characters only)',
      security: 'bearer',
      response: ProviderList,
      handler: async (r) => ({ data: (await listProviders(sql, r.tenant.id)).map(providerView) }),
    },
    {
      method: 'POST',
      path: '/providers',
      tag: 'providers',
      summary: 'Add or replace (by name) a BYOK provider: an OpenAI-compatible base URL, its key and the models routed to it',
      security: 'bearer',
      body: CreateProviderBody,
      response: ProviderView,
      status: 201,
      handler: async (r) => {
        const b = parseBody(CreateProviderBody, r.body);
        // The tier comes from the database (auth resolved it), never from the request.
        if (!r.tier.backends.includes('byok')) {
          throw new DomainError('forbidden', `Your tier (${r.tier.name}) does not include your own providers (byok). Ask the operator for a tier that does.`, {
            code: 'tier_forbids_byok',
          });
        }
        const p = await addProvider(sql, config, r.tenant, b);
        opts.forgetProviders(r.tenant.id);
        return providerView(p);
      },
    },
    {
      method: 'DELETE',
      path: '/providers/:name',
      tag: 'providers',
      summary: 'Remove one of your providers',
      security: 'bearer',
      response: Deleted,
      handler: async (r) => {
        const name = param(r, 'name');
        if (!(await deleteProvider(sql, r.tenant.id, name))) {
          throw new DomainError('not_found', `You have no provider named ${name}. List yours with GET /v1/providers.`, { param: 'name', code: 'provider_not_found' });
        }
        opts.forgetProviders(r.tenant.id);
        return { deleted: true, name };
      },
    },
  ];
}

/** GET/POST /keys, DELETE /keys/:prefix, GET/POST /providers, DELETE /providers/:name. */
export async function selfServiceRoutes(app: FastifyInstance, opts: SelfServiceOptions): Promise<void> {
  registerRoutes(app, selfServiceRouteTable(opts));
}
