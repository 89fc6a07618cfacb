import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { DomainError, type ErrorKind } from '../core/errors.js';
import { limitHeaders } from '../limits/rate-limit.js';

/**
 * The one place that chooses HTTP statuses. Everything below HTTP throws a DomainError; here a
 * kind becomes OpenAI's status, type and code, and every error leaves as OpenAI's
 * `{error:{message,type,param,code}}`, the framework's own (bad URL, 404, 413, 415, 431, the
 * 503 while closing) included.
 */

/** OpenAI's error types (a 401 is `invalid_request_error` with code `invalid_api_key`, as OpenAI answers). */
export type OpenAIErrorType = 'invalid_request_error' | 'permission_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable';

export interface ErrorBody {
  error: { message: string; type: OpenAIErrorType; param: string | null; code: string | null };
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
}

interface KindMapping {
  status: number;
  type: OpenAIErrorType;
  /** The code when the thrower gave none. */
  code: string | null;
}

/** kind -> status, type, default code. A Record: a new kind does not compile until it is mapped here. */
export const KIND_MAPPING: Readonly<Record<ErrorKind, KindMapping>> = {
  invalid_input: { status: 400, type: 'invalid_request_error', code: null },
  not_found: { status: 404, type: 'invalid_request_error', code: null },
  model_not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  unauthenticated: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  forbidden: { status: 403, type: 'permission_error', code: null },
  conflict: { status: 409, type: 'invalid_request_error', code: null },
  rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  overloaded: { status: 503, type: 'service_unavailable', code: 'overloaded' },
  // Our own queue did not get to the request in time: load shedding, so 503 + Retry-After, not 504.
  timeout: { status: 503, type: 'service_unavailable', code: 'timeout' },
  shutting_down: { status: 503, type: 'service_unavailable', code: 'shutting_down' },
  unavailable: { status: 503, type: 'service_unavailable', code: 'service_unavailable' },
  // The upstream refusing us (our key, our request) is not the caller's fault: a bad gateway.
  upstream_refused: { status: 502, type: 'server_error', code: 'upstream_refused' },
  // An upstream 429 stays a 429: the caller's client knows how to back off.
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  upstream_invalid_response: { status: 502, type: 'server_error', code: 'upstream_invalid_response' },
  upstream_unreachable: { status: 502, type: 'server_error', code: 'upstream_unreachable' },
  upstream_timeout: { status: 504, type: 'server_error', code: 'upstream_timeout' },
  internal: { status: 500, type: 'server_error', code: 'internal_error' },
};

/** What a client reads for a bug or a dependency's failure: never the dependency's own text. */
export const GENERIC_5XX =
  'The server had an error while processing your request. Sorry about that! Retry, and if it persists give the operator the x-request-id of this response.';

export function domainErrorResponse(err: DomainError): ErrorResponse {
  const m = KIND_MAPPING[err.kind];
  const d = err.details;
  const headers: Record<string, string> = d.limits ? limitHeaders(d.limits) : {};
  const retryAfter = d.retryAfterSeconds ?? (m.status === 503 ? 1 : undefined);
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)));
  // An internal error's message is for the log (it may quote a driver or the database).
  const message = err.kind === 'internal' ? GENERIC_5XX : err.message;
  return { status: m.status, headers, body: { error: { message, type: m.type, param: err.param, code: err.code ?? m.code } } };
}

/** An error that exists only at the HTTP level: its status is its meaning. Made by `HttpErrors`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: OpenAIErrorType,
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toResponse(): ErrorResponse {
    return { status: this.status, headers: {}, body: { error: { message: this.message, type: this.type, param: null, code: this.code } } };
  }
}

/** The catalogue of HTTP-only errors (Fastify's lib/errors.js style): the request never reached a route, or not as JSON. */
export const HttpErrors = {
  badJson: (detail?: string) =>
    new HttpError(
      400,
      'invalid_request_error',
      `We could not parse the JSON body of your request${detail ? `: ${detail}` : ''}. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)`,
      'invalid_json',
    ),
  badUrl: (path: string) => new HttpError(400, 'invalid_request_error', `Invalid URL (${path}): it is not valid percent-encoding.`, 'invalid_url'),
  paramTooLong: (path: string, max: number) =>
    new HttpError(414, 'invalid_request_error', `Invalid URL (${path.slice(0, 200)}): a path parameter is longer than ${max} characters.`, 'url_too_long'),
  routeNotFound: (method: string, url: string) => new HttpError(404, 'invalid_request_error', `Invalid URL (${method} ${url}).`, 'not_found'),
  bodyTooLarge: () => new HttpError(413, 'invalid_request_error', 'The request body is too large. Send fewer or shorter inputs per request.', 'request_too_large'),
  unsupportedMediaType: () =>
    new HttpError(415, 'invalid_request_error', 'Unsupported Content-Type: send the body as application/json.', 'unsupported_media_type'),
  headersTooLarge: () =>
    new HttpError(431, 'invalid_request_error', 'The request headers are too large. Send fewer or shorter headers.', 'request_header_fields_too_large'),
  requestTimeout: () => new HttpError(408, 'invalid_request_error', 'The request was not received in time. Send it again.', 'request_timeout'),
  malformedRequest: () => new HttpError(400, 'invalid_request_error', 'The HTTP request is malformed.', 'bad_request'),
  /** Any other 4xx Fastify or a plugin raises (a framework's message about the request, never a dependency's). */
  framework: (status: number, message: string) => new HttpError(status, 'invalid_request_error', message, 'bad_request'),
} as const;

/** Any thrown value -> the response a client gets. Unknown errors are 500 with a generic message. */
export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof DomainError) return domainErrorResponse(err);
  if (err instanceof HttpError) return err.toResponse();
  return httpErrorOf(err)?.toResponse() ?? domainErrorResponse(new DomainError('internal', 'unexpected error', { cause: err }));
}

function httpErrorOf(err: unknown): HttpError | null {
  // Fastify's JSON parser fails with a SyntaxError carrying statusCode 400.
  if (err instanceof SyntaxError && (err as FastifyError).statusCode === 400) return HttpErrors.badJson(err.message);
  if (!(err instanceof Error)) return null;
  const fe = err as FastifyError;
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return HttpErrors.badJson();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return HttpErrors.bodyTooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return HttpErrors.unsupportedMediaType();
  }
  // Fastify and its plugins mark the client's faults with a 4xx statusCode; anything else is ours (a 500).
  const status = fe.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? HttpErrors.framework(status, err.message) : null;
}

function send(reply: FastifyReply, r: ErrorResponse): void {
  void reply.code(r.status).headers(r.headers).send(r.body);
}

/**
 * A dependency's failure (an upstream, the store, a queue) is one warning line, its stack at
 * debug; only our own bugs (kind `internal`, or anything unexpected) log as errors with the
 * stack. Refusals (4xx) are in the access line with their code.
 */
function logged(request: FastifyRequest, err: unknown, r: ErrorResponse): ErrorResponse {
  request.errorCode = r.body.error.code ?? String(r.status);
  if (r.status >= 500 && err instanceof DomainError && err.kind !== 'internal') {
    const { provider, upstreamStatus } = err.details;
    request.log.warn({ kind: err.kind, provider, upstream_status: upstreamStatus }, err.message);
    request.log.debug({ err }, 'stack of the failure above');
  } else if (r.status >= 500) {
    request.log.error({ err }, 'request failed');
  } else {
    request.log.debug({ status: r.status, code: r.body.error.code, message: r.body.error.message }, 'request refused');
  }
  return r;
}

/** Fastify's default router maxParamLength, which app.ts keeps (model ids are far shorter). */
const MAX_PARAM_LENGTH = 100;

/**
 * Fastify options that give its own errors OpenAI's shape: bad percent-encoding and over-long
 * path parameters (frameworkErrors), socket-level errors such as 431 (clientErrorHandler), and
 * no built-in 503 while closing (installErrorHandlers answers it).
 */
export function errorServerOptions(): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler' | 'return503OnClosing'> {
  return {
    return503OnClosing: false,
    frameworkErrors: (err, request, reply) => {
      const e = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? HttpErrors.paramTooLong(request.url, MAX_PARAM_LENGTH) : err.code === 'FST_ERR_BAD_URL' ? HttpErrors.badUrl(request.url.slice(0, 200)) : err;
      send(reply, logged(request, err, toErrorResponse(e)));
    },
    clientErrorHandler: onClientError,
  };
}

/** Node answers a malformed request on the socket, before any route: write the JSON body there. */
function onClientError(this: FastifyInstance, err: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e =
    err.code === 'HPE_HEADER_OVERFLOW' ? HttpErrors.headersTooLarge() : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? HttpErrors.requestTimeout() : HttpErrors.malformedRequest();
  this.log.debug({ err }, 'client error');
  if (!socket.writable) return;
  const body = JSON.stringify(e.toResponse().body);
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_TEXT[e.status] ?? 'Bad Request'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Every error leaves as OpenAI's `{error:{message,type,param,code}}` with a fitting status. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => send(reply, logged(request, err, toErrorResponse(err))));
  app.setNotFoundHandler((request, reply) => send(reply, HttpErrors.routeNotFound(request.method, request.url).toResponse()));
  // With return503OnClosing off, requests that still arrive on kept-alive connections while the
  // server drains are answered here, in OpenAI's shape, before authentication or any work.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Callback style: no promise per request on the hot path for a flag that is almost never set.
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    send(reply, toErrorResponse(new DomainError('shutting_down', 'The server is shutting down; retry, another instance will answer.')));
  });
}
