import { z } from 'zod';
import type { ProviderModelEntry } from './base.js';
import { COHERE_BASE_URL } from './cohere.js';
import type { ProviderKind } from './errors.js';
import { GEMINI_BASE_URL } from './gemini.js';
import type { Json } from './template.js';
import { VOYAGE_BASE_URL } from './voyage.js';

/** What each kind needs besides a URL, a key and models: validated the same way wherever it comes from. */

export const DEFAULT_BASE_URLS: Partial<Record<ProviderKind, string>> = {
  openai: 'https://api.openai.com/v1',
  cohere: COHERE_BASE_URL,
  voyage: VOYAGE_BASE_URL,
  gemini: GEMINI_BASE_URL,
};

/** Options arrive as strings from the CLI (`--option k=v`) and typed from YAML/JSON: accept both. */
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
const TEMPLATE_HINT = 'must be a JSON request template, e.g. {"input":"{{inputs}}","model":"{{model}}"}';
const jsonTemplate = z.unknown().transform((v, ctx): Json => {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as Json;
    } catch {
      ctx.addIssue({ code: 'custom', message: `${TEMPLATE_HINT} (this is not JSON)` });
      return z.NEVER;
    }
  }
  if (v !== null && typeof v === 'object') return v as Json;
  ctx.addIssue({ code: 'custom', message: TEMPLATE_HINT });
  return z.NEVER;
});
const jsonPath = z.string().regex(/^\$/, 'must be a JSONPath expression starting with $, e.g. $.data[*].embedding');

/** Each kind's options (snake_case, as in the config file, the admin API and `--option`). */
export const KIND_OPTIONS = {
  openai: z.strictObject({}),
  'azure-openai': z.strictObject({
    /** `2024-10-21` (the deployments route) or `v1` (the version-less route). */
    api_version: z.string().regex(/^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/, "must be an api-version such as '2024-10-21', or 'v1'").default('2024-10-21'),
    /** One deployment for every model (else each model's `model` names its deployment). */
    deployment: z.string().min(1).optional(),
  }),
  cohere: z.strictObject({}),
  voyage: z.strictObject({ truncation: flag.optional() }),
  gemini: z.strictObject({}),
  template: z.strictObject({
    request: jsonTemplate,
    vectors_path: jsonPath,
    tokens_path: jsonPath.optional(),
    auth_header: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').default('authorization'),
    auth_format: z.string().includes('{{key}}', { message: 'must contain {{key}}, e.g. "Bearer {{key}}"' }).default('Bearer {{key}}'),
    max_batch: z.coerce.number().int().min(1).max(2048).default(64),
  }),
} satisfies Record<ProviderKind, z.ZodType>;

/** A model as configured: a name, or `{id, model, dimensions, …}` (public id -> the provider's model). */
export const ModelEntryInput = z.union([
  z.string().min(1).transform((id): ProviderModelEntry => ({ id })),
  z
    .strictObject({
      id: z.string().min(1),
      model: z.string().min(1).optional(),
      dimensions: z.number().int().positive().optional(),
      max_input_tokens: z.number().int().positive().optional(),
      dimensions_method: z.enum(['truncate', 'layernorm-truncate', 'native', 'none']).optional(),
      version: z.string().min(1).optional(),
    })
    .transform(
      (m): ProviderModelEntry => ({
        id: m.id,
        model: m.model,
        dimensions: m.dimensions,
        maxInputTokens: m.max_input_tokens,
        dimensionsMethod: m.dimensions_method,
        version: m.version,
      }),
    ),
]);

export interface Problem {
  path: string;
  message: string;
}

/** Every problem of a description's kind-specific parts, each with its path (`options.vectors_path`). */
export function checkOptions(kind: ProviderKind, options: unknown, baseUrl: string | undefined): { problems: Problem[]; options?: unknown } {
  const problems: Problem[] = [];
  if (!baseUrl && !DEFAULT_BASE_URLS[kind]) problems.push({ path: 'base_url', message: `is required for kind ${kind}` });
  const r = KIND_OPTIONS[kind].safeParse(options ?? {});
  if (!r.success) {
    for (const i of r.error.issues) {
      const key = i.code === 'unrecognized_keys' ? `.${i.keys.join(',')}` : '';
      const known = Object.keys(KIND_OPTIONS[kind].shape);
      const message = i.code === 'unrecognized_keys' ? `is not an option of kind ${kind} (${known.length > 0 ? `options: ${known.join(', ')}` : 'it takes none'})` : i.message;
      problems.push({ path: ['options', ...i.path.map(String)].join('.') + key, message });
    }
  }
  return { problems, options: r.success ? r.data : undefined };
}

