import { z } from 'zod';
import { BACKEND_KINDS } from '../core/domain.js';
import { DomainError } from '../core/errors.js';
import { MAX_TTL_SECONDS } from '../auth/jwt.js';

/**
 * The admin verbs' inputs, one zod schema each, shared by the admin API (route schemas) and the
 * CLI (which turns its flags into the same objects), so both refuse exactly the same things.
 */

/** PostgreSQL text cannot hold NUL; refusing it here keeps a raw driver error from any client. */
const text = () => z.string().refine((s) => !s.includes('\u0000'), { message: 'must not contain NUL bytes' });

/** Limits are PostgreSQL `integer`s. */
export const MAX_LIMIT = 2 ** 31 - 1;
const limitMessage = (max: number) => `must be a whole number from 0 to ${max}, or unlimited (null)`;
const limit = (max: number) =>
  z
    .number({ error: limitMessage(max) })
    .int({ error: limitMessage(max) })
    .min(0, { error: limitMessage(max) })
    .max(max, { error: limitMessage(max) })
    .nullable();
/** max_cached_rows is a `bigint`; JavaScript numbers are exact up to 2^53-1. */
const rowLimit = limit(Number.MAX_SAFE_INTEGER);

export const Name = text().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'names are 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit');
export const TenantRef = z.object({ tenant: Name });
const Ttl = z.object({
  ttl_seconds: z
    .number({ error: `must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}` })
    .int({ error: `must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}` })
    .min(1, { error: `must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}` })
    .max(MAX_TTL_SECONDS, { error: `must be at most ${MAX_TTL_SECONDS} seconds (7 days)` })
    .default(3600),
});

export const CreateTenant = z.object({ name: Name, tier: Name.optional(), share_public: z.boolean().optional() });
export const ShowTenant = z.object({ name: Name });
export const UpdateTenant = z.object({ name: Name, tier: Name.optional(), share_public: z.boolean().optional() });

export const CreateKey = z.object({
  tenant: Name,
  name: text().max(200).optional(),
  /** Create the tenant (with `tier`, default DEFAULT_TIER) when it does not exist: the CLI's `keys create`. */
  create_tenant: z.boolean().default(false),
  tier: Name.optional(),
});
export const ListKeys = z.object({ tenant: text().optional(), prefix: text().optional() });
export const RevokeKey = z.object({ prefix: text().min(1, 'prefix is required') });
/** The same, limited to one tenant's keys when `tenant` is given. */
export const RevokeTenantKey = RevokeKey.extend({ tenant: Name.optional() });

const tierFields = {
  requests_per_day: limit(MAX_LIMIT),
  burst_per_second: limit(MAX_LIMIT),
  tokens_per_minute: limit(MAX_LIMIT),
  max_cached_rows: rowLimit,
  backends: z.array(z.enum(BACKEND_KINDS, { error: (iss) => `Unknown backends: ${String(iss.input)}. Use ${BACKEND_KINDS.join(', ')}.` }), {
    error: `backends must be a list of ${BACKEND_KINDS.join(', ')}`,
  }),
};
/** Partial: a field left out keeps its value; a new tier needs `backends` (missing limits are unlimited). */
export const SetTier = z.object({ name: Name, ...z.object(tierFields).partial().shape });
/** The API's PUT: every field, a full replacement. */
export const ReplaceTierBody = z.object(tierFields);
export const SetTierBody = SetTier.omit({ name: true });

export const AddProvider = z.object({
  tenant: Name,
  name: Name,
  base_url: text().pipe(z.url('base_url must be a URL such as https://api.example.com/v1')),
  api_key: text().min(1, 'api_key is required'),
  models: z.array(text().min(1)).min(1, 'models must list at least one model id'),
});
export const RemoveProvider = z.object({ tenant: Name, name: Name });

export const MintTenantToken = z.object({ tenant: Name, ...Ttl.shape });
export const MintAdminToken = Ttl;
export const ClearCache = z.object({ tenant: Name, model: text().min(1).optional() });

/** zod's first issue as an invalid_input DomainError naming the field (`input`: what was parsed, to tell missing from wrong). */
export function toInvalidInput(error: z.ZodError, input: unknown): DomainError {
  const issue = error.issues[0];
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const given = issue.path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), input);
  const missing = issue.code === 'invalid_type' && given === undefined;
  const message = missing && param ? `Missing required parameter: '${param}'.` : param ? `${param}: ${issue.message}` : issue.message;
  return new DomainError('invalid_input', message, { param, code: 'invalid_value' });
}

export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw toInvalidInput(r.error, input);
  return r.data;
}

/**
 * A number given as text (CLI flags): `unlimited` is null, an integer is that number, anything
 * else stays text so the schema refuses it with the same message the API gives.
 */
export function numberFromText(v: string | undefined): number | string | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'unlimited') return null;
  return /^[-+]?\d+$/.test(v.trim()) ? Number(v) : v;
}
