/**
 * Paced load for fault tests and the fault benchmark: one request every `intervalMs` (not
 * waiting for answers, so a slow server does not slow the sender), each timed and recorded.
 */
export interface Sample {
  /** ms since the run started, when the request was sent. */
  sentAt: number;
  ms: number;
  status: number;
  headers: Headers | null;
}

export async function pacedLoad(opts: {
  durationMs: number;
  intervalMs: number;
  send: (i: number) => Promise<Response>;
  /** Called at these ms offsets (an outage starts, ends). */
  at?: [number, () => unknown][];
}): Promise<Sample[]> {
  const samples: Promise<Sample>[] = [];
  const start = performance.now();
  const events = [...(opts.at ?? [])].sort((a, b) => a[0] - b[0]);
  const pendingEvents: Promise<unknown>[] = [];
  for (let i = 0; ; i++) {
    const due = start + i * opts.intervalMs;
    if (due - start >= opts.durationMs) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (events.length > 0 && events[0][0] <= performance.now() - start) pendingEvents.push(Promise.resolve(events.shift()![1]()));
    const sentAt = performance.now() - start;
    samples.push(
      opts.send(i).then(
        async (res) => {
          await res.arrayBuffer();
          return { sentAt, ms: performance.now() - start - sentAt, status: res.status, headers: res.headers };
        },
        () => ({ sentAt, ms: performance.now() - start - sentAt, status: 0, headers: null }),
      ),
    );
  }
  for (const [, fn] of events) pendingEvents.push(Promise.resolve(fn()));
  await Promise.all(pendingEvents);
  return Promise.all(samples);
}

/** The most samples matching `admitted` sent within any `windowMs` span. */
export function maxInWindow(samples: Sample[], admitted: (s: Sample) => boolean, windowMs = 1000): number {
  const times = samples.filter(admitted).map((s) => s.sentAt).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[j] < times[i] - windowMs + 1e-9) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
