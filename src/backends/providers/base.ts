import { DomainError } from '../../core/errors.js';
import { TASK_TYPES, type DimensionsMethod, type EmbedInput, type EmbedOptions, type EmbedResult, type Embedder, type ModelSpec, type TaskType } from '../../core/types.js';
import { checkVectors, InvalidVectorsError } from '../../core/vector-check.js';
import { providerLabel, type ProviderKind } from './errors.js';
import type { CallContext } from './http.js';
import { KNOWN_MODELS } from './known-models.js';

/** One model a provider serves: the public id clients send, and the provider's own name for it. */
export interface ProviderModelEntry {
  /** What clients send as `model`. */
  id: string;
  /** The provider's model (Azure: the deployment). Defaults to `id`. */
  model?: string;
  dimensions?: number;
  maxInputTokens?: number;
  dimensionsMethod?: DimensionsMethod;
  /** The provider's model version, when the operator knows it: part of the cache scope. */
  version?: string;
}

/** What every kind shares: who it is, where it is, what it serves. */
export interface ProviderSetup {
  call: CallContext;
  baseUrl: string;
  models: ProviderModelEntry[];
  /** Most inputs per call (the kind's own limit when lower wins). */
  maxBatch?: number;
  /** Calls in flight at once for one split request. */
  concurrency?: number;
  /**
   * The endpoint's identity in the cache scope. Default: the kind, host and path (never the
   * key); two upstreams given the same value share rows (the operator says they are one model).
   */
  cacheScope?: string;
  /** For /v1/models. */
  ownedBy?: string;
}

/** What a kind's wire format can do. */
export interface KindTraits {
  kind: ProviderKind;
  /** The provider's own most inputs per call. */
  maxBatch: number;
  /** Token-id inputs (only OpenAI-compatible servers take them). */
  tokenInputs: boolean;
  /** `task_type` maps to the provider's input type. */
  inputTypes: boolean;
  /** The input type sent when the caller names none (Cohere requires one). */
  defaultTaskType: TaskType | null;
}

export interface ResolvedProviderModel {
  spec: ModelSpec;
  /** The provider's name for the model (Azure: the deployment). */
  model: string;
}

export interface BatchOptions {
  taskType: TaskType | null;
  /** Set only for `native` models, when the caller asked for fewer dimensions. */
  dimensions?: number;
}

export interface BatchResult {
  vectors: Float32Array[];
  /** The provider's token count for the call, when it reports one. */
  totalTokens?: number;
}

/**
 * An Embedder over a provider's HTTP API: splits a request to the provider's batch limit,
 * runs the calls (a few at a time) and reassembles them in input order. Kinds only say how
 * one call looks on the wire (`callBatch`).
 */
/** Failures that say the provider is not serving (not the caller's fault, not one bad answer). */
const HEALTH_FAILURES = new Set(['upstream_unreachable', 'upstream_timeout', 'upstream_refused']);

export abstract class ProviderEmbedder implements Embedder {
  readonly name: string;
  /** How errors and refused answers name this provider (never its key). */
  readonly provider: string;
  private readonly specs: ModelSpec[];
  private readonly byId = new Map<string, ResolvedProviderModel>();
  protected readonly maxBatch: number;
  /** Requests running now, so close() (after a reload swapped this backend out) lets them finish. */
  private running = 0;
  private idle: (() => void)[] = [];

  constructor(
    protected readonly setup: ProviderSetup,
    protected readonly traits: KindTraits,
    /** The endpoint's default identity in the cache scope. */
    defaultScope: string,
  ) {
    this.name = traits.kind === 'openai' ? 'upstream' : traits.kind;
    this.provider = providerLabel(setup.call.identity);
    this.maxBatch = Math.max(1, Math.min(setup.maxBatch ?? traits.maxBatch, traits.maxBatch));
    const scope = setup.cacheScope ?? defaultScope;
    const created = Math.floor(Date.now() / 1000);
    const specs: ModelSpec[] = [];
    for (const e of setup.models) {
      const model = e.model ?? e.id;
      const known = KNOWN_MODELS[traits.kind][model] ?? KNOWN_MODELS[traits.kind][e.id];
      const base: ModelSpec = {
        id: e.id,
        // Rows belong to the provider's model: public names of one model share them.
        cacheModel: model,
        version: e.version ? `${scope}:${e.version}` : scope,
        dimensions: e.dimensions ?? known?.dimensions ?? null,
        maxInputTokens: e.maxInputTokens ?? known?.maxInputTokens ?? 8191,
        dimensionsMethod: e.dimensionsMethod ?? known?.dimensionsMethod ?? 'none',
        defaultTaskType: traits.defaultTaskType,
        acceptsTaskType: traits.inputTypes || undefined,
        ownedBy: setup.ownedBy ?? 'upstream',
        created,
      };
      specs.push(base);
      this.byId.set(base.id, { spec: base, model });
      // `embed-v4.0-search_query` and kin, as for local models: a model name that binds an input type.
      if (traits.inputTypes) {
        for (const t of TASK_TYPES) {
          const alias: ModelSpec = { ...base, id: `${e.id}-${t}`, defaultTaskType: t };
          if (setup.models.some((o) => o.id === alias.id)) continue;
          specs.push(alias);
          this.byId.set(alias.id, { spec: alias, model });
        }
      }
    }
    this.specs = specs;
  }

  models(): ModelSpec[] {
    return this.specs;
  }

  protected abstract callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult>;

  /** Consecutive failed calls and when the last one ended: what ready() (and so /readyz) reports on. */
  private failures = 0;
  private lastFailureAt = 0;
  /** ready() turns false after this many consecutive failures within the window; a success or the window passing heals it. */
  unhealthyAfter = 3;
  unhealthyWindowMs = 60_000;
  now: () => number = Date.now;

  async embed(model: string, inputs: EmbedInput[], options: EmbedOptions = {}): Promise<EmbedResult> {
    this.running++;
    try {
      const r = await this.run(model, inputs, options);
      this.failures = 0;
      return r;
    } catch (err) {
      if (err instanceof DomainError && HEALTH_FAILURES.has(err.kind)) {
        this.failures++;
        this.lastFailureAt = this.now();
      }
      throw err;
    } finally {
      if (--this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async run(model: string, inputs: EmbedInput[], options: EmbedOptions): Promise<EmbedResult> {
    const m = this.byId.get(model);
    const who = this.setup.call.identity;
    if (!m) throw new DomainError('model_not_found', `The provider ${providerLabel(who)} does not serve \`${model}\`.`, { param: 'model', code: 'model_not_found', provider: who.name });
    if (!this.traits.tokenInputs && inputs.some((i) => i.kind === 'tokens')) {
      throw new DomainError('invalid_input', `The model \`${model}\` (provider ${providerLabel(who)}) takes text only: send strings, not token ids.`, { param: 'input' });
    }
    const o: BatchOptions = {
      taskType: this.traits.inputTypes ? (options.taskType ?? m.spec.defaultTaskType) : null,
      dimensions: m.spec.dimensionsMethod === 'native' ? options.dimensions : undefined,
    };
    const chunks: EmbedInput[][] = [];
    for (let i = 0; i < inputs.length; i += this.maxBatch) chunks.push(inputs.slice(i, i + this.maxBatch));
    const results: BatchResult[] = new Array(chunks.length);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const i = next++;
        results[i] = this.checked(await this.callBatch(m, chunks[i], o), chunks[i].length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.setup.concurrency ?? 4, chunks.length) }, worker));
    const dims = results[0].vectors[0].length;
    if (results.some((r) => r.vectors.some((v) => v.length !== dims))) throw new InvalidVectorsError('dimension', 'vectors of different lengths in one request', this.provider);
    const estimated = results.some((r) => r.totalTokens === undefined);
    const tokens = results.flatMap((r, i) => (r.totalTokens === undefined ? chunks[i].map(estimateTokens) : splitTokens(r.totalTokens, chunks[i])));
    return { vectors: results.flatMap((r) => r.vectors), tokens, ...(estimated ? { tokensEstimated: true } : {}) };
  }

  /** One vector per input, of one length, finite, bounded and non-zero: the core's check, per call, so a bad call fails fast with its fault named. */
  private checked(r: BatchResult, n: number): BatchResult {
    checkVectors(r.vectors, n, null, this.provider);
    return r;
  }

  async ready(): Promise<boolean> {
    return this.failures < this.unhealthyAfter || this.now() - this.lastFailureAt > this.unhealthyWindowMs;
  }

  /** Resolves when the requests running now have finished (the connection pool is shared, not closed). */
  async close(): Promise<void> {
    if (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}

/** The endpoint's identity without its secret: kind, host and path (query strings hold keys). */
export function endpointScope(kind: ProviderKind, baseUrl: string): string {
  const u = new URL(baseUrl);
  return `${kind}:${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** Joins a base URL and a path without doubling or losing a slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** About four bytes of UTF-8 a token: what providers that report no usage are charged as. */
export function estimateTokens(input: EmbedInput): number {
  return input.kind === 'tokens' ? input.ids.length : Math.max(1, Math.ceil(Buffer.byteLength(input.text) / 4));
}

/**
 * Provider usage is per call; a cache row needs per-input tokens. Split the total in
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

export const texts = (inputs: EmbedInput[]): string[] => inputs.map((i) => (i.kind === 'text' ? i.text : ''));
