/**
 * The most recent samples (bounded in count) with their times, for "over the last minute"
 * figures that Prometheus histograms (cumulative since start) cannot give. Recording costs two
 * array writes; percentiles are computed when read, which is rare (a dashboard poll).
 */
export class RollingWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;

  constructor(
    private readonly windowMs = 60_000,
    capacity = 4096,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  add(value: number): void {
    this.values[this.next] = value;
    this.times[this.next] = this.now();
    this.next = (this.next + 1) % this.values.length;
    if (this.count < this.values.length) this.count++;
  }

  /** Samples within the window, sorted ascending. */
  private recent(): number[] {
    const since = this.now() - this.windowMs;
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.times[i] >= since) out.push(this.values[i]);
    return out.sort((a, b) => a - b);
  }

  /** Count and nearest-rank percentiles of the window's samples (null when it is empty). */
  summary(percentiles: number[] = [50, 99]): { count: number; percentiles: Record<string, number | null> } {
    const s = this.recent();
    const out: Record<string, number | null> = {};
    for (const p of percentiles) out[`p${p}`] = s.length === 0 ? null : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
    return { count: s.length, percentiles: out };
  }
}
