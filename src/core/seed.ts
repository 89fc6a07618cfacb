import type { Tier } from './domain.js';
import type { EmbedRequests } from './embed-request.js';
import type { TenantContext } from './tenant.js';
import type { TaskType } from './types.js';

export interface SeedProgress {
  inputs: number;
  hits: number;
  misses: number;
}

/** Computes one batch of texts; says how many were already cached. */
export type SeedBatchRunner = (texts: string[]) => Promise<{ inputs: number; hits: number }>;

/**
 * Warms a tenant's cache from a stream of texts: batches of `batchSize` go through the same
 * use-case as requests (model resolution, tier checks, token charging; already cached texts
 * cost nothing), `concurrency` batches at a time.
 */
export async function seedCache(
  requests: EmbedRequests,
  tenant: TenantContext,
  tier: Tier,
  model: string,
  texts: AsyncIterable<string>,
  opts: { batchSize: number; concurrency: number; taskType?: TaskType; onProgress?: (p: SeedProgress) => void },
): Promise<SeedProgress> {
  return seedBatches(
    texts,
    async (batch) => {
      const o = await requests.run(tenant, tier, { model, inputs: batch.map((text) => ({ kind: 'text', text })), taskType: opts.taskType });
      return { inputs: o.items.length, hits: o.hits };
    },
    opts,
  );
}

/**
 * The batching of seedCache around any runner (in-process, or a running server's API):
 * `concurrency` batches in flight at most, the first failure stops the seed.
 */
export async function seedBatches(
  texts: AsyncIterable<string>,
  run: SeedBatchRunner,
  opts: { batchSize: number; concurrency: number; onProgress?: (p: SeedProgress) => void },
): Promise<SeedProgress> {
  const total: SeedProgress = { inputs: 0, hits: 0, misses: 0 };
  const running = new Set<Promise<void>>();
  const submit = (batch: string[]) => {
    const p: Promise<void> = run(batch)
      .then((o) => {
        total.inputs += o.inputs;
        total.hits += o.hits;
        total.misses += o.inputs - o.hits;
        opts.onProgress?.(total);
      })
      .finally(() => running.delete(p));
    running.add(p);
  };
  let batch: string[] = [];
  for await (const text of texts) {
    if (text.length === 0) continue;
    batch.push(text);
    if (batch.length >= opts.batchSize) {
      submit(batch);
      batch = [];
      // Back-pressure: never more than `concurrency` batches in flight; a failure stops the seed.
      if (running.size >= opts.concurrency) await Promise.race(running);
    }
  }
  if (batch.length > 0) submit(batch);
  await Promise.all(running);
  return total;
}
