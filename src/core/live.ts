import type { HotCache } from './hot-cache.js';
import type { Metrics } from './metrics.js';

/** A dependency check: resolves when the dependency answers. */
export type Probe = () => Promise<unknown>;

export interface LiveSources {
  hot: HotCache;
  metrics: Metrics;
  store: { kind: string; probe: Probe };
  /** null when REDIS_URL is not set (in-process limits). */
  redis: Probe | null;
  /** How long a probe may take before the dependency counts as down. */
  probeTimeoutMs?: number;
}

export interface Health {
  ok: boolean;
  latency_ms: number | null;
  error: string | null;
}

/** Figures of this process right now: what the operator view's "live" panel shows. */
export interface LiveFigures {
  object: 'live';
  at: string;
  uptime_s: number;
  rss_bytes: number;
  hot_cache: { bytes: number; max_bytes: number; entries: number; lookups: number; hits: number; hit_ratio: number };
  /** Inputs served by this process since it started, from the Prometheus counters. */
  cache: { hits: number; misses: number; hit_ratio: number };
  /** Inputs waiting per local model. */
  queue_depth: Record<string, number>;
  /** Backend call durations over the last minute (ms), by backend. */
  backends: Record<string, { calls: number; p50_ms: number | null; p99_ms: number | null }>;
  store: Health & { kind: string };
  redis: (Health & { configured: true }) | { configured: false };
}

async function check(probe: Probe, timeoutMs: number): Promise<Health> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latency_ms: Math.round((performance.now() - started) * 100) / 100, error: null };
  } catch (err) {
    // Only the error's own short message: no connection strings or hosts beyond what the operator configured.
    return { ok: false, latency_ms: null, error: (err as Error).message.slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}

export async function liveFigures(s: LiveSources): Promise<LiveFigures> {
  const timeoutMs = s.probeTimeoutMs ?? 1000;
  const [store, redis, inputs] = await Promise.all([
    check(s.store.probe, timeoutMs),
    s.redis ? check(s.redis, timeoutMs) : null,
    s.metrics.cacheInputs.get(),
  ]);
  let hits = 0;
  let misses = 0;
  for (const v of inputs.values) {
    if (v.labels.result === 'hit') hits += v.value;
    else misses += v.value;
  }
  const hot = s.hot.stats;
  const backends: LiveFigures['backends'] = {};
  for (const [name, w] of s.metrics.recentBackendMs) {
    const sum = w.summary([50, 99]);
    backends[name] = { calls: sum.count, p50_ms: sum.percentiles.p50, p99_ms: sum.percentiles.p99 };
  }
  return {
    object: 'live',
    at: new Date().toISOString(),
    uptime_s: Math.round(process.uptime()),
    rss_bytes: process.memoryUsage.rss(),
    hot_cache: {
      bytes: hot.bytes,
      max_bytes: hot.maxBytes,
      entries: hot.entries,
      lookups: hot.lookups,
      hits: hot.hits,
      hit_ratio: hot.lookups > 0 ? hot.hits / hot.lookups : 0,
    },
    cache: { hits, misses, hit_ratio: hits + misses > 0 ? hits / (hits + misses) : 0 },
    queue_depth: s.metrics.queueSource(),
    backends,
    store: { kind: s.store.kind, ...store },
    redis: redis ? { configured: true, ...redis } : { configured: false },
  };
}
