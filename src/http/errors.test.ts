import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DomainError, ERROR_KINDS, type ErrorKind } from '../core/errors.js';
import { GENERIC_5XX, HttpErrors, installErrorHandlers, toErrorResponse } from './errors.js';

/** What each kind must become: OpenAI's status, type and default code. */
const EXPECTED: Record<ErrorKind, [number, string, string | null]> = {
  invalid_input: [400, 'invalid_request_error', null],
  not_found: [404, 'invalid_request_error', null],
  model_not_found: [404, 'invalid_request_error', 'model_not_found'],
  unauthenticated: [401, 'invalid_request_error', 'invalid_api_key'],
  forbidden: [403, 'permission_error', null],
  conflict: [409, 'invalid_request_error', null],
  rate_limited: [429, 'rate_limit_error', 'rate_limit_exceeded'],
  overloaded: [503, 'service_unavailable', 'overloaded'],
  timeout: [503, 'service_unavailable', 'timeout'],
  shutting_down: [503, 'service_unavailable', 'shutting_down'],
  unavailable: [503, 'service_unavailable', 'service_unavailable'],
  upstream_refused: [502, 'server_error', 'upstream_refused'],
  upstream_rate_limited: [429, 'rate_limit_error', 'rate_limit_exceeded'],
  upstream_invalid_response: [502, 'server_error', 'upstream_invalid_response'],
  upstream_unreachable: [502, 'server_error', 'upstream_unreachable'],
  upstream_timeout: [504, 'server_error', 'upstream_timeout'],
  internal: [500, 'server_error', 'internal_error'],
};

describe('kind -> HTTP', () => {
  it.each(ERROR_KINDS.map((k) => [k]))('maps %s to its status, type and default code', (kind) => {
    const [status, type, code] = EXPECTED[kind];
    const r = toErrorResponse(new DomainError(kind, 'what happened', { param: 'p' }));
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ error: { message: kind === 'internal' ? GENERIC_5XX : 'what happened', type, param: 'p', code } });
    // every 503 tells the client when to come back
    expect(r.headers['retry-after'] !== undefined).toBe(status === 503);
  });

  it('keeps a thrower’s code and Retry-After, and turns rate-limit windows into OpenAI’s headers', () => {
    const r = toErrorResponse(
      new DomainError('rate_limited', 'slow down', {
        code: 'custom',
        retryAfterSeconds: 2.2,
        limits: { requests: { limit: 10, remaining: 0, resetMs: 61_000 }, tokens: null },
      }),
    );
    expect(r.body.error.code).toBe('custom');
    expect(r.headers).toEqual({
      'retry-after': '3',
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1m1s',
    });
    expect(toErrorResponse(new DomainError('upstream_rate_limited', 'x', { retryAfterSeconds: 7 })).headers).toEqual({ 'retry-after': '7' });
  });

  it('never shows an unexpected error’s text (a driver’s, the database’s)', () => {
    const pg = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021', severity: 'ERROR' });
    const r = toErrorResponse(pg);
    expect(r.status).toBe(500);
    expect(r.body.error).toEqual({ message: GENERIC_5XX, type: 'server_error', param: null, code: 'internal_error' });
    expect(toErrorResponse(new DomainError('internal', 'secret detail')).body.error.message).toBe(GENERIC_5XX);
  });


  it('gives every catalogue entry OpenAI’s shape', () => {
    for (const e of [HttpErrors.badJson(), HttpErrors.badUrl('/%'), HttpErrors.paramTooLong('/x', 100), HttpErrors.routeNotFound('GET', '/x'), HttpErrors.bodyTooLarge(), HttpErrors.unsupportedMediaType(), HttpErrors.headersTooLarge()]) {
      const r = toErrorResponse(e);
      expect(r.status).toBe(e.status);
      expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    }
  });

  it('answers a real PostgreSQL-shaped failure in a route with the generic body, and logs the detail', async () => {
    const lines: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: { write: (l: string) => lines.push(l) } } });
    installErrorHandlers(app);
    app.get('/boom', async () => {
      throw Object.assign(new Error('duplicate key value violates unique constraint "tenants_name_key"'), { code: '23505' });
    });
    const res = await app.inject({ url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('tenants_name_key');
    expect(res.json().error.message).toBe(GENERIC_5XX);
    expect(lines.join('')).toContain('tenants_name_key');
    await app.close();
  });
});
