/**
 * The machine-wide in-flight registry, hub and workers wired in one process (the messages are
 * the ones node:cluster carries; delivery is asynchronous here as there): identical misses in
 * two EmbedServices compute once, values are handed over, failures and gone workers release
 * their keys.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.js';
import { InFlightHub } from './inflight-hub.js';
import { ClusterInFlight } from './inflight-worker.js';
import type { ToPrimary, ToWorker } from './messages.js';

function machine(workers: number) {
  const listeners = new Map<number, (msg: unknown) => void>();
  const hub = new InFlightHub((id, msg: ToWorker) => setImmediate(() => listeners.get(id)?.(structuredClone(msg))));
  const regs = Array.from({ length: workers }, (_, i) => {
    const id = i + 1;
    return new ClusterInFlight({
      send: (msg: ToPrimary) => setImmediate(() => hub.receive(id, structuredClone(msg))),
      onMessage: (fn) => void listeners.set(id, fn),
    });
  });
  return { hub, regs };
}

const value = (s: string) => ({ bytes: Buffer.from(s), tokens: s.length });

describe('cluster in-flight registry', () => {
  it('lets one worker own a key and hands its computed value to the other', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    const [ca] = await a.claim(['1\u0000k']);
    expect(ca.kind).toBe('own');
    const [cb] = await b.claim(['1\u0000k']);
    expect(cb.kind).toBe('wait');
    // A second request in worker b shares b's wait, without asking the primary again.
    const [cb2] = b.claim(['1\u0000k']) as Awaited<ReturnType<typeof b.claim>>;
    expect(cb2.kind).toBe('wait');
    const computed = value('vec');
    a.settle('1\u0000k', { value: computed, cached: false });
    if (cb.kind !== 'wait' || cb2.kind !== 'wait') throw new Error('unreachable');
    const [r, r2] = await Promise.all([cb.result, cb2.result]);
    expect(r.value.bytes.toString()).toBe('vec');
    expect(r2.value.bytes.toString()).toBe('vec');
    expect(b.counts.waited).toBe(1);
    // Computed, row not stored yet: a later claim gets the value itself.
    const [again] = await b.claim(['1\u0000k']);
    expect(again.kind).toBe('done');
    // Once a's row is stored, the key is free: the next claim looks it up in the store.
    a.stored('1\u0000k', computed);
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
  });

  it('passes an owner failure to its waiters and frees the key', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['k']);
    const [cb] = await b.claim(['k']);
    a.settle('k', { error: new DomainError('upstream_timeout', 'slow upstream') });
    if (cb.kind !== 'wait') throw new Error('expected wait');
    await expect(cb.result).rejects.toMatchObject({ kind: 'upstream_timeout', message: 'slow upstream' });
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
    expect((await b.claim(['k']))[0].kind).toBe('own');
  });

  it('frees the keys of a worker that died and fails those waiting on it with a retryable error', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['k']);
    const [cb] = await b.claim(['k']);
    hub.workerGone(1);
    if (cb.kind !== 'wait') throw new Error('expected wait');
    await expect(cb.result).rejects.toMatchObject({ kind: 'unavailable' });
    expect((await b.claim(['k']))[0].kind).toBe('own');
  });

  it('forgets computed values of a dropped tenant', async () => {
    const { hub, regs } = machine(2);
    const [a, b] = regs;
    await a.claim(['7\u0000k']);
    a.settle('7\u0000k', { value: value('v'), cached: false });
    await new Promise((res) => setImmediate(res));
    b.dropTenant(7);
    await new Promise((res) => setImmediate(res));
    expect(hub.size).toBe(0);
    expect((await b.claim(['7\u0000k']))[0].kind).toBe('own');
  });
});
