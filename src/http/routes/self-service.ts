import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import * as S from '../../admin/schemas.js';
import type { AdminService } from '../../admin/service.js';
import { DomainError } from '../../core/errors.js';
import { registerRoutes, type DocumentedRoute } from '../route-table.js';
import { parseBody } from '../schemas.js';

/*
 * The tenant's own keys and providers, for whoever holds one of its API keys or a tenant JWT
 * (the auth plugin of the /v1 scope has set request.tenant from the database). Every query is
 * scoped by request.tenant.id: a prefix or provider name of another tenant is simply not found.
 */

const CreateKeyBody = S.CreateKey.pick({ name: true }).strict();
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

/** The admin API's provider fields, without the tenant (it is the caller's). */
const CreateProviderBody = S.AddProvider.omit({ tenant: true }).strict();
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

/** Live keys a tenant may hold through self-service (the operator can create more). */
export const MAX_OWN_KEYS = 50;

const param = (r: FastifyRequest, k: string): string => (r.params as Record<string, string>)[k];

export interface SelfServiceOptions {
  /** The admin service's verbs, scoped here to the caller's tenant. */
  admin: Pick<AdminService, 'listKeys' | 'createKey' | 'revokeKey' | 'listProviders' | 'addProvider' | 'removeProvider'>;
}

export function selfServiceRouteTable(opts: SelfServiceOptions): DocumentedRoute[] {
  const { admin } = opts;
  return [
    {
      method: 'GET',
      path: '/keys',
      tag: 'keys',
      summary: "List your tenant's API keys (prefix, name, created, last used to the minute, revoked)",
      security: 'bearer',
      response: KeyList,
      handler: async (r) => ({ data: (await admin.listKeys({ tenant: r.tenant.name })).map(({ tenant: _, ...k }) => k) }),
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
        const live = (await admin.listKeys({ tenant: r.tenant.name })).filter((k) => k.revoked_at === null).length;
        if (live >= MAX_OWN_KEYS) {
          throw new DomainError('forbidden', `You have ${live} live keys, the most a tenant may create itself: revoke one first (DELETE /v1/keys/{prefix}).`, { code: 'too_many_keys' });
        }
        const k = await admin.createKey({ tenant: r.tenant.name, name: b.name });
        return { key: k.key, prefix: k.prefix, name: k.name, created_at: k.created_at };
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
        try {
          return await admin.revokeKey({ prefix: param(r, 'prefix'), tenant: r.tenant.name });
        } catch (err) {
          if (err instanceof DomainError && err.code === 'key_not_found') {
            throw new DomainError('not_found', `You have no live key with prefix ${param(r, 'prefix').slice(0, 11)}. List yours with GET /v1/keys.`, { param: 'prefix', code: 'key_not_found' });
          }
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: '/providers',
      tag: 'providers',
      summary: 'List your BYOK providers (keys shown by their last four characters only)',
      security: 'bearer',
      response: ProviderList,
      handler: async (r) => ({ data: await admin.listProviders({ tenant: r.tenant.name }) }),
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
        return admin.addProvider({ ...b, tenant: r.tenant.name });
      },
    },
    {
      method: 'DELETE',
      path: '/providers/:name',
      tag: 'providers',
      summary: 'Remove one of your providers',
      security: 'bearer',
      response: Deleted,
      handler: async (r) => admin.removeProvider({ tenant: r.tenant.name, name: param(r, 'name') }),
    },
  ];
}

/** GET/POST /keys, DELETE /keys/:prefix, GET/POST /providers, DELETE /providers/:name. */
export async function selfServiceRoutes(app: FastifyInstance, opts: SelfServiceOptions): Promise<void> {
  registerRoutes(app, selfServiceRouteTable(opts));
}
