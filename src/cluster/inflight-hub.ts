/**
 * The machine's in-flight registry, held by the primary: which worker resolves each key (store
 * lookup, then compute), who waits for it, and computed values whose rows are not stored yet.
 * An identical miss arriving at two workers at once is computed once: the second worker's
 * claim answers `wait`, and the owner's vector is handed over when it settles.
 */
import { memoryKeyPrefix } from '../core/cache-key.js';
import type { ClaimAnswer, ToPrimary, ToWorker, WireValue } from './messages.js';

interface Claim {
  owner: number;
  /** Set once computed: handed to later claims until the owner says its row is stored. */
  done: WireValue | null;
  waiters: Set<number>;
}

export class InFlightHub {
  private readonly claims = new Map<string, Claim>();

  /** `send` delivers a message to one worker (by its cluster id); a gone worker is skipped. */
  constructor(private readonly send: (workerId: number, msg: ToWorker) => void) {}

  receive(workerId: number, msg: ToPrimary): void {
    switch (msg.ec) {
      case 'claim':
        this.send(workerId, { ec: 'claimed', id: msg.id, answers: msg.keys.map((k) => this.claim(workerId, k)) });
        return;
      case 'settle': {
        const c = this.owned(workerId, msg.key);
        if (!c) return;
        for (const w of c.waiters) this.send(w, { ec: 'result', key: msg.key, value: msg.value, cached: msg.cached });
        c.waiters.clear();
        // A row found in the store is there for anyone to read; a computed one is not yet.
        if (msg.cached) this.claims.delete(msg.key);
        else c.done = msg.value;
        return;
      }
      case 'fail': {
        const c = this.owned(workerId, msg.key);
        if (!c) return;
        for (const w of c.waiters) this.send(w, { ec: 'failed', key: msg.key, error: msg.error });
        this.claims.delete(msg.key);
        return;
      }
      case 'stored':
        for (const k of msg.keys) if (this.owned(workerId, k)?.done) this.claims.delete(k);
        return;
      case 'drop': {
        const prefix = memoryKeyPrefix(msg.tenantId);
        for (const [k, c] of this.claims) if (c.done && k.startsWith(prefix)) this.claims.delete(k);
        return;
      }
    }
  }

  private claim(workerId: number, key: string): ClaimAnswer {
    const c = this.claims.get(key);
    if (!c) {
      this.claims.set(key, { owner: workerId, done: null, waiters: new Set() });
      return 'own';
    }
    if (c.owner === workerId) return c.done ?? 'own';
    if (c.done) return c.done;
    c.waiters.add(workerId);
    return 'wait';
  }

  private owned(workerId: number, key: string): Claim | undefined {
    const c = this.claims.get(key);
    return c?.owner === workerId ? c : undefined;
  }

  /**
   * A worker exited: it waits for nothing, and each key it owned goes to one of the workers
   * waiting for it (which then looks it up and computes it itself; the others keep waiting,
   * now on it), or is freed when nobody waits.
   */
  workerGone(workerId: number): void {
    for (const c of this.claims.values()) c.waiters.delete(workerId);
    for (const [k, c] of this.claims) {
      if (c.owner !== workerId) continue;
      const [heir] = c.waiters;
      if (heir === undefined) {
        this.claims.delete(k);
        continue;
      }
      c.waiters.delete(heir);
      c.owner = heir;
      c.done = null;
      this.send(heir, { ec: 'take', key: k });
    }
  }

  /** Keys claimed (tests, logs). */
  get size(): number {
    return this.claims.size;
  }
}
