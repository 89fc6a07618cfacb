/**
 * Domain errors: what went wrong, in the domain's words. Backends, the store, the batcher,
 * worker RPC and core throw these; none of them knows an HTTP status. `http/errors.ts` alone
 * maps a kind to OpenAI's status, type and code (the way TEI goes BackendError ->
 * TextEmbeddingsError -> ErrorResponse -> status in one function).
 */
export const ERROR_KINDS = [
  /** The caller's input is wrong (bad field, too many inputs, too long, bad dimensions). */
  'invalid_input',
  /** A named thing (tenant, key, provider, tier) does not exist. */
  'not_found',
  /** The model is unknown to this caller. */
  'model_not_found',
  /** No or a wrong credential. */
  'unauthenticated',
  /** A valid credential that may not do this (tier, admin disabled). */
  'forbidden',
  /** The thing exists already. */
  'conflict',
  /** A limit of ours refused (rate, quota). */
  'rate_limited',
  /** Queues are full: try again shortly. */
  'overloaded',
  /** Our own deadline passed while computing. */
  'timeout',
  /** The process is closing. */
  'shutting_down',
  /** A dependency of ours (database, model worker) is not available. */
  'unavailable',
  /** The upstream provider refused our request or credential (4xx other than 429). */
  'upstream_refused',
  /** The upstream provider rate-limited us. */
  'upstream_rate_limited',
  /** The upstream answered, but not with valid vectors. */
  'upstream_invalid_response',
  /** The upstream could not be reached (DNS, connect, 5xx after retries). */
  'upstream_unreachable',
  /** The upstream did not answer in time. */
  'upstream_timeout',
  /** A bug: something that should not happen. */
  'internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface DomainErrorDetails {
  /** The request field at fault, as OpenAI names it (`input`, `model`, `dimensions`). */
  param?: string | null;
  /** A machine-readable code for the client (`model_not_found`, `tenant_exists`). */
  code?: string | null;
  /** Seconds after which a retry may succeed. */
  retryAfterSeconds?: number;
  /** The upstream provider involved, by name (never its key). */
  provider?: string;
  /** The status the upstream answered with. */
  upstreamStatus?: number;
  /** Whose provider it is: the tenant's own key (BYOK) or the operator's upstream. */
  owner?: 'tenant' | 'operator';
  /** For `rate_limited`: the windows' state at refusal, reported as x-ratelimit-* headers. */
  limits?: LimitWindows;
  cause?: unknown;
}

/** One rate-limit window's state (limit, what is left, ms until it resets). */
export interface LimitWindow {
  limit: number;
  remaining: number;
  resetMs: number;
}

/** The windows a tier limits: requests (per day) and tokens (per minute); null when unlimited. */
export interface LimitWindows {
  requests: LimitWindow | null;
  tokens: LimitWindow | null;
}

export class DomainError extends Error {
  readonly param: string | null;
  readonly code: string | null;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: DomainErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DomainError';
    this.param = details.param ?? null;
    this.code = details.code ?? null;
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}

/** How many model ids a 404 lists before "and N more". */
const LISTED_MODELS = 20;

/**
 * A model the caller may not see, in OpenAI's words (unknown and not-yours read alike). Given
 * the models the caller may use, it lists them; where that list is empty it says how a server
 * gets a model, since then no model name can work.
 */
export function modelNotFound(model: string, available?: readonly string[]): DomainError {
  let hint = '';
  if (available && available.length > 0) {
    const shown = available.slice(0, LISTED_MODELS).join(', ');
    hint = ` Models you can use: ${shown}${available.length > LISTED_MODELS ? ` and ${available.length - LISTED_MODELS} more (GET /v1/models lists them)` : ''}.`;
  } else if (available) {
    hint =
      ' No model is configured for you on this server: the operator sets UPSTREAM_BASE_URL (and UPSTREAM_API_KEY) for an OpenAI-compatible upstream, ' +
      'or MODEL_DIR for a local model directory, or runs `embedding-cache models pull nomic-ai/nomic-embed-text-v1.5`, then restarts the server.';
  }
  return new DomainError('model_not_found', `The model \`${model}\` does not exist or you do not have access to it.${hint}`, { param: 'model', code: 'model_not_found' });
}
