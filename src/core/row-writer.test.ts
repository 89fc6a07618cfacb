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
