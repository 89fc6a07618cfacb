import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { Accumulator } from './accumulator.js';
import type { NewRow } from './domain.js';
import { RowWriter } from './row-writer.js';

const logger = createLogger('silent');
const row = (n: number): NewRow => ({ tenantId: 1, scope: { model: 'm', modelVersion: '1' }, inputHash: Buffer.from([n]), vector: Buffer.alloc(4), tokens: 1 });

describe('RowWriter', () => {
  it('writes queued rows in batches, retries a failed write, and tells each caller when its rows are in', async () => {
    const written: number[][] = [];
    let failNext = true;
    const w = new RowWriter(
      {
        insert: async (rows) => {
          if (failNext) {
            failNext = false;
            throw new Error('down');
          }
          written.push(rows.map((r) => r.inputHash[0]));
        },
      },
      logger,
      { delayMs: 1, maxBatch: 3, maxPending: 100 },
    );
    const settled: string[] = [];
    w.add([row(1), row(2)], () => settled.push('a'));
    w.add([row(3), row(4)], () => settled.push('b'));
    await w.flush(5);
    expect(written.flat()).toEqual([1, 2, 3, 4]);
    expect(settled).toEqual(['a', 'b']);
    await w.close();
  });

  it('drops the oldest rows past its bound, counts them, and settles their callers', async () => {
    const dropped: number[] = [];
    const w = new RowWriter({ insert: () => new Promise(() => {}) }, logger, { delayMs: 1000, maxBatch: 10, maxPending: 3, onDrop: (n) => dropped.push(n) });
    const settled: string[] = [];
    w.add([row(1), row(2)], () => settled.push('a'));
    w.add([row(3), row(4)], () => settled.push('b'));
    expect(dropped).toEqual([1]);
    expect(w.size).toBe(3);
    expect(settled).toEqual([]);
    w.add([row(5), row(6)]);
    expect(settled).toEqual(['a']);
  });

  it('holds producers back while a slow store writes, releases them as rows are written, and never while writes fail', async () => {
    // The store answers when told to: each insert waits for release() or fail().
    const calls: { rows: number; release: () => void; fail: () => void }[] = [];
    const w = new RowWriter(
      { insert: (rows) => new Promise<void>((resolve, reject) => calls.push({ rows: rows.length, release: resolve, fail: () => reject(new Error('down')) })) },
      logger,
      { delayMs: 0, maxBatch: 2, maxPending: 100, backpressureBytes: 8 }, // rows of 4 bytes: room for 2
    );
    const order: string[] = [];
    const wait = (name: string) => w.room().then(() => order.push(name));
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
      expect(cond()).toBe(true);
    };
    w.add([row(1), row(2)]);
    await wait('under the bound'); // 8 bytes: not past it
    w.add([row(3), row(4)]); // 16 bytes: past it
    const held = wait('held');
    await until(() => calls.length === 1);
    expect(order).toEqual(['under the bound']);
    expect(calls.map((c) => c.rows)).toEqual([2]);
    calls[0].release(); // 8 bytes left: room again
    await held;
    expect(order).toEqual(['under the bound', 'held']);
    // A failing store holds nobody: rows wait in the bounded buffer instead.
    w.add([row(5), row(6)]);
    const failing = wait('released by a failure');
    await until(() => calls.length === 2);
    expect(order.at(-1)).toBe('held');
    calls[1].fail();
    await failing;
    expect(order.at(-1)).toBe('released by a failure');
  });

  it('writes no more rows a statement than the store asks for', async () => {
    const sizes: number[] = [];
    const w = new RowWriter({ insert: async (rows) => void sizes.push(rows.length), insertBatchRows: 2 }, logger, { delayMs: 0, maxBatch: 5, maxPending: 100 });
    w.add([1, 2, 3, 4, 5].map(row));
    await w.flush();
    expect(sizes).toEqual([2, 2, 1]);
  });
});

describe('Accumulator', () => {
  it('merges by key, puts a failed batch back, and bounds entries while writes fail', async () => {
    const writes: { k: string; n: number }[][] = [];
    let fail = true;
    const drops: number[] = [];
    const acc = new Accumulator<{ k: string; n: number }>({
      name: 't',
      intervalMs: 60_000,
      merge: (a, b) => void (a.n += b.n),
      write: async (batch) => {
        if (fail) throw new Error('down');
        writes.push(batch);
      },
      logger,
      maxEntries: 2,
      onDrop: (n) => drops.push(n),
    });
    acc.add('x', { k: 'x', n: 1 });
    acc.add('x', { k: 'x', n: 2 });
    acc.add('y', { k: 'y', n: 1 });
    acc.add('z', { k: 'z', n: 1 }); // past the bound
    expect(drops).toEqual([1]);
    await acc.flush();
    expect(acc.size).toBe(2);
    fail = false;
    await acc.close();
    expect(writes).toEqual([[{ k: 'x', n: 3 }, { k: 'y', n: 1 }]]);
  });
});
