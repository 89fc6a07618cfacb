/**
 * A `serve` worker's ties to its primary (see primary.ts): the shared in-flight registry over
 * the cluster's IPC channel, a response header naming the worker, and the end of the worker
 * when the primary goes away (its IPC channel closes), so no orphan keeps serving the port.
 */
import type { Server as HttpServer } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { WorkerMetrics, type WorkerToPrimaryMetrics } from './cluster-metrics.js';
import { ClusterInFlight, type PrimaryChannel } from './inflight-worker.js';
import type { ToPrimary } from './messages.js';

export interface WorkerTies {
  inflight: ClusterInFlight;
  /** Adds the cross-worker coalescing counters to this worker's registry, and offers the registry to the primary's sums. */
  instrument(registry: Registry): void;
  /** Every worker's figures summed (see cluster-metrics.ts): what /metrics answers. */
  metricsText(): Promise<string>;
}

/** Only in a process forked by runPrimary (process.send exists). */
export function workerTies(onPrimaryGone: () => void): WorkerTies {
  const send = process.send?.bind(process);
  if (!send) throw new Error('workerTies() outside a cluster worker');
  const post = (msg: ToPrimary | WorkerToPrimaryMetrics) => {
    try {
      send(msg);
    } catch {
      /* the channel closed: 'disconnect' follows */
    }
  };
  const onMessage = (fn: (msg: unknown) => void) => void process.on('message', fn);
  const channel: PrimaryChannel = { send: post, onMessage };
  const inflight = new ClusterInFlight(channel);
  // Listening from the start: a request for this worker's figures never goes unanswered.
  const metrics = new WorkerMetrics({ send: post, onMessage });
  process.once('disconnect', () => {
    inflight.close();
    onPrimaryGone();
  });
  const instrument = (registry: Registry) => {
    metrics.use(registry);
    for (const [what, help] of [
      ['waited', 'Inputs this worker awaited from another worker resolving them (identical misses computed once per machine)'],
      ['handedOver', 'Inputs another worker had computed, handed over before their rows were stored'],
    ] as const) {
      new Counter({
        name: `ec_cluster_inflight_${what === 'waited' ? 'waited' : 'handed_over'}_total`,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(inflight.counts[what]);
        },
      });
    }
  };
  return { inflight, instrument, metricsText: () => metrics.text() };
}

/** `x-worker-pid` on every response: which worker answered (load balancing, debugging, tests). */
export function tagResponses(server: HttpServer): void {
  const pid = String(process.pid);
  server.prependListener('request', (_req, res) => res.setHeader('x-worker-pid', pid));
}
