/**
 * The seam between the core pipeline and the backends that compute vectors.
 * Backends know nothing of HTTP, tenants or the cache: they turn inputs into full-dimension
 * float32 vectors and say how many tokens each input cost.
 */

/** One input as the caller sent it: text, or token ids in the model's own vocabulary. */
export type EmbedInput = { kind: 'text'; text: string } | { kind: 'tokens'; ids: number[] };

/** How a shorter `dimensions` vector is derived from the stored full vector. */
export type DimensionsMethod =
  /** nomic v1.5 (Matryoshka): layer norm without affine, truncate, L2-normalise. */
  | 'layernorm-truncate'
  /** OpenAI text-embedding-3: truncate, L2-normalise. */
  | 'truncate'
  /** The provider reduces the vector itself (its `output_dimension`): each `dimensions` is its own cache scope. */
  | 'native'
  /** The model does not support `dimensions`. */
  | 'none';

/** nomic's task prefixes, selected by `task_type` or a model alias. */
export const TASK_TYPES = ['search_document', 'search_query', 'clustering', 'classification'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** A model as the core sees it, whichever backend serves it. */
export interface ModelSpec {
  /** The id clients send as `model` (an alias has its own spec). */
  id: string;
  /** The id under which vectors are cached: aliases of one model share it. */
  cacheModel: string;
  /** Changes when the vectors would change (weights, pipeline): part of the cache key. */
  version: string;
  /** Full output dimension, or null when only the first response tells (upstream models). */
  dimensions: number | null;
  /** Per-input token limit. */
  maxInputTokens: number;
  dimensionsMethod: DimensionsMethod;
  /** Task prefix applied by this model id (aliases bind one); null where prefixes do not apply. */
  defaultTaskType: TaskType | null;
  /**
   * The backend maps `task_type` to its own input type (Cohere, Voyage, Gemini) even when the
   * model has no default one: the effective task type is then part of the cache scope.
   */
  acceptsTaskType?: boolean;
  /** For /v1/models. */
  ownedBy: string;
  created: number;
}

export interface EmbedOptions {
  /** nomic task type; ignored by backends without task prefixes. */
  taskType?: TaskType | null;
  /** Asked-for `dimensions`, passed only to models whose dimensionsMethod is `native`. */
  dimensions?: number;
  // No cancellation signal, on purpose: a miss is shared by every request waiting on the same
  // key (singleflight), so work may only stop once all of them have gone, and the computed
  // vectors are stored for the next caller anyway. Backends bound their work with their own
  // timeouts (the batcher's, the upstream's) instead; a client that leaves costs at most that.
}

export interface EmbedResult {
  /** One full-dimension vector per input, in input order. */
  vectors: Float32Array[];
  /** Tokens counted per input, in input order. */
  tokens: number[];
  /** The provider reported no token count: `tokens` are estimated from the text (about 4 bytes a token). */
  tokensEstimated?: boolean;
}

export interface Embedder {
  /** Short name for logs and metrics, e.g. `onnx` or `upstream`. */
  readonly name: string;
  /** How errors name where vectors came from (an upstream's host); `name` when absent. */
  readonly provider?: string;
  /** The models this backend serves. */
  models(): ModelSpec[];
  /** Computes vectors for `inputs` with the model `model` (a ModelSpec id). */
  embed(model: string, inputs: EmbedInput[], options?: EmbedOptions): Promise<EmbedResult>;
  /** True when the backend can serve (model loaded, upstream configured). */
  ready(): Promise<boolean>;
  /** Queue counters per model, for backends that queue (read at /metrics scrape time). */
  stats?(): Record<string, { queueDepth: number }>;
  close(): Promise<void>;
}
