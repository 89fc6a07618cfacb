import { z } from 'zod';
import { base64ToVector } from '../core/codec.js';
import { InvalidVectorsError } from '../core/vector-check.js';
import type { EmbedInput } from '../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, type BatchOptions, type BatchResult, type KindTraits, type ProviderSetup, type ResolvedProviderModel } from './providers/base.js';
import { providerLabel } from './providers/errors.js';
import { asString, pick, postForText, type ErrorDialect } from './providers/http.js';

export { splitTokens } from './providers/base.js';

const OPENAI_TRAITS: KindTraits = { kind: 'openai', maxBatch: 2048, tokenInputs: true, inputTypes: false, defaultTaskType: null };

/** OpenAI's errors are `{"error": {"message": ...}}`; some compatible servers send `{"error": "..."}` or `{"message": ...}`. */
export const openaiDialect: ErrorDialect = {
  message: (body) => asString(pick(body, 'error', 'message')) ?? asString(pick(body, 'error')) ?? asString(pick(body, 'message')),
};

/** Where one model's calls go and what they carry besides the body. */
interface Route {
  url(model: string): string;
  headers: Record<string, string>;
}

/**
 * Any OpenAI-compatible /v1/embeddings (OpenAI, Mistral, Together, Jina, vLLM, Infinity, TEI,
 * Ollama's /v1). Asks for base64 so the float32 bytes arrive exactly as the provider produced
 * them. A lean client over the provider's fetch (providers/http.ts: retries, deadline, error
 * mapping): the openai SDK's request building was most of a miss's CPU.
 */
export class UpstreamEmbedder extends ProviderEmbedder {
  private readonly route: Route;

  constructor(setup: ProviderSetup, route?: Route, traits: KindTraits = OPENAI_TRAITS) {
    // The same provider host gives the same vectors, whoever's key asked: rows can be shared.
    // (`api:<host>` is the scope rows cached before provider kinds existed carry: kept.)
    super(setup, traits, traits.kind === 'openai' ? `api:${new URL(setup.baseUrl).host}` : endpointScope(traits.kind, setup.baseUrl));
    const url = joinUrl(setup.baseUrl, 'embeddings');
    // A keyless upstream (a local TEI, Ollama, the fake) gets no Authorization header at all.
    this.route = route ?? { url: () => url, headers: setup.call.secret ? { authorization: `Bearer ${setup.call.secret}` } : {} };
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const allText = inputs.every((i) => i.kind === 'text');
    // Mixed text and token inputs cannot be sent together; the HTTP layer never mixes them.
    const input = allText ? inputs.map((i) => (i as { text: string }).text) : inputs.map((i) => (i.kind === 'tokens' ? i.ids : i.text));
    const body = { model: m.model, input, encoding_format: 'base64', ...(o.dimensions ? { dimensions: o.dimensions } : {}) };
    // The raw body, parsed and checked here: a provider's garbage is its fault (a 502), never our 500.
    const raw = await postForText(this.setup.call, this.route.url(m.model), this.route.headers, body, openaiDialect);
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
 * the key in the `api-key` header (never as a bearer token). Same wire format as OpenAI's.
 */
export class AzureOpenAIEmbedder extends UpstreamEmbedder {
  constructor(setup: ProviderSetup, opts: AzureOptions) {
    const endpoint = setup.baseUrl.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '');
    const headers = { 'api-key': setup.call.secret };
    const v1 = joinUrl(endpoint, 'openai/v1/embeddings');
    const version = encodeURIComponent(opts.apiVersion);
    const route: Route =
      opts.apiVersion === 'v1'
        ? // The v1 route takes the deployment as `model`.
          { url: () => v1, headers }
        : { url: (deployment) => joinUrl(endpoint, `openai/deployments/${encodeURIComponent(deployment)}/embeddings?api-version=${version}`), headers };
    const models = opts.deployment ? setup.models.map((m) => ({ ...m, model: opts.deployment })) : setup.models;
    super({ ...setup, baseUrl: endpoint, models }, route, AZURE_TRAITS);
  }
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
  // Only a body without data can be an error: a failed zod parse builds its issues (a quarter of this function's ~64 µs per 1536-d answer).
  if (!(json as { data?: unknown } | null)?.data) {
    const asError = ErrorBody.safeParse(json);
    if (asError.success) {
      const e = asError.data.error;
      throw bad(`it answered 200 with an error: ${quoted(typeof e === 'string' ? e : e.message)}`);
    }
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

