/**
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
