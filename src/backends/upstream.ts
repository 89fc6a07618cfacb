import OpenAI, { APIConnectionTimeoutError, APIError } from 'openai';
import { base64ToVector } from '../core/codec.js';
import { DomainError, type DomainErrorDetails } from '../core/errors.js';
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
  /** How errors name this provider (never its key). Default: the base URL's host. */
  provider?: string;
  /** Whose key this is: errors tell a tenant to fix its own key, or point at the operator. Default 'operator'. */
  owner?: 'tenant' | 'operator';
  /** ready() turns false after this many consecutive failed calls (unreachable, timeout, key refused). Default 3. */
  unhealthyAfter?: number;
  /** ...when the last of them is at most this old; older failures are forgotten. Default 60 000 ms. */
  unhealthyWindowMs?: number;
  now?: () => number;
}

/** Failures that say the provider itself is unwell or misconfigured (not the caller's input). */
const HEALTH_FAILURES = new Set(['upstream_unreachable', 'upstream_timeout', 'upstream_refused']);

/**
 * Any OpenAI-compatible /v1/embeddings, through the official client. Asks for base64 so the
 * float32 bytes arrive exactly as the provider produced them.
 */
export class UpstreamEmbedder implements Embedder {
  readonly name = 'upstream';
  private readonly client: OpenAI;
  private readonly specs: ModelSpec[];
  private readonly who: Who;
  /** Consecutive failed calls and when the last one ended: what ready() reports on. */
  private failures = 0;
  private lastFailureAt = 0;

  constructor(private readonly opts: UpstreamOptions) {
    // A keyless upstream (a local TEI, Ollama, the fake) is fine: the SDK refuses an empty key
    // at construction ("Missing credentials"), so it gets a placeholder the server ignores.
    this.client = new OpenAI({ baseURL: opts.baseUrl, apiKey: opts.apiKey || 'no-key-configured', timeout: opts.timeoutMs, maxRetries: opts.maxRetries, fetch: opts.fetch ?? leanFetch() });
    // The same provider host gives the same vectors, whoever's key asked: rows can be shared.
    const host = new URL(opts.baseUrl).host;
    const version = opts.version ?? `api:${host}`;
    this.who = { provider: opts.provider ?? host, owner: opts.owner ?? 'operator' };
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

  async embed(model: string, inputs: EmbedInput[], _options: EmbedOptions = {}): Promise<EmbedResult> {
    const chunks: EmbedInput[][] = [];
    for (let i = 0; i < inputs.length; i += this.opts.maxBatch) chunks.push(inputs.slice(i, i + this.opts.maxBatch));
    const results: EmbedResult[] = new Array(chunks.length);
    const concurrency = this.opts.concurrency ?? 4;
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const i = next++;
        results[i] = await this.call(model, chunks[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker));
    return { vectors: results.flatMap((r) => r.vectors), tokens: results.flatMap((r) => r.tokens) };
  }

  private async call(model: string, inputs: EmbedInput[]): Promise<EmbedResult> {
    const allText = inputs.every((i) => i.kind === 'text');
    const input = allText
      ? inputs.map((i) => (i as { text: string }).text)
      : inputs.map((i) => (i.kind === 'tokens' ? i.ids : i.text));
    let res;
    try {
      res = await this.client.embeddings.create(
        // Mixed text and token inputs cannot be sent together; the HTTP layer never mixes them.
        { model, input: input as string[] | number[][], encoding_format: 'base64' },
      );
    } catch (err) {
      const mapped = mapUpstreamError(err, this.who);
      if (HEALTH_FAILURES.has(mapped.kind)) {
        this.failures++;
        this.lastFailureAt = (this.opts.now ?? Date.now)();
      }
      throw mapped;
    }
    this.failures = 0;
    if (!Array.isArray(res.data) || res.data.length !== inputs.length) {
      throw new DomainError('upstream_invalid_response', `The provider ${this.who.provider} returned ${res.data?.length ?? 0} embeddings for ${inputs.length} inputs.`, {
        ...this.who,
        code: 'upstream_error',
      });
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

  /**
   * False after `unhealthyAfter` consecutive failed calls, the last within `unhealthyWindowMs`;
   * true again after one success (or once the window has passed, so a quiet server retries).
   */
  async ready(): Promise<boolean> {
    const recent = (this.opts.now ?? Date.now)() - this.lastFailureAt <= (this.opts.unhealthyWindowMs ?? 60_000);
    return !(recent && this.failures >= (this.opts.unhealthyAfter ?? 3));
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

interface Who {
  provider: string;
  owner: 'tenant' | 'operator';
}

/** An upstream's own message, shortened: it may help the caller (a 400's reason), but is not ours to relay whole. */
const quoted = (message: string) => (message.length > 300 ? `${message.slice(0, 300)}...` : message);

/** Seconds from an upstream Retry-After (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterOf(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.max(1, Math.ceil(seconds));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - now) / 1000));
}

/** The SDK's failure -> a domain error that keeps its meaning (429 stays a rate limit, a timeout a timeout). */
export function mapUpstreamError(err: unknown, who: Who): DomainError {
  if (err instanceof DomainError) return err;
  const base: DomainErrorDetails = { ...who, cause: err };
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof SsrfError) {
    return new DomainError('upstream_refused', `The URL of provider ${who.provider} was refused: ${cause.message}`, { ...base, code: 'provider_url_blocked' });
  }
  if (err instanceof APIConnectionTimeoutError) {
    return new DomainError('upstream_timeout', `The provider ${who.provider} did not answer in time. Try again later.`, { ...base, code: 'upstream_timeout' });
  }
  if (!(err instanceof APIError)) {
    return new DomainError('upstream_unreachable', `The call to provider ${who.provider} failed. Try again later.`, { ...base, code: 'upstream_error' });
  }
  const status = err.status;
  const d: DomainErrorDetails = { ...base, upstreamStatus: status };
  if (status === undefined) {
    return new DomainError('upstream_unreachable', `Could not reach the provider ${who.provider}. Try again later.`, { ...d, code: 'upstream_unreachable' });
  }
  // The provider found the request itself wrong: that is the caller's to fix, so a 400 naming what.
  if (status === 400 || status === 422) {
    return new DomainError('invalid_input', `The provider ${who.provider} refused the request: ${quoted(err.message)}`, { ...d, param: err.param ?? null, code: err.code ?? null });
  }
  if (status === 404) {
    return new DomainError('model_not_found', `The provider ${who.provider} does not know this model: ${quoted(err.message)}`, { ...d, param: 'model', code: 'model_not_found' });
  }
  if (status === 429) {
    return new DomainError('upstream_rate_limited', `The provider ${who.provider} is rate-limiting requests: ${quoted(err.message)}`, {
      ...d,
      code: err.code ?? 'rate_limit_exceeded',
      retryAfterSeconds: retryAfterOf(err.headers?.get('retry-after')),
    });
  }
  // A refused key is not the caller's fault (unless it is the caller's own key): never a 401 to them.
  if (status === 401 || status === 403) {
    const message =
      who.owner === 'tenant'
        ? `Your provider ${who.provider} rejected the API key you gave it (HTTP ${status}). Add the provider again with a valid key.`
        : `The upstream provider ${who.provider} rejected the configured API key (HTTP ${status}). Ask the operator to check UPSTREAM_API_KEY.`;
    return new DomainError('upstream_refused', message, { ...d, code: 'upstream_auth_failed' });
  }
  if (status >= 500) {
    return new DomainError('upstream_unreachable', `The provider ${who.provider} failed (HTTP ${status}). Try again later.`, { ...d, code: 'upstream_error' });
  }
  return new DomainError('upstream_refused', `The provider ${who.provider} refused the request (HTTP ${status}).`, { ...d, code: 'upstream_error' });
}
