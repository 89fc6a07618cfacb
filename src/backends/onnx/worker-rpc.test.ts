import { describe, expect, it } from 'vitest';
import { DomainError, ERROR_KINDS } from '../../core/errors.js';
import { fromWire, toWire } from './worker-rpc.js';

/** What postMessage does to a value: the structured clone, not a shared reference. */
const across = (err: unknown) => fromWire(structuredClone(toWire(err)));

describe('worker RPC errors', () => {
  it.each(ERROR_KINDS.map((k) => [k]))('carries kind %s and its details across the thread boundary', (kind) => {
    const sent = new DomainError(kind, `failed: ${kind}`, {
      param: 'input',
      code: 'some_code',
      retryAfterSeconds: 3,
      provider: 'acme',
      upstreamStatus: 418,
      owner: 'tenant',
      limits: { requests: { limit: 1, remaining: 0, resetMs: 5 }, tokens: null },
    });
    const got = across(sent);
    expect(got).toBeInstanceOf(DomainError);
    expect(got).toMatchObject({ kind, message: `failed: ${kind}`, param: 'input', code: 'some_code' });
    expect((got as DomainError).details).toEqual(sent.details);
  });

  it('keeps a cause as its message, and a plain error stays a plain error', () => {
    const got = across(new DomainError('internal', 'x', { cause: new Error('onnx said no') })) as DomainError;
    expect((got.details.cause as Error).message).toBe('onnx said no');
    const plain = across(new TypeError('boom'));
    expect(plain).not.toBeInstanceOf(DomainError);
    expect(plain.message).toBe('boom');
  });
});
