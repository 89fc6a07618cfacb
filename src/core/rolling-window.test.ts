import { describe, expect, it } from 'vitest';
import { RollingWindow } from './rolling-window.js';

describe('RollingWindow', () => {
  it('gives nearest-rank percentiles of the samples in the window', () => {
    let t = 0;
    const w = new RollingWindow(1000, 1000, () => t);
    for (let i = 1; i <= 100; i++) w.add(i);
    expect(w.summary([50, 99, 100])).toEqual({ count: 100, percentiles: { p50: 50, p99: 99, p100: 100 } });
  });

  it('forgets samples older than the window', () => {
    let t = 0;
    const w = new RollingWindow(1000, 100, () => t);
    w.add(500);
    t = 600;
    w.add(1);
    t = 1200; // the first sample is 1200 ms old, the second 600 ms
    expect(w.summary([50])).toEqual({ count: 1, percentiles: { p50: 1 } });
    t = 5000;
    expect(w.summary([50])).toEqual({ count: 0, percentiles: { p50: null } });
  });

  it('keeps only the newest samples past its capacity', () => {
    const w = new RollingWindow(60_000, 3, () => 0);
    for (const v of [100, 1, 2, 3]) w.add(v);
    expect(w.summary([100])).toEqual({ count: 3, percentiles: { p100: 3 } });
  });
});
