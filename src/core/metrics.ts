import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RollingWindow } from './rolling-window.js';
import { HistogramSeries, SeriesHistogram } from './series-histogram.js';

/**
 * Prometheus metrics, one registry per server (tests run several servers in one process).
 * Recorded at the seams: HTTP hooks, the cache lookup, backend calls, the limiter.
 */
export class Metrics {
  readonly registry = new Registry();

  /** What /metrics answers: this registry, or every worker's summed (set by a cluster worker). */
  text: () => Promise<string> = () => this.registry.metrics();

  /** Recorded by every request: a histogram whose observe does not hash its labels (see SeriesHistogram). */
  readonly httpRequests = new SeriesHistogram(
    'ec_http_request_duration_seconds',
    'HTTP request latency by route, method and status',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    this.registry,
  );

  readonly cacheInputs = new Counter({
    name: 'ec_cache_inputs_total',
    help: 'Embedding inputs by cache result (hit = served from the cache)',
    labelNames: ['result', 'model'] as const,
    registers: [this.registry],
  });

  readonly backendDuration = new Histogram({
    name: 'ec_backend_duration_seconds',
    help: 'Time spent computing misses, by backend',
    labelNames: ['backend'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly backendBatchSize = new Histogram({
    name: 'ec_backend_batch_inputs',
    help: 'Inputs per backend call',
    labelNames: ['backend'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    registers: [this.registry],
  });

  readonly backendErrors = new Counter({
    name: 'ec_backend_errors_total',
    help: 'Failed backend calls (upstream errors, timeouts, model failures) by backend and error kind',
    labelNames: ['backend', 'kind'] as const,
    registers: [this.registry],
  });

  readonly invalidVectors = new Counter({
    name: 'ec_backend_invalid_responses_total',
    help: 'Backend answers refused before caching (wrong count or dimension, NaN, zero vectors), by backend and fault',
    labelNames: ['backend', 'fault'] as const,
    registers: [this.registry],
  });

  readonly storeLookupFailures = new Counter({
    name: 'ec_store_lookup_failures_total',
    help: 'Cache lookups that failed or timed out and were served as misses',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly droppedWrites = new Counter({
    name: 'ec_dropped_writes_total',
    help: 'Rows, hit counters or usage entries dropped because the store was away past the buffer bound',
    labelNames: ['what'] as const,
    registers: [this.registry],
  });

  readonly limiterDecisions = new Counter({
    name: 'ec_rate_limit_decisions_total',
    help: 'Rate limiter decisions by outcome and window',
    labelNames: ['decision', 'window'] as const,
    registers: [this.registry],
  });

  /** Read at scrape time: queue depth per model of queueing backends. */
  queueSource: () => Record<string, number> = () => ({});

  readonly queueDepth: Gauge<'model'> = new Gauge({
    name: 'ec_backend_queue_depth',
    help: 'Inputs waiting in a local backend queue, by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
    collect: (): void => {
      for (const [model, depth] of Object.entries(this.queueSource())) this.queueDepth.set({ model }, depth);
    },
  });

  /** Read at scrape time: set by whoever owns the value. */
  hotCacheSource: () => number = () => 0;

  readonly hotCacheBytes: Gauge = new Gauge({
    name: 'ec_hot_cache_bytes',
    help: 'Bytes held by the in-process hot cache',
    registers: [this.registry],
    collect: (): void => this.hotCacheBytes.set(this.hotCacheSource()),
  });

  private readonly inputCounters = new Map<string, { hit: Counter.Internal; miss: Counter.Internal }>();
  private readonly requestHistograms = new Map<string, HistogramSeries>();

  /** Hits and misses of one request; label children are looked up once per model, not per call. */
  countInputs(model: string, hits: number, misses: number): void {
    let c = this.inputCounters.get(model);
    if (!c) {
      c = { hit: this.cacheInputs.labels({ result: 'hit', model }), miss: this.cacheInputs.labels({ result: 'miss', model }) };
      this.inputCounters.set(model, c);
    }
    if (hits > 0) c.hit.inc(hits);
    if (misses > 0) c.miss.inc(misses);
  }

  /** One HTTP request's latency (children cached per route, method and status). */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let h = this.requestHistograms.get(key);
    if (!h) {
      h = this.httpRequests.of({ route, method, status: String(status) });
      this.requestHistograms.set(key, h);
    }
    h.observe(seconds);
  }

  /** Backend call durations (ms) of the last minute, by backend: the live p50/p99. */
  readonly recentBackendMs = new Map<string, RollingWindow>();

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'ec_' });
    // Backend calls are timed with the histogram's startTimer, which ends in its `observe`
    // (an instance property prom-client sets): tap it so each one also lands in the window.
    const observe = this.backendDuration.observe.bind(this.backendDuration);
    this.backendDuration.observe = ((labelsOrValue: Partial<Record<'backend', string>> | number, maybeValue?: number) => {
      if (typeof labelsOrValue === 'number') return observe(labelsOrValue);
      observe(labelsOrValue, maybeValue ?? 0);
      const name = labelsOrValue.backend ?? 'unknown';
      let w = this.recentBackendMs.get(name);
      if (!w) this.recentBackendMs.set(name, (w = new RollingWindow()));
      w.add((maybeValue ?? 0) * 1000);
    }) as Histogram<'backend'>['observe'];
  }
}
