/**
 * `serve` with WORKERS > 1: this process (the primary) serves no HTTP itself. It prepares once
 * (migrations), forks the workers (each runs createServer and listens on the same port, which
 * node:cluster shares), holds what must be counted once per machine (the in-flight registry,
 * the in-process rate limits through rate-limiter-flexible's RateLimiterClusterMaster), restarts
 * a worker that dies (with backoff, logged), forwards SIGHUP, and on SIGTERM/SIGINT stops every
 * worker gracefully (each finishes its requests and flushes rows and usage) before it exits.
 */
import cluster, { type Address, type Worker } from 'node:cluster';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { Logger } from '../log.js';
import { serveClusterMetrics, type PrimaryToWorkerMetrics } from './cluster-metrics.js';
import { InFlightHub } from './inflight-hub.js';
import { isToPrimary, type ToWorker } from './messages.js';

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** Runs once before any worker is forked (migrations). */
  prepare(): Promise<void>;
  /** The first worker listens (where CLI commands find the server). */
  onListening(address: Address): Promise<void>;
  /** Every worker has exited; the primary exits after this. */
  onStopped(): Promise<void>;
  /** Restart delay after a worker died young: doubles from `minMs` up to `maxMs`. */
  backoff?: { minMs: number; maxMs: number };
  /** Workers still running this long after SIGTERM are killed. */
  stopTimeoutMs?: number;
}

/** A worker that lived at least this long before it died is restarted at once (backoff reset). */
const HEALTHY_AFTER_MS = 10_000;

interface Slot {
  index: number;
  worker: Worker | null;
  startedAt: number;
  failures: number;
  listened: boolean;
  timer: NodeJS.Timeout | null;
}

export async function runPrimary(o: PrimaryOptions): Promise<void> {
  const { logger } = o;
  const backoff = o.backoff ?? { minMs: 200, maxMs: 30_000 };
  await o.prepare();
  // Vectors cross the channel as bytes (structured clone), not as JSON arrays of numbers.
  cluster.setupPrimary({ serialization: 'advanced' });
  new RateLimiterClusterMaster();
  /** To one worker, ours (`ec`/`ecm`) only; a gone or exiting one is skipped. */
  const send = (w: Worker | undefined, msg: ToWorker | PrimaryToWorkerMetrics) => {
    if (!w?.isConnected()) return;
    try {
      w.send(msg);
    } catch {
      /* exiting: its 'exit' clears its keys */
    }
  };
  const hub = new InFlightHub((id, msg) => send(cluster.workers?.[id], msg));
  cluster.on('message', (worker, msg: unknown) => {
    if (isToPrimary(msg)) hub.receive(worker.id, msg);
  });

  // A scrape reaching any worker answers for all of them.
  serveClusterMetrics(
    (fn) => void cluster.on('message', fn),
    () => slots.flatMap((s) => (s.listened && s.worker?.isConnected() ? [s.worker] : [])),
    send,
  );
  const slots: Slot[] = Array.from({ length: o.workers }, (_, index) => ({ index, worker: null, startedAt: 0, failures: 0, listened: false, timer: null }));
  const byWorker = new Map<number, Slot>();
  let stopping = false;
  let announced = false;
  let everListened = false;
  let exitCode = 0;

  const fork = (slot: Slot) => {
    slot.timer = null;
    if (stopping) return;
    const worker = cluster.fork({ EC_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listened = false;
    byWorker.set(worker.id, slot);
  };

  let finished: () => void;
  const allStopped = new Promise<void>((resolve) => (finished = resolve));
  const checkStopped = () => {
    if (stopping && slots.every((s) => s.worker === null)) finished();
  };

  cluster.on('listening', (worker, address) => {
    const slot = byWorker.get(worker.id);
    if (slot) slot.listened = true;
    everListened = true;
    logger.info({ worker: slot?.index, workerPid: worker.process.pid, port: address.port }, 'worker listening');
    if (!announced) {
      announced = true;
      o.onListening(address).catch((err: unknown) => logger.warn({ err }, 'recording where the server listens failed'));
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    hub.workerGone(worker.id);
    const slot = byWorker.get(worker.id);
    byWorker.delete(worker.id);
    if (!slot) return;
    slot.worker = null;
    if (stopping) {
      if (code !== 0 && signal !== 'SIGTERM') exitCode = 1;
      checkStopped();
      return;
    }
    // Nothing ever listened and a worker died starting: the same would happen again (database
    // away, port taken); say so and stop instead of restarting forever.
    if (!everListened && !slot.listened) {
      logger.error({ worker: slot.index, workerPid: worker.process.pid, code, signal }, 'a worker failed before serving (see its error above); stopping');
      exitCode = 1;
      void stop('startup failure');
      return;
    }
    slot.failures = Date.now() - slot.startedAt >= HEALTHY_AFTER_MS ? 0 : slot.failures + 1;
    const delayMs = slot.failures === 0 ? 0 : Math.min(backoff.maxMs, backoff.minMs * 2 ** (slot.failures - 1));
    logger.warn({ worker: slot.index, workerPid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker died; starting a new one');
    slot.timer = setTimeout(() => fork(slot), delayMs);
  });

  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason, workers: slots.filter((s) => s.worker).length }, 'stopping every worker: finishing requests, flushing rows and usage');
    for (const s of slots) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      try {
        s.worker?.process.kill('SIGTERM');
      } catch {
        /* gone already */
      }
    }
    const killer = setTimeout(() => {
      logger.error('workers still running after the stop timeout: killing them');
      exitCode = 1;
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, o.stopTimeoutMs ?? 60_000);
    killer.unref();
    checkStopped();
    await allStopped;
    clearTimeout(killer);
    await o.onStopped().catch((err: unknown) => logger.warn({ err }, 'cleaning up after the workers failed'));
    process.exit(exitCode);
  };

  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  // Each worker re-reads the configuration itself (and logs what it applied or refused).
  process.on('SIGHUP', () => {
    for (const s of slots) s.worker?.process.kill('SIGHUP');
  });

  logger.info({ workers: o.workers }, 'starting workers');
  for (const s of slots) fork(s);
}
