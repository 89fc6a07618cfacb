import OpenAI, { APIConnectionTimeoutError, APIError, AzureOpenAI } from 'openai';
import { z } from 'zod';
import { base64ToVector } from '../core/codec.js';
import { InvalidVectorsError } from '../core/vector-check.js';
import { DomainError } from '../core/errors.js';
import type { EmbedInput } from '../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, type BatchOptions, type BatchResult, type KindTraits, type ProviderSetup, type ResolvedProviderModel } from './providers/base.js';
import { cleanProviderMessage, invalidResponse, providerHttpError, providerLabel, providerTransportError, retryAfterSeconds, type ProviderIdentity } from './providers/errors.js';

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
    // A keyless upstream (a local TEI, Ollama, the fake) is fine: the SDK refuses an empty key at
    // construction ("Missing credentials"), so it gets a placeholder the server ignores.
    this.client = client ?? new OpenAI({ baseURL: setup.baseUrl, apiKey: c.secret || 'no-key-configured', timeout: c.timeoutMs, maxRetries: c.maxRetries, fetch: c.fetch });
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const allText = inputs.every((i) => i.kind === 'text');
    const input = allText ? inputs.map((i) => (i as { text: string }).text) : inputs.map((i) => (i.kind === 'tokens' ? i.ids : i.text));
    let raw: string;
    try {
      // The raw body, parsed and checked here: a provider's garbage is its fault (a 502), never our 500.
      const response = await this.client.embeddings
        // Mixed text and token inputs cannot be sent together; the HTTP layer never mixes them.
        .create({ model: m.model, input: input as string[] | number[][], encoding_format: 'base64', ...(o.dimensions ? { dimensions: o.dimensions } : {}) })
        .asResponse();
      raw = await response.text();
    } catch (err) {
      throw mapOpenAIError(this.setup.call.identity, err, this.setup.call.secret);
    }
    const { vectors, promptTokens } = parseEmbeddingsBody(raw, inputs.length, providerLabel(this.setup.call.identity));
    return { vectors, totalTokens: promptTokens };
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

const quoted = (message: string) => (message.length > 300 ? `${message.slice(0, 300)}...` : message);

const finiteOrNot = z.custom<number>((v) => typeof v === 'number', 'expected a number');
/** OpenAI's /v1/embeddings answer, as far as we rely on it. Values may be non-finite here: the core check names that. */
const EmbeddingsBody = z.object({
  data: z.array(
    z.object({
      index: z.number().int().min(0),
      // base64 float32 (what we ask for) or floats (servers that ignore encoding_format)
      embedding: z.union([z.string(), z.array(finiteOrNot)]),
    }),
  ),
  usage: z.object({ prompt_tokens: z.number().int().min(0).optional() }).nullish(),
});
const ErrorBody = z.object({ error: z.union([z.object({ message: z.string() }).loose(), z.string()]) });

/**
 * An upstream's 200 body -> one Float32Array per input, in input order; anything else throws
 * `upstream_invalid_response` naming the provider and the fault (nothing of it gets cached).
 * Counts, dimensions and values are checked again, for every backend, in core/vector-check.ts.
 */
export function parseEmbeddingsBody(raw: string, expected: number, provider: string): { vectors: Float32Array[]; promptTokens: number } {
  const bad = (detail: string) => new InvalidVectorsError('malformed', detail, provider);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw bad(`the body is not JSON (${JSON.stringify(raw.slice(0, 40))}${raw.length > 40 ? '...' : ''})`);
  }
  const asError = ErrorBody.safeParse(json);
  if (asError.success && !(json as { data?: unknown }).data) {
    const e = asError.data.error;
    throw bad(`it answered 200 with an error: ${quoted(typeof e === 'string' ? e : e.message)}`);
  }
  const parsed = EmbeddingsBody.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`${issue.path.length > 0 ? issue.path.join('.') : 'the body'}: ${issue.message}`);
  }
  const { data, usage } = parsed.data;
  if (data.length !== expected) throw new InvalidVectorsError('count', `${data.length} embeddings for ${expected} inputs`, provider);
  const vectors = new Array<Float32Array>(expected);
  for (const d of data) {
    if (d.index >= expected) throw bad(`index ${d.index} out of range for ${expected} inputs`);
    if (vectors[d.index]) throw bad(`index ${d.index} appears twice`);
    const e = d.embedding;
    if (typeof e === 'string') {
      // Node's decoder skips characters it does not know: a round trip proves the text was exact
      // base64 (native, ~µs for 8 KB, where a regex over the string cost ~40 µs per vector).
      const bytes = Buffer.from(e, 'base64');
      if (e.length % 4 !== 0 || bytes.toString('base64') !== e) throw bad(`embedding ${d.index} is not valid base64 (${e.length} characters)`);
      if (bytes.length % 4 !== 0) throw bad(`embedding ${d.index} has ${bytes.length} bytes, not whole float32 values`);
      vectors[d.index] = base64ToVector(e);
    } else {
      vectors[d.index] = Float32Array.from(e);
    }
  }
  // Duplicates were refused and the count matches: every index 0..n-1 is present.
  return { vectors, promptTokens: usage?.prompt_tokens ?? 0 };
}

