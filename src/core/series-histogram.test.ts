import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesHistogram } from './series-histogram.js';

describe('SeriesHistogram', () => {
  it("exposes exactly what prom-client's Histogram does for the same observations", async () => {
    const buckets = [0.001, 0.01, 0.1, 1];
    const ours = new Registry();
    const theirs = new Registry();
    const h = new SeriesHistogram('ec_test_seconds', 'Test latency', buckets, ours);
    const ref = new Histogram({ name: 'ec_test_seconds', help: 'Test latency', labelNames: ['route', 'status'], buckets, registers: [theirs] });
    const observations: [string, string, number][] = [
      ['/v1/embeddings', '200', 0.0004],
      ['/v1/embeddings', '200', 0.001],
      ['/v1/embeddings', '200', 0.05],
      ['/v1/embeddings', '429', 2.5],
      ['/healthz', '200', 0.1],
    ];
    for (const [route, status, v] of observations) {
      h.of({ route, status }).observe(v);
      ref.observe({ route, status }, v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('ec_test_seconds_bucket{le="0.001",route="/v1/embeddings",status="200"} 2');
  });

  it('hands out one series per label set, and forgets them on reset', () => {
    const h = new SeriesHistogram('ec_t', 'T', [1], new Registry());
    expect(h.of({ a: 'x' })).toBe(h.of({ a: 'x' }));
    expect(h.of({ a: 'x' })).not.toBe(h.of({ a: 'y' }));
    h.of({ a: 'x' }).observe(3);
    h.reset();
    expect(h.of({ a: 'x' }).count).toBe(0);
  });
});
