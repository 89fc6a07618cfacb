import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, DomainError, type ErrorKind, type ErrorType } from '../core/errors.js';

/** Every error leaves as OpenAI's `{error:{message,type,param,code}}` with a fitting status. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError | Error, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ status: apiError.status, code: apiError.code, message: apiError.message }, 'request refused');
    void reply.code(apiError.status).headers(apiError.headers).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(404, 'invalid_request_error', `Invalid URL (${request.method} ${request.url}).`, null, 'not_found');
    void reply.code(404).send(e.toBody());
  });
}

/** Each domain error kind's HTTP status, OpenAI error type and default code: chosen here only. */
const KIND_TO_HTTP: Record<ErrorKind, { status: number; type: ErrorType; code: string | null }> = {
  invalid_input: { status: 400, type: 'invalid_request_error', code: null },
  not_found: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  model_not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  unauthenticated: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  forbidden: { status: 403, type: 'permission_error', code: 'forbidden' },
  conflict: { status: 409, type: 'invalid_request_error', code: 'conflict' },
  rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  overloaded: { status: 503, type: 'service_unavailable', code: 'overloaded' },
  timeout: { status: 503, type: 'service_unavailable', code: 'timeout' },
  shutting_down: { status: 503, type: 'service_unavailable', code: 'shutting_down' },
  unavailable: { status: 503, type: 'service_unavailable', code: 'service_unavailable' },
  upstream_refused: { status: 502, type: 'server_error', code: 'upstream_refused' },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', code: 'upstream_rate_limited' },
  upstream_invalid_response: { status: 502, type: 'server_error', code: 'upstream_invalid_response' },
  upstream_unreachable: { status: 502, type: 'server_error', code: 'upstream_unreachable' },
  upstream_timeout: { status: 504, type: 'server_error', code: 'upstream_timeout' },
  internal: { status: 500, type: 'server_error', code: 'internal_error' },
};

function fromDomain(err: DomainError): ApiError {
  const http = KIND_TO_HTTP[err.kind];
  const headers: Record<string, string> = {};
  if (err.details.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.details.retryAfterSeconds)));
  const message = http.status >= 500 && err.kind === 'internal' ? 'The server had an error while processing your request. Sorry about that! Retry, and check the server log with the x-request-id.' : err.message;
  return new ApiError(http.status, http.type, message, err.param, err.code ?? http.code, headers);
}

function toApiError(err: FastifyError | ApiError | Error): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) return fromDomain(err);
  const fe = err as FastifyError;
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ApiError.invalid(
        'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload.)',
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'invalid_request_error', 'The request body is too large. Send fewer or shorter inputs per request.', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'invalid_request_error', 'Unsupported Content-Type: send the body as application/json.', null, 'unsupported_media_type');
  }
  if (err instanceof SyntaxError || fe.statusCode === 400) {
    return ApiError.invalid(`We could not parse the JSON body of your request: ${err.message}`);
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.statusCode, 'invalid_request_error', err.message);
  }
  return ApiError.internal('The server had an error while processing your request. Sorry about that! Retry, and check the server log with the x-request-id.');
}
