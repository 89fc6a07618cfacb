import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { BACKEND_KINDS, type Tier } from '../core/domain.js';
import type { ProviderModelEntry } from '../backends/providers/base.js';
import { PROVIDER_KINDS, type ProviderKind } from '../backends/providers/errors.js';
import { checkOptions, ModelEntryInput } from '../backends/providers/options.js';

/**
 * The operator's configuration file (`embedding-cache.yaml`): upstreams of any kind, the models
 * routed to each, aliases and tiers. Secrets come from the environment as `${VAR}`; every bad
 * value is reported with its exact path (`upstreams[1].kind: ...`).
 */
export const DEFAULT_CONFIG_FILE = 'embedding-cache.yaml';

export interface UpstreamEntry {
  name: string;
  kind: ProviderKind;
  baseUrl?: string;
  apiKey: string;
  models: ProviderModelEntry[];
  options: Record<string, unknown>;
  cacheScope?: string;
  maxBatch?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** Where this key is set, for "check the key" messages. */
  keyHint: string;
}

export interface OperatorFile {
  path: string;
  upstreams: UpstreamEntry[];
  /** Public name -> a model id an upstream serves: one model, one set of cached rows. */
  aliases: Record<string, string>;
  tiers: Tier[];
}

const limit = z.number().int().min(0).max(2 ** 31 - 1).nullable().default(null);

const Upstream = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores'),
  kind: z.enum(PROVIDER_KINDS, { error: `must be one of ${PROVIDER_KINDS.join(', ')}` }).default('openai'),
  base_url: z.url({ message: 'must be a URL such as https://api.example.com/v1' }).optional(),
  /** `${ENV_VAR}` keeps the secret out of the file. Some local servers need no key. */
  api_key: z.string().default(''),
  models: z.array(ModelEntryInput).min(1, 'must name at least one model'),
  options: z.record(z.string(), z.unknown()).default({}),
  /** Upstreams with the same cache_scope share cached rows: say so only when they serve the same model. */
  cache_scope: z.string().min(1).optional(),
  max_batch: z.number().int().min(1).max(2048).optional(),
  timeout_ms: z.number().int().positive().optional(),
  max_retries: z.number().int().min(0).max(10).optional(),
});

const TierEntry = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]{1,32}$/, 'must be 1-32 lowercase letters, digits, dashes or underscores'),
  requests_per_day: limit,
  burst_per_second: limit,
  tokens_per_minute: limit,
  max_cached_rows: z.number().int().min(0).nullable().default(null),
  backends: z.array(z.enum(BACKEND_KINDS, { error: `must be one of ${BACKEND_KINDS.join(', ')}` })).default([...BACKEND_KINDS]),
});

const FileSchema = z.strictObject({
  upstreams: z.array(Upstream).default([]),
  aliases: z.record(z.string().min(1), z.string().min(1)).default({}),
  tiers: z.array(TierEntry).default([]),
});

/** `['upstreams', 1, 'kind']` -> `upstreams[1].kind`. */
export function formatPath(p: readonly PropertyKey[]): string {
  return p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

/**
 * Replaces `${VAR}` (and `${VAR:-default}`) in every string of the parsed document: values are
 * substituted after parsing, so a secret's characters never change the YAML's structure. `$${`
 * is a literal `${`.
 */
export function interpolate(value: unknown, env: Record<string, string | undefined>, at: PropertyKey[], problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped: string, name: string, fallback: string | undefined) => {
      if (escaped) return whole.slice(1);
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(at)}: environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...at, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...at, k], problems)]));
  }
  return value;
}

/** The file to read: CONFIG_FILE, else ./embedding-cache.yaml when it exists, else none. */
export function configFilePath(env: Record<string, string | undefined>, cwd = process.cwd()): string | undefined {
  if (env.CONFIG_FILE) return path.resolve(cwd, env.CONFIG_FILE);
  const p = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(p) ? p : undefined;
}

/** Reads and validates a file; `problems` (each `path: message`) is empty when it is good. */
export function readOperatorFile(file: string, env: Record<string, string | undefined>): { file?: OperatorFile; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { problems: [`cannot read ${file}: ${(err as Error).message}`] };
  }
  return parseOperatorFile(text, file, env);
}

export function parseOperatorFile(text: string, file: string, env: Record<string, string | undefined>): { file?: OperatorFile; problems: string[] } {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) return { problems: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`) };
  const problems: string[] = [];
  const raw = interpolate(doc.toJS() ?? {}, env, [], problems);
  const r = FileSchema.safeParse(raw);
  if (!r.success) {
    for (const i of r.error.issues) {
      const where = formatPath(i.path);
      const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
      problems.push(`${where || '(top level)'}: ${i.code === 'unrecognized_keys' ? 'unknown key' + keys : i.message}`);
    }
    return { problems };
  }
  const f = r.data;
  const names = new Set<string>();
  const served = new Map<string, number>();
  f.upstreams.forEach((u, i) => {
    if (names.has(u.name)) problems.push(`upstreams[${i}].name: "${u.name}" is used by another upstream`);
    names.add(u.name);
    for (const p of checkOptions(u.kind, u.options, u.base_url).problems) problems.push(`upstreams[${i}].${p.path}: ${p.message}`);
    u.models.forEach((m) => served.has(m.id) || served.set(m.id, i));
  });
  for (const [alias, target] of Object.entries(f.aliases)) {
    if (!served.has(target)) problems.push(`aliases.${alias}: no upstream serves "${target}" (aliases name a model of an upstream in this file)`);
  }
  const tierNames = new Set<string>();
  f.tiers.forEach((t, i) => {
    if (tierNames.has(t.name)) problems.push(`tiers[${i}].name: "${t.name}" is defined twice`);
    tierNames.add(t.name);
  });
  if (problems.length > 0) return { problems };
  // An alias is one more public name of the target's model on the target's upstream: same rows.
  const upstreams: UpstreamEntry[] = f.upstreams.map((u, i) => {
    const aliases = Object.entries(f.aliases)
      .filter(([, target]) => served.get(target) === i)
      .map(([alias, target]) => {
        const t = u.models.find((m) => m.id === target)!;
        return { ...t, id: alias, model: t.model ?? t.id };
      });
    return {
      name: u.name,
      kind: u.kind,
      baseUrl: u.base_url,
      apiKey: u.api_key,
      models: [...u.models, ...aliases],
      options: u.options,
      cacheScope: u.cache_scope,
      maxBatch: u.max_batch,
      timeoutMs: u.timeout_ms,
      maxRetries: u.max_retries,
      keyHint: `upstreams[${i}].api_key in ${path.basename(file)}`,
    };
  });
  const tiers: Tier[] = f.tiers.map((t) => ({
    name: t.name,
    requestsPerDay: t.requests_per_day,
    burstPerSecond: t.burst_per_second,
    tokensPerMinute: t.tokens_per_minute,
    maxCachedRows: t.max_cached_rows,
    backends: t.backends,
  }));
  return { file: { path: file, upstreams, aliases: f.aliases, tiers }, problems: [] };
}
