/**
 * A worker's side of the machine's in-flight registry (InFlightHub in the primary). Keys are
 * first claimed in this process (core/inflight.ts: concurrent identical requests here share
 * one claim and never ask twice); a key this process would own is then claimed at the primary,
 * one round trip per request for all its keys. Hot-cache hits never get here.
 */
import { DomainError } from '../core/errors.js';
import { InProcessInFlight } from '../core/inflight.js';
import type { InFlightClaim, InFlightRegistry, InFlightResult, InFlightWaitResult } from '../core/ports.js';
import { asBuffer, fromWire, isToWorker, toWire, type ClaimAnswer, type ToPrimary, type ToWorker } from './messages.js';

export interface PrimaryChannel {
  send(msg: ToPrimary): void;
  /** Every message from the primary (foreign ones are filtered here). */
  onMessage(fn: (msg: unknown) => void): void;
}

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

export class ClusterInFlight implements InFlightRegistry {
  private readonly local = new InProcessInFlight();
  private nextId = 1;
  /** Claims asked of the primary, by message id, with the keys they asked for. */
  private readonly claims = new Map<number, Pending<InFlightClaim[]> & { keys: string[] }>();
  /** Keys another worker resolves, waited for here. */
  private readonly remote = new Map<string, Pending<InFlightWaitResult>>();
  /** Keys this worker holds at the primary. */
  private readonly owned = new Set<string>();
  private storedBatch: string[] = [];
  private closed: DomainError | null = null;
  /** Keys this worker awaited from another worker, and keys handed over already computed. */
  readonly counts = { waited: 0, handedOver: 0 };

  constructor(private readonly channel: PrimaryChannel) {
    channel.onMessage((msg) => {
      if (isToWorker(msg)) this.receive(msg);
    });
  }

  claim(keys: string[]): InFlightClaim[] | Promise<InFlightClaim[]> {
    const here = this.local.claim(keys);
    const ask: number[] = [];
    here.forEach((c, i) => c.kind === 'own' && ask.push(i));
    if (ask.length === 0) return here;
    const askKeys = ask.map((i) => keys[i]);
    return this.request(askKeys).then(
      (answers) => {
        ask.forEach((i, j) => {
          here[i] = answers[j];
        });
        return here;
      },
      (err: unknown) => {
        for (const k of askKeys) this.local.settle(k, { error: err });
        throw err;
      },
    );
  }

  private answer(key: string, a: ClaimAnswer): InFlightClaim {
    if (a === 'own') {
      this.owned.add(key);
      return { kind: 'own' };
    }
    if (a === 'wait') {
      this.counts.waited++;
      const result = new Promise<InFlightWaitResult>((resolve, reject) => this.remote.set(key, { resolve, reject }));
      // Requests of this worker waiting on the same key get it too; it is not kept here (the owner stores it).
      // Handed over ('own'): the request holding this wait settles the key, and so the local waiters.
      result.then(
        (r) => r !== 'own' && this.local.settle(key, r, false),
        (err: unknown) => this.local.settle(key, { error: err }),
      );
      return { kind: 'wait', result };
    }
    // Computed by another worker, its row not stored yet: a hit, as in one process.
    this.counts.handedOver++;
    const value = { bytes: asBuffer(a.bytes), tokens: a.tokens };
    this.local.settle(key, { value, cached: true });
    return { kind: 'done', value };
  }

  private request(keys: string[]): Promise<InFlightClaim[]> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    const p = new Promise<InFlightClaim[]>((resolve, reject) => this.claims.set(id, { keys, resolve, reject }));
    this.channel.send({ ec: 'claim', id, keys });
    return p;
  }

  settle(key: string, outcome: InFlightResult | { error: unknown }): void {
    this.local.settle(key, outcome);
    if (!this.owned.has(key)) return;
    if ('error' in outcome) {
      this.owned.delete(key);
      this.send({ ec: 'fail', key, error: toWire(outcome.error) });
      return;
    }
    if (outcome.cached) this.owned.delete(key);
    this.send({ ec: 'settle', key, value: { bytes: outcome.value.bytes, tokens: outcome.value.tokens }, cached: outcome.cached });
  }

  stored(key: string, value: InFlightResult['value']): void {
    this.local.stored(key, value);
    if (!this.owned.delete(key)) return;
    // Rows are written in batches: one message per batch, not per key.
    if (this.storedBatch.length === 0) queueMicrotask(() => this.flushStored());
    this.storedBatch.push(key);
  }

  private flushStored(): void {
    const keys = this.storedBatch;
    this.storedBatch = [];
    if (keys.length > 0) this.send({ ec: 'stored', keys });
  }

  dropTenant(tenantId: number): void {
    this.local.dropTenant(tenantId);
    this.send({ ec: 'drop', tenantId });
  }

  private send(msg: ToPrimary): void {
    if (!this.closed) this.channel.send(msg);
  }

  private receive(msg: ToWorker): void {
    if (msg.ec === 'claimed') {
      const p = this.claims.get(msg.id);
      this.claims.delete(msg.id);
      // Answered here, not in a promise continuation: node emits every message of one IPC read
      // before any continuation runs, so the owner's result may be the very next message, and
      // a wait registered later would never hear it.
      if (p) p.resolve(msg.answers.map((a, j) => this.answer(p.keys[j], a)));
      return;
    }
    const p = this.remote.get(msg.key);
    this.remote.delete(msg.key);
    if (msg.ec === 'take') {
      this.owned.add(msg.key);
      if (p) p.resolve('own');
      // Nobody here waits any more: the key goes back, failing (retryably) whoever else waits.
      else this.settle(msg.key, { error: new DomainError('unavailable', 'The worker process computing this input stopped; retry the request.', { retryAfterSeconds: 1 }) });
      return;
    }
    if (!p) return;
    if (msg.ec === 'result') p.resolve({ value: { bytes: asBuffer(msg.value.bytes), tokens: msg.value.tokens }, cached: msg.cached });
    else p.reject(fromWire(msg.error));
  }

  /** The primary is gone: whatever waits on it fails now instead of hanging. */
  close(): void {
    if (this.closed) return;
    this.closed = new DomainError('shutting_down', 'This worker lost its primary process and is stopping; retry the request.', { retryAfterSeconds: 1 });
    for (const p of this.claims.values()) p.reject(this.closed);
    for (const p of this.remote.values()) p.reject(this.closed);
    this.claims.clear();
    this.remote.clear();
  }
}
