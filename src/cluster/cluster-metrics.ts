/**
 * /metrics of a `serve` cluster: whichever worker a scrape reaches answers for the machine.
 * It asks the primary, which asks every listening worker for its registry (as JSON), sums them
 * with prom-client's AggregatorRegistry (counters and histograms add up; each metric's own
 * aggregator decides) and hands the text back. Without this a scrape got one random worker's
 * counters, and rates jumped between workers.
 *
 * Messages carry `ecm` (not `ec`: the in-flight registry's), so each side ignores the other's.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** One registry as JSON (what AggregatorRegistry.aggregate sums). */
type RegistryJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export type WorkerToPrimaryMetrics = { ecm: 'collect'; id: number } | { ecm: 'report'; rid: number; metrics: RegistryJson };
export type PrimaryToWorkerMetrics = { ecm: 'collected'; id: number; text: string | null } | { ecm: 'report-please'; rid: number };

function tag(msg: unknown): string | null {
  if (typeof msg !== 'object' || msg === null || !('ecm' in msg)) return null;
  const t = (msg as { ecm: unknown }).ecm;
  return typeof t === 'string' ? t : null;
}

/** How long the primary waits for workers' reports; a stuck worker is left out, not waited for. */
const REPORT_WAIT_MS = 2000;

/** The primary's side. `listening()` names the workers serving now (a booting one has nothing to add). */
export function serveClusterMetrics(
  on: (fn: (worker: Worker, msg: unknown) => void) => void,
  listening: () => Worker[],
  send: (worker: Worker, msg: PrimaryToWorkerMetrics) => void,
): void {
  let nextRid = 1;
  const gathering = new Map<number, { reports: RegistryJson[]; pending: Set<number>; finish: () => void }>();
  on((worker, msg) => {
    const t = tag(msg);
    if (t === 'report') {
      const m = msg as Extract<WorkerToPrimaryMetrics, { ecm: 'report' }>;
      const g = gathering.get(m.rid);
      if (!g || !g.pending.delete(worker.id)) return;
      g.reports.push(m.metrics);
      if (g.pending.size === 0) g.finish();
      return;
    }
    if (t !== 'collect') return;
    const { id } = msg as Extract<WorkerToPrimaryMetrics, { ecm: 'collect' }>;
    const asker = worker;
    const rid = nextRid++;
    const targets = listening();
    const g = { reports: [] as RegistryJson[], pending: new Set(targets.map((w) => w.id)), finish: () => {} };
    const timer = setTimeout(() => g.finish(), REPORT_WAIT_MS);
    g.finish = () => {
      clearTimeout(timer);
      gathering.delete(rid);
      // null: nothing to sum (no worker answered); the asker then shows its own figures.
      let text: Promise<string | null>;
      try {
        text = g.reports.length > 0 ? AggregatorRegistry.aggregate(g.reports).metrics() : Promise.resolve(null);
      } catch (err) {
        text = Promise.reject(err);
      }
      text.then(
        (t) => send(asker, { ecm: 'collected', id, text: t }),
        () => send(asker, { ecm: 'collected', id, text: null }),
      );
    };
    gathering.set(rid, g);
    if (targets.length === 0) return g.finish();
    for (const w of targets) send(w, { ecm: 'report-please', rid });
  });
}

export interface WorkerMetricsChannel {
  send(msg: WorkerToPrimaryMetrics): void;
  onMessage(fn: (msg: unknown) => void): void;
}

/**
 * A worker's side: answers the primary's requests for its registry (with nothing until
 * `use()` names one, so a booting worker never holds a scrape up), and `text()` gets the
 * machine's figures, falling back to this worker's own if the primary does not answer.
 */
export class WorkerMetrics {
  private registry: Registry | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, (text: string | null) => void>();

  constructor(private readonly channel: WorkerMetricsChannel) {
    channel.onMessage((msg) => {
      const t = tag(msg);
      if (t === 'report-please') {
        const { rid } = msg as Extract<PrimaryToWorkerMetrics, { ecm: 'report-please' }>;
        void (this.registry ? this.registry.getMetricsAsJSON() : Promise.resolve([])).then(
          (metrics) => channel.send({ ecm: 'report', rid, metrics }),
          () => channel.send({ ecm: 'report', rid, metrics: [] }),
        );
      } else if (t === 'collected') {
        const { id, text } = msg as Extract<PrimaryToWorkerMetrics, { ecm: 'collected' }>;
        this.waiting.get(id)?.(text);
        this.waiting.delete(id);
      }
    });
  }

  use(registry: Registry): void {
    this.registry = registry;
  }

  async text(): Promise<string> {
    const own = this.registry;
    if (!own) return '';
    const id = this.nextId++;
    const answer = new Promise<string | null>((resolve) => {
      this.waiting.set(id, resolve);
      setTimeout(() => {
        if (this.waiting.delete(id)) resolve(null);
      }, REPORT_WAIT_MS * 2).unref();
    });
    this.channel.send({ ecm: 'collect', id });
    return (await answer) ?? own.metrics();
  }
}
