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
  /**
   * A request fails with `timeout` (its queued entries dropped) when nothing it waits on has moved
   * for this long: its own batch computing, or, while it is only queued, the engine finishing
   * batches. Time spent queued behind work that progresses never counts (see timeoutDueIn).
   */
  timeoutMs: number;
  /**
   * Requests of at most this many inputs go to the priority lane: interactive single texts are
   * not stuck behind a bulk ingestion (see chooseLane). Default 8; 0 turns the lane off.
   */
  priorityMaxInputs?: number;
  /**
   * Bulk batches while interactive (priority-lane) requests are recent: a batch in flight
   * cannot be interrupted, so a single text arriving during a bulk ingestion waits for one bulk
   * batch. Such batches are cut to the padded tokens of the largest recent priority batch (about
   * what the single text costs itself), at most this many. Undefined: no cap (bulk batches
   * always use maxBatchTokens).
   */
  interactiveBulkTokens?: number;
  /** How long after a priority-lane request bulk batches stay capped. Default 2000 ms. */
  interactiveWindowMs?: number;
  /**
   * On CPU a sequence of a few hundred tokens already fills the matrix units, so batching buys
   * little and padding is pure waste: an entry joins a batch only while padding stays within
   * this share of its padded tokens (or the batch is small, see PaddingRule). Undefined (CUDA,
   * where big batches are what pays): only the token budget limits.
   */
  padding?: PaddingRule;
}

export interface PaddingRule {
  /** Most of a batch's padded tokens (longest × count) that may be padding, 0..1. */
  maxShare: number;
  /** Padded tokens under which a batch is cheap whatever its padding (short texts batched). */
  freeTokens: number;
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
  /** Entries waiting in the priority lane (small requests). */
  priorityQueueDepth: number;
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
  /** Entries of it in a running batch. */
  runningEntries = 0;
  /** Last time something of it moved (submitted, a batch of it started, a vector came back). */
  progressAt: number;
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
    this.progressAt = performance.now();
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

/** Priority batches in a row while bulk work waits, before one bulk batch goes (no starvation). */
export const PRIORITY_STREAK = 4;

export type Lane = 'priority' | 'bulk';

/**
 * Which lane the next batch is cut from: the priority lane first, except that after
 * PRIORITY_STREAK priority batches in a row with bulk entries waiting, one bulk batch goes.
 */
export function chooseLane(priorityQueued: boolean, bulkQueued: boolean, priorityStreak: number): Lane | null {
  if (priorityQueued && (!bulkQueued || priorityStreak < PRIORITY_STREAK)) return 'priority';
  if (bulkQueued) return 'bulk';
  return null;
}

/**
 * Milliseconds until a request times out (<= 0: now). The clock runs from the last time
 * something it waits on moved: while a batch of it computes, from when that batch started or
 * last delivered a vector of it; while it is only queued, from its own last progress or the
 * engine's last finished batch, whichever is later. A request queued behind a 2048-text
 * ingestion therefore waits as long as the engine keeps finishing batches, and still fails
 * when the engine is stuck.
 */
export function timeoutDueIn(now: number, timeoutMs: number, requestProgressAt: number, engineProgressAt: number, running: boolean): number {
  const since = running ? requestProgressAt : Math.max(requestProgressAt, engineProgressAt);
  return since + timeoutMs - now;
}

/**
 * Cuts the next batch out of `queue` (mutated). The oldest live entry always goes, so nothing
 * starves and one sequence longer than the budget still runs (alone). It is joined by the live
 * entries closest to it in length among the next few batches' worth (ties: oldest first), while
 * longest × count stays within the budget and the size cap holds: similar lengths mean little
 * padding, and padded tokens are what a batch costs. Dead entries met on the way are dropped.
 */
export function takeBatch(queue: Entry[], maxBatchTokens: number, maxBatchSize: number, padding?: PaddingRule): { batch: Entry[]; skipped: number } {
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
  let real = anchor.ids.length;
  // Array.prototype.sort is stable: equal distances keep queue (age) order.
  for (const entry of rest.sort((a, b) => distance(a) - distance(b))) {
    if (batch.length >= maxBatchSize) break;
    const nextLongest = Math.max(longest, entry.ids.length);
    const padded = nextLongest * (batch.length + 1);
    if (padded > maxBatchTokens) continue;
    // Left for a later batch of its own length (it is the oldest there soon enough).
    if (padding && padded > padding.freeTokens && padded - (real + entry.ids.length) > padding.maxShare * padded) continue;
    batch.push(entry);
    longest = nextLongest;
    real += entry.ids.length;
  }
  const taken = new Set(batch);
  queue.splice(0, scanned, ...window.filter((e) => !taken.has(e)));
  return { batch, skipped };
}

/**
 * The padded-token budget of the next batch: until `interactiveUntil` (a priority request came
 * recently) bulk batches shrink to `priorityTokens` (the largest recent priority batch's padded
 * tokens), at most `interactiveBulkTokens`, so that the next single text waits for about its
 * own cost, not for a full batch.
 */
export function batchBudget(
  lane: Lane,
  now: number,
  interactive: { until: number; priorityTokens: number },
  config: Pick<BatcherConfig, 'maxBatchTokens' | 'interactiveBulkTokens'>,
): number {
  if (lane === 'bulk' && config.interactiveBulkTokens !== undefined && now < interactive.until) {
    return Math.max(1, Math.min(config.maxBatchTokens, config.interactiveBulkTokens, interactive.priorityTokens));
  }
  return config.maxBatchTokens;
}

/** How many recent priority batches the interactive bulk budget looks at. */
const RECENT_PRIORITY = 8;

export class Batcher {
  private readonly lanes: Record<Lane, Entry[]> = { priority: [], bulk: [] };
  private priorityStreak = 0;
  /** Until when bulk batches are cut small because a priority request came (ms, monotonic). */
  private interactiveUntil = -Infinity;
  /** Padded tokens of the last RECENT_PRIORITY priority batches. */
  private recentPriorityTokens: number[] = [];
  /** When the engine last finished a batch (ms, monotonic). */
  private engineProgressAt = performance.now();
  private readonly priorityMaxInputs: number;
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
    this.priorityMaxInputs = config.priorityMaxInputs ?? 8;
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
      const priority = sequences.length <= this.priorityMaxInputs;
      if (priority) this.interactiveUntil = now + (this.config.interactiveWindowMs ?? 2_000);
      const lane = this.lanes[priority ? 'priority' : 'bulk'];
      for (const index of order) {
        const ids = sequences[index];
        lane.push({ ids, request, index, queuedAt: now });
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
      priorityQueueDepth: this.lanes.priority.filter((e) => !e.request.done).length,
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
    for (const queue of Object.values(this.lanes)) {
      for (const entry of queue) entry.request.fail(gone);
      queue.length = 0;
    }
  }

  /** Arms the request's deadline; when it fires while the request (or the engine) still moves, it is armed again. */
  private watch(request: QueuedRequest): void {
    let timer: NodeJS.Timeout;
    const check = () => {
      const dueIn = timeoutDueIn(performance.now(), this.config.timeoutMs, request.progressAt, this.engineProgressAt, request.runningEntries > 0);
      if (dueIn > 0) {
        timer = setTimeout(check, dueIn);
        return;
      }
      this.counters.timedOut++;
      request.fail(
        new DomainError('timeout', `The local model made no progress on this request for ${this.config.timeoutMs} ms (EMBED_TIMEOUT_MS); retry later.`, {
          retryAfterSeconds: this.retryAfterSeconds(),
        }),
      );
    };
    timer = setTimeout(check, this.config.timeoutMs);
    request.onCleanup(() => clearTimeout(timer));
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
    while (this.idle.length > 0 && !this.closed && (this.lanes.priority.length > 0 || this.lanes.bulk.length > 0)) {
      const oldest = Math.min(this.lanes.priority[0]?.queuedAt ?? Infinity, this.lanes.bulk[0]?.queuedAt ?? Infinity);
      const waited = performance.now() - oldest;
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

  /** Cuts a batch (lane by chooseLane) and runs it on `runner`; false (runner returned) when only dead entries were left. */
  private runNext(runner: BatchRunner): boolean {
    for (;;) {
      const lane = chooseLane(this.lanes.priority.length > 0, this.lanes.bulk.length > 0, this.priorityStreak);
      if (lane === null) break;
      const priorityTokens = this.recentPriorityTokens.length > 0 ? Math.max(...this.recentPriorityTokens) : Infinity;
      const budget = batchBudget(lane, performance.now(), { until: this.interactiveUntil, priorityTokens }, this.config);
      const { batch, skipped } = takeBatch(this.lanes[lane], budget, this.config.maxBatchSize, this.config.padding);
      this.counters.skipped += skipped;
      if (batch.length === 0) continue; // only dead entries in that lane: they are gone now
      this.priorityStreak = lane === 'priority' ? this.priorityStreak + 1 : 0;
      if (lane === 'priority') {
        this.recentPriorityTokens.push(batch.reduce((m, e) => Math.max(m, e.ids.length), 0) * batch.length);
        if (this.recentPriorityTokens.length > RECENT_PRIORITY) this.recentPriorityTokens.shift();
      }
      void this.run(runner, batch);
      return true;
    }
    this.idle.push(runner);
    return false;
  }

  private async run(runner: BatchRunner, batch: Entry[]): Promise<void> {
    const started = performance.now();
    for (const entry of batch) {
      entry.request.runningEntries++;
      entry.request.progressAt = started;
      entry.request.queuedEntries--;
      entry.request.queuedTokens -= entry.ids.length;
      this.live.entries--;
      this.live.tokens -= entry.ids.length;
    }
    this.record(batch);
    try {
      const vectors = await runner.run(batch.map((e) => e.ids));
      if (vectors.length !== batch.length) throw new Error(`model returned ${vectors.length} vectors for ${batch.length} inputs`);
      const now = performance.now();
      this.observeRate(batch.length, now - started);
      this.engineProgressAt = now;
      this.counters.embeddings += batch.length;
      batch.forEach((entry, i) => {
        entry.request.runningEntries--;
        entry.request.progressAt = now;
        entry.request.deliver(entry.index, vectors[i]);
      });
    } catch (err) {
      for (const entry of batch) {
        entry.request.runningEntries--;
        entry.request.fail(err);
      }
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
