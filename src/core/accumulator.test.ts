import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { Accumulator } from './accumulator.js';

describe('Accumulator', () => {
  it('a flush called while a write runs also writes what was added after that write began', async () => {
    const written: number[][] = [];
    let release!: () => void;
    const firstWrite = new Promise<void>((r) => (release = r));
    let calls = 0;
    const acc = new Accumulator<{ n: number }>({
      name: 'test',
      intervalMs: 60_000,
      merge: (a, b) => void (a.n += b.n),
      write: async (batch) => {
        written.push(batch.map((b) => b.n));
        if (calls++ === 0) await firstWrite;
      },
      logger: createLogger('silent'),
    });
    acc.add('a', { n: 1 });
    const first = acc.flush(); // the timer's write, say: takes {a:1} and waits
    acc.add('b', { n: 2 });
    const mine = acc.flush(); // a reader's flush: must cover b
    release();
    await Promise.all([first, mine]);
    expect(written).toEqual([[1], [2]]);
    expect(acc.size).toBe(0);
    await acc.close();
  });
});
