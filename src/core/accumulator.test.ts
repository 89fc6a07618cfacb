import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { Accumulator } from './accumulator.js';

describe('Accumulator.flush', () => {
  it('stores entries added while another write is under way (no dependence on the interval’s timing)', async () => {
    const written: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    const acc = new Accumulator<number[]>({
      name: 'test',
      intervalMs: 3_600_000,
      merge: (into, from) => into.push(...from),
      write: async (batch) => {
        if (first) {
          first = false;
          await gate; // the first write hangs until released
        }
        written.push(batch.flat());
      },
      logger: createLogger('silent'),
    });
    acc.add('a', [1]);
    const inFlight = acc.flush(); // takes [1]
    acc.add('b', [2]); // arrives during that write
    const mine = acc.flush();
    release();
    await Promise.all([inFlight, mine]);
    expect(written).toEqual([[1], [2]]);
    expect(acc.size).toBe(0);
    await acc.close();
  });
});
