import { memoryKeyPrefix } from './cache-key.js';
import type { InFlightClaim, InFlightRegistry, InFlightResult } from './ports.js';

type Value = InFlightResult['value'];

interface Entry {
  promise: Promise<InFlightResult>;
  resolve: (r: InFlightResult) => void;
  reject: (e: unknown) => void;
  /** Set once computed: served as a hit until its row is stored. */
  done: Value | null;
}

/** The in-flight registry of one process: a map, answered synchronously (nothing to await). */
export class InProcessInFlight implements InFlightRegistry {
  private readonly entries = new Map<string, Entry>();

  claim(keys: string[]): InFlightClaim[] {
    return keys.map((key) => {
      const running = this.entries.get(key);
      if (running?.done) return { kind: 'done', value: running.done };
      if (running) return { kind: 'wait', result: running.promise };
      this.register(key);
      return { kind: 'own' };
    });
  }

  private register(key: string): void {
    let resolve!: Entry['resolve'];
    let reject!: Entry['reject'];
    const promise = new Promise<InFlightResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // a key nobody else waits for must not raise an unhandled rejection
    this.entries.set(key, { promise, resolve, reject, done: null });
  }

  settle(key: string, outcome: InFlightResult | { error: unknown }, keepUntilStored = true): void {
    const entry = this.entries.get(key);
    if (!entry || entry.done) return;
    if ('error' in outcome) {
      this.entries.delete(key);
      entry.reject(outcome.error);
      return;
    }
    if (outcome.cached || !keepUntilStored) this.entries.delete(key);
    else entry.done = outcome.value;
    entry.resolve(outcome);
  }

  stored(key: string, value: Value): void {
    if (this.entries.get(key)?.done === value) this.entries.delete(key);
  }

  dropTenant(tenantId: number): void {
    const prefix = memoryKeyPrefix(tenantId);
    for (const [key, entry] of this.entries) if (entry.done && key.startsWith(prefix)) this.entries.delete(key);
  }

  /** Keys in flight (tests). */
  get size(): number {
    return this.entries.size;
  }
}
