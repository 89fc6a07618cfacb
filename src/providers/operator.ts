import type { Config } from '../config.js';
import type { Embedder } from '../core/types.js';
import { buildProvider, type BuildContext, type ProviderDescription } from './factory.js';

export interface OperatorUpstream {
  description: ProviderDescription;
  context: Omit<BuildContext, 'fetch'>;
}

/**
 * The operator's upstreams: the environment's (UPSTREAM_BASE_URL & co., one implicit `openai`
 * upstream named by its host, as errors then say where it is) first, so it wins where both serve a model id, then the config
 * file's, each with the environment's timeouts and batch size unless the file sets its own.
 */
export function operatorUpstreams(config: Config): OperatorUpstream[] {
  const env = config.upstream;
  const out: OperatorUpstream[] = [];
  const defaults = { owner: 'operator' as const, timeoutMs: env.timeoutMs, maxRetries: env.maxRetries, maxBatch: env.maxBatch, ownedBy: 'upstream' };
  if (env.baseUrl) {
    out.push({
      description: { kind: 'openai', name: new URL(env.baseUrl).host, baseUrl: env.baseUrl, apiKey: env.apiKey ?? '', models: env.models.map((id) => ({ id })), options: {} },
      context: { ...defaults, keyHint: 'UPSTREAM_API_KEY' },
    });
  }
  for (const u of config.file?.upstreams ?? []) {
    out.push({
      description: { kind: u.kind, name: u.name, baseUrl: u.baseUrl, apiKey: u.apiKey, models: u.models, options: u.options, cacheScope: u.cacheScope },
      context: { ...defaults, timeoutMs: u.timeoutMs ?? env.timeoutMs, maxRetries: u.maxRetries ?? env.maxRetries, maxBatch: u.maxBatch ?? env.maxBatch, keyHint: u.keyHint },
    });
  }
  return out;
}

/** One Embedder per operator upstream, all on one connection pool (`fetch`). */
export function buildOperatorUpstreams(config: Config, fetch: typeof globalThis.fetch): Embedder[] {
  return operatorUpstreams(config).map((u) => buildProvider(u.description, { ...u.context, fetch }));
}
