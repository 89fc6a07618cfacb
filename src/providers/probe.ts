import { isDomainError } from '../core/errors.js';
import type { Embedder } from '../core/types.js';

/** What one real call to a provider gave: what `providers test` reports. */
export type ProbeResult =
  | { ok: true; model: string; dimensions: number; tokens: number; tokens_estimated: boolean; latency_ms: number }
  | { ok: false; model: string; error: { kind: string; message: string; upstream_status: number | null; retry_after_seconds: number | null }; latency_ms: number };

/** Embeds one short text with `model` (default: the provider's first) and says what came back, or how it failed. */
export async function probeProvider(backend: Embedder, model?: string): Promise<ProbeResult> {
  const id = model ?? backend.models()[0]?.id ?? '';
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const r = await backend.embed(id, [{ kind: 'text', text: 'embedding-cache provider test' }]);
    return { ok: true, model: id, dimensions: r.vectors[0]?.length ?? 0, tokens: r.tokens[0] ?? 0, tokens_estimated: r.tokensEstimated ?? false, latency_ms: ms() };
  } catch (err) {
    if (!isDomainError(err)) throw err;
    return {
      ok: false,
      model: id,
      error: { kind: err.kind, message: err.message, upstream_status: err.details.upstreamStatus ?? null, retry_after_seconds: err.details.retryAfterSeconds ?? null },
      latency_ms: ms(),
    };
  }
}
