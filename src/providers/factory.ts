import type { z } from 'zod';
import { DomainError } from '../core/errors.js';
import { AzureOpenAIEmbedder, UpstreamEmbedder } from '../backends/upstream.js';
import type { ProviderEmbedder, ProviderModelEntry, ProviderSetup } from '../backends/providers/base.js';
import { CohereEmbedder } from '../backends/providers/cohere.js';
import { PROVIDER_KINDS, type ProviderKind } from '../backends/providers/errors.js';
import { GeminiEmbedder } from '../backends/providers/gemini.js';
import { checkOptions, DEFAULT_BASE_URLS, type KIND_OPTIONS } from '../backends/providers/options.js';
import { TemplateEmbedder } from '../backends/providers/template.js';
import { VoyageEmbedder } from '../backends/providers/voyage.js';

export { PROVIDER_KINDS, type ProviderKind };

/**
 * One provider, whoever configured it: an operator's upstream (config file or environment) or
 * a tenant's BYOK provider (database). The same description builds the same Embedder.
 */
export interface ProviderDescription {
  kind: ProviderKind;
  name: string;
  /** Absent: the kind's public endpoint (not for azure-openai and template). */
  baseUrl?: string;
  apiKey: string;
  models: ProviderModelEntry[];
  /** Kind-specific settings (see KIND_OPTIONS), as given: validated here. */
  options: Record<string, unknown>;
  /** Overrides the endpoint's identity in the cache scope (operator upstreams only). */
  cacheScope?: string;
}

export interface BuildContext {
  owner: 'tenant' | 'operator';
  fetch: typeof fetch;
  timeoutMs: number;
  maxRetries: number;
  /** Most inputs per call; the kind's own limit wins when lower. */
  maxBatch?: number;
  /** Where the operator sets the key, for "check the key" messages. */
  keyHint?: string;
  ownedBy?: string;
}

/** Builds the Embedder a description asks for; throws invalid_input naming the bad option. */
export function buildProvider(d: ProviderDescription, ctx: BuildContext): ProviderEmbedder {
  const { problems, options } = checkOptions(d.kind, d.options, d.baseUrl);
  if (problems.length > 0) {
    throw new DomainError('invalid_input', `Provider ${d.name}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}.`, { param: problems[0].path });
  }
  const setup: ProviderSetup = {
    call: {
      identity: { kind: d.kind, name: d.name, owner: ctx.owner, keyHint: ctx.keyHint },
      fetch: ctx.fetch,
      timeoutMs: ctx.timeoutMs,
      maxRetries: ctx.maxRetries,
      secret: d.apiKey,
    },
    baseUrl: d.baseUrl ?? DEFAULT_BASE_URLS[d.kind]!,
    models: d.models,
    maxBatch: ctx.maxBatch,
    cacheScope: d.cacheScope,
    ownedBy: ctx.ownedBy,
  };
  switch (d.kind) {
    case 'openai':
      return new UpstreamEmbedder(setup);
    case 'azure-openai': {
      const o = options as z.infer<(typeof KIND_OPTIONS)['azure-openai']>;
      return new AzureOpenAIEmbedder(setup, { apiVersion: o.api_version, deployment: o.deployment });
    }
    case 'cohere':
      return new CohereEmbedder(setup);
    case 'voyage':
      return new VoyageEmbedder(setup, options as z.infer<(typeof KIND_OPTIONS)['voyage']>);
    case 'gemini':
      return new GeminiEmbedder(setup);
    case 'template': {
      const o = options as z.infer<(typeof KIND_OPTIONS)['template']>;
      return new TemplateEmbedder(setup, {
        request: o.request,
        vectorsPath: o.vectors_path,
        tokensPath: o.tokens_path,
        authHeader: o.auth_header,
        authFormat: o.auth_format,
        maxBatch: o.max_batch,
      });
    }
  }
}
