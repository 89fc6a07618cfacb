import OpenAI, { APIConnectionTimeoutError, APIError, AzureOpenAI } from 'openai';
import { base64ToVector } from '../core/codec.js';
import { DomainError } from '../core/errors.js';
import type { EmbedInput } from '../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, type BatchOptions, type BatchResult, type KindTraits, type ProviderSetup, type ResolvedProviderModel } from './providers/base.js';
import { cleanProviderMessage, invalidResponse, providerHttpError, providerTransportError, retryAfterSeconds, type ProviderIdentity } from './providers/errors.js';

export { splitTokens } from './providers/base.js';

const OPENAI_TRAITS: KindTraits = { kind: 'openai', maxBatch: 2048, tokenInputs: true, inputTypes: false, defaultTaskType: null };

/**
 * Any OpenAI-compatible /v1/embeddings (OpenAI, Mistral, Together, Jina, vLLM, Infinity, TEI,
 * Ollama's /v1), through the official client. Asks for base64 so the float32 bytes arrive
 * exactly as the provider produced them.
 */
export class UpstreamEmbedder extends ProviderEmbedder {
  protected readonly client: OpenAI;

  constructor(setup: ProviderSetup, client?: OpenAI, traits: KindTraits = OPENAI_TRAITS) {
    // The same provider host gives the same vectors, whoever's key asked: rows can be shared.
    // (`api:<host>` is the scope rows cached before provider kinds existed carry: kept.)
    super(setup, traits, traits.kind === 'openai' ? `api:${new URL(setup.baseUrl).host}` : endpointScope(traits.kind, setup.baseUrl));
    const c = setup.call;
    this.client = client ?? new OpenAI({ baseURL: setup.baseUrl, apiKey: c.secret, timeout: c.timeoutMs, maxRetries: c.maxRetries, fetch: c.fetch });
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const allText = inputs.every((i) => i.kind === 'text');
    const input = allText ? inputs.map((i) => (i as { text: string }).text) : inputs.map((i) => (i.kind === 'tokens' ? i.ids : i.text));
    let res;
    try {
      res = await this.client.embeddings.create(
        // Mixed text and token inputs cannot be sent together; the HTTP layer never mixes them.
        { model: m.model, input: input as string[] | number[][], encoding_format: 'base64', ...(o.dimensions ? { dimensions: o.dimensions } : {}) },
      );
    } catch (err) {
      throw mapOpenAIError(this.setup.call.identity, err, this.setup.call.secret);
    }
    const who = this.setup.call.identity;
    if (!Array.isArray(res.data) || res.data.length !== inputs.length) throw invalidResponse(who, `${res.data?.length ?? 0} embeddings for ${inputs.length} inputs`);
    const vectors = new Array<Float32Array>(inputs.length);
    for (const d of res.data) {
      const e = d.embedding as unknown;
      if (!Number.isInteger(d.index) || d.index < 0 || d.index >= inputs.length || vectors[d.index]) throw invalidResponse(who, `index ${String(d.index)} out of place`);
      // Some OpenAI-compatible servers ignore encoding_format and send floats.
      if (typeof e === 'string') vectors[d.index] = base64ToVector(e);
      else if (Array.isArray(e) && e.every((x) => typeof x === 'number')) vectors[d.index] = Float32Array.from(e);
      else throw invalidResponse(who, 'an embedding that is neither base64 nor an array of numbers');
    }
    const total = res.usage?.prompt_tokens;
    return { vectors, totalTokens: typeof total === 'number' ? total : undefined };
  }
}

export interface AzureOptions {
  /** `2024-10-21` and kin: the deployments route; `v1`: the version-less /openai/v1 route. */
  apiVersion: string;
  /** One deployment for every model; otherwise each model's provider name is its deployment. */
  deployment?: string;
}

const AZURE_TRAITS: KindTraits = { kind: 'azure-openai', maxBatch: 2048, tokenInputs: true, inputTypes: false, defaultTaskType: null };

/**
 * Azure OpenAI: the resource endpoint (`https://NAME.openai.azure.com`), a deployment per model,
 * the key in the `api-key` header. Same wire format as OpenAI's, so the openai client's Azure
 * flavour does the calls.
 */
export class AzureOpenAIEmbedder extends UpstreamEmbedder {
  constructor(setup: ProviderSetup, opts: AzureOptions) {
    const c = setup.call;
    const base = { apiKey: c.secret, timeout: c.timeoutMs, maxRetries: c.maxRetries, fetch: c.fetch };
    const endpoint = setup.baseUrl.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '');
    const client =
      opts.apiVersion === 'v1'
        ? // The v1 route takes the deployment as `model`; the key goes in api-key, never as a bearer token.
          new OpenAI({ ...base, baseURL: joinUrl(endpoint, 'openai/v1'), defaultHeaders: { 'api-key': c.secret, authorization: null } })
        : new AzureOpenAI({ ...base, endpoint, apiVersion: opts.apiVersion, deployment: opts.deployment });
    const models = opts.deployment ? setup.models.map((m) => ({ ...m, model: opts.deployment })) : setup.models;
    super({ ...setup, baseUrl: endpoint, models }, client, AZURE_TRAITS);
  }
}

/** The openai client's errors as domain errors naming the provider. */
export function mapOpenAIError(who: ProviderIdentity, err: unknown, secret: string): DomainError {
  if (err instanceof DomainError) return err;
  if (err instanceof APIConnectionTimeoutError) return providerTransportError(who, err, true);
  if (err instanceof APIError && err.status !== undefined) {
    const body = err.error as { message?: unknown } | undefined;
    const said = typeof body?.message === 'string' ? body.message : err.message;
    return providerHttpError(who, err.status, cleanProviderMessage(said, secret), { retryAfterSeconds: retryAfterSeconds(err.headers?.get('retry-after')) });
  }
  return providerTransportError(who, (err as { cause?: unknown })?.cause ?? err, false);
}
