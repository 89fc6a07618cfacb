import OpenAI, { APIConnectionTimeoutError, APIError } from 'openai';
import { base64ToVector } from '../core/codec.js';
import { ApiError } from '../core/errors.js';
import type { EmbedInput, EmbedOptions, EmbedResult, Embedder, ModelSpec } from '../core/types.js';
import { SsrfError } from '../security/ssrf.js';
import { leanFetch } from './lean-fetch.js';
import { KNOWN_UPSTREAM_MODELS } from './upstream-models.js';

export interface UpstreamOptions {
  baseUrl: string;
  apiKey: string;
  models: string[];
  /** Most inputs per call; bigger requests are split into several calls. */
  maxBatch: number;
  timeoutMs: number;
  /** Retries with exponential backoff on 408/409/429/5xx and connection errors (the SDK's policy). */
  maxRetries: number;
  /** Calls in flight at once for one split request. */
  concurrency?: number;
  /** Part of the cache key: vectors from another provider must not mix. Default `api:<host>`. */
  version?: string;
  /** For /v1/models. */
  ownedBy?: string;
  /** A fetch that guards where connections go (tenant providers); leanFetch() by default. */
  fetch?: typeof fetch;
}

/**
 * Any OpenAI-compatible /v1/embeddings, through the official client. Asks for base64 so the
 * float32 bytes arrive exactly as the provider produced them.
 */
export class UpstreamEmbedder implements Embedder {
  readonly name = 'upstream';
  private readonly client: OpenAI;
  private readonly specs: ModelSpec[];

  constructor(private readonly opts: UpstreamOptions) {
    this.client = new OpenAI({ baseURL: opts.baseUrl, apiKey: opts.apiKey, timeout: opts.timeoutMs, maxRetries: opts.maxRetries, fetch: opts.fetch ?? leanFetch() });
    // The same provider host gives the same vectors, whoever's key asked: rows can be shared.
    const version = opts.version ?? `api:${new URL(opts.baseUrl).host}`;
    const created = Math.floor(Date.now() / 1000);
    this.specs = opts.models.map((id) => {
      const known = KNOWN_UPSTREAM_MODELS[id];
      return {
        id,
        cacheModel: id,
        version,
        dimensions: known?.dimensions ?? null,
        maxInputTokens: known?.maxInputTokens ?? 8191,
        dimensionsMethod: known?.dimensionsMethod ?? 'none',
        defaultTaskType: null,
        ownedBy: opts.ownedBy ?? 'upstream',
        created,
      };
    });
  }

  models(): ModelSpec[] {
    return this.specs;
  }

  async embed(model: string, inputs: EmbedInput[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const chunks: EmbedInput[][] = [];
    for (let i = 0; i < inputs.length; i += this.opts.maxBatch) chunks.push(inputs.slice(i, i + this.opts.maxBatch));
    const results: EmbedResult[] = new Array(chunks.length);
    const concurrency = this.opts.concurrency ?? 4;
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const i = next++;
        results[i] = await this.call(model, chunks[i], options.signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker));
    return { vectors: results.flatMap((r) => r.vectors), tokens: results.flatMap((r) => r.tokens) };
  }

  private async call(model: string, inputs: EmbedInput[], signal?: AbortSignal): Promise<EmbedResult> {
    const allText = inputs.every((i) => i.kind === 'text');
    const input = allText
      ? inputs.map((i) => (i as { text: string }).text)
      : inputs.map((i) => (i.kind === 'tokens' ? i.ids : i.text));
    let res;
    try {
      res = await this.client.embeddings.create(
        // Mixed text and token inputs cannot be sent together; the HTTP layer never mixes them.
        { model, input: input as string[] | number[][], encoding_format: 'base64' },
        { signal },
      );
    } catch (err) {
      throw mapUpstreamError(err);
    }
    if (!Array.isArray(res.data) || res.data.length !== inputs.length) {
      throw new ApiError(502, 'server_error', `Upstream returned ${res.data?.length ?? 0} embeddings for ${inputs.length} inputs.`, null, 'upstream_error');
    }
    const vectors = new Array<Float32Array>(inputs.length);
    for (const d of res.data) {
      const e = d.embedding as unknown;
      // Some OpenAI-compatible servers ignore encoding_format and send floats.
      vectors[d.index] = typeof e === 'string' ? base64ToVector(e) : Float32Array.from(e as number[]);
    }
    const tokens = splitTokens(res.usage?.prompt_tokens ?? 0, inputs);
    return { vectors, tokens };
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}

/**
 * Upstream usage is per request; a cache row needs per-input tokens. Split the total in
 * proportion to input length (exact for a single input), so the sum is the provider's total.
 */
export function splitTokens(total: number, inputs: EmbedInput[]): number[] {
  const weights = inputs.map((i) => Math.max(1, i.kind === 'text' ? i.text.length : i.ids.length));
  const sum = weights.reduce((a, b) => a + b, 0);
  const out = weights.map((w) => Math.floor((total * w) / sum));
  let rest = total - out.reduce((a, b) => a + b, 0);
  for (let i = 0; rest > 0; i = (i + 1) % out.length, rest--) out[i]++;
  return out;
}

function mapUpstreamError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof SsrfError) {
    return new ApiError(502, 'server_error', `The provider URL was refused: ${cause.message}`, null, 'provider_url_blocked');
  }
  if (err instanceof APIConnectionTimeoutError) {
    return new ApiError(504, 'server_error', 'The upstream embeddings provider timed out. Try again later.', null, 'upstream_timeout');
  }
  if (err instanceof APIError) {
    const status = err.status;
    const message = `Upstream provider: ${err.message}`;
    if (status === undefined) return new ApiError(502, 'server_error', `Could not reach the upstream embeddings provider: ${err.message}`, null, 'upstream_unreachable');
    if (status === 400 || status === 422) return new ApiError(400, 'invalid_request_error', message, err.param ?? null, err.code ?? null);
    if (status === 404) return new ApiError(404, 'invalid_request_error', message, 'model', 'model_not_found');
    if (status === 429) {
      const retry = err.headers?.get('retry-after');
      return new ApiError(429, 'rate_limit_error', message, null, err.code ?? 'rate_limit_exceeded', retry ? { 'retry-after': retry } : {});
    }
    // The operator's key being refused is not the caller's fault: not a 401 to them.
    if (status === 401 || status === 403) return new ApiError(502, 'server_error', 'The upstream provider rejected the configured API key. Ask the operator to check UPSTREAM_API_KEY.', null, 'upstream_auth_failed');
    return new ApiError(502, 'server_error', message, null, 'upstream_error');
  }
  return new ApiError(502, 'server_error', `Upstream call failed: ${(err as Error)?.message ?? String(err)}`, null, 'upstream_error');
}
