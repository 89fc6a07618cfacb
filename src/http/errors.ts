import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, isDomainError, type DomainError } from '../core/errors.js';

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

// Interim, until main's domain-error mapping lands (issue 8): upstream kinds only.
function fromDomain(e: DomainError): ApiError {
  const retry = e.details.retryAfterSeconds;
  const headers: Record<string, string> = retry !== undefined ? { 'retry-after': String(retry) } : {};
  switch (e.kind) {
    case 'invalid_input':
      return new ApiError(400, 'invalid_request_error', e.message, e.param, e.code);
    case 'model_not_found':
      return new ApiError(404, 'invalid_request_error', e.message, 'model', 'model_not_found');
    case 'upstream_rate_limited':
      return new ApiError(429, 'rate_limit_error', e.message, null, e.code ?? 'rate_limit_exceeded', headers);
    case 'upstream_timeout':
      return new ApiError(504, 'server_error', e.message, null, 'upstream_timeout');
    case 'upstream_refused':
    case 'upstream_invalid_response':
    case 'upstream_unreachable':
      return new ApiError(502, 'server_error', e.message, null, e.code ?? e.kind);
    default:
      return ApiError.internal('The server had an error while processing your request. Sorry about that! Retry, and check the server log with the x-request-id.');
  }
}

function toApiError(err: FastifyError | ApiError | Error): ApiError {
  if (err instanceof ApiError) return err;
  if (isDomainError(err)) return fromDomain(err);
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
