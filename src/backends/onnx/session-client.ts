/** The main-thread side of session-worker.ts: a BatchRunner whose session runs off the event loop, restarted if it dies. */
import { DomainError } from '../../core/errors.js';
import { pack, type PackedIds, type TokenIds } from './packed-ids.js';
import type { SessionWorkerData } from './session-worker.js';
import type { BatchRunner, SessionConfig, SessionInfo } from './session.js';
import { WorkerClient, siblingModule } from './worker-rpc.js';

type SessionClient = WorkerClient<PackedIds, Float32Array[], SessionInfo>;

/** Backoff between restart attempts of a dead worker: 100 ms doubling to 10 s. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;

export class WorkerRunner implements BatchRunner {
  private closed = false;
  private restarts = 0;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private client: SessionClient,
    private readonly data: SessionWorkerData,
    private readonly onEvent: (e: { event: 'died' | 'restarted' | 'restart_failed'; err?: unknown; attempt: number }) => void,
  ) {
    this.watch(client);
  }

  /** Loads the model in a new worker; a load failure (missing CUDA provider, bad file) is thrown here. */
  static async start(onnxPath: string, config: SessionConfig, onEvent: WorkerRunner['onEvent'] = () => {}): Promise<WorkerRunner> {
    const data: SessionWorkerData = { onnxPath, config };
    return new WorkerRunner(await WorkerRunner.spawn(data), data, onEvent);
  }

  private static spawn(data: SessionWorkerData): Promise<SessionClient> {
    return WorkerClient.start(siblingModule(import.meta.url, 'session-worker'), data);
  }

  get info(): SessionInfo {
    return this.client.info;
  }

  /** False while the worker is dead (being restarted): the model cannot serve. */
  get alive(): boolean {
    return this.client.alive;
  }

  run(sequences: readonly TokenIds[]): Promise<Float32Array[]> {
    if (!this.client.alive && !this.closed) {
      return Promise.reject(new DomainError('unavailable', 'The local model worker is being restarted. Retry shortly.', { retryAfterSeconds: 1 }));
    }
    const packed = pack(sequences);
    return this.client.call(packed, [packed.ids.buffer, packed.lengths.buffer]);
  }

  /** Test hook: ends the worker thread as a crash would. */
  crash(): Promise<void> {
    return this.client.kill();
  }

  private watch(client: SessionClient): void {
    client.onDeath((err) => {
      if (this.closed) return;
      this.onEvent({ event: 'died', err, attempt: this.restarts });
      this.scheduleRestart();
    });
  }

  private scheduleRestart(): void {
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.restarts);
    this.restarts++;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      WorkerRunner.spawn(this.data).then(
        (client) => {
          if (this.closed) return void client.close();
          this.client = client;
          this.watch(client);
          this.onEvent({ event: 'restarted', attempt: this.restarts });
          // A worker that stays up a while earns a fresh backoff.
          setTimeout(() => client.alive && (this.restarts = 0), 30_000).unref();
        },
        (err: unknown) => {
          this.onEvent({ event: 'restart_failed', err, attempt: this.restarts });
          this.scheduleRestart();
        },
      );
    }, delay);
    this.timer.unref();
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    return this.client.close();
  }
}
