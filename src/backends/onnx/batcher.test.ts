import { afterEach, describe, expect, it, vi } from 'vitest';
import { DomainError } from '../../core/errors.js';
import { Batcher, batchBudget, chooseLane, PRIORITY_STREAK, takeBatch, timeoutDueIn, type BatcherConfig, type Entry } from './batcher.js';
import type { BatchRunner } from './session.js';

/** A runner that records its batches, answers [length, first id] per sequence, and can be held. */
class FakeRunner implements BatchRunner {
  batches: number[][][] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext: Error | null = null;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open();
  }

  async run(sequences: readonly (readonly number[])[]): Promise<Float32Array[]> {
    this.batches.push(sequences.map((s) => Array.from(s)));
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.gate;
      if (this.failNext) {
        const err = this.failNext;
        this.failNext = null;
        throw err;
      }
      return sequences.map((s) => Float32Array.from([s.length, s[0]]));
    } finally {
      this.inFlight--;
    }
  }
  async close(): Promise<void> {}
}

const config: BatcherConfig = { maxBatchTokens: 64, maxBatchSize: 8, maxWaitMs: 5, maxQueue: 100, timeoutMs: 5_000 };
const seq = (first: number, length: number) => [first, ...Array<number>(length - 1).fill(7)];
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('takeBatch', () => {
  const request = (done = false) => ({ done }) as unknown as Entry['request'];
  const entry = (length: number, done = false): Entry => ({ ids: seq(1, length), request: request(done), index: 0, queuedAt: 0 });

  it('takes the oldest entry with the closest lengths, as long as longest x count fits the budget', () => {
    const queue = [entry(2), entry(2), entry(10), entry(2)];
    const { batch } = takeBatch(queue, 12, 100);
    expect(batch.map((e) => e.ids.length)).toEqual([2, 2, 2]);
    expect(queue.map((e) => e.ids.length)).toEqual([10]);
  });

  it('groups similar lengths so batches carry little padding, leaving the rest in order', () => {
    const queue = [entry(5), entry(50), entry(6), entry(48), entry(4)];
    const { batch } = takeBatch(queue, 1_000, 3);
    expect(batch.map((e) => e.ids.length)).toEqual([5, 6, 4]);
    expect(queue.map((e) => e.ids.length)).toEqual([50, 48]);
  });

  it('looks only a few batches past the oldest entry', () => {
    // maxBatchSize 2: a window of 8 entries; the 9 at position 8 is out of reach.
    const queue = [entry(9), ...Array.from({ length: 7 }, () => entry(1)), entry(9)];
    expect(takeBatch(queue, 1_000, 2).batch.map((e) => e.ids.length)).toEqual([9, 1]);
  });

  it('respects the size cap and always takes the oldest entry, even one over budget', () => {
    expect(takeBatch([entry(3), entry(3), entry(3)], 100, 2).batch).toHaveLength(2);
    const queue = [entry(50), entry(1)];
    expect(takeBatch(queue, 10, 8).batch.map((e) => e.ids.length)).toEqual([50]);
    expect(queue.map((e) => e.ids.length)).toEqual([1]);
  });

  it('under a padding rule, leaves out lengths that would make the batch mostly padding', () => {
    const rule = { maxShare: 0.2, freeTokens: 20 };
    // 100 and 90 pad 10 of 200; 60 would make it 300 padded for 250 real (17 %); 40 is too far.
    const queue = [entry(100), entry(40), entry(90), entry(60)];
    expect(takeBatch(queue, 1_000, 8, rule).batch.map((e) => e.ids.length)).toEqual([100, 90, 60]);
    expect(queue.map((e) => e.ids.length)).toEqual([40]);
    // Without the rule the budget alone decides.
    expect(takeBatch([entry(100), entry(40), entry(90), entry(60)], 1_000, 8).batch).toHaveLength(4);
  });

  it('under a padding rule, still batches short texts whatever their padding while the batch is small', () => {
    const queue = [entry(2), entry(9), entry(1), entry(30)];
    // 9 x 3 = 27 padded tokens would be over freeTokens 20: only 2, 1 and then 9 alone cannot join.
    expect(takeBatch(queue, 1_000, 8, { maxShare: 0.2, freeTokens: 20 }).batch.map((e) => e.ids.length)).toEqual([2, 1]);
    expect(takeBatch([entry(2), entry(9), entry(1)], 1_000, 8, { maxShare: 0.2, freeTokens: 27 }).batch).toHaveLength(3);
  });

  it('drops entries whose request is done and counts them', () => {
    const queue = [entry(2, true), entry(3), entry(2, true), entry(4)];
    const { batch, skipped } = takeBatch(queue, 100, 8);
    expect(batch.map((e) => e.ids.length)).toEqual([3, 4]);
    expect(skipped).toBe(2);
    expect(queue).toEqual([]);
  });
});

describe('Batcher', () => {
  it('waits for requests on their way and runs them together, results back in order', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 60_000 });
    const [firstArrived, secondArrived] = [batcher.expect(), batcher.expect()];
    const first = batcher.submit([seq(11, 5), seq(12, 2)]);
    firstArrived();
    await new Promise((r) => setTimeout(r, 20));
    expect(runner.batches).toHaveLength(0);
    const second = batcher.submit([seq(21, 3)]);
    secondArrived();
    const results = await Promise.all([first, second]);
    expect(runner.batches).toHaveLength(1);
    expect(results.map((r) => r.map((v) => [...v]))).toEqual([
      [[5, 11], [2, 12]],
      [[3, 21]],
    ]);
    expect(batcher.stats()).toMatchObject({ batches: 1, embeddings: 3, queueDepth: 0, lastBatchSizes: [3], lastBatchTokens: [15] });
  });

  it('queues a request shortest first so batches cut from it carry little padding', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxBatchSize: 2 });
    const out = await batcher.submit([seq(1, 9), seq(2, 2), seq(3, 8), seq(4, 3)]);
    expect(runner.batches.map((b) => b.map((s) => s.length))).toEqual([[2, 3], [8, 9]]);
    expect(out.map((v) => v[1])).toEqual([1, 2, 3, 4]);
  });

  it('runs at once when a full token budget is queued, without waiting', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 60_000 });
    const t0 = performance.now();
    await batcher.submit([seq(1, 32), seq(2, 32)]);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(runner.batches).toHaveLength(1);
  });

  it('runs a lone request at once: nobody else is on the way', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 60_000 });
    const t0 = performance.now();
    await batcher.submit([seq(1, 3)]);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(runner.batches).toHaveLength(1);
  });

  it('runs a partial batch once the oldest entry has waited maxWaitMs, however many are announced', async () => {
    const runner = new FakeRunner();
    // A fake clock: on a loaded machine a real 10 ms pause can outlast maxWaitMs.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const batcher = new Batcher(runner, { ...config, maxWaitMs: 30 });
      batcher.expect(); // announced, never arrives
      const pending = batcher.submit([seq(1, 3)]);
      await vi.advanceTimersByTimeAsync(10);
      expect(runner.batches).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(25);
      await pending;
      expect(runner.batches).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps one run in flight and batches what queued meanwhile', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 0 });
    runner.hold();
    const first = batcher.submit([seq(1, 2)]);
    await tick();
    const later = [batcher.submit([seq(2, 2)]), batcher.submit([seq(3, 2)]), batcher.submit([seq(4, 2)])];
    await tick();
    expect(runner.batches).toHaveLength(1);
    expect(batcher.stats()).toMatchObject({ running: true, queueDepth: 3 });
    runner.release();
    await Promise.all([first, ...later]);
    expect(runner.maxInFlight).toBe(1);
    expect(runner.batches.map((b) => b.length)).toEqual([1, 3]);
  });

  it('keeps one batch in flight per runner, both cut from the one queue', async () => {
    const a = new FakeRunner();
    const b = new FakeRunner();
    const batcher = new Batcher([a, b], { ...config, maxWaitMs: 0 });
    a.hold();
    b.hold();
    const first = batcher.submit([seq(1, 2)]);
    const second = batcher.submit([seq(2, 2)]);
    await tick();
    const later = [batcher.submit([seq(3, 2)]), batcher.submit([seq(4, 2)]), batcher.submit([seq(5, 2)])];
    await tick();
    // both runners busy, the rest queued for whichever frees first
    expect(a.batches).toHaveLength(1);
    expect(b.batches).toHaveLength(1);
    expect(batcher.stats()).toMatchObject({ running: true, inFlight: 2, queueDepth: 3 });
    b.release();
    await tick();
    await tick();
    // the freed runner took all three queued entries as one batch while the other still ran
    expect(b.batches.map((x) => x.length)).toEqual([1, 3]);
    expect(a.batches.map((x) => x.length)).toEqual([1]);
    a.release();
    const vectors = await Promise.all([first, second, ...later]);
    expect(vectors.map((v) => v[0][1])).toEqual([1, 2, 3, 4, 5]);
    expect(batcher.stats().inFlight).toBe(0);
  });

  it('refuses a request that would overflow the queue as overloaded, with a retry hint', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxQueue: 4, maxWaitMs: 0 });
    runner.hold();
    const running = batcher.submit([seq(1, 2)]);
    await tick();
    const queued = batcher.submit([seq(2, 2), seq(3, 2), seq(4, 2)]);
    const err = await batcher.submit([seq(5, 2), seq(6, 2)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ kind: 'overloaded' });
    expect((err as DomainError).details.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(batcher.stats().rejectedFull).toBe(1);
    runner.release();
    await Promise.all([running, queued]);
  });

  it('lets a request bigger than the queue in when the queue is empty', async () => {
    const batcher = new Batcher(new FakeRunner(), { ...config, maxQueue: 2 });
    await expect(batcher.submit([seq(1, 2), seq(2, 2), seq(3, 2)])).resolves.toHaveLength(3);
  });

  it('times a request out (kind timeout, with a retry hint) and drops its queued entries', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 0, timeoutMs: 40 });
    runner.hold();
    const stuck = batcher.submit([seq(1, 2)]);
    await tick();
    const late = batcher.submit([seq(2, 2)]);
    const outcomes = await Promise.allSettled([stuck, late]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ kind: 'timeout', details: { retryAfterSeconds: expect.any(Number) } });
    }
    expect(batcher.stats()).toMatchObject({ timedOut: 2, queueDepth: 0 });
    runner.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(runner.batches).toHaveLength(1);
    expect(batcher.stats().skipped).toBe(1);
  });

  it('fails every request of a batch whose run fails, and serves the next batch', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, config);
    runner.failNext = new Error('boom');
    const arrivals = [batcher.expect(), batcher.expect()];
    const submitted = [batcher.submit([seq(1, 2)]), batcher.submit([seq(2, 2)])];
    arrivals.forEach((arrived) => arrived());
    const failed = await Promise.allSettled(submitted);
    expect(runner.batches).toHaveLength(1);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(batcher.submit([seq(3, 2)])).resolves.toHaveLength(1);
  });

  it('refuses work after close and fails what was queued as shutting_down', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 60_000 });
    batcher.expect(); // keeps the request waiting for company
    const queued = batcher.submit([seq(1, 2)]);
    batcher.close();
    await expect(queued).rejects.toMatchObject({ kind: 'shutting_down' });
    await expect(batcher.submit([seq(2, 2)])).rejects.toMatchObject({ kind: 'shutting_down' });
    expect(runner.batches).toHaveLength(0);
  });
});

describe('chooseLane', () => {
  it('serves the priority lane first, and bulk when the priority lane is empty', () => {
    expect(chooseLane(true, true, 0)).toBe('priority');
    expect(chooseLane(true, false, 100)).toBe('priority');
    expect(chooseLane(false, true, 0)).toBe('bulk');
    expect(chooseLane(false, false, 0)).toBeNull();
  });
  it('lets one bulk batch go after PRIORITY_STREAK priority batches in a row while bulk waits', () => {
    expect(chooseLane(true, true, PRIORITY_STREAK - 1)).toBe('priority');
    expect(chooseLane(true, true, PRIORITY_STREAK)).toBe('bulk');
  });
});

describe('timeoutDueIn', () => {
  it('does not count time queued while the engine keeps finishing batches', () => {
    // Submitted at 0, queued behind bulk work; the engine finished a batch at 950.
    expect(timeoutDueIn(1000, 100, 0, 950, false)).toBe(50);
    expect(timeoutDueIn(1000, 100, 0, 900, false)).toBe(0);
  });
  it('counts from the request’s own batch while it computes, whatever the engine does elsewhere', () => {
    expect(timeoutDueIn(1000, 100, 800, 990, true)).toBe(-100);
    expect(timeoutDueIn(1000, 100, 950, 0, true)).toBe(50);
  });
  it('counts from the request’s last progress when that is later than the engine’s', () => {
    expect(timeoutDueIn(1000, 100, 980, 500, false)).toBe(80);
  });
});

describe('Batcher lanes and deadlines', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs a single text queued behind a bulk request in the next batch, before the bulk remainder', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxBatchSize: 2, maxWaitMs: 0 });
    runner.hold();
    const bulk = batcher.submit(Array.from({ length: 12 }, (_, i) => seq(100 + i, 2)));
    await tick();
    expect(runner.batches).toHaveLength(1);
    const single = batcher.submit([seq(1, 2)]);
    expect(batcher.stats().priorityQueueDepth).toBe(1);
    runner.release();
    await expect(single).resolves.toHaveLength(1);
    expect(runner.batches[1]).toEqual([seq(1, 2)]);
    await expect(bulk).resolves.toHaveLength(12);
  });

  it('does not starve bulk work: after PRIORITY_STREAK priority batches one bulk batch runs', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxBatchSize: 1, maxWaitMs: 0 });
    runner.hold();
    const first = batcher.submit([seq(900, 2)]); // runs at once, held
    await tick();
    const bulk = batcher.submit(Array.from({ length: 9 }, (_, i) => seq(100 + i, 2)));
    const singles = Array.from({ length: PRIORITY_STREAK + 2 }, (_, i) => batcher.submit([seq(1 + i, 2)]));
    runner.release();
    await Promise.all([first, bulk, ...singles]);
    const firsts = runner.batches.map((b) => b[0][0]);
    // The held one, then PRIORITY_STREAK - 1 more singles (the held batch counted towards the streak), one bulk, the rest of the singles.
    expect(firsts.slice(0, PRIORITY_STREAK + 1)).toEqual([900, 1, 2, 3, 100]);
    expect(firsts.slice(PRIORITY_STREAK + 1, PRIORITY_STREAK + 4)).toEqual([4, 5, 6]);
  });

  it('sends requests larger than priorityMaxInputs to the bulk lane, and 0 turns the lane off', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxBatchSize: 1, maxWaitMs: 0, priorityMaxInputs: 0 });
    runner.hold();
    const bulk = batcher.submit([seq(100, 2), seq(101, 2), seq(102, 2)]);
    await tick();
    const single = batcher.submit([seq(1, 2)]);
    expect(batcher.stats().priorityQueueDepth).toBe(0);
    runner.release();
    await Promise.all([bulk, single]);
    expect(runner.batches.map((b) => b[0][0])).toEqual([100, 101, 102, 1]);
  });

  it('never fails a request for time queued while batches keep finishing, and fails it once nothing moves', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxBatchSize: 1, maxWaitMs: 0, timeoutMs: 100 });
    runner.hold();
    const bulk = batcher.submit(Array.from({ length: 10 }, (_, i) => seq(100 + i, 2)));
    const queued = batcher.submit([seq(1, 2)]);
    let settled = false;
    void Promise.allSettled([bulk, queued]).then(() => (settled = true));
    // Ten batches of 60 ms each: 660 ms in all, far past timeoutMs, but every batch finishes in time.
    for (let k = 0; k < 11 && !settled; k++) {
      await vi.advanceTimersByTimeAsync(60);
      runner.release();
      runner.hold();
      await vi.advanceTimersByTimeAsync(0);
    }
    await expect(bulk).resolves.toHaveLength(10);
    await expect(queued).resolves.toHaveLength(1);
    expect(batcher.stats().timedOut).toBe(0);
    // Now the engine is stuck (held): a new request fails after timeoutMs without progress.
    const stuck = batcher.submit([seq(2, 2)]);
    const outcome = stuck.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await outcome).toMatchObject({ kind: 'timeout' });
    runner.release();
  });
});

describe('batchBudget', () => {
  const budgets = { maxBatchTokens: 4_096, interactiveBulkTokens: 512 };
  const recent = { until: 200, priorityTokens: 40 };

  it("cuts bulk batches to the recent priority batches' size while a priority request is recent, and only bulk ones", () => {
    expect(batchBudget('bulk', 100, recent, budgets)).toBe(40);
    expect(batchBudget('bulk', 100, { until: 200, priorityTokens: 2_000 }, budgets)).toBe(512);
    expect(batchBudget('priority', 100, recent, budgets)).toBe(4_096);
  });

  it('gives bulk batches the full budget once the window has passed, or when no cap is set', () => {
    expect(batchBudget('bulk', 200, recent, budgets)).toBe(4_096);
    expect(batchBudget('bulk', 100, recent, { maxBatchTokens: 4_096 })).toBe(4_096);
    expect(batchBudget('bulk', 100, { until: 200, priorityTokens: Infinity }, { maxBatchTokens: 64, interactiveBulkTokens: 128 })).toBe(64);
  });
});

describe('Batcher: bulk batches next to interactive requests', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const sizes = (runner: FakeRunner, first: number) => runner.batches.filter((b) => b[0][0] >= first).map((b) => b.length);

  it('cuts a bulk request into small batches while single texts arrive, so the next one waits for little', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 0, interactiveBulkTokens: 12 });
    runner.hold();
    const single = batcher.submit([seq(1, 8)]); // runs at once, held; opens the interactive window
    await tick();
    const bulk = batcher.submit(Array.from({ length: 12 }, (_, i) => seq(100 + i, 4)));
    runner.release();
    await Promise.all([single, bulk]);
    // The single text's 8 padded tokens, in 4-token inputs: 2 per batch, not the 8 the size cap allows.
    expect(sizes(runner, 100)).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('never cuts bulk batches larger than interactiveBulkTokens, however large the single texts', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 0, interactiveBulkTokens: 12 });
    runner.hold();
    const single = batcher.submit([seq(1, 40)]);
    await tick();
    const bulk = batcher.submit(Array.from({ length: 12 }, (_, i) => seq(100 + i, 4)));
    runner.release();
    await Promise.all([single, bulk]);
    expect(sizes(runner, 100)).toEqual([3, 3, 3, 3]);
  });

  it('keeps full bulk batches with no interactive request, and again once the window has passed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, { ...config, maxWaitMs: 0, interactiveBulkTokens: 8, interactiveWindowMs: 1_000 });
    await batcher.submit(Array.from({ length: 12 }, (_, i) => seq(100 + i, 4)));
    expect(sizes(runner, 100)).toEqual([8, 4]);
    await batcher.submit([seq(1, 4)]);
    await vi.advanceTimersByTimeAsync(1_000);
    // Window over: the 4-token single text no longer shrinks bulk batches.
    await batcher.submit(Array.from({ length: 12 }, (_, i) => seq(200 + i, 4)));
    expect(sizes(runner, 200)).toEqual([8, 4]);
  });
});
