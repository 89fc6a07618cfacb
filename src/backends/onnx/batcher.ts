/**
 * Token-budget micro-batching in front of one model session, in the shape of
 * text-embeddings-inference's core/src/queue.rs: tokenised entries wait in a bounded queue; a
 * batch (the oldest entry plus others of similar length) is cut within a padded token budget
 * (longest × count), and runs when the queue holds a full batch, when the oldest entry has
 * waited `maxWaitMs`, or at once when no other request is on its way (see expect()); entries
 * whose request has timed out or failed are skipped; one session.run at a time per runner (a GPU gets two, so it
 * is not idle while a batch's inputs and outputs cross); results go back to their callers.
 */
import { DomainError } from '../../core/errors.js';
import type { TokenIds } from './packed-ids.js';
import type { BatchRunner } from './session.js';

export interface BatcherConfig {
  /** Padded tokens per batch: longest sequence × batch size stays within it. */
  maxBatchTokens: number;
  /** Sequences per batch; 1 turns batching off. */
  maxBatchSize: number;
  /** How long the oldest entry waits for company before a partial batch runs. */
  maxWaitMs: number;
  /** Entries (inputs) that may wait; a request that would overflow it is refused as `overloaded` (with a retry hint). */
  maxQueue: number;
  /** A request not answered in this time fails with `timeout` and its queued entries are dropped. */
  timeoutMs: number;
}

export interface BatcherStats {
  /** Entries waiting whose callers still want them. */
  queueDepth: number;
  /** Their tokens (unpadded). */
  queuedTokens: number;
  /** Whether a session.run is in flight. */
  running: boolean;
  /** How many are (at most one per runner). */
  inFlight: number;
  /** Batches run since start. */
  batches: number;
  /** Vectors computed since start. */
  embeddings: number;
  /** Entries dropped at batch time because their request timed out or failed. */
  skipped: number;
  /** Requests refused because the queue was full. */
  rejectedFull: number;
  /** Requests that timed out. */
  timedOut: number;
  /** Sizes of the most recent batches, oldest first. */
  lastBatchSizes: number[];
  /** Padded tokens (longest × size) of the same batches. */
  lastBatchTokens: number[];
}

/** A queued input. */
export interface Entry {
  /** Token ids, frame included. */
  ids: TokenIds;
  /** The submission it belongs to. */
  request: QueuedRequest;
  /** Its position in the submission, for scattering the result back. */
  index: number;
  /** When it was queued (ms, monotonic). */
  queuedAt: number;
}

/** One submit() call: its entries share its fate (timeout, failure). */
class QueuedRequest {
  readonly results: Float32Array[];
  /** Entries still in the queue, for the live depth. */
  queuedEntries: number;
  queuedTokens = 0;
  done = false;
  private remaining: number;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    size: number,
    private readonly onSettle: (request: QueuedRequest) => void,
    private readonly resolveFn: (vectors: Float32Array[]) => void,
    private readonly rejectFn: (err: unknown) => void,
  ) {
    this.results = new Array<Float32Array>(size);
    this.remaining = size;
    this.queuedEntries = size;
  }

  onCleanup(fn: () => void): void {
    this.cleanups.push(fn);
  }

  deliver(index: number, vector: Float32Array): void {
    if (this.done) return;
    this.results[index] = vector;
    if (--this.remaining === 0) this.settle(() => this.resolveFn(this.results));
  }

  fail(err: unknown): void {
    if (!this.done) this.settle(() => this.rejectFn(err));
  }

  private settle(finish: () => void): void {
    this.done = true;
    for (const fn of this.cleanups) fn();
    this.onSettle(this);
    finish();
  }
}

const shuttingDown = () => new DomainError('shutting_down', 'The local model is shutting down; retry on another instance.');

/** How many recent batches stats() reports. */
const RECENT_BATCHES = 16;

/** How far past the oldest entry takeBatch looks for similar lengths, in batches. */
const WINDOW_BATCHES = 4;

/**
 * Cuts the next batch out of `queue` (mutated). The oldest live entry always goes, so nothing
 * starves and one sequence longer than the budget still runs (alone). It is joined by the live
 * entries closest to it in length among the next few batches' worth (ties: oldest first), while
 * longest × count stays within the budget and the size cap holds: similar lengths mean little
 * padding, and padded tokens are what a batch costs. Dead entries met on the way are dropped.
 */
export function takeBatch(queue: Entry[], maxBatchTokens: number, maxBatchSize: number): { batch: Entry[]; skipped: number } {
  const window: Entry[] = [];
  let skipped = 0;
  let scanned = 0;
  for (; scanned < queue.length && window.length < maxBatchSize * WINDOW_BATCHES; scanned++) {
    if (queue[scanned].request.done) skipped++;
    else window.push(queue[scanned]);
  }
  if (window.length === 0) {
    queue.splice(0, scanned);
    return { batch: [], skipped };
  }
  const [anchor, ...rest] = window;
  const distance = (e: Entry) => Math.abs(e.ids.length - anchor.ids.length);
  const batch = [anchor];
  let longest = anchor.ids.length;
  // Array.prototype.sort is stable: equal distances keep queue (age) order.
  for (const entry of rest.sort((a, b) => distance(a) - distance(b))) {
    if (batch.length >= maxBatchSize) break;
    const nextLongest = Math.max(longest, entry.ids.length);
    if (nextLongest * (batch.length + 1) > maxBatchTokens) continue;
    batch.push(entry);
    longest = nextLongest;
  }
  const taken = new Set(batch);
  queue.splice(0, scanned, ...window.filter((e) => !taken.has(e)));
  return { batch, skipped };
}

export class Batcher {
  private readonly queue: Entry[] = [];
  private live = { entries: 0, tokens: 0 };
  /** Requests announced by expect() and not yet submitted (being tokenised). */
  private incoming = 0;
  /** Runners with no batch in flight. */
  private readonly idle: BatchRunner[];
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /** Smoothed vectors per second, to suggest a Retry-After. */
  private rate = 0;
  private counters = { batches: 0, embeddings: 0, skipped: 0, rejectedFull: 0, timedOut: 0 };
  private recentSizes: number[] = [];
  private recentTokens: number[] = [];

  /** One queue feeding one or more runners (sessions of the same graph): batches stay full. */
  constructor(
    runners: BatchRunner | readonly BatchRunner[],
    private readonly config: BatcherConfig,
  ) {
    if (config.maxBatchSize < 1 || config.maxBatchTokens < 1) throw new Error('batcher: maxBatchSize and maxBatchTokens must be >= 1');
    this.idle = Array.isArray(runners) ? [...runners] : [runners as BatchRunner];
    if (this.idle.length === 0) throw new Error('batcher: at least one runner');
    this.runners = this.idle.length;
  }

  private readonly runners: number;

  private get inFlight(): number {
    return this.runners - this.idle.length;
  }

  /**
   * Queues `sequences` (one request) and resolves with their vectors in order. Rejects with
   * `overloaded` when the queue is full, `timeout` when not answered in time, `shutting_down`
   * once closed.
   */
  submit(sequences: readonly TokenIds[]): Promise<Float32Array[]> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (sequences.length === 0) return Promise.resolve([]);
    // A request larger than the whole queue is still let in when the queue is empty.
    if (this.live.entries > 0 && this.live.entries + sequences.length > this.config.maxQueue) {
      this.counters.rejectedFull++;
      return Promise.reject(
        new DomainError('overloaded', `The local model is overloaded (${this.live.entries} inputs queued); retry later.`, {
          retryAfterSeconds: this.retryAfterSeconds(),
        }),
      );
    }
    return new Promise<Float32Array[]>((resolve, reject) => {
      const request = new QueuedRequest(sequences.length, (r) => this.forget(r), resolve, reject);
      this.watch(request);
      const now = performance.now();
      // Shortest first: a big request's neighbours in the queue have similar lengths, so the
      // batches cut from it carry little padding.
      const order = sequences.map((_, i) => i).sort((a, b) => sequences[a].length - sequences[b].length);
      for (const index of order) {
        const ids = sequences[index];
        this.queue.push({ ids, request, index, queuedAt: now });
        request.queuedTokens += ids.length;
      }
      this.live.entries += sequences.length;
      this.live.tokens += request.queuedTokens;
      this.pump();
    });
  }

  /**
   * Announces a request on its way (being tokenised); call the returned function once it has
   * been submitted or given up. The wait for company only lasts while some request is on its
   * way: a lone caller is not made to wait for nobody.
   */
  expect(): () => void {
    this.incoming++;
    let arrived = false;
    return () => {
      if (arrived) return;
      arrived = true;
      this.incoming--;
      this.pump();
    };
  }

  stats(): BatcherStats {
    return {
      queueDepth: this.live.entries,
      queuedTokens: this.live.tokens,
      running: this.inFlight > 0,
      inFlight: this.inFlight,
      ...this.counters,
      lastBatchSizes: [...this.recentSizes],
      lastBatchTokens: [...this.recentTokens],
    };
  }

  /** Refuses new work and fails what is queued; a batch in flight still finishes. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    const gone = shuttingDown();
    for (const entry of this.queue) entry.request.fail(gone);
    this.queue.length = 0;
  }

  private watch(request: QueuedRequest): void {
    const timeout = setTimeout(() => {
      this.counters.timedOut++;
      request.fail(
        new DomainError('timeout', `The local model did not answer within ${this.config.timeoutMs} ms; retry later.`, {
          retryAfterSeconds: this.retryAfterSeconds(),
        }),
      );
    }, this.config.timeoutMs);
    request.onCleanup(() => clearTimeout(timeout));
  }

  /** A settled request's queued entries no longer count; they are skipped when reached. */
  private forget(request: QueuedRequest): void {
    this.live.entries -= request.queuedEntries;
    this.live.tokens -= request.queuedTokens;
    request.queuedEntries = 0;
    request.queuedTokens = 0;
  }

  /** Starts batches while a runner is free and one is due, else arms the wait timer. */
  private pump(): void {
    while (this.idle.length > 0 && !this.closed && this.queue.length > 0) {
      const waited = performance.now() - this.queue[0].queuedAt;
      const full = this.live.tokens >= this.config.maxBatchTokens || this.live.entries >= this.config.maxBatchSize;
      if (!(full || waited >= this.config.maxWaitMs || this.incoming === 0)) {
        this.arm(waited);
        return;
      }
      clearTimeout(this.timer);
      this.timer = undefined;
      if (!this.runNext(this.idle.pop()!)) return;
    }
  }

  private arm(waited: number): void {
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.config.maxWaitMs - waited);
    }
  }

  /** Cuts a batch and runs it on `runner`; false (runner returned) when only dead entries were left. */
  private runNext(runner: BatchRunner): boolean {
    const { batch, skipped } = takeBatch(this.queue, this.config.maxBatchTokens, this.config.maxBatchSize);
    this.counters.skipped += skipped;
    if (batch.length === 0) {
      this.idle.push(runner);
      return false;
    }
    void this.run(runner, batch);
    return true;
  }

  private async run(runner: BatchRunner, batch: Entry[]): Promise<void> {
    for (const entry of batch) {
      entry.request.queuedEntries--;
      entry.request.queuedTokens -= entry.ids.length;
      this.live.entries--;
      this.live.tokens -= entry.ids.length;
    }
    this.record(batch);
    const started = performance.now();
    try {
      const vectors = await runner.run(batch.map((e) => e.ids));
      if (vectors.length !== batch.length) throw new Error(`model returned ${vectors.length} vectors for ${batch.length} inputs`);
      this.observeRate(batch.length, performance.now() - started);
      this.counters.embeddings += batch.length;
      batch.forEach((entry, i) => entry.request.deliver(entry.index, vectors[i]));
    } catch (err) {
      for (const entry of batch) entry.request.fail(err);
    } finally {
      this.idle.push(runner);
      this.pump();
    }
  }

  private record(batch: Entry[]): void {
    this.counters.batches++;
    const longest = batch.reduce((m, e) => Math.max(m, e.ids.length), 0);
    this.recentSizes.push(batch.length);
    this.recentTokens.push(longest * batch.length);
    if (this.recentSizes.length > RECENT_BATCHES) {
      this.recentSizes.shift();
      this.recentTokens.shift();
    }
  }

  private observeRate(count: number, ms: number): void {
    const rate = (count * 1000) / Math.max(ms, 1e-3);
    this.rate = this.rate === 0 ? rate : 0.8 * this.rate + 0.2 * rate;
  }

  /** Seconds until the current backlog should have drained, 1 to 60. */
  private retryAfterSeconds(): number {
    if (this.rate === 0) return 1;
    return Math.min(60, Math.max(1, Math.ceil(this.live.entries / this.rate)));
  }
}
