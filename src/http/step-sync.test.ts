import { describe, expect, it } from 'vitest';
import { stepSync } from './step-sync.js';

describe('stepSync', () => {
  it('hands a plain value on in the same turn, and a promised one once it settles', async () => {
    const seen: string[] = [];
    stepSync(() => 'now', (v) => seen.push(v), () => seen.push('done'));
    expect(seen).toEqual(['now']);
    stepSync(() => Promise.resolve('later'), (v) => seen.push(v), () => seen.push('done'));
    expect(seen).toEqual(['now']);
    await Promise.resolve();
    expect(seen).toEqual(['now', 'later']);
  });

  it('ends the request through done on a throw, a rejection, or a throw after the promise', async () => {
    const errors: unknown[] = [];
    const done = (err?: Error) => void errors.push(err?.message);
    stepSync(() => {
      throw new Error('sync');
    }, () => errors.push('not reached'), done);
    stepSync(() => Promise.reject(new Error('rejected')), () => errors.push('not reached'), done);
    stepSync(() => Promise.resolve(1), () => {
      throw new Error('after');
    }, done);
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual(['sync', 'rejected', 'after']);
  });
});
