/**
 * `seed` through a running server's own API: the batches go to POST /v1/embed/batch, so the
 * vectors are computed by that server's backends and land in the database it reads, whatever
 * environment the CLI itself has.
 */
import { z } from 'zod';
import type { SeedBatchRunner } from '../core/seed.js';
import type { TaskType } from '../core/types.js';

const batchAnswer = z.object({ cached: z.array(z.boolean()), cache_hits: z.number().int().min(0) });
const errorAnswer = z.object({ error: z.object({ message: z.string() }) });

export function serverBatchRunner(opts: { url: string; key: string | null; model: string; taskType?: TaskType; timeoutMs?: number }): SeedBatchRunner {
  const endpoint = new URL('/v1/embed/batch', opts.url).href;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}) };
  return async (texts) => {
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ texts, model: opts.model, ...(opts.taskType ? { task_type: opts.taskType } : {}) }),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 300_000),
      });
    } catch (err) {
      throw new Error(`could not reach the server at ${opts.url}: ${causeOf(err)}`);
    }
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      const e = errorAnswer.safeParse(body);
      throw new Error(`the server at ${opts.url} answered HTTP ${res.status}: ${e.success ? e.data.error.message : 'no error message'}`);
    }
    const ok = batchAnswer.safeParse(body);
    if (!ok.success) throw new Error(`the server at ${opts.url} answered /v1/embed/batch with an unexpected body`);
    return { inputs: ok.data.cached.length, hits: ok.data.cache_hits };
  };
}

/** A fetch failure's own reason (`connect ECONNREFUSED ...`) rather than undici's "fetch failed". */
export function causeOf(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code && !cause.message.includes((cause as NodeJS.ErrnoException).code!) ? `${(cause as NodeJS.ErrnoException).code} ${cause.message}` : cause.message;
  return err instanceof Error ? err.message : String(err);
}
