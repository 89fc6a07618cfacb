import { describe, expect, it } from 'vitest';
import type { CacheScope, StoredVector } from '../core/domain.js';
import { LookupBatcher } from './lookup-batcher.js';

const scope: CacheScope = { model: 'm', modelVersion: '1' };
const other: CacheScope = { model: 'm', modelVersion: '2' };
const h = (s: string) => Buffer.from(s.padEnd(16, '.'));
const row = (tenantId: number, s: string): StoredVector => ({ tenantId, inputHash: h(s), vector: Buffer.from(`${tenantId}:${s}`), tokens: s.length });
const names = (rows: StoredVector[]) => rows.map((r) => `${r.tenantId}:${r.inputHash.toString().replace(/\.+$/, '')}`).sort();
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Call {
  tenantIds: number[];
  scope: CacheScope;
  hashes: string[];
  answer: (rows: StoredVector[]) => void;
  fail: (err: unknown) => void;
}

/** An in-memory store whose queries are answered (or failed) by the test, in the order it chooses. */
function fakeStore() {
  const calls: Call[] = [];
  const run = (tenantIds: number[], s: CacheScope, hashes: Buffer[]) =>
    new Promise<StoredVector[]>((answer, fail) => {
      calls.push({ tenantIds, scope: s, hashes: hashes.map((x) => x.toString().replace(/\.+$/, '')), answer, fail });
    });
  return { calls, run };
}

describe('LookupBatcher', () => {
  it('sends a lookup at once when no query is in flight, without waiting a turn', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 4, maxHashes: 100 });
    const a = b.lookup([7], scope, [h('x')]);
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0].hashes).toEqual(['x']);
    store.calls[0].answer([row(7, 'x')]);
    expect(names(await a)).toEqual(['7:x']);
    // Idle again: the next one goes at once too.
    const c = b.lookup([7], scope, [h('y')]);
    expect(store.calls).toHaveLength(2);
    store.calls[1].answer([]);
    expect(await c).toEqual([]);
  });

  it('sends the lookups of one turn while a query is in flight, same tenants and scope, as one query and hands each its own rows', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 4, maxHashes: 100 });
    const first = b.lookup([7, 0], scope, [h('w')]);
    const a = b.lookup([7, 0], scope, [h('x'), h('y')]);
    const c = b.lookup([7, 0], scope, [h('y'), h('z')]);
    const d = b.lookup([7, 0], scope, [h('absent')]);
    expect(store.calls).toHaveLength(1);
    await nextTurn();
    expect(store.calls).toHaveLength(2);
    // Each distinct hash once.
    expect(store.calls[1].hashes).toEqual(['x', 'y', 'z', 'absent']);
    expect(store.calls[1].tenantIds).toEqual([7, 0]);
    store.calls[1].answer([row(7, 'x'), row(0, 'y'), row(7, 'y'), row(0, 'z')]);
    expect(names(await a)).toEqual(['0:y', '7:x', '7:y']);
    expect(names(await c)).toEqual(['0:y', '0:z', '7:y']);
    expect(await d).toEqual([]);
    store.calls[0].answer([row(7, 'w')]);
    expect(names(await first)).toEqual(['7:w']);
    expect(b.queries).toBe(2);
  });

  it('never mixes read tenants or scopes in one query', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 4, maxHashes: 100 });
    const busy = b.lookup([9], scope, [h('x')]);
    const own = b.lookup([7], scope, [h('x')]);
    const shared = b.lookup([7, 0], scope, [h('x')]);
    const otherScope = b.lookup([7], other, [h('x')]);
    await nextTurn();
    expect(store.calls.map((c) => `${c.tenantIds.join('+')}/${c.scope.modelVersion}`).sort()).toEqual(['7+0/1', '7/1', '7/2', '9/1']);
    for (const call of store.calls) call.answer([row(call.tenantIds[0] === 9 ? 9 : call.tenantIds.length === 2 ? 0 : 7, 'x')]);
    expect(names(await busy)).toEqual(['9:x']);
    expect(names(await own)).toEqual(['7:x']);
    expect(names(await shared)).toEqual(['0:x']);
    expect(names(await otherScope)).toEqual(['7:x']);
  });

  it('fails every lookup of a failed query, and only those', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 4, maxHashes: 100 });
    const busy = b.lookup([9], scope, [h('x')]);
    const a = b.lookup([1], scope, [h('x')]);
    const c = b.lookup([1], scope, [h('y')]);
    const elsewhere = b.lookup([2], scope, [h('x')]);
    await nextTurn();
    const failed = store.calls.find((call) => call.tenantIds[0] === 1)!;
    expect(failed.hashes).toEqual(['x', 'y']);
    failed.fail(new Error('connection reset'));
    store.calls.find((call) => call.tenantIds[0] === 2)!.answer([row(2, 'x')]);
    store.calls.find((call) => call.tenantIds[0] === 9)!.answer([]);
    expect(await busy).toEqual([]);
    await expect(a).rejects.toThrow('connection reset');
    await expect(c).rejects.toThrow('connection reset');
    expect(names(await elsewhere)).toEqual(['2:x']);
    // The batcher carries on after a failure.
    const later = b.lookup([1], scope, [h('x')]);
    await nextTurn();
    store.calls.at(-1)!.answer([row(1, 'x')]);
    expect(names(await later)).toEqual(['1:x']);
  });

  it('gathers lookups that arrive while every slot is busy into the next query, bounded in hashes', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 1, maxHashes: 4 });
    const first = b.lookup([1], scope, [h('a')]);
    await nextTurn();
    expect(store.calls).toHaveLength(1);
    // While the first query runs: 3 + 1 hashes fit one batch, the next 2 start another.
    const waiting = [b.lookup([1], scope, [h('b'), h('c'), h('d')]), b.lookup([1], scope, [h('e')]), b.lookup([1], scope, [h('f'), h('g')])];
    await nextTurn();
    expect(store.calls).toHaveLength(1);
    expect(b.pending).toEqual({ inFlight: 1, queued: 2 });
    store.calls[0].answer([row(1, 'a')]);
    expect(names(await first)).toEqual(['1:a']);
    expect(store.calls).toHaveLength(2);
    expect(store.calls[1].hashes).toEqual(['b', 'c', 'd', 'e']);
    store.calls[1].answer([row(1, 'b'), row(1, 'e')]);
    await waiting[0];
    expect(store.calls).toHaveLength(3);
    expect(store.calls[2].hashes).toEqual(['f', 'g']);
    store.calls[2].answer([row(1, 'g')]);
    const [bcd, e, fg] = await Promise.all(waiting);
    expect([names(bcd), names(e), names(fg)]).toEqual([['1:b'], ['1:e'], ['1:g']]);
    expect(b.queries).toBe(3);
  });

  it('sends a lookup of at least maxHashes hashes alone, in one query', async () => {
    const store = fakeStore();
    const b = new LookupBatcher(store.run, { maxInFlight: 1, maxHashes: 2 });
    const big = b.lookup([1], scope, [h('a'), h('b'), h('c')]);
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0].hashes).toEqual(['a', 'b', 'c']);
    store.calls[0].answer([row(1, 'c')]);
    expect(names(await big)).toEqual(['1:c']);
  });

  it('fails the lookups of a store that throws instead of rejecting', async () => {
    const b = new LookupBatcher(
      () => {
        throw new Error('not connected');
      },
      { maxInFlight: 2, maxHashes: 10 },
    );
    const a = b.lookup([1], scope, [h('x')]);
    await expect(a).rejects.toThrow('not connected');
    expect(b.pending).toEqual({ inFlight: 0, queued: 0 });
  });
});
