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

describe('a worker that dies', () => {
  it('fails its calls in flight as unavailable with a retry hint, and tells its owner once', async () => {
    const { WorkerClient } = await import('./worker-rpc.js');
    const client = await WorkerClient.start<number, number, unknown>(new URL('../../../test/fixtures/workers/silent.mjs', import.meta.url), {});
    const deaths: Error[] = [];
    client.onDeath((e) => deaths.push(e));
    const inFlight = client.call(1);
    await client.kill();
    const err = await inFlight.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ kind: 'unavailable', details: { retryAfterSeconds: 1 } });
    expect(client.alive).toBe(false);
    expect(deaths).toHaveLength(1);
    await client.close();
    expect(deaths).toHaveLength(1);
  });
});

describe('closing a worker', () => {
  /** Speaks the handshake and answers each call (doubled) after 100 ms: a batch still computing. */
  const slow = new URL(
    'data:text/javascript,' +
      encodeURIComponent(`import { parentPort } from 'node:worker_threads';
parentPort.on('message', ({ id, req }) => setTimeout(() => parentPort.postMessage({ kind: 'result', id, value: req * 2 }), 100));
parentPort.postMessage({ kind: 'ready', info: {} });`),
  );

  it('lets a call in flight finish before ending the worker, and takes no new calls meanwhile', async () => {
    const { WorkerClient } = await import('./worker-rpc.js');
    const client = await WorkerClient.start<number, number, unknown>(slow, {});
    const inFlight = client.call(21);
    const closed = client.close();
    await expect(client.call(1)).rejects.toThrow('worker closed');
    await closed;
    await expect(inFlight).resolves.toBe(42);
  });

  it('ends a worker whose call never finishes once the grace is over, failing that call', async () => {
    const { WorkerClient } = await import('./worker-rpc.js');
    const client = await WorkerClient.start<number, number, unknown>(new URL('../../../test/fixtures/workers/silent.mjs', import.meta.url), {});
    const inFlight = client.call(1).catch((e: unknown) => e);
    await client.close(50);
    expect(await inFlight).toBeInstanceOf(Error);
  });
});
