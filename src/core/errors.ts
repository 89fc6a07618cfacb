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
  cause?: unknown;
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

/**
 * (Being retired: HTTP-shaped errors move to http/errors.ts.)
 * Errors are values with an OpenAI shape: `{error:{message,type,param,code}}` plus a status.
 * Everything below HTTP throws ApiError; the HTTP layer only serialises it.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  static invalid(message: string, param: string | null = null, code: string | null = null): ApiError {
    return new ApiError(400, 'invalid_request_error', message, param, code);
  }

  static modelNotFound(model: string): ApiError {
    return new ApiError(
      404,
      'invalid_request_error',
      `The model \`${model}\` does not exist or you do not have access to it.`,
      'model',
      'model_not_found',
    );
  }

  static unauthorized(message: string): ApiError {
    return new ApiError(401, 'invalid_request_error', message, null, 'invalid_api_key');
  }

  static unavailable(message: string, retryAfterSeconds?: number): ApiError {
    const headers: Record<string, string> = retryAfterSeconds ? { 'retry-after': String(retryAfterSeconds) } : {};
    return new ApiError(503, 'service_unavailable', message, null, 'service_unavailable', headers);
  }

  static internal(message: string): ApiError {
    return new ApiError(500, 'server_error', message, null, 'internal_error');
  }
}
